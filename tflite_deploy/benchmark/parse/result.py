"""A parsed capture as the :class:`~tflite_deploy.result.Result` every measuring command writes."""

from __future__ import annotations

from typing import Any, Mapping, Optional

from tflite_deploy.benchmark.parse.lines import delegate_key as _delegate_key
from tflite_deploy.benchmark.parse.log import BenchmarkLog
from tflite_deploy.result import DelegateCoverage, Result


def to_result(
    log: BenchmarkLog,
    *,
    artifact: str,
    target: str,
    delegate: str,
    runner: str = "benchmark_model",
    settings: Optional[Mapping[str, Any]] = None,
    device: Optional[Mapping[str, Any]] = None,
) -> Result:
    """The :class:`Result` for one parsed capture of ``artifact`` run on ``target``.

    ``status`` is "ok" only for a complete log without a tool failure. ``settings["runtime"]``
    says which tool printed the log (``"litert"`` or ``"tflite"``) unless the caller set it. ``peak_memory_mb`` is the
    periodic peak when the tool measured one, else its ``overall`` footprint (``metrics`` says
    which). What Result has no field for (averages, p5/p95, NNAPI accelerators, echoed
    parameters, op profile, tool errors) goes into ``metrics``.
    """
    warnings = list(log.warnings)
    coverage = _coverage_for(log, delegate)
    if coverage is not None and log.complete:
        if coverage.applied is False:
            warnings.append(
                f"the {delegate} delegate ran no part of the graph: these numbers are the CPU's"
            )
        elif coverage.fully is False:
            kernels = f" ({coverage.delegate_kernels} delegate kernels)" if coverage.delegate_kernels else ""
            warnings.append(f"the {delegate} delegate took only part of the graph{kernels}: the rest ran on the CPU")
    if log.runs is None and log.inference_avg_ms is not None:
        warnings.append("the tool printed no statistics line for the measured runs: only their average is known")

    metrics: dict[str, Any] = {}
    _put(metrics, "tool", log.tool)
    _put(metrics, "inference_avg_ms", log.inference_avg_ms)
    _put(metrics, "warmup_avg_ms", log.warmup_avg_ms)
    _put(metrics, "percentiles_ms", log.percentiles_ms)
    _put(metrics, "model_size_mb", log.model_size_mb)
    _put(metrics, "memory_overall_mb", log.overall_memory_mb)
    _put(metrics, "memory_peak_periodic_mb", log.peak_memory_mb)
    if log.peak_memory_mb is not None:
        metrics["peak_memory_source"] = "periodic"
    elif log.overall_memory_mb is not None:
        metrics["peak_memory_source"] = "overall"
    _put(metrics, "throughput_mb_s", log.throughput_mb_s)
    _put(metrics, "accelerator_failures", dict(log.accelerator_failures))
    _put(metrics, "nnapi_accelerators", list(log.nnapi_accelerators))
    _put(metrics, "gpu_unsupported_ops", list(log.gpu_unsupported_ops))
    _put(metrics, "delegates", [_coverage_dict(c) for c in log.delegates])
    _put(metrics, "tool_params", dict(log.params))
    _put(metrics, "tool_errors", list(log.errors))
    _put(metrics, "op_profile", [t.to_dict() for t in log.op_profile])

    first_ms = log.first_ms
    if first_ms is None and log.warmup is not None:
        first_ms = log.warmup.first_ms
    return Result(
        kind="bench",
        artifact=artifact,
        target=target,
        runner=runner,
        delegate=delegate,
        status="ok" if log.ok else "failed",
        error=log.error,
        settings=_with_runtime(settings, log.tool),
        init_ms=log.init_ms,
        first_ms=first_ms,
        warmup=log.warmup,
        latency=log.runs,
        init_memory_mb=log.init_memory_mb,
        peak_memory_mb=log.peak_memory_mb if log.peak_memory_mb is not None else log.overall_memory_mb,
        coverage=coverage,
        device=dict(device or {}),
        metrics=metrics,
        warnings=tuple(warnings),
        raw_log=log.raw,
    )


def _coverage_for(log: BenchmarkLog, delegate: str) -> Optional[DelegateCoverage]:
    if _delegate_key(delegate) in ("", "cpu", "none"):
        return None
    found = log.delegate(delegate)
    failure = log.accelerator_failures.get(_delegate_key(delegate))
    if found is None and failure:  # LiteRT could not load this accelerator at all
        return DelegateCoverage(requested=delegate, applied=False, fully=False, delegate_kernels=0, message=failure)
    if found is None:
        related = [e for e in log.errors if _delegate_key(delegate) in _delegate_key(e)]
        return DelegateCoverage(requested=delegate, message=related[-1] if related else "")
    return DelegateCoverage(
        requested=delegate,
        applied=found.applied,
        fully=found.fully,
        delegate_kernels=found.delegate_kernels,
        message=found.message,
    )


def _coverage_dict(c: DelegateCoverage) -> dict[str, Any]:
    return {
        "delegate": c.requested,
        "applied": c.applied,
        "fully": c.fully,
        "delegate_kernels": c.delegate_kernels,
        "message": c.message,
    }


def _put(d: dict[str, Any], key: str, value: Any) -> None:
    if value not in (None, [], {}):
        d[key] = value


def _with_runtime(settings: Optional[Mapping[str, Any]], tool: Optional[str]) -> dict[str, Any]:
    out = dict(settings or {})
    if tool and "runtime" not in out:
        out["runtime"] = tool
    return out
