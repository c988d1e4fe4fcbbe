"""Benchmark .tflite files on Android devices over adb with TFLite's ``benchmark_model``.

Per device (one worker thread each, so devices run in parallel): push the binary, the harness
script and the models under ``/data/local/tmp/tflite-deploy/`` (only what changed), then run the
harness once per model × delegate and parse what ``benchmark_model`` printed. A device that fails,
goes offline or times out turns into failed ``Result`` records for that device; the others finish.
"""

from __future__ import annotations

import concurrent.futures
import re
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Optional, Sequence

from tflite_deploy.adb import AdbDevice, AdbServer, DeviceTarget, parse_target, remote_path
from tflite_deploy.benchmark.binaries import fetch_tool
from tflite_deploy.benchmark.parse import parse_benchmark_log, to_result
from tflite_deploy.errors import DeviceError, UserError
from tflite_deploy.hashing import sha256_file
from tflite_deploy.result import Result

HARNESS = Path(__file__).resolve().parent.parent / "data" / "run_benchmark.sh"
DEVICE_DELEGATES = ("xnnpack", "gpu", "nnapi", "cpu")
_BLOCK = re.compile(r"^==== tflite-deploy (?P<tag>[\w=-]+) ====\s*$", re.M)
LOST = ("offline", "not-found", "closed", "timeout", "unauthorized", "server")


@dataclass(frozen=True)
class DeviceBenchSettings:
    delegates: tuple[str, ...] = ("xnnpack",)
    threads: int = 4
    runs: int = 50
    warmup_runs: int = 1
    min_seconds: float = 1.0
    gpu_precision: str = "fp16"  # fp16 (precision loss allowed) or fp32
    nnapi_accelerator: Optional[str] = None
    op_profiling: bool = False
    pin_big_cores: bool = False
    cooldown_seconds: float = 0.0
    timeout_seconds: float = 600.0
    cleanup: bool = False
    runner: str = "binary"  # "binary" (benchmark_model over adb shell) or "apk" (the benchmark app)


def delegate_flags(delegate: str, s: DeviceBenchSettings) -> list[str]:
    """benchmark_model flags for one delegate (names from tensorflow/lite/tools/benchmark)."""
    if delegate == "xnnpack":
        return ["--use_xnnpack=true"]
    if delegate == "cpu":
        return ["--use_xnnpack=false"]
    if delegate == "gpu":
        return ["--use_gpu=true", f"--gpu_precision_loss_allowed={'true' if s.gpu_precision == 'fp16' else 'false'}"]
    if delegate == "nnapi":
        return ["--use_nnapi=true"] + ([f"--nnapi_accelerator_name={s.nnapi_accelerator}"]
                                       if s.nnapi_accelerator else [])
    raise UserError(f"Unknown device delegate {delegate!r}: choose from {', '.join(DEVICE_DELEGATES)}.")


def benchmark_args(remote_model: str, delegate: str, s: DeviceBenchSettings) -> list[str]:
    return [f"--graph={remote_model}", f"--num_threads={s.threads}", f"--num_runs={s.runs}",
            f"--warmup_runs={s.warmup_runs}", f"--min_secs={s.min_seconds}",
            "--report_peak_memory_footprint=true",
            *(["--enable_op_profiling=true"] if s.op_profiling else []), *delegate_flags(delegate, s)]


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


def _failed(model: Path, target: str, delegate: str, error: str, device: dict, status: str = "failed") -> Result:
    return Result(kind="bench", artifact=str(model), target=target, runner="benchmark_model",
                  delegate=delegate, status=status, error=error, device=device)


def bench_one_device(target: DeviceTarget, models: Sequence[Path], tool: Optional[Path], s: DeviceBenchSettings,
                     on_result: Optional[Callable[[Result], None]] = None) -> list[Result]:
    """Every model × delegate on one device. Never raises for device faults: they become results.

    ``tool`` is the benchmark_model binary (or the APK with ``s.runner == "apk"``); None fetches the
    official build for the device's ABI.
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
        dev = AdbDevice.open(target, timeout=30)
        info = dev.info()
        facts = {k: v for k, v in asdict(info).items() if v not in (None, (), "")}
        harness_remote = remote_path("run_benchmark.sh")
        dev.push(HARNESS, harness_remote, mode=0o755)
        if s.runner == "apk":
            from tflite_deploy.benchmark.apk import install_apk

            install_apk(dev, tool or fetch_tool(info.abis[0] if info.abis else "arm64-v8a", kind="apk"))
            bin_remote = ""
        else:
            bin_remote = remote_path("bin", "benchmark_model")
            dev.push(tool or fetch_tool(info.abis[0] if info.abis else "arm64-v8a"), bin_remote, mode=0o755)
        remote_models = {m: remote_path("models", _sha16(m), m.name) for m in models}
        for m, r in remote_models.items():
            dev.push(m, r)
    except (DeviceError, UserError) as e:
        for m, d in combos:
            emit(_failed(m, name, d, str(e), facts))
        return results

    lost: Optional[str] = None
    for i, (m, d) in enumerate(combos):
        if lost:
            emit(_failed(m, name, d, f"not run: the device was lost earlier ({lost})", facts))
            continue
        if i and s.cooldown_seconds:
            time.sleep(s.cooldown_seconds)
        try:
            if s.runner == "apk":
                from tflite_deploy.benchmark.apk import run_apk

                text, code = run_apk(dev, harness_remote, benchmark_args(remote_models[m], d, s), s.timeout_seconds)
            else:
                args = ["sh", harness_remote, "run", *(["--pin-big"] if s.pin_big_cores else []), bin_remote,
                        *benchmark_args(remote_models[m], d, s)]
                sh = dev.shell(args, timeout=s.timeout_seconds)
                text, code = sh.stdout + ("\n" + sh.stderr if sh.stderr else ""), sh.exit_code
        except DeviceError as e:
            emit(_failed(m, name, d, str(e), facts))
            if getattr(e, "reason", "") in LOST:
                lost = getattr(e, "reason", "device error")
            continue
        emit(_result_from_run(text, code, m, name, d, s, facts))
    if s.cleanup:
        try:
            dev.remove(remote_path("models"))
        except DeviceError:
            pass
    return results


def _result_from_run(text: str, exit_code: int, model: Path, target: str, delegate: str,
                     s: DeviceBenchSettings, facts: dict) -> Result:
    parts = split_harness_output(text)
    log = parse_benchmark_log(parts.get("benchmark", text))
    before, after = parse_state(parts.get("state-before", "")), parse_state(parts.get("state-after", ""))
    settings = {"threads": s.threads, "runs": s.runs, "warmup": s.warmup_runs, "min_seconds": s.min_seconds,
                "pin_big_cores": s.pin_big_cores, "exit_code": exit_code}
    r = to_result(log, artifact=str(model), target=target, delegate=delegate, settings=settings,
                  runner="benchmark_apk" if s.runner == "apk" else "benchmark_model",
                  device={**facts, "state_before": before, "state_after": after})
    warnings = list(r.warnings) + hygiene_warnings(before, after)
    if "pinned.note" in before:
        warnings.append(f"--pin-big-cores: {before['pinned.note']}")
    if "end" not in parts and r.ok:
        r = replace(r, status="failed", error="the harness output was cut off (device lost mid-run?)")
    if r.ok and exit_code != 0:
        r = replace(r, status="failed", error=f"benchmark_model exited with {exit_code}")
    cov = r.coverage
    if not r.ok and delegate in ("gpu", "nnapi") and cov is not None and cov.applied is False:
        detail = cov.message or r.error or ""
        r = replace(r, status="unavailable",
                    error=f"{delegate.upper()} delegate not available on this device: {detail}".strip())
    return replace(r, warnings=tuple(warnings))


def bench_devices(models: Sequence[str | Path], targets: Sequence[str], tool: Optional[str | Path],
                  settings: DeviceBenchSettings = DeviceBenchSettings(),
                  on_result: Optional[Callable[[Result], None]] = None) -> list[Result]:
    """Run every model × delegate on every target, one worker per device; results in target order."""
    paths = [Path(m) for m in models]
    for p in paths:
        if not p.is_file():
            raise UserError(f"Model {p} does not exist.")
    tool_path = Path(tool) if tool is not None else None
    if tool_path is not None and not tool_path.is_file():
        what = "benchmark APK" if settings.runner == "apk" else "benchmark_model binary"
        raise UserError(f"The {what} {tool_path} does not exist. Download TFLite's official build for your "
                        "phone's ABI, or leave the option out to fetch it (needs internet).")
    for d in settings.delegates:
        delegate_flags(d, settings)
    parsed = [parse_target(t if t.startswith("adb") else f"adb:{t}") for t in targets]
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(parsed))) as pool:
        futures = [pool.submit(bench_one_device, t, paths, tool_path, settings, on_result) for t in parsed]
        return [r for f in futures for r in f.result()]
