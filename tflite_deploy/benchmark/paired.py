"""Two files measured in pairs, alternating in one process: base, new, new, base, base, new, ...

Load that drifts over seconds (another process starting, a CPU clocking down) moves both halves of a
pair alike, so each pair's ratio cancels it where two separate runs would not. ``compare`` uses it to
confirm or clear a suspect (see :mod:`tflite_deploy.reporting.suspects`), on this host or on the phone
and delegate the cell was measured on; the files are the recorded
bytes (store/blobs.py), never whatever sits at a result's path now.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from tflite_deploy.benchmark.options import BenchOptions
from tflite_deploy.errors import UserError


def host_pairs(base: Path, new: Path, settings: dict, delegate: str, repeat: int
               ) -> tuple[list[Optional[float]], list[Optional[float]]]:
    """Per-pair median latencies (ms) of ``base`` and ``new`` on this host, ``repeat`` pairs. A pair is
    one interleaved pass (base, new, base, new ... invokes: drift over milliseconds hits both), each
    pair in fresh interpreters, with the bench settings the cell was recorded with (runs capped at
    50, 0.2 s minimum: a pair is short, many pairs make the verdict)."""
    from tflite_deploy.benchmark.host import bench_host

    s = BenchOptions(threads=settings.get("threads") or 1, runs=min(settings.get("runs") or 50, 50),
                     warmup=settings.get("warmup") or 5, min_seconds=0.2, delegate=delegate).for_host()
    medians: list[list[Optional[float]]] = [[], []]
    for k in range(repeat):  # one pair: both files loaded, their invokes interleaved; which goes first flips
        pair = bench_host([base, new] if k % 2 == 0 else [new, base], s)
        for side, r in enumerate(pair if k % 2 == 0 else pair[::-1]):
            medians[side].append(r.latency.p50_ms if r.ok and r.latency else None)
    return medians[0], medians[1]


def device_pairs(target: str, base: Path, new: Path, settings: dict, delegate: str, repeat: int, *,
                 tool: Optional[Path] = None, cooldown: float = 0.0
                 ) -> tuple[list[Optional[float]], list[Optional[float]]]:
    """Per-pair p50s (ms) of ``base`` and ``new`` on one phone and delegate, in one sitting: both files
    pushed (once: the push skips what the phone holds), then ``repeat`` pairs of benchmark_model runs,
    the order flipped every pair, ``cooldown`` seconds between runs and between pairs, with the
    settings the cell was recorded with. A run that fails stops it (:class:`UserError` with the reason)."""
    from tflite_deploy.benchmark.device import bench_devices
    s = BenchOptions(delegate=(delegate,), threads=settings.get("threads") or 4,
                     runs=settings.get("requested_runs") or settings.get("runs") or 50,
                     warmup=settings.get("warmup") or 1, min_seconds=settings.get("min_seconds") or 1.0,
                     pin_big_cores=bool(settings.get("pin_big_cores")), cooldown=cooldown,
                     runtime=settings.get("runtime") or "auto", model_cache=False).for_device()
    medians: list[list[Optional[float]]] = [[], []]
    for k in range(repeat):
        if k and cooldown:
            time.sleep(cooldown)
        pair = bench_devices([base, new] if k % 2 == 0 else [new, base], [target], tool, s)
        failed = next((r for r in pair if not r.ok), None)
        if failed is not None:  # a phone that fails mid-way confirms nothing: say why
            raise UserError(f"{target} ({delegate}): a re-measurement run {failed.status}: {failed.error}")
        for side, r in enumerate(pair if k % 2 == 0 else pair[::-1]):  # benchmark_model may print means only
            lat = r.latency
            medians[side].append(None if lat is None else lat.p50_ms if lat.p50_ms is not None else lat.mean_ms)
    return medians[0], medians[1]


def measure_pairs(target: str, delegate: str, settings: dict, base: Path, new: Path, repeat: int, *,
                  tool: Optional[Path] = None, cooldown: float = 0.0
                  ) -> tuple[list[Optional[float]], list[Optional[float]]]:
    """Pairs on the cell's target: this host, or the Android device named (``tool``: its
    benchmark_model binary, None to fetch the official build)."""
    if target == "host":
        return host_pairs(base, new, settings, delegate, repeat)
    if target.startswith("adb"):
        return device_pairs(target, base, new, settings, delegate, repeat, tool=tool, cooldown=cooldown)
    raise UserError(f"{target}: no way to measure on this target again (results read from a log?); the cell "
                    "keeps its unconfirmed verdict.")
