"""``bench --repeat K``: fold K independent measurements of one artifact into one Result.

Latency differs more between processes or interpreter instances than inside one (see
:mod:`tflite_deploy.report.verdict`), so ``compare`` needs each repeat's median, not one pooled
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
    ok = [r for r in repeats if r.ok and r.latency and r.latency.p50_ms is not None]
    if not ok:
        return repeats[0]
    medians = [r.latency.p50_ms for r in ok]  # type: ignore[union-attr]
    samples = [s for r in ok for s in r.latency.samples_ms]  # type: ignore[union-attr]
    latency = LatencyStats.from_samples(samples) if samples else ok[0].latency
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
