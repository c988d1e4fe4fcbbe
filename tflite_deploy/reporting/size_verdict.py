"""What an artifact computes in, compared across runs: "now computes in float", ops changed.

Size alone misses a recipe that quietly fell back to float (a converter upgrade, a new layer without
an int8 kernel): the file grows, and the phone runs float kernels. The kept bytes of both sides
(store/blobs.py) are read with the .tflite reader (no TensorFlow) and their compute compared: more ops
in float than before is a regression ("now computes in float"); other op changes are a note.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Optional

from tflite_deploy.reporting.verdict import NOW_FLOAT


def _facts(folder: Path, sha: Optional[str], cache: dict) -> Optional[dict]:
    """Kind, float compute ops and op histogram of the kept bytes ``sha`` (None when not kept)."""
    if not sha:
        return None
    if sha not in cache:
        from tflite_deploy.errors import UserError
        from tflite_deploy.store.blobs import blob_path
        from tflite_deploy.tflite.reader import inspect_model

        p = blob_path(folder, sha)
        try:
            rep = inspect_model(p) if p.is_file() else None
        except UserError:  # not a flatbuffer we can read: no compute verdict, never a crash
            rep = None
        cache[sha] = None if rep is None else {"kind": rep.kind, "float_ops": _float_ops(rep),
                                               "ops": dict(rep.op_histogram)}
    return cache[sha]


FLOAT_KINDS = ("float32", "float16", "weight-only", "dynamic")  # every compute op runs in float


def _float_ops(rep: Any) -> int:
    """Ops that compute in float: all of them in a float model, those the reader lists in a quantized one."""
    return rep.op_count if rep.kind in FLOAT_KINDS else len(rep.quantization.float_ops)


def compute_change(base: Optional[dict], new: Optional[dict]) -> str:
    """One phrase for what changed in the compute ("" when nothing, or when either side is unknown)."""
    if not base or not new:
        return ""
    if new["float_ops"] > base["float_ops"]:
        kinds = f"{base['kind']} -> {new['kind']}" if base["kind"] != new["kind"] else new["kind"]
        return f"{NOW_FLOAT}: {kinds}, float ops {base['float_ops']} -> {new['float_ops']}"
    diff = Counter(new["ops"])
    diff.subtract(base["ops"])
    changed = [f"{op} {n:+d}" for op, n in sorted(diff.items()) if n]
    kinds = f"{base['kind']} -> {new['kind']}; " if base["kind"] != new["kind"] else ""
    return f"{kinds}ops changed: {', '.join(changed)}" if changed or kinds else ""


def judge_compute(cells: list, folder: Path) -> None:
    """Set ``compute`` on every compared cell whose two sides' bytes are kept."""
    cache: dict = {}
    for c in cells:
        if c.status != "compared" or c.base is None or c.new is None:
            continue
        b = _facts(folder, c.base.artifact_sha256 or c.base.sha256, cache)
        n = _facts(folder, c.new.artifact_sha256 or c.new.sha256, cache)
        c.compute = compute_change(b, n)
