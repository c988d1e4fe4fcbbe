"""Suspect, then confirm: an unconfirmed "slower" is only a suspect until base and new are measured again
in pairs, alternating in one process (``compare`` does it by default; ``--no-confirm`` skips it).

Why: a load change between two runs (another job starting on the machine) is drift no number of
repeats inside each run can see; measured here, ``compare base same`` of one file called a regression
in 2 of 3 trials while the load changed. Pairs measured back to back see the same load, so their ratio
cancels it. The pairs measure the bytes each run recorded (store/blobs.py), not the file now at the
path: a file replaced in place must not be "confirmed" against itself. The pairs test the bytes, with
today's runtime: when the two runs recorded different LiteRT/TensorFlow versions, a host suspect is
not re-measured (it stays a suspect): the pairs could not see a slowdown the runtime brought.

The cell's ``confirmation``:

* ``suspect``: slower on the recorded runs (or a median slower by more than the minimum effect that
  their noise hid), not (or not yet) re-measured. A "slower" suspect is still a regression: only a
  re-measurement clears it (with ``--no-confirm``, when the bytes are gone or the phone is not there);
* ``confirmed``: re-measured in pairs and still slower (a regression);
* ``cleared``: was a suspect, the pairs show no slowdown (not a regression);
* ``re-measured``: not a suspect, re-measured because ``--confirm`` asked for every cell.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from tflite_deploy.errors import UserError
from tflite_deploy.progress import ProgressCallback, report
from tflite_deploy.reporting import verdict as V
from tflite_deploy.store.blobs import MissingBytesError, recorded_bytes

SUSPECT, CONFIRMED, CLEARED, REMEASURED = "suspect", "confirmed", "cleared", "re-measured"
LOOKS = 3  # rounds of pairs at most, while undecided
ALPHA = 0.05
MIN_PAIRS = 6  # 6 pairs all one way: sign test p = 1/64, under ALPHA / LOOKS

#: measure(target, delegate, settings, base_file, new_file, repeat) -> (base medians, new medians)
Measure = Callable[[str, str, dict, Path, Path, int], tuple[Sequence[Optional[float]], Sequence[Optional[float]]]]


def mark_suspects(cmp: Any) -> Any:
    """Label a suspect every cell whose recorded runs say "slower", and every cell whose median is slower
    by more than the minimum effect though the runs' noise hid it from the verdict: under a load change
    the repeats spread so far (measured: a threshold of +460%) that a real 20% slowdown reads
    "no change". The re-measurement in pairs is what tells the two apart; until it has, only the
    first kind counts as a regression."""
    for c in cmp.cells:
        lat = c.latency
        slower_median = lat.ratio is not None and lat.ratio > 1 + cmp.min_effect
        if c.status == "compared" and (lat.verdict == V.SLOWER or slower_median) and not c.confirmation:
            c.confirmation = SUSPECT
    return cmp


def describe(c: Any) -> str:
    model, recipe, target, delegate = c.key
    return f"{model}{'.' + recipe if recipe and not str(model).endswith(recipe) else ''} on {target} ({delegate})"


def confirm(cmp: Any, measure: Measure, *, repeat: int = 10, every_cell: bool = False,
            progress: Optional[ProgressCallback] = None) -> Any:
    """Re-measure the suspects (``every_cell``: every compared cell with a latency, as ``--confirm``
    asks) in ``repeat`` interleaved pairs of the recorded bytes, and judge each on its pairs alone.

    ``every_cell`` (an explicit ``--confirm``) refuses with :class:`MissingBytesError` when a cell's
    recorded bytes are gone, before measuring anything. Device cells are re-measured on their phone
    and delegate in one sitting (benchmark/paired.py). Automatic confirmation leaves such a cell a
    suspect and says why in its note.
    """
    if repeat < MIN_PAIRS:
        raise UserError(f"--repeat {repeat}: a confirmation needs at least {MIN_PAIRS} interleaved pairs (the sign "
                        f"test at {ALPHA / LOOKS:.2%} cannot call fewer).")
    folder = Path(cmp.blob_folder) if cmp.blob_folder else None
    todo = [c for c in cmp.cells if c.status == "compared" and c.latency.verdict != V.NOT_COMPARABLE
            and (every_cell or c.confirmation == SUSPECT)]
    files: dict = {}
    for c in todo:
        try:
            if folder is None:
                raise MissingBytesError(f"{describe(c)}: this comparison knows no blob folder.")
            files[c.key] = (recorded_bytes(folder, c.base.sha256, f"base run {cmp.base_run['id']}'s {describe(c)}"),
                            recorded_bytes(folder, c.new.sha256, f"new run {cmp.new_run['id']}'s {describe(c)}"))
        except MissingBytesError as e:
            if every_cell:
                raise
            c.note = f"not re-measured: {e}"
    changed = _runtime_change(cmp)
    for c in todo:
        if c.key in files and changed and c.key[2] == "host":  # today's runtime measures both sides alike
            del files[c.key]
            c.note = (f"not re-measured: the runs used different runtimes ({changed}); pairs measured with "
                      "today's runtime cannot see a slowdown the runtime brought")
    for c in todo:
        if c.key in files and c.base.tool_sha256 and c.new.tool_sha256 and c.base.tool_sha256 != c.new.tool_sha256:
            del files[c.key]  # the same for the phone's benchmark binary
            c.note = (f"not re-measured: the runs used different benchmark binaries ({c.base.tool_sha256[:8]} -> "
                      f"{c.new.tool_sha256[:8]}); pairs measured with one binary cannot see a slowdown it brought")
    todo = [c for c in todo if c.key in files]
    for i, c in enumerate(todo):
        report(progress, "confirm", i, len(todo), f"Re-measuring {describe(c)}: base and new, interleaved ...")
        base_file, new_file = files[c.key]
        try:
            v = _pairs_verdict(c, measure, base_file, new_file, repeat, cmp.min_effect)
        except UserError as e:
            if every_cell and c.key[2] == "host":
                raise
            c.note = f"not re-measured: {e}"
            continue
        if v.verdict == V.NOT_COMPARABLE:  # the re-measurement failed: it clears nothing
            c.note = f"re-measurement gave no verdict ({v.basis})"
            continue
        was_suspect = c.confirmation == SUSPECT
        where = "in one process" if c.key[2] == "host" else f"on {c.key[2]} ({c.key[3]}) in one sitting"
        c.unconfirmed, c.latency = c.latency, replace(v, basis=f"re-measured interleaved {where}: {v.basis}")
        c.confirmation = CONFIRMED if v.verdict == V.SLOWER else CLEARED if was_suspect else REMEASURED
        cmp.confirmed.append(c.key)
    report(progress, "confirm", len(todo), len(todo), "")
    return cmp


def _pairs_verdict(c: Any, measure: Measure, base_file: Path, new_file: Path, repeat: int,
                   min_effect: float) -> V.LatencyVerdict:
    """``repeat`` pairs, and up to :data:`LOOKS` rounds of them while the pairs' median is beyond the
    minimum effect but the sign test is not yet sure (a loaded machine: measured, 8 of 10 pairs slower
    for a 20% heavier model). Each look tests at alpha / LOOKS, so the looks together keep 5%."""
    b: list = []
    n: list = []
    for _ in range(LOOKS):
        more_b, more_n = measure(c.key[2], c.key[3], c.new.settings or c.base.settings, base_file, new_file, repeat)
        b, n = b + list(more_b), n + list(more_n)
        v = V.paired_verdict(b, n, min_effect=min_effect, alpha=ALPHA / LOOKS)
        beyond = v.ratio is not None and abs(math.log(v.ratio)) > math.log1p(min_effect)
        if v.verdict != V.NO_CHANGE or not beyond:
            break
    return v


def _runtime_change(cmp: Any) -> str:
    """What differs between the two runs' recorded runtime versions ("" when nothing, or not recorded)."""
    b = (cmp.base_run.get("versions") or {}) if isinstance(cmp.base_run, dict) else {}
    n = (cmp.new_run.get("versions") or {}) if isinstance(cmp.new_run, dict) else {}
    return ", ".join(f"{k} {b[k]} -> {n[k]}" for k in ("ai-edge-litert", "tensorflow")
                     if k in b and k in n and b[k] != n[k])
