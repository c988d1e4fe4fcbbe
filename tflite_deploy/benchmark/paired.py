"""Two files measured in pairs, alternating in one process: base, new, new, base, base, new, ...

Load that drifts over seconds (another process starting, a CPU clocking down) moves both halves of a
pair alike, so each pair's ratio cancels it where two separate runs would not. ``compare`` uses it to
confirm or clear a suspect (see :mod:`tflite_deploy.reporting.suspects`); the files are the recorded
bytes (store/blobs.py), never whatever sits at a result's path now.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from tflite_deploy.errors import UserError


def host_pairs(base: Path, new: Path, settings: dict, delegate: str, repeat: int
               ) -> tuple[list[Optional[float]], list[Optional[float]]]:
    """Per-pair median latencies (ms) of ``base`` and ``new`` on this host, ``repeat`` pairs. A pair is
    one interleaved pass (base, new, base, new ... invokes: drift over milliseconds hits both), each
    pair in fresh interpreters, with the bench settings the cell was recorded with (runs capped at
    50, 0.2 s minimum: a pair is short, many pairs make the verdict)."""
    from tflite_deploy.benchmark.host import HostBenchSettings, bench_host

    s = HostBenchSettings(threads=settings.get("threads") or 1, runs=min(settings.get("runs") or 50, 50),
                          warmup=settings.get("warmup") or 5, min_seconds=0.2, delegate=delegate)
    medians: list[list[Optional[float]]] = [[], []]
    for k in range(repeat):  # one pair: both files loaded, their invokes interleaved; which goes first flips
        pair = bench_host([base, new] if k % 2 == 0 else [new, base], s)
        for side, r in enumerate(pair if k % 2 == 0 else pair[::-1]):
            medians[side].append(r.latency.p50_ms if r.ok and r.latency else None)
    return medians[0], medians[1]


def measure_pairs(target: str, delegate: str, settings: dict, base: Path, new: Path, repeat: int
                  ) -> tuple[list[Optional[float]], list[Optional[float]]]:
    """Pairs on the cell's target. Host only: a device cell is refused with the reason."""
    if target != "host":
        raise UserError(f"{target}: interleaved re-measurement runs on this host only; a device cell keeps "
                        "its unconfirmed verdict.")
    return host_pairs(base, new, settings, delegate, repeat)
