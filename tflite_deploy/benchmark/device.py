"""Benchmark .tflite files on Android devices over adb with ``benchmark_model``: LiteRT's or TFLite's.

Per device (one worker thread each, so devices run in parallel): push the binary, the harness
script, the models and any NPU vendor libraries under ``/data/local/tmp/tflite-deploy/`` (only what
changed), then run the harness once per model × delegate and parse what ``benchmark_model`` printed.
With LiteRT's tool and its model cache on, each model × delegate runs in two processes: the first
(cold) compiles and writes the cache, the second (warm) reads it; both inits are reported. A device
that fails, goes offline or times out turns into failed ``Result`` records for that device; the
others finish. A liveness probe (:class:`~tflite_deploy.adb.LivenessProbe`) asks the phone an
``echo`` every few seconds from the moment it is opened, so every call to it is watched (pushes,
short commands, the start of a benchmark, a running one): a frozen phone fails its call within half
a minute, and its remaining runs at once, instead of waiting out the call's time-out (a run's is
derived from its own bounds, ``--max_secs``: see :func:`~tflite_deploy.benchmark.flags.run_timeout`).
A delegate the phone or the settings cannot serve is ``unavailable``, with the reason.
"""

from __future__ import annotations

import concurrent.futures
import re
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable, Optional, Sequence

from tflite_deploy.adb import AdbDevice, AdbServer, DeviceTarget, LivenessProbe, parse_target, remote_path
from tflite_deploy.benchmark.binaries import fetch_litert_tool, fetch_tool
from tflite_deploy.benchmark.flags import (
    benchmark_args,
    cache_flags,
    check_delegate,
    max_seconds,
    resolve_runtime,
    run_timeout,
)
from tflite_deploy.benchmark.options import BenchOptions
from tflite_deploy.benchmark.parse import parse_benchmark_log, to_result
from tflite_deploy.errors import DeviceError, UserError
from tflite_deploy.hashing import sha256_file
from tflite_deploy.result import Result

HARNESS = Path(__file__).resolve().parent.parent / "data" / "run_benchmark.sh"
_BLOCK = re.compile(r"^==== tflite-deploy (?P<tag>[\w=-]+) ====\s*$", re.M)
LOST = ("offline", "not-found", "closed", "timeout", "unauthorized", "server", "frozen")
NNAPI_DEPRECATED_SDK = 35  # Android 15


def split_harness_output(text: str) -> dict[str, str]:
    """The harness block's sections by tag: state-before, benchmark, exit, state-after, end."""
    parts: dict[str, str] = {}
    marks = list(_BLOCK.finditer(text))
    for i, m in enumerate(marks):
        tag = m.group("tag")
        body = text[m.end():marks[i + 1].start() if i + 1 < len(marks) else len(text)].strip("\n")
        if tag.startswith("exit="):
            parts["exit"] = tag.split("=", 1)[1]
        else:
            parts[tag] = body
    return parts


def parse_state(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def hygiene_warnings(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """What a careful person would check about a phone before trusting its numbers."""
    out = []
    status = after.get("battery.status") or before.get("battery.status")
    if status and status.lower() in ("charging", "full"):
        out.append(f"the device was {status.lower()} (on a cable): charging heats the phone and can change clocks")
    temps = [int(v) / 1000 for k, v in after.items() if k.startswith("thermal.") and v.lstrip("-").isdigit()]
    if temps and max(temps) >= 45:
        out.append(f"the device was hot (a thermal zone at {max(temps):.0f} °C after the run): it may have "
                   "throttled; add --cooldown")
    return out


def _sha16(path: Path) -> str:
    return sha256_file(path)[:16]


def _failed(model: Path, target: str, delegate: str, error: str, device: dict, status: str = "failed",
            s: Optional[BenchOptions] = None, fault: Optional[str] = None) -> Result:
    settings = {"runtime": s.runtime} if s is not None else {}
    return Result(kind="bench", artifact=str(model), target=target, runner="benchmark_model",
                  delegate=delegate, status=status, error=error, fault=fault, device=device, settings=settings)


def _push_npu_libraries(dev: AdbDevice, s: BenchOptions) -> str:
    """The vendor's dispatch and compiler-plugin libraries, pushed into one folder: that folder's path."""
    folder = remote_path("npu")
    for lib in (s.npu_dispatch_lib, s.npu_compiler_plugin):
        if lib:
            dev.push(Path(lib), f"{folder}/{Path(lib).name}")
    return folder


def _not_runnable(delegate: str, s: BenchOptions) -> Optional[str]:
    """Why this delegate cannot be measured with these settings, before anything runs (None: it can)."""
    if delegate == "npu" and s.runtime != "litert":
        return "the npu delegate needs LiteRT's benchmark_model (--runtime litert)"
    if delegate == "npu" and not s.npu_dispatch_lib:
        return ("no NPU dispatch library given: pass the vendor's libLiteRtDispatch_*.so with --npu-dispatch-lib "
                "(and its compiler plugin with --npu-compiler-plugin for on-device compilation)")
    if delegate == "nnapi" and s.runtime == "litert":
        return ("LiteRT's benchmark_model has no NNAPI (deprecated from Android 15): measure --delegate npu, "
                "or pass --runtime tflite to measure NNAPI with TFLite's benchmark_model")
    return None


def bench_one_device(target: DeviceTarget, models: Sequence[Path], tool: Optional[Path], s: BenchOptions,
                     on_result: Optional[Callable[[Result], None]] = None) -> list[Result]:
    """Every model × delegate on one device. Never raises for device faults: they become results.

    ``tool`` is the benchmark_model binary (or the APK with ``s.runner == "apk"``); None fetches the
    official build for the device's ABI (LiteRT's or TFLite's, after ``s.runtime``, which must be
    resolved: see :func:`bench_devices`).
    """
    # "adb:SERIAL" means the default adb server; any other server is named in the target
    name = f"adb:{target.serial}" if target.server == AdbServer.from_env() else str(target)
    combos = [(m, d) for m in models for d in s.delegates]
    facts: dict = {"serial": target.serial}
    results: list[Result] = []

    def emit(r: Result) -> None:
        results.append(r)
        if on_result:
            on_result(r)

    try:
        dev = AdbDevice.open(target, timeout=30)  # asks the adb server only: a frozen phone cannot hold it
    except (DeviceError, UserError) as e:
        for m, d in combos:
            emit(_failed(m, name, d, str(e), facts, s=s, fault=e.reason if isinstance(e, DeviceError) else None))
        return results
    # the probe watches every call to the phone from here on: pushes, short commands, the benchmarks
    with LivenessProbe(dev) as probe:
        _session(dev.stopped_by(probe.frozen), probe, name, combos, models, tool, s, facts, emit)
    return results


def _session(dev: AdbDevice, probe: LivenessProbe, name: str, combos: list, models: Sequence[Path],
             tool: Optional[Path], s: BenchOptions, facts: dict, emit: Callable[[Result], None]) -> None:
    """Set the phone up and run every combo on it; ``dev``'s calls end once ``probe`` finds it frozen."""
    def fault(e: DeviceError) -> tuple[str, str]:
        reason = probe.fault_of(e)
        return reason, probe.describe() if reason == "frozen" else str(e)

    npu_dir = ""
    try:
        info = dev.info()
        facts.clear()
        facts.update({k: v for k, v in asdict(info).items() if v not in (None, (), "")})
        abi = info.abis[0] if info.abis else "arm64-v8a"
        harness_remote = remote_path("run_benchmark.sh")
        dev.push(HARNESS, harness_remote, mode=0o755)
        if s.runner == "apk":
            from tflite_deploy.benchmark.apk import install_apk

            binary = Path(tool or fetch_tool(abi, kind="apk"))
            install_apk(dev, binary)
            bin_remote = ""
        else:
            bin_remote = remote_path("bin", "benchmark_model")
            binary = Path(tool or (fetch_litert_tool(abi) if s.runtime == "litert" else fetch_tool(abi)))
            dev.push(binary, bin_remote, mode=0o755)
        # which binary measured it: a confirmation in pairs cannot judge a slowdown the binary brought
        facts["benchmark_sha256"] = sha256_file(binary)
        remote_models = {m: remote_path("models", _sha16(m), m.name) for m in models}
        for m, r in remote_models.items():
            dev.push(m, r)
        input_args, input_files = _push_input_values(dev, models, s)
        if "npu" in s.delegates and s.npu_dispatch_lib and s.runtime == "litert":
            npu_dir = _push_npu_libraries(dev, s)
    except (DeviceError, UserError) as e:
        reason, text = fault(e) if isinstance(e, DeviceError) else (None, str(e))
        for m, d in combos:
            emit(_failed(m, name, d, text, facts, s=s, fault=reason))
        return

    lost: Optional[str] = None
    for i, (m, d) in enumerate(combos):
        if lost:
            emit(_failed(m, name, d, f"not run: the device was lost earlier ({lost})", facts, s=s, fault=lost))
            continue
        why_not = _not_runnable(d, s)
        if why_not:
            emit(_failed(m, name, d, why_not, facts, status="unavailable", s=s))
            continue
        if i and s.cooldown:
            time.sleep(s.cooldown)
        try:
            emit(_run_one(dev, harness_remote, bin_remote, npu_dir, remote_models[m], m, name, d, s, facts,
                          input_args.get(m, [])))
        except DeviceError as e:
            reason, text = fault(e)
            emit(_failed(m, name, d, text, facts, s=s, fault=reason))
            if reason in LOST:
                lost = reason
    if input_files and not lost:  # the value files go as soon as their runs are done
        try:
            for f in input_files:
                dev.remove(f)
        except DeviceError:
            pass
    if s.cleanup and not lost:
        try:
            dev.remove(remote_path("models"))
            dev.remove(remote_path("cache"))
        except DeviceError:
            pass


def _push_input_values(dev: AdbDevice, models: Sequence[Path], s: BenchOptions
                       ) -> tuple[dict[Path, list[str]], list[str]]:
    """Value files for models with token-id or mask inputs (or all, with ``s.data``), pushed beside
    each model: the flags per model, and the files to remove after the runs. The classic benchmark_model
    reads them (--input_layer_value_files); LiteRT's own tool has no such flags."""
    from tflite_deploy.benchmark.inputs import input_values

    if s.runtime != "tflite" or s.runner == "apk":
        return {}, []
    args: dict[Path, list[str]] = {}
    files: list[str] = []
    for m in models:
        values = input_values(m, s.data)
        if values is None:
            continue
        remote = [remote_path("models", _sha16(m), f"{m.name}.input{i}.bin") for i in range(len(values.data))]
        with tempfile.TemporaryDirectory(prefix="tflite-deploy-inputs-") as tmp:
            for i, (raw, r) in enumerate(zip(values.data, remote)):
                local = Path(tmp) / f"input{i}.bin"
                local.write_bytes(raw)
                dev.push(local, r)
        files += remote
        args[m] = values.flags(remote)
    return args, files


def _run_one(dev: AdbDevice, harness_remote: str, bin_remote: str, npu_dir: str, remote_model: str, model: Path,
             target: str, delegate: str, s: BenchOptions, facts: dict, input_args: Sequence[str] = ()) -> Result:
    """One model x delegate: one benchmark process, or two (cold and warm) with LiteRT's cache."""
    args = benchmark_args(remote_model, delegate, s, npu_dir) + list(input_args)
    if s.runner == "apk":
        from tflite_deploy.benchmark.apk import run_apk

        return _result_from_run(*run_apk(dev, harness_remote, args, run_timeout(s)), model, target, delegate, s, facts)
    run = _harness_runner(dev, harness_remote, bin_remote, npu_dir if delegate == "npu" else "", s)
    if s.runtime == "litert" and s.model_cache:
        return _cold_and_warm(run, dev, args, model, target, delegate, s, facts)
    return _result_from_run(*run(args), model, target, delegate, s, facts)


def _harness_runner(dev: AdbDevice, harness_remote: str, bin_remote: str, libdir: str,
                    s: BenchOptions) -> Callable[[list[str]], tuple[str, int]]:
    """One benchmark process through the harness: (stdout and stderr, exit code)."""
    def run(args: list[str]) -> tuple[str, int]:
        cmd = ["sh", harness_remote, "run", *(["--pin-big"] if s.pin_big_cores else []),
               *(["--libdir", libdir] if libdir else []), bin_remote, *args]
        sh = dev.shell(cmd, timeout=run_timeout(s))
        return sh.stdout + ("\n" + sh.stderr if sh.stderr else ""), sh.exit_code
    return run


def _cold_and_warm(run: Callable[[list[str]], tuple[str, int]], dev: AdbDevice, args: list[str], model: Path,
                   target: str, delegate: str, s: BenchOptions, facts: dict) -> Result:
    """Two processes sharing LiteRT's cache: the first compiles and writes it (cold), the second reads it (warm).

    The result is the cold process's, as an app's first launch sees it; ``metrics`` gains both inits.
    """
    cache_dir = remote_path("cache", _sha16(model), delegate)
    dev.shell(["rm", "-rf", cache_dir], timeout=30)
    dev.shell(["mkdir", "-p", cache_dir], timeout=30).check()
    with_cache = args + cache_flags(delegate, cache_dir, _sha16(model))
    cold = _result_from_run(*run(with_cache), model, target, delegate, s, facts)
    if not cold.ok:
        return cold
    warm = _result_from_run(*run(with_cache), model, target, delegate, s, facts)
    metrics = dict(cold.metrics, init_cold_ms=cold.init_ms)
    warnings = list(cold.warnings)
    if warm.ok:
        metrics["init_warm_ms"] = warm.init_ms
        metrics["warm_latency"] = {"count": warm.latency.count, "mean_ms": warm.latency.mean_ms,
                                   "std_ms": warm.latency.std_ms} if warm.latency else None
    else:
        warnings.append(f"the second (warm-cache) process failed, so no warm init is reported: {warm.error}")
    return replace(cold, metrics=metrics, warnings=tuple(warnings),
                   settings=dict(cold.settings, model_cache=True, cache_dir=cache_dir))


def _result_from_run(text: str, exit_code: int, model: Path, target: str, delegate: str,
                     s: BenchOptions, facts: dict) -> Result:
    parts = split_harness_output(text)
    log = parse_benchmark_log(parts.get("benchmark", text))
    before, after = parse_state(parts.get("state-before", "")), parse_state(parts.get("state-after", ""))
    settings = {"threads": s.threads, "runs": s.runs, "warmup": s.warmup, "min_seconds": s.min_seconds,
                "pin_big_cores": s.pin_big_cores, "exit_code": exit_code, "runtime": s.runtime,
                "max_secs": max_seconds(s), "timeout_s": run_timeout(s)}
    r = to_result(log, artifact=str(model), target=target, delegate=delegate, settings=settings,
                  runner="benchmark_apk" if s.runner == "apk" else "benchmark_model",
                  device={**facts, "state_before": before, "state_after": after})
    warnings = list(r.warnings) + hygiene_warnings(before, after)
    if r.ok and r.latency and r.latency.count < s.runs:
        warnings.append(f"{r.latency.count} of the {s.runs} runs asked for: benchmark_model starts no run after "
                        f"--max_secs={max_seconds(s):g} s; give a slow model a longer --min-seconds")
    if "pinned.note" in before:
        warnings.append(f"--pin-big-cores: {before['pinned.note']}")
    if log.tool and log.tool != s.runtime:
        warnings.append(f"asked for the {s.runtime} runtime but the log is {log.tool}'s benchmark_model: "
                        "check --benchmark-binary and --runtime")
    sdk = facts.get("sdk")
    if delegate == "nnapi" and isinstance(sdk, int) and sdk >= NNAPI_DEPRECATED_SDK:
        warnings.append(f"NNAPI is deprecated from Android 15 (this device runs SDK {sdk}): vendors may drop their "
                        "drivers. Measure the vendor's NPU through LiteRT instead: --delegate npu with "
                        "--npu-dispatch-lib.")
    if "end" not in parts and r.ok:
        r = replace(r, status="failed", error="the harness output was cut off (device lost mid-run?)")
    if r.ok and exit_code != 0:
        r = replace(r, status="failed", error=f"benchmark_model exited with {exit_code}")
    cov = r.coverage
    not_loaded = log.accelerator_failures.get(delegate)  # LiteRT could not load it: the run was the CPU's
    # an NPU run that fails names why (no accelerator, a library for another SoC): the phone cannot serve it
    npu_refused = delegate == "npu" and not r.ok and log.tool == "litert" and "end" in parts
    if npu_refused or delegate in ("gpu", "nnapi", "npu") and cov is not None and cov.applied is False and (
            not r.ok or not_loaded):
        detail = (cov.message if cov else "") or r.error or ""
        r = replace(r, status="unavailable",
                    error=f"{delegate.upper()} delegate not available on this device: {detail}".strip())
    return replace(r, warnings=tuple(warnings))


def bench_devices(models: Sequence[str | Path], targets: Sequence[str], tool: Optional[str | Path],
                  settings: BenchOptions = BenchOptions(),
                  on_result: Optional[Callable[[Result], None]] = None) -> list[Result]:
    """Run every model × delegate on every target, one worker per device; results in target order.

    ``settings``: the device side of :class:`BenchOptions` (threads default to 4; ``tool`` is given apart)."""
    settings = settings.for_device()
    paths = [Path(m) for m in models]
    for p in paths:
        if not p.is_file():
            raise UserError(f"Model {p} does not exist.")
    tool_path = Path(tool) if tool is not None else None
    if tool_path is not None and not tool_path.is_file():
        what = "benchmark APK" if settings.runner == "apk" else "benchmark_model binary"
        raise UserError(f"The {what} {tool_path} does not exist. Download TFLite's official build for your "
                        "phone's ABI, or leave the option out to fetch it (needs internet).")
    for lib, param in ((settings.npu_dispatch_lib, "npu_dispatch_lib"),
                       (settings.npu_compiler_plugin, "npu_compiler_plugin")):
        if lib and not Path(lib).is_file():
            raise UserError(f"The NPU library {param}={lib} does not exist.", param=param)
    if settings.runner == "apk":
        if settings.runtime == "litert":
            raise UserError("The benchmark APK is TFLite's classic app: use runtime=tflite (or leave it out) "
                            "with runner=apk.", param="runtime")
        settings = replace(settings, runtime="tflite")
    settings = replace(settings, runtime=resolve_runtime(settings.runtime, tool_path))
    for d in settings.delegates:
        check_delegate(d, settings)
    if settings.runtime == "litert":  # before any phone is touched: its tool cannot be given valid inputs
        from tflite_deploy.benchmark.inputs import refuse_on_litert

        for p in paths:
            refuse_on_litert(p, settings.data)
    parsed = [parse_target(t if t.startswith("adb") else f"adb:{t}") for t in targets]
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(parsed))) as pool:
        futures = [pool.submit(bench_one_device, t, paths, tool_path, settings, on_result) for t in parsed]
        return [r for f in futures for r in f.result()]
