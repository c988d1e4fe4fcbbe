"""Judging a series of timings: the warnings a careful person would give (in hyperfine's manner)."""

from __future__ import annotations

from typing import Optional

import numpy as np

from tflite_deploy.result import LatencyStats

NOISY_CV = 0.10  # σ/mean above this: the machine is probably busy
OUTLIER_Z = 14.0  # hyperfine's threshold on the modified Z-score (0.6745 (x - median) / MAD)
OUTLIER_SHARE = 0.02  # more outliers than this share of runs is worth a warning
FIRST_RUN_FACTOR = 3.0  # first inference this many times the median: a first-run effect


def outlier_count(samples_ms: np.ndarray) -> int:
    med = np.median(samples_ms)
    mad = np.median(np.abs(samples_ms - med)) or 1e-9
    return int(np.sum(0.6745 * (samples_ms - med) / mad > OUTLIER_Z))


def timing_warnings(stats: LatencyStats, first_ms: Optional[float]) -> list[str]:
    """Warnings about noise and first-run effects; empty when the series looks clean."""
    out = []
    if stats.count and stats.samples_ms:
        samples = np.asarray(stats.samples_ms)
        n_out = outlier_count(samples)
        if n_out > max(1, OUTLIER_SHARE * len(samples)):
            out.append(f"{n_out} of {len(samples)} runs are statistical outliers (far slower than the median): "
                       "another program may be competing for the CPU. Use p50 rather than the mean, or "
                       "measure on a quiet machine.")
    if stats.cv is not None and stats.cv > NOISY_CV:
        out.append(f"The spread is large (σ is {stats.cv:.0%} of the mean): results may not be reliable.")
    if first_ms and stats.p50_ms and first_ms > FIRST_RUN_FACTOR * stats.p50_ms:
        out.append(f"The first inference took {first_ms / stats.p50_ms:.1f}x the median: a first-run effect "
                   "(lazy initialisation, cold caches), reported apart and excluded from the statistics.")
    return out
