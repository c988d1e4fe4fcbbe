"""Synthetic Results for store tests (no TensorFlow, no interpreter)."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from tflite_deploy.result import LatencyStats, Result


def bench_result(model: str = "net", recipe: str = "int8", *, target: str = "host", delegate: str = "xnnpack",
                 p50: float = 3.0, repeats: Optional[Sequence[float]] = None, status: str = "ok",
                 seed: int = 0, n: int = 50, error: Optional[str] = None) -> Result:
    """A bench Result whose samples centre on ``p50`` ms (and per-repeat medians when given)."""
    if status != "ok":
        return Result(kind="bench", artifact=f"out/{model}.{recipe}.tflite", target=target, delegate=delegate,
                      recipe=recipe, status=status, error=error or "delegate failed")
    rng = np.random.default_rng(seed)
    samples = list(p50 * np.exp(rng.normal(0, 0.01, n)))
    samples = [s * p50 / float(np.median(samples)) for s in samples]
    metrics = {"repeat_p50_ms": list(repeats)} if repeats is not None else {}
    return Result(kind="bench", artifact=f"out/{model}.{recipe}.tflite", target=target, delegate=delegate,
                  recipe=recipe, latency=LatencyStats.from_samples(samples), init_ms=12.5, peak_memory_mb=80.0,
                  metrics=metrics, settings={"threads": 1}, raw_log="INFO: timings ...")


def eval_result(model: str = "net", recipe: str = "int8", top1: float = 97.0, drop: float = 0.5,
                ci: tuple = (0.1, 0.9)) -> Result:
    return Result(kind="eval", artifact=f"out/{model}.{recipe}.tflite", recipe=recipe,
                  metrics={"role": "variant", "top1": top1, "top1_ci95": [top1 - 1, top1 + 1],
                           "top1_drop": drop, "top1_drop_ci95": list(ci),
                           "per_layer": [{"op_name": "CONV_2D", "tensor_name": f"conv{i}", "rmse_over_scale": 0.3 + i / 5}
                                         for i in range(4)]})
