"""``bench --repeat K``: fold K independent measurements of one artifact into one Result.

Latency differs more between processes or interpreter instances than inside one (see
:mod:`tflite_deploy.reporting.verdict`), so ``compare`` needs each repeat's median, not one pooled
series. The merged Result keeps every sample (pooled) and the per-repeat medians in
``metrics["repeat_p50_ms"]`` and ``settings["repeats"]``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from tflite_deploy.result import LatencyStats, Result


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
