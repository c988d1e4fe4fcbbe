"""Benchmark .tflite files on this machine with LiteRT (Interpreter or CompiledModel), interleaved.

Several files are measured round-robin (one invoke of each per round) so that a machine that gets
busier or hotter during the run affects all of them alike, and their ratios stay meaningful.
Timings cover ``invoke()`` only; inputs are set once (random, fixed seed). Two runners: the
Interpreter (``runner="litert-python"``, every host delegate) and LiteRT's CompiledModel
(``runner="compiled"``, :mod:`tflite_deploy.benchmark.compiled`, XNNPACK only); ``auto`` is the
Interpreter for now (see :func:`~tflite_deploy.benchmark.compiled.resolve_host_runner`).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from tflite_deploy.artifact import recipe_name
from tflite_deploy.benchmark.compiled import CompiledRunner, resolve_host_runner
from tflite_deploy.benchmark.options import BenchOptions
from tflite_deploy.benchmark.stats import timing_warnings
from tflite_deploy.hashing import sha256_file
from tflite_deploy.tflite.native_output import captured_native_stderr
from tflite_deploy.progress import ProgressCallback, report
from tflite_deploy.result import DelegateCoverage, LatencyStats, Result
from tflite_deploy.tflite.runtime import TfliteModel, check_host_delegate


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 1e6


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # KiB on Linux


def timer_overhead_ms(rounds: int = 2000) -> float:
    """What the timing loop itself costs per measured call, measured around a no-op."""
    noop = (lambda: None)
    t = time.perf_counter_ns
    samples = []
    for _ in range(rounds):
        start = t()
        noop()
        samples.append(t() - start)
    return float(np.median(samples)) / 1e6


def bench_host(paths: Sequence[str | Path], settings: BenchOptions = BenchOptions(),
               progress: Optional[ProgressCallback] = None) -> list[Result]:
    """Measure each file; returns one ``Result`` per file, in the order given.

    ``settings``: threads (default 1), runs, warmup, min_seconds, max_runs, one delegate, runner
    (``compiled``, ``interpreter`` or ``auto``, the default; see resolve_host_runner), and ``data``:
    inputs from that dataset's first sample(s); else random and valid (token ids below the embedding's
    rows, 0/1 masks; see :meth:`~tflite_deploy.tflite.runtime.TfliteModel.fill_random_input`).
    ``progress`` hears a ``bench`` event every 10 interleaved rounds (done of the runs asked for).
    """
    settings = settings.for_host()
    data = settings.data
    batch = None
    if data is not None:
        from tflite_deploy.datasets import open_dataset

        batch = (open_dataset(data) if isinstance(data, str) else data).take(1)
    check_host_delegate(str(settings.delegate))
    runner = resolve_host_runner(settings.runner, settings.delegate)
    loaded: list = []
    inits, mem = [], []
    for p in paths:
        before = _rss_mb()
        start = time.perf_counter_ns()
        m = _open_host_model(p, settings, runner)
        inits.append((time.perf_counter_ns() - start) / 1e6)
        if isinstance(m, TfliteModel) and batch is not None:
            m.set_inputs(batch)
        elif not isinstance(m, CompiledRunner):  # it fills its own buffers
            m.fill_random_input()
        mem.append(_rss_mb() - before)
        loaded.append(m)

    invokes = [m.invoke if isinstance(m, CompiledRunner) else m.interpreter.invoke for m in loaded]
    t = time.perf_counter_ns
    first = []
    # LiteRT's CompiledModel registers its CPU accelerator at the first run and says so on fd 2
    with captured_native_stderr() if runner == "compiled" else contextlib.nullcontext():
        for inv in invokes:
            s = t()
            inv()
            first.append((t() - s) / 1e6)
    warm: list[list[float]] = [[] for _ in loaded]
    for _ in range(settings.warmup):
        for i, inv in enumerate(invokes):
            s = t()
            inv()
            warm[i].append((t() - s) / 1e6)

    runs: list[list[float]] = [[] for _ in loaded]
    started = time.monotonic()
    rounds = 0
    while rounds < settings.max_runs and (rounds < settings.runs or time.monotonic() - started < settings.min_seconds):
        for i, inv in enumerate(invokes):
            s = t()
            inv()
            runs[i].append((t() - s) / 1e6)
        rounds += 1
        if rounds % 10 == 0:
            report(progress, "bench", rounds, settings.runs, f"{len(paths)} model(s) interleaved")

    coverages = [m.coverage() if hasattr(m, "coverage") else _coverage(m, settings.delegate) for m in loaded]
    if runner == "compiled":
        del invokes  # they hold the models, and the models their LiteRT environments
        for m in loaded:
            if isinstance(m, CompiledRunner):
                m.close()
    overhead = timer_overhead_ms()
    peak = _peak_rss_mb()
    cpu = {"cpu_count": os.cpu_count(), "machine": os.uname().machine, "system": os.uname().sysname}
    results = []
    for i, m in enumerate(loaded):
        lat = LatencyStats.from_samples(runs[i])
        warnings = timing_warnings(lat, first[i])
        results.append(Result(
            kind="bench", artifact=str(m.path), target="host", runner=_runner_name(m),
            delegate="cpu" if _is_onnx(m) else settings.delegate, artifact_sha256=sha256_file(m.path),
            recipe=recipe_name(m.path),
            settings={"threads": settings.threads, "runs": lat.count, "warmup": settings.warmup,
                      "min_seconds": settings.min_seconds, "interleaved_with": len(loaded),
                      "timer_overhead_ms": overhead, "runner": runner,
                      **({} if batch is None else {"inputs": f"data {getattr(data, 'name', data)}"})},
            init_ms=inits[i], first_ms=first[i],
            warmup=LatencyStats.from_samples(warm[i]) if warm[i] else None, latency=lat,
            init_memory_mb=max(mem[i], 0.0), peak_memory_mb=peak,
            coverage=coverages[i],
            device=cpu, warnings=tuple(warnings)))
    return _flag_slower_than_float(results)


def _open_host_model(p: str | Path, settings: BenchOptions, runner: str) -> TfliteModel | CompiledRunner:
    if str(p).lower().endswith(".onnx"):  # hook: an ONNX original measured beside its TFLite variants
        from tflite_deploy.sources.onnx_runtime import OnnxRuntimeModel

        return OnnxRuntimeModel(p, threads=settings.threads)  # type: ignore[return-value]
    if runner == "compiled":
        return CompiledRunner(p, threads=settings.threads)
    return TfliteModel(p, threads=settings.threads, delegate=settings.delegate)


def _is_onnx(m: object) -> bool:
    return str(getattr(m, "path", "")).lower().endswith(".onnx")


def _runner_name(m: object) -> str:
    return "compiled" if isinstance(m, CompiledRunner) else getattr(m, "runner", "litert-python")


#: Why a kind of model may run slower than float32 on this host (said in the warning).
_SLOW_WHY = {
    "dynamic": "its hybrid kernels are not XNNPACK's on this CPU. Measure on the target phone before "
               "choosing it; int8 is usually the faster choice.",
    "int16x8": "int16x8 has no XNNPACK kernels and runs on the slower builtin ones.",
}
#: p50 ratio to float32 above which a variant is called slower (with its fastest run slower too).
SLOWER_RATIO = 1.1


def _flag_slower_than_float(results: list[Result]) -> list[Result]:
    """A variant slower than float32 here (by p50, beyond noise) gets a warning on its own row.

    Quantizing is done to be faster or smaller; a user comparing modes must see a slowdown where it
    happens, not find it in a table (dynamic-range on x86 is the usual case). Beyond noise: the p50
    is more than :data:`SLOWER_RATIO` times float32's and even the variant's fastest run is slower
    than float32's p50.
    """
    from dataclasses import replace

    from tflite_deploy.tflite.reader import inspect_model

    kinds = {r.artifact: inspect_model(r.artifact).kind if r.artifact.lower().endswith(".tflite") else r.runner
             for r in results}  # from the tensors, not names
    floats = [r for r in results if kinds[r.artifact] == "float32" and r.latency and r.latency.p50_ms]
    if not floats:
        return results
    ref = floats[0]
    ref_p50 = ref.latency.p50_ms  # type: ignore[union-attr]
    out = []
    for r in results:
        lat = r.latency
        if kinds[r.artifact] != "float32" and lat and lat.p50_ms:
            ratio = lat.p50_ms / ref_p50
            if ratio > SLOWER_RATIO and (lat.min_ms is None or lat.min_ms > ref_p50):
                kind = kinds[r.artifact]
                why = _SLOW_WHY.get(kind, "measure on the target phone before choosing it.")
                r = replace(r, warnings=r.warnings + (
                    f"This {kind} model is {ratio:.1f}x SLOWER than float32 ({Path(ref.artifact).name}) here "
                    f"by p50: {why}",))
        out.append(r)
    return out


def _coverage(m: TfliteModel, delegate: str) -> DelegateCoverage:
    if delegate != "xnnpack":
        return DelegateCoverage(requested=delegate, applied=False, fully=False, delegate_kernels=0,
                                message="no delegate: every op runs on the interpreter's own kernels")
    n = m.delegate_kernels()
    if n == 0:
        return DelegateCoverage(requested=delegate, applied=False, fully=False, delegate_kernels=0,
                                message="XNNPACK took no op (e.g. int16x8 has no XNNPACK kernels): "
                                        "everything runs on the slower builtin kernels")
    return DelegateCoverage(requested=delegate, applied=True, delegate_kernels=n,
                            message=f"XNNPACK took {n} partition(s) of the graph")
