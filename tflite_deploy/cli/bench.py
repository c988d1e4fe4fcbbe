"""``bench``, ``devices`` and ``parse-log``: latency on this machine or on phones, the phones, and
benchmark_model output measured elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from tflite_deploy import api
from tflite_deploy.cli._common import (AdbServer, Force, JsonFlag, NoStore, RunTag, StoreTo, console, progress_bars,
                                       store_target, user_errors)
from tflite_deploy.envelope import dumps
from tflite_deploy.render import verbs as render


# ----------------------------------------------------------------------------------------- bench
@user_errors
def bench(
    files: List[Path] = typer.Argument(..., help=".tflite files (.onnx on the host); measured interleaved."),
    device: List[str] = typer.Option([], "--device", "-D", help="Android device: SERIAL, adb:SERIAL or "
                                     "adb://HOST:PORT/SERIAL (remote adb server); repeat for several."),
    delegate: str = typer.Option("xnnpack", "--delegate", help="Host: xnnpack, none or reference. Device: a "
                                 "comma list of xnnpack, gpu, nnapi, cpu, npu."),
    adb_server: AdbServer = None,
    threads: Optional[int] = typer.Option(None, "--threads", "-t", help="Threads (host 1, device 4)."),
    runs: int = typer.Option(50, "--runs", help="Measured runs (at least; see --min-seconds)."),
    repeat: int = typer.Option(1, "--repeat", help="Independent measurements per file (fresh interpreter / run)."),
    warmup: int = typer.Option(5, "--warmup", help="Warm-up runs, reported apart."),
    min_seconds: float = typer.Option(1.0, "--min-seconds", help="Keep measuring at least this long."),
    benchmark_binary: Optional[Path] = typer.Option(
        None, "--benchmark-binary", envvar="TFLITE_DEPLOY_BENCHMARK_BINARY",
        help="TFLite's benchmark_model for the device's ABI (device runs); default: the official nightly "
             "build, downloaded once per ABI into ~/.cache/tflite-deploy."),
    runner: Optional[str] = typer.Option(None, help="Device: binary or apk. Host: auto, compiled or interpreter."),
    runtime: str = typer.Option("auto", help="Device benchmark_model: litert, tflite (the classic one) or auto."),
    npu_dispatch_lib: Optional[Path] = typer.Option(None, help="Delegate npu: the vendor's LiteRT dispatch library."),
    npu_compiler_plugin: Optional[Path] = typer.Option(None, help="Delegate npu: the vendor's compiler plugin."),
    model_cache: bool = typer.Option(True, help="LiteRT on a device: cache compiled work; cold and warm init."),
    benchmark_apk: Optional[Path] = typer.Option(
        None, "--benchmark-apk", envvar="TFLITE_DEPLOY_BENCHMARK_APK",
        help="TFLite's benchmark APK (with --runner apk); default: the official nightly build."),
    gpu_precision: str = typer.Option("fp16", "--gpu-precision", help="GPU delegate: fp16 or fp32."),
    nnapi_accelerator: Optional[str] = typer.Option(None, "--nnapi-accelerator", help="NNAPI accelerator name."),
    op_profiling: bool = typer.Option(False, "--op-profiling", help="Per-op timings (device runs)."),
    pin_big_cores: bool = typer.Option(False, "--pin-big-cores", help="taskset the run to the big cores."),
    cooldown: float = typer.Option(0.0, "--cooldown", help="Seconds to rest between device runs."),
    timeout: Optional[float] = typer.Option(None, help="Seconds one device run may take (default: from its bounds)."),
    cleanup: bool = typer.Option(False, "--cleanup", help="Remove pushed models from the device afterwards."),
    measure: str = typer.Option("time", "--measure", help="Host: 'instructions' also counts instructions per "
                                "invoke under valgrind (deterministic; slow: ~50x per invoke)."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Also write one row per result to this CSV."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Feed the inputs from this dataset's first "
                                                                 "sample(s) (default: random values, token ids "
                                                                 "within the embedding's rows, 0/1 masks)."),
    force: Force = False, as_json: JsonFlag = False, store: StoreTo = None, tag: RunTag = None,
    no_store: NoStore = False,
) -> None:
    """Latency and memory of .tflite files on this machine (LiteRT) or on Android devices (adb)."""
    opts = api.BenchOptions(
        delegate=delegate, threads=threads, runs=runs, warmup=warmup, min_seconds=min_seconds, runner=runner,
        tool=benchmark_apk if runner == "apk" else benchmark_binary, gpu_precision=gpu_precision,
        nnapi_accelerator=nnapi_accelerator, op_profiling=op_profiling, pin_big_cores=pin_big_cores,
        cooldown=cooldown, timeout=timeout, cleanup=cleanup, repeat=repeat, runtime=runtime, model_cache=model_cache,
        npu_dispatch_lib=npu_dispatch_lib, npu_compiler_plugin=npu_compiler_plugin, measure=measure, data=data)
    with progress_bars(as_json) as progress:
        results = api.bench(files, device or ["host"], adb_server=adb_server, options=opts, progress=progress,
                            store=store_target(store, no_store), tag=tag, force=force)
    if csv_path:
        from tflite_deploy.store.export import write_csv

        write_csv(results, csv_path)
    if as_json:
        print(dumps("bench", [r.to_dict() for r in results]))
    else:
        render.bench_report(results, console())
    if results and not any(r.ok for r in results):
        raise typer.Exit(1)


# ---------------------------------------------------------------------------------------- devices
@user_errors
def devices(
    adb_server: AdbServer = None,
    as_json: JsonFlag = False,
) -> None:
    """Android devices the adb server knows, with their facts; offline ones with what to do."""
    from dataclasses import asdict

    found = api.list_devices(adb_server)
    if as_json:
        print(dumps("devices", [asdict(d) for d in found]))
    else:
        render.devices_table(found, console())


# -------------------------------------------------------------------------------------- parse-log
@user_errors
def parse_log(
    logs: List[Path] = typer.Argument(..., help="benchmark_model output or a logcat dump of the benchmark APK."),
    delegate: str = typer.Option("cpu", "--delegate", help="Delegate the run used (for the record)."),
    target: str = typer.Option("unknown", "--target", help="Where it ran, e.g. adb:SERIAL (for the record)."),
    as_json: JsonFlag = False, store: StoreTo = None, tag: RunTag = None, no_store: NoStore = False,
) -> None:
    """Parse benchmark_model output captured elsewhere into the same Result records as bench."""
    results = api.parse_logs(logs, delegate=delegate, target=target, store=store_target(store, no_store), tag=tag)
    if as_json:
        print(dumps("parse-log", [r.to_dict() for r in results]))
    else:
        render.bench_report(results, console())
    raise typer.Exit(0 if all(r.ok for r in results) else 1)  # a cut-off or foreign log is not a measurement


def register(app: typer.Typer) -> None:
    app.command(name="bench")(bench)
    app.command(name="devices")(devices)
    app.command(name="parse-log")(parse_log)
