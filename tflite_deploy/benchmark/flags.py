"""The command lines of both ``benchmark_model`` tools, per delegate.

TFLite's classic tool (tensorflow/lite/tools/benchmark) takes ``--use_xnnpack``, ``--use_gpu``,
``--use_nnapi``. LiteRT's (litert/tools/benchmark_litert_model.h) picks accelerators instead:
``--use_cpu`` (the CPU accelerator, XNNPACK), ``--use_gpu`` (``--gpu_backend``, ``--gpu-precision``),
``--use_npu`` with ``--dispatch_library_path`` and ``--compiler_plugin_library_path`` (folders holding
the vendor's libraries), ``--require_full_delegation`` (which needs ``--use_cpu=false``), and caches
compiled work: ``--xnnpack_weight_cache_file_path``, ``--gpu_serialization_dir`` with
``--gpu_model_cache_key``, ``--compiler_cache_path``. LiteRT's tool has no NNAPI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from tflite_deploy.benchmark.options import BenchOptions
from tflite_deploy.errors import UserError
from tflite_deploy.vocabulary import DEVICE_DELEGATES, DEVICE_RUNTIMES

_LITERT_MARK = b"BENCHMARK RESULTS"  # printed by LiteRT's results listener only
MAX_SECS_FLOOR = 60.0  # --max_secs unless --min-seconds asks for longer (the tools' own default is 150)
INIT_ALLOWANCE_S = 90.0  # loading and compiling a model (GPU programs, NPU JIT) before the first run
RUN_MARGIN_S = 30.0


def resolve_runtime(runtime: str, tool: Optional[Path]) -> str:
    """``auto``: LiteRT's tool when we fetch it; for the user's own binary, the tool it is.

    An executable (ELF) holding LiteRT's results-block text is LiteRT's; any other binary or script is
    taken as the classic tool, as before LiteRT's existed.
    """
    if runtime != "auto":
        return runtime
    if tool is None:
        return "litert"
    with open(tool, "rb") as f:
        data = f.read()
    return "litert" if data.startswith(b"\x7fELF") and _LITERT_MARK in data else "tflite"


def check_delegate(delegate: str, s: BenchOptions) -> None:
    if delegate not in DEVICE_DELEGATES:
        raise UserError(f"Unknown device delegate {delegate!r}: choose from {', '.join(DEVICE_DELEGATES)}.")
    if s.runtime not in DEVICE_RUNTIMES:
        raise UserError(f"Unknown runtime {s.runtime!r}: choose litert (LiteRT's benchmark_model) or tflite.")


def delegate_flags(delegate: str, s: BenchOptions, npu_dir: str = "") -> list[str]:
    """The tool's flags for one delegate; ``npu_dir`` is the device folder holding the NPU libraries."""
    check_delegate(delegate, s)
    if s.runtime == "litert":
        return _litert_flags(delegate, s, npu_dir)
    if delegate == "xnnpack":
        return ["--use_xnnpack=true"]
    if delegate == "cpu":
        return ["--use_xnnpack=false"]
    if delegate == "gpu":
        return ["--use_gpu=true", f"--gpu_precision_loss_allowed={'true' if s.gpu_precision == 'fp16' else 'false'}"]
    if delegate == "nnapi":
        return ["--use_nnapi=true"] + ([f"--nnapi_accelerator_name={s.nnapi_accelerator}"]
                                       if s.nnapi_accelerator else [])
    raise UserError("The npu delegate needs LiteRT's benchmark_model: use --runtime litert.")


def _litert_flags(delegate: str, s: BenchOptions, npu_dir: str) -> list[str]:
    full = s.require_full_delegation and delegate in ("gpu", "npu")
    flags = [f"--use_cpu={'false' if full else 'true'}"]
    if delegate == "gpu":
        flags += ["--use_gpu=true", f"--gpu-precision={s.gpu_precision}"]
        flags += [f"--gpu_backend={s.gpu_backend}"] if s.gpu_backend else []
    elif delegate == "npu":
        flags += ["--use_npu=true", f"--dispatch_library_path={npu_dir}"]
        flags += [f"--compiler_plugin_library_path={npu_dir}"] if s.npu_compiler_plugin else []
    elif delegate == "nnapi":
        raise UserError("LiteRT's benchmark_model has no NNAPI: use --delegate npu, or --runtime tflite for NNAPI.")
    return flags + (["--require_full_delegation=true"] if full else [])


def cache_flags(delegate: str, cache_dir: str, key: str) -> list[str]:
    """LiteRT's flags that keep compiled work in ``cache_dir`` between processes."""
    if delegate == "gpu":
        return [f"--gpu_serialization_dir={cache_dir}", f"--gpu_model_cache_key={key}"]
    if delegate == "npu":
        return [f"--compiler_cache_path={cache_dir}"]
    return [f"--xnnpack_weight_cache_file_path={cache_dir}/{key}.xnnpack_cache"]


def max_seconds(s: BenchOptions) -> float:
    """benchmark_model's ``--max_secs``: each phase (warm-up, then the runs) starts no run after it."""
    return s.max_seconds if s.max_seconds is not None else max(MAX_SECS_FLOOR, 2 * s.min_seconds)


def run_timeout(s: BenchOptions) -> float:
    """Seconds one benchmark process may take: an explicit ``timeout``, else its own bounds.

    Both tools take ``--max_secs`` (TFLite's tensorflow/lite/tools/benchmark/benchmark_model.cc; LiteRT's
    BenchmarkLiteRtModel::GetFlags adds its flags to that class's, litert/tools/benchmark_litert_model.h):
    the warm-up and the runs each start no run after it, and finish the run in progress. So: init,
    two phases, and a margin for the run in progress, the op-profile table and the harness.
    """
    if s.timeout is not None:
        return s.timeout
    return INIT_ALLOWANCE_S + 2 * max_seconds(s) + RUN_MARGIN_S


def benchmark_args(remote_model: str, delegate: str, s: BenchOptions, npu_dir: str = "") -> list[str]:
    s = s.for_device()
    profiling = "--use_profiler=true" if s.runtime == "litert" else "--enable_op_profiling=true"
    return [f"--graph={remote_model}", f"--num_threads={s.threads}", f"--num_runs={s.runs}",
            f"--warmup_runs={s.warmup}", f"--min_secs={s.min_seconds}", f"--max_secs={max_seconds(s):g}",
            "--report_peak_memory_footprint=true",
            *([profiling] if s.op_profiling else []), *delegate_flags(delegate, s, npu_dir)]
