"""``bench --repeat K``: K independent measurements of each artifact, folded into one Result each.

Latency differs more between processes or interpreter instances than inside one (see
:mod:`tflite_deploy.reporting.verdict`), so ``compare`` needs each repeat's median, not one pooled
series. The merged Result keeps every sample (pooled) and the per-repeat medians in
``metrics["repeat_p50_ms"]`` and ``settings["repeats"]``.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional, Sequence

from tflite_deploy.artifact import recipe_name
from tflite_deploy.benchmark.device import bench_devices
from tflite_deploy.benchmark.host import bench_host
from tflite_deploy.benchmark.options import BenchOptions
from tflite_deploy.hashing import sha256_file
from tflite_deploy.progress import ProgressCallback, report
from tflite_deploy.result import LatencyStats, Result

Done = Callable[[Result], Result]  # called with each finished (merged) Result; returns it as recorded


def bench_host_repeated(paths: Sequence[Path], settings: BenchOptions, repeat: int,
                        progress: Optional[ProgressCallback], done: Done) -> list[Result]:
    """Host results: one interleaved pass when ``repeat`` is 1, else each file ``repeat`` times, merged."""
    if repeat == 1:  # one pass, the files interleaved: they finish together
        report(progress, "bench", 0, settings.runs, f"Measuring {len(paths)} model(s), interleaved ...")
        return [done(r) for r in bench_host(paths, settings, progress=progress)]
    out = []
    for i, p in enumerate(paths):  # file by file, so each is recorded as soon as its K repeats are in
        reps = []
        for k in range(repeat):
            report(progress, "bench", i * repeat + k, len(paths) * repeat, f"{p.name}: repeat {k + 1}")
            reps += bench_host([p], settings)  # a fresh interpreter instance each time
        out.append(done(merge_repeats(reps)))
    report(progress, "bench", len(paths) * repeat, len(paths) * repeat, "")
    return out


def bench_devices_repeated(paths: Sequence[Path], devices: Sequence[str], tool: Optional[Path],
                           settings: BenchOptions, repeat: int, progress: Optional[ProgressCallback],
                           done: Done) -> list[Result]:
    """Device results (each filled in like a host one), every file ``repeat`` times on every device and
    delegate, ``settings.cooldown`` apart, merged per cell."""
    total = len(paths) * len(devices) * len(settings.delegates) * repeat
    count = [0]

    def on_result(r: Result) -> None:
        count[0] += 1
        report(progress, "device", count[0], total, f"{r.target} {r.delegate}: {r.status}", r)
        if repeat == 1:
            done(fill_like_host(r))

    report(progress, "device", 0, total, "")
    if repeat == 1:
        return [fill_like_host(r) for r in bench_devices(paths, devices, tool, settings, on_result=on_result)]
    out = []
    for p in paths:  # file by file: K runs of it on every device and delegate, then one merged Result each
        cells: dict[tuple, list[Result]] = {}
        for k in range(repeat):
            if k and settings.cooldown:
                time.sleep(settings.cooldown)  # the same rest bench_devices takes between its own runs
            for r in bench_devices([p], devices, tool, settings, on_result=on_result):
                cells.setdefault((r.target, r.delegate), []).append(r)
        out += [done(fill_like_host(merge_repeats(reps))) for reps in cells.values()]
    return out


def fill_like_host(r: Result) -> Result:
    """A device Result with what a host one carries: the recipe and hash of the file measured, and
    ``settings["runs"]`` as the runs measured (the runs asked for stay in ``requested_runs``)."""
    path = Path(r.artifact)
    settings = dict(r.settings)
    if "runs" in settings and "requested_runs" not in settings:
        settings["requested_runs"] = settings["runs"]
        settings["runs"] = r.latency.count if r.latency else 0
    return replace(r, settings=settings, recipe=r.recipe or recipe_name(path),
                   artifact_sha256=r.artifact_sha256 or (sha256_file(path) if path.is_file() else r.artifact_sha256))


def merge_repeats(repeats: Sequence[Result]) -> Result:
    """One Result from K repeats of the same artifact × target × delegate (failed repeats are dropped;
    when all failed, the first failure is returned)."""
    if not repeats:
        raise ValueError("merge_repeats needs at least one result")
    keys = {(r.artifact, r.target, r.delegate) for r in repeats}
    if len(keys) > 1:
        raise ValueError(f"merge_repeats got results of different cells: {sorted(keys)}")
    ok = [r for r in repeats if r.ok and r.latency and _centre(r.latency) is not None]
    if not ok:
        return repeats[0]
    # a device log gives a median only from the newest benchmark_model on: the mean stands in before
    medians = [_centre(r.latency) for r in ok]  # type: ignore[arg-type]
    samples = [s for r in ok for s in r.latency.samples_ms]  # type: ignore[union-attr]
    latency = LatencyStats.from_samples(samples) if samples else _pooled([r.latency for r in ok])  # type: ignore[misc]
    first = ok[0]
    inits = [r.init_ms for r in ok if r.init_ms is not None]
    return replace(
        first, latency=latency,
        init_ms=sorted(inits)[len(inits) // 2] if inits else None,
        peak_memory_mb=max((r.peak_memory_mb for r in ok if r.peak_memory_mb is not None), default=None),
        settings={**first.settings, "repeats": len(ok)},
        metrics={**first.metrics, "repeat_p50_ms": medians},
        warnings=tuple(dict.fromkeys(w for r in ok for w in r.warnings)),
        raw_log="\n".join(r.raw_log for r in ok if r.raw_log))


def _centre(lat: LatencyStats) -> float | None:
    return lat.p50_ms if lat.p50_ms is not None else lat.mean_ms


def _pooled(parts: Sequence[LatencyStats]) -> LatencyStats:
    """Summary statistics of K runs pooled without their samples (benchmark_model prints none)."""
    n = sum(p.count for p in parts)
    if n == 0 or any(p.mean_ms is None for p in parts):
        return replace(parts[0], count=n)
    mean = sum(p.count * p.mean_ms for p in parts) / n  # type: ignore[operator]
    std = None
    if all(p.std_ms is not None for p in parts):  # within-run variance plus the spread of the run means
        std = (sum(p.count * (p.std_ms ** 2 + (p.mean_ms - mean) ** 2) for p in parts) / n) ** 0.5  # type: ignore[operator]
    p50s = [p.p50_ms for p in parts]
    return replace(parts[0], count=n, mean_ms=mean, std_ms=std,
                   min_ms=min((p.min_ms for p in parts if p.min_ms is not None), default=None),
                   max_ms=max((p.max_ms for p in parts if p.max_ms is not None), default=None),
                   p50_ms=sorted(p50s)[len(p50s) // 2] if None not in p50s else None,  # type: ignore[type-var]
                   p90_ms=None, p99_ms=None, samples_ms=())
