"""``compare --confirm``: judge host cells on a new measurement instead of the stored ones.

Every host cell measured on both sides whose two artifacts are still on disk is measured again,
base and new alternating in this one process, and judged on those pairs alone
(:func:`~tflite_deploy.reporting.verdict.paired_verdict`): no between-process noise, drift cancelled.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

from tflite_deploy.benchmark.host import bench_host
from tflite_deploy.benchmark.options import BenchOptions
from tflite_deploy.progress import ProgressCallback, report
from tflite_deploy.reporting.compare import Comparison
from tflite_deploy.reporting.verdict import NOT_COMPARABLE, paired_verdict


def confirm_on_host(cmp: Comparison, repeat: int, progress: Optional[ProgressCallback] = None) -> Comparison:
    """``cmp`` with every confirmable host cell judged on ``repeat`` new pairs of measurements (see the module)."""

    def on_disk(cell: Any, run: dict) -> Optional[Path]:
        p = Path(cell.artifact or "")
        p = p if p.is_absolute() else Path(run.get("cwd") or ".") / p
        return p if cell.artifact and p.is_file() else None

    def settings(cell: Any, delegate: str) -> BenchOptions:
        s = cell.settings
        return BenchOptions(threads=s.get("threads") or 1, runs=min(s.get("runs") or 50, 50),
                            warmup=s.get("warmup") or 5, min_seconds=0.2, delegate=delegate).for_host()

    todo = [c for c in cmp.cells if c.status == "compared" and c.latency.verdict != NOT_COMPARABLE
            and c.key[2] == "host" and on_disk(c.base, cmp.base_run) and on_disk(c.new, cmp.new_run)]
    for i, c in enumerate(todo):
        report(progress, "confirm", i, len(todo), f"Re-measuring {c.key[0]} base and new, interleaved ...")
        sides = [(on_disk(c.base, cmp.base_run), settings(c.base, c.key[3])),
                 (on_disk(c.new, cmp.new_run), settings(c.new, c.key[3]))]
        medians: list[list[float]] = [[], []]
        for k in range(repeat):  # base, new, base, new ...: drift hits both sides alike
            for side, (path, s) in enumerate(sides if k % 2 == 0 else sides[::-1]):
                r = bench_host([path], s)[0]
                medians[side if k % 2 == 0 else 1 - side].append(r.latency.p50_ms if r.latency else None)
        v = paired_verdict(medians[0], medians[1], min_effect=cmp.min_effect)
        c.latency = replace(v, basis=f"confirmed in one process: {v.basis}")
        cmp.confirmed.append(c.key)
    report(progress, "confirm", len(todo), len(todo), "")
    return cmp
