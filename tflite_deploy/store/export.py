"""Flat exports of results (CSV), for spreadsheets and CI artifacts."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Sequence

from tflite_deploy.artifact import write_atomic
from tflite_deploy.result import Result

COLUMNS = ("artifact", "recipe", "target", "runner", "delegate", "status", "threads", "runs", "init_ms",
           "first_ms", "warmup_mean_ms", "mean_ms", "std_ms", "min_ms", "p50_ms", "p90_ms", "p99_ms",
           "max_ms", "init_memory_mb", "peak_memory_mb", "delegate_kernels", "error")


def flat_row(r: Result) -> dict[str, Any]:
    lat = r.latency
    return {
        "artifact": r.artifact, "recipe": r.recipe, "target": r.target, "runner": r.runner,
        "delegate": r.delegate, "status": r.status, "threads": r.settings.get("threads"),
        "runs": lat.count if lat else None, "init_ms": r.init_ms, "first_ms": r.first_ms,
        "warmup_mean_ms": r.warmup.mean_ms if r.warmup else None,
        **{f"{k}_ms": getattr(lat, f"{k}_ms") if lat else None
           for k in ("mean", "std", "min", "p50", "p90", "p99", "max")},
        "init_memory_mb": r.init_memory_mb, "peak_memory_mb": r.peak_memory_mb,
        "delegate_kernels": r.coverage.delegate_kernels if r.coverage else None, "error": r.error,
    }


def write_csv(results: Sequence[Result], path: Path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS)
    w.writeheader()
    for r in results:
        w.writerow(flat_row(r))
    write_atomic(Path(path), buf.getvalue().encode())
