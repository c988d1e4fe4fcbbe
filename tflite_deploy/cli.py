"""The ``tflite-deploy`` command: parse arguments, call the Python API, render the answer.

Heavy modules (TensorFlow above all) are imported inside the commands that need them, so that
``--help``, ``inspect``, ``bench`` and ``devices`` start fast.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated, Any, Callable, List, Optional

import typer
from rich.console import Console
from rich.table import Table

from tflite_deploy import __version__
from tflite_deploy.errors import UserError

app = typer.Typer(
    name="tflite-deploy",
    help="Take a trained Keras model to a fast, small, accurate TensorFlow Lite model, and prove it "
         "with numbers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
if not out.is_terminal:  # piped or captured (CI logs): no terminal width to respect, so don't wrap at 80
    out = Console(width=120)
err = Console(stderr=True)


# Preprocessing options shared by every command that reads an image dataset.
ImageSize = Annotated[Optional[str], typer.Option("--size", help="Resize images to H,W (image folders).")]
PixelScale = Annotated[Optional[float], typer.Option("--scale", help="Multiply pixels by this (default 1/255).")]
PixelMean = Annotated[Optional[str], typer.Option("--mean", help="Subtract after scaling: one value or R,G,B.")]
PixelStd = Annotated[Optional[str], typer.Option("--std", help="Divide after the mean: one value or R,G,B.")]
ColorMode = Annotated[Optional[str], typer.Option("--color", help="rgb (default) or grayscale (image folders).")]
Layout = Annotated[Optional[str], typer.Option("--layout", help="NHWC (default) or NCHW (image folders).")]


def _version(value: bool) -> None:
    if value:
        out.print(f"tflite-deploy {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                        help="Print the version and exit.")) -> None:
    pass


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a UserError into its one-paragraph message and a non-zero exit, not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None

    return wrapper


def _quiet_python_warnings() -> None:
    """TensorFlow and TF-MOT emit deprecation warnings a user can do nothing about."""
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(tensorflow|tf_keras|keras)")


def fmt_bytes(n: Optional[float]) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return str(n)


# --------------------------------------------------------------------------------------- recipes
@app.command()
@user_errors
def recipes(
    recipes_file: List[Path] = typer.Option([], "--recipes-file", "-f", help="YAML/TOML file(s) of user recipes."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the built-in recipes (presets) and those in recipe files."""
    from tflite_deploy.recipes import PRESETS, load_recipe_file

    found = dict(PRESETS)
    for f in recipes_file:
        found.update(load_recipe_file(f))
    if as_json:
        print(json.dumps([r.to_dict() for r in found.values()], indent=2))
        return
    t = Table(title="Recipes", title_justify="left")
    for col in ("name", "what it makes", "calibrates", "description"):
        t.add_column(col)
    for r in found.values():
        t.add_row(r.name, r.summary(), "yes" if r.needs_calibration else "no", r.description)
    out.print(t)


# --------------------------------------------------------------------------------------- convert
@app.command()
@user_errors
def convert(
    model: Path = typer.Argument(..., help="A .keras or .h5 file, or a SavedModel folder."),
    recipe: List[str] = typer.Option(["float32", "int8"], "--recipe", "-r",
                                     help="Recipe name; repeat for several (see `tflite-deploy recipes`)."),
    data: Optional[str] = typer.Option(None, "--data", "-d",
                                       help="Representative dataset: digits[:train], photos, an image folder, "
                                            "or a .npz/.npy file."),
    out_dir: Path = typer.Option(Path("out"), "--out", "-o", help="Folder for the .tflite files and sidecars."),
    recipes_file: List[Path] = typer.Option([], "--recipes-file", "-f", help="YAML/TOML file(s) of user recipes."),
    size: ImageSize = None,
    scale: PixelScale = None,
    mean: PixelMean = None,
    std: PixelStd = None,
    color: ColorMode = None,
    layout: Layout = None,
    unsafe_deserialization: bool = typer.Option(False, "--unsafe-deserialization", help="Load Lambda layers: "
                                                "runs the Python code stored in the model file (off by default; "
                                                "only for files you trust)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Convert a model with one or more recipes; writes NAME.RECIPE.tflite and a sidecar JSON each."""
    from tflite_deploy import recipes as recipes_mod
    from tflite_deploy.datasets import open_dataset

    chosen = recipes_mod.resolve(recipe, recipes_file)
    dataset = open_dataset(data, _preprocess(size, scale, mean, std, color, layout)) if data else None
    _quiet_python_warnings()
    from tflite_deploy.convert import convert as convert_api
    from tflite_deploy.models import load_model

    with err.status(f"Loading {model} (TensorFlow) ...", spinner="dots") if not as_json else _null():
        source = load_model(model, unsafe_deserialization=unsafe_deserialization)
    arts = _convert_with_progress(convert_api, source, chosen, dataset, out_dir, show=not as_json)
    _print_conversion(arts, as_json)


def _convert_with_progress(convert_api: Callable[..., Any], source: Any, chosen: list, dataset: Any,
                           out_dir: Path, show: bool) -> list:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if not show:
        return convert_api(source, chosen, dataset, out_dir)
    with Progress(TextColumn("[bold]converting[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as progress:
        task = progress.add_task(chosen[0].name, total=len(chosen))
        names = [r.name for r in chosen]

        def done(recipe: Any, _art: Any) -> None:
            i = names.index(recipe.name) + 1
            progress.update(task, advance=1, description=names[i] if i < len(names) else "")

        return convert_api(source, chosen, dataset, out_dir, on_done=done)


def _print_conversion(arts: list, as_json: bool) -> None:
    from tflite_deploy.convert import conversion_table_rows

    rows = conversion_table_rows(arts)
    if as_json:
        print(json.dumps({"artifacts": rows}, indent=2))
        return
    t = Table(title=f"{arts[0].model}: {len(arts)} variant(s) in {arts[0].path.parent}", title_justify="left")
    for col, just in (("recipe", "left"), ("what it is", "left"), ("size", "right"), ("gzipped", "right"),
                      ("x smaller", "right"), ("x smaller gz", "right"), ("time", "right")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in rows:
        t.add_row(r["recipe"], r["summary"], fmt_bytes(r["size_bytes"]), fmt_bytes(r["gzip_bytes"]),
                  "-" if r["ratio"] is None else f"{r['ratio']:.2f}x",
                  "-" if r["gzip_ratio"] is None else f"{r['gzip_ratio']:.2f}x", f"{r['seconds']:.1f} s")
    out.print(t)
    if all(r["ratio"] is None for r in rows):
        out.print("[dim]Add --recipe float32 to see each variant's ratio to the float model.[/]")


def _preprocess(size: Optional[str], scale: Optional[float], mean: Optional[str], std: Optional[str],
                color: Optional[str] = None, layout: Optional[str] = None) -> Any:
    from tflite_deploy.datasets import Preprocess

    def floats(text: Optional[str], what: str) -> Optional[tuple[float, ...]]:
        if text is None:
            return None
        try:
            return tuple(float(v) for v in text.split(","))
        except ValueError:
            raise UserError(f"--{what} takes numbers separated by commas, not {text!r}") from None

    kw: dict[str, Any] = {}
    if size:
        hw = floats(size, "size")
        if not hw or len(hw) not in (1, 2):
            raise UserError(f"--size takes H,W or one number, not {size!r}")
        kw["size"] = (int(hw[0]), int(hw[-1]))
    if scale is not None:
        kw["scale"] = scale
    if mean is not None:
        kw["mean"] = floats(mean, "mean")
    if std is not None:
        kw["std"] = floats(std, "std")
    if color is not None:
        kw["color"] = color
    if layout is not None:
        kw["layout"] = layout.upper()
    return Preprocess(**kw) if kw else None


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: Any) -> None:
        return None


# --------------------------------------------------------------------------------------- inspect
@app.command()
@user_errors
def inspect(
    model: Path = typer.Argument(..., help="A .tflite file."),
    top: int = typer.Option(10, "--top", help="Show the N layers with the most weight bytes."),
    tensors: bool = typer.Option(False, "--tensors", help="With --json, include every tensor."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Inputs, outputs, ops, dtypes, quantization and delegate support of a .tflite (no TensorFlow)."""
    from tflite_deploy.inspect import inspect_model, render_report

    report = inspect_model(model)
    if as_json:
        print(report.to_json(include_tensors=tensors, indent=2))
    else:
        render_report(report, out, top=top)


# ------------------------------------------------------------------------------------------ eval
@app.command(name="eval")
@user_errors
def eval_cmd(
    models: List[Path] = typer.Argument(..., help="The float reference (.keras/.h5/SavedModel or a float32 "
                                                  ".tflite) first, then the .tflite variants to judge."),
    data: str = typer.Option(..., "--data", "-d", help="Evaluation data, e.g. digits:test or an image folder."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", help="Use at most this many samples."),
    top_k: int = typer.Option(5, "--top-k", help="Also report top-k accuracy (when there are more classes)."),
    per_layer: bool = typer.Option(False, "--per-layer", help="Per-layer error of full-integer variants "
                                                              "(QuantizationDebugger), worst first."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Interpreter threads."),
    size: ImageSize = None,
    scale: PixelScale = None,
    mean: PixelMean = None,
    std: PixelStd = None,
    color: ColorMode = None,
    layout: Layout = None,
    as_json: bool = typer.Option(False, "--json", help="Print JSON (Result records) instead of tables."),
) -> None:
    """Accuracy of each variant against the float reference, with a 95% interval on the drop."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from tflite_deploy.datasets import open_dataset
    from tflite_deploy.result import dump_results

    if len(models) < 2:
        raise UserError("Give the float reference and at least one .tflite variant to compare with it.")
    _quiet_python_warnings()
    from tflite_deploy import evaluate as ev

    ds = open_dataset(data, _preprocess(size, scale, mean, std, color, layout))
    n = len(ds) if limit is None else min(limit, len(ds))
    with Progress(TextColumn("[bold]evaluating[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err, transient=True, disable=as_json) as progress:
        task = progress.add_task("", total=n * len(models))
        results = ev.evaluate(models[0], models[1:], ds, limit=limit, top_k=top_k, threads=threads,
                              on_progress=lambda name, k: progress.update(task, advance=k,
                                                                          description=Path(name).name))
    layers = {}
    if per_layer:
        from tflite_deploy.artifact import read_sidecar

        for r in results[1:]:
            side = read_sidecar(Path(r.artifact))
            if side and side["recipe"]["activations"] == "int8":
                with err.status(f"Per-layer error of {Path(r.artifact).name} ...") if not as_json else _null():
                    layers[r.artifact] = ev.per_layer_errors(r.artifact, ds)
    if as_json:
        doc = json.loads(dump_results(results))
        if per_layer:
            doc["per_layer"] = {k: [e.to_dict() for e in v] for k, v in layers.items()}
        print(json.dumps(doc, indent=2))
        return
    from tflite_deploy.render import eval_report, layer_report

    eval_report(results, out)
    for path, rows in layers.items():
        layer_report(Path(path).name, rows, out)
    if per_layer and not layers:
        out.print("[dim]--per-layer: no full-integer variant with a sidecar among the models given.[/]")


# ----------------------------------------------------------------------------------------- bench
@app.command()
@user_errors
def bench(
    files: List[Path] = typer.Argument(..., help=".tflite file(s); several are measured interleaved."),
    device: List[str] = typer.Option([], "--device", "-D", help="Android device: SERIAL, adb:SERIAL or "
                                     "adb://HOST:PORT/SERIAL (remote adb server); repeat for several."),
    delegate: str = typer.Option("xnnpack", "--delegate", help="Host: xnnpack, none or reference. Device: a "
                                 "comma list of xnnpack, gpu, nnapi, cpu."),
    adb_server: Optional[str] = typer.Option(None, "--adb-server", help="HOST:PORT of a remote adb server for "
                                             "the --device serials (a device farm)."),
    threads: Optional[int] = typer.Option(None, "--threads", "-t", help="Threads (host 1, device 4)."),
    runs: int = typer.Option(50, "--runs", help="Measured runs (at least; see --min-seconds)."),
    warmup: int = typer.Option(5, "--warmup", help="Warm-up runs, reported apart."),
    min_seconds: float = typer.Option(1.0, "--min-seconds", help="Keep measuring at least this long."),
    benchmark_binary: Optional[Path] = typer.Option(
        None, "--benchmark-binary", envvar="TFLITE_DEPLOY_BENCHMARK_BINARY",
        help="TFLite's benchmark_model for the device's ABI (device runs); default: the official nightly "
             "build, downloaded once per ABI into ~/.cache/tflite-deploy."),
    runner: str = typer.Option("binary", "--runner", help="Device runner: binary (benchmark_model over adb "
                               "shell) or apk (TFLite's benchmark app, read from logcat)."),
    benchmark_apk: Optional[Path] = typer.Option(
        None, "--benchmark-apk", envvar="TFLITE_DEPLOY_BENCHMARK_APK",
        help="TFLite's benchmark APK (with --runner apk); default: the official nightly build."),
    gpu_precision: str = typer.Option("fp16", "--gpu-precision", help="GPU delegate: fp16 or fp32."),
    nnapi_accelerator: Optional[str] = typer.Option(None, "--nnapi-accelerator", help="NNAPI accelerator name."),
    op_profiling: bool = typer.Option(False, "--op-profiling", help="Per-op timings (device runs)."),
    pin_big_cores: bool = typer.Option(False, "--pin-big-cores", help="taskset the run to the big cores."),
    cooldown: float = typer.Option(0.0, "--cooldown", help="Seconds to rest between device runs."),
    timeout: float = typer.Option(600.0, "--timeout", help="Seconds one device run may take."),
    cleanup: bool = typer.Option(False, "--cleanup", help="Remove pushed models from the device afterwards."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Also write one row per result to this CSV."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (Result records) instead."),
) -> None:
    """Latency and memory of .tflite files on this machine (LiteRT) or on Android devices (adb)."""
    from tflite_deploy.result import dump_results

    for f in files:
        if not f.is_file():
            raise UserError(f"Model {f} does not exist.")
    if runs < 1 or warmup < 0 or (threads is not None and threads < 1):
        raise UserError("--runs and --threads must be at least 1, --warmup at least 0.")
    if adb_server and device:
        device = [d if d.startswith("adb://") else f"adb://{adb_server}/{d.removeprefix('adb:')}" for d in device]
    if device:
        results = _bench_devices(files, device, delegate, threads, runs, warmup, min_seconds,
                                 benchmark_apk if runner == "apk" else benchmark_binary, runner, gpu_precision, nnapi_accelerator, op_profiling, pin_big_cores, cooldown,
                                 timeout, cleanup, as_json)
    else:
        from tflite_deploy.bench.host import HostBenchSettings, bench_host
        from tflite_deploy.runtime import check_host_delegate

        check_host_delegate(delegate)
        settings = HostBenchSettings(threads=threads or 1, runs=runs, warmup=warmup, min_seconds=min_seconds,
                                     delegate=delegate)
        with err.status(f"Measuring {len(files)} model(s), interleaved ...") if not as_json else _null():
            results = bench_host(files, settings)
    if csv_path:
        from tflite_deploy.export import write_csv

        write_csv(results, csv_path)
    if as_json:
        print(dump_results(results))
    else:
        from tflite_deploy.render import bench_report

        bench_report(results, out)
    if results and not any(r.ok for r in results):
        raise typer.Exit(1)


def _bench_devices(files: list, device: list, delegate: str, threads: Optional[int], runs: int, warmup: int,
                   min_seconds: float, tool: Optional[Path], runner: str, gpu_precision: str,
                   nnapi_accelerator: Optional[str], op_profiling: bool, pin_big_cores: bool, cooldown: float,
                   timeout: float, cleanup: bool, as_json: bool) -> list:
    from tflite_deploy.bench.device import DeviceBenchSettings, bench_devices

    if runner not in ("binary", "apk"):
        raise UserError(f"--runner is binary or apk, not {runner!r}")
    if gpu_precision not in ("fp16", "fp32"):
        raise UserError(f"--gpu-precision is fp16 or fp32, not {gpu_precision!r}")
    settings = DeviceBenchSettings(
        delegates=tuple(d.strip() for d in delegate.split(",") if d.strip()), threads=threads or 4, runs=runs,
        warmup_runs=warmup, min_seconds=min_seconds, gpu_precision=gpu_precision,
        nnapi_accelerator=nnapi_accelerator, op_profiling=op_profiling, pin_big_cores=pin_big_cores,
        cooldown_seconds=cooldown, timeout_seconds=timeout, cleanup=cleanup, runner=runner)
    total = len(files) * len(device) * len(settings.delegates)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]on device[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True, disable=as_json) as progress:
        task = progress.add_task("", total=total)
        return bench_devices(files, device, tool, settings,
                             on_result=lambda r: progress.update(
                                 task, advance=1, description=f"{r.target} {r.delegate}: {r.status}"))


# ---------------------------------------------------------------------------------------- devices
@app.command()
@user_errors
def devices(
    adb_server: Optional[str] = typer.Option(None, "--adb-server", help="HOST:PORT of a remote adb server."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Android devices the adb server knows, with their facts; offline ones with what to do."""
    from dataclasses import asdict

    from tflite_deploy.adb import AdbServer, list_devices

    server = None
    if adb_server:
        host, _, port = adb_server.rpartition(":")
        if not host or not port.isdigit():
            raise UserError(f"--adb-server takes HOST:PORT, not {adb_server!r}")
        server = AdbServer(host, int(port))
    found = list_devices(server)
    if as_json:
        print(json.dumps([asdict(d) for d in found], indent=2))
        return
    if not found:
        out.print("No Android device found. Plug one in with USB debugging on, or `adb connect HOST:PORT`.")
        return
    t = Table(title="Android devices", title_justify="left")
    for col in ("serial", "state", "model", "SoC / board", "ABIs", "Android", "emulator"):
        t.add_column(col)
    for d in found:
        t.add_row(d.serial, d.state if d.usable else f"[red]{d.state}[/]",
                  " ".join(x for x in (d.manufacturer, d.model) if x) or "-", d.soc or d.board or "-",
                  ",".join(d.abis) or "-", f"{d.android_release} (SDK {d.sdk})" if d.sdk else "-",
                  "yes" if d.is_emulator else "no")
    out.print(t)
    for d in found:
        if d.hint:
            out.print(f"[yellow]{d.serial}:[/] {d.hint}")


# -------------------------------------------------------------------------------------- parse-log
@app.command(name="parse-log")
@user_errors
def parse_log(
    logs: List[Path] = typer.Argument(..., help="benchmark_model output or a logcat dump of the benchmark APK."),
    delegate: str = typer.Option("cpu", "--delegate", help="Delegate the run used (for the record)."),
    target: str = typer.Option("unknown", "--target", help="Where it ran, e.g. adb:SERIAL (for the record)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (Result records) instead."),
) -> None:
    """Parse benchmark_model output captured elsewhere into the same Result records as bench."""
    from tflite_deploy.bench.parse import parse_benchmark_log, to_result
    from tflite_deploy.result import dump_results

    results = []
    for f in logs:
        if not f.is_file():
            raise UserError(f"Log {f} does not exist.")
        log = parse_benchmark_log(f.read_bytes())
        graph = log.params.get("Graph") or str(f)
        threads = log.params.get("Num threads") or log.params.get("#threads used for CPU inference")
        results.append(to_result(log, artifact=graph, target=target, delegate=delegate, runner="log",
                                 settings={"log_file": str(f), "threads": int(threads) if threads and
                                           threads.isdigit() else None}))
    if as_json:
        print(dump_results(results))
        return
    from tflite_deploy.render import bench_report

    bench_report(results, out)


# -------------------------------------------------------------------------------------- optimize
@app.command()
@user_errors
def optimize(
    model: Path = typer.Argument(..., help="A .keras or .h5 model saved with tf_keras (Keras 2)."),
    technique: str = typer.Option(..., "--technique", "-t", help="qat, prune, cluster, pqat (prune, then QAT "
                                  "keeping zeros), cqat (cluster, then QAT keeping centroids) or pcqat (all three)."),
    data: str = typer.Option(..., "--data", "-d", help="Labelled training data: digits:train, an image folder "
                             "with class sub-folders, or a .npz with x and y."),
    epochs: int = typer.Option(2, "--epochs", "-e", help="Fine-tuning epochs per stage."),
    out_dir: Path = typer.Option(Path("out/optimize"), "--out", "-o", help="Folder for the model, the .tflite "
                                 "files, the report and checkpoints/."),
    sparsity: float = typer.Option(0.75, "--sparsity", help="prune/pqat/pcqat: target fraction of zero weights."),
    schedule: str = typer.Option("polynomial", "--schedule", help="prune: polynomial (ramp 0 -> target) or constant."),
    clusters: int = typer.Option(16, "--clusters", help="cluster/cqat/pcqat: unique values per kernel."),
    init: str = typer.Option("kmeans++", "--init", help="Centroid initialisation: kmeans++, linear, density, random."),
    batch_size: int = typer.Option(32, "--batch-size", help="Batch size per replica."),
    learning_rate: float = typer.Option(1e-3, "--learning-rate", "--lr", help="Adam learning rate."),
    eval_data: Optional[str] = typer.Option(None, "--eval-data", help="Evaluation split for accuracy before/after "
                                            "(default: the :test split when --data is a :train split)."),
    skip_unsupported: bool = typer.Option(False, "--skip-unsupported", help="Leave layers TF-MOT cannot wrap as "
                                          "they are and optimize the others."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from OUT/checkpoints."),
    strategy: str = typer.Option("default", "--strategy", help="tf.distribute strategy: default, mirrored "
                                 "(all local GPUs) or multiworker (TF_CONFIG)."),
    seed: int = typer.Option(0, "--seed", help="Random seed for shuffling and initialisation."),
    size: ImageSize = None,
    scale: PixelScale = None,
    mean: PixelMean = None,
    std: PixelStd = None,
    color: ColorMode = None,
    layout: Layout = None,
    unsafe_deserialization: bool = typer.Option(False, "--unsafe-deserialization", help="Load Lambda layers: "
                                                "runs the Python code stored in the model file (off by default; "
                                                "only for files you trust)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON instead of tables."),
) -> None:
    """Fine-tune with TF-MOT (QAT, pruning, clustering, PQAT, CQAT, PCQAT), convert to int8, verify in the file."""
    _quiet_python_warnings()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from tflite_deploy.datasets import open_dataset
    from tflite_deploy.optimize import run as opt_run

    pre = _preprocess(size, scale, mean, std, color, layout)
    if unsafe_deserialization:
        from tflite_deploy.models import load_model

        model = load_model(model, unsafe_deserialization=True)  # type: ignore[assignment]
    if eval_data is None and data.endswith(":train"):
        eval_data = data[: -len(":train")] + ":test"
    train_set: Any = open_dataset(data, pre) if pre else data
    eval_set: Any = open_dataset(eval_data, pre) if pre and eval_data else eval_data

    tasks: dict[Any, Any] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=as_json) as progress:
        def on_event(e: Any) -> None:
            if e.kind == "phase":
                for t in tasks.values():
                    progress.update(t, visible=False)
                tasks["phase"] = progress.add_task(e.text, total=None)
                return
            key = e.stage_index
            if e.kind == "stage":
                for t in tasks.values():
                    progress.update(t, visible=False)
                tasks[key] = progress.add_task("", total=e.epochs * e.steps, completed=e.resumed_from * e.steps)
            logs = "  ".join(f"{k} {v:.3f}" for k, v in e.logs.items() if k in ("loss", "accuracy"))
            progress.update(tasks[key], completed=e.epoch * e.steps + e.step, description=(
                f"[bold]{e.stage}[/] {e.stage_index + 1}/{e.stages}  epoch {e.epoch + 1}/{e.epochs}  {logs}"))

        report = opt_run.optimize(model, technique, train_set, epochs, out_dir, eval_data=eval_set, sparsity=sparsity,
                                  schedule=schedule, clusters=clusters, init=init, batch_size=batch_size,
                                  learning_rate=learning_rate, skip_unsupported=skip_unsupported, resume=resume,
                                  strategy=strategy, seed=seed, on_event=on_event)
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
        return
    _print_optimize(report)


def _print_optimize(r: Any) -> None:
    from tflite_deploy.optimize.verify import layer_rows

    resumed = "; ".join(f"{s.kind} resumed after epoch {s.resumed_from}" for s in r.stages if s.resumed_from)
    out.print(f"[bold]{r.tag}[/] of {r.model}: {' -> '.join(s.kind for s in r.stages)}, {r.stages[0].epochs} "
              f"epoch(s) each on {r.data}, strategy {r.strategy} x{r.replicas}, {r.seconds:.0f} s"
              + (f"; {resumed}" if resumed else ""), highlight=False)
    for note in r.notes:
        out.print(f"[yellow]{note}[/]", highlight=False)
    if r.skipped_layers:
        out.print(f"[yellow]Left as they are (TF-MOT cannot wrap them):[/] {', '.join(r.skipped_layers)}")
    if r.accuracy:
        t = Table(title=f"Accuracy on {r.eval_data}", title_justify="left")
        for col, just in (("model", "left"), ("top-1", "right"), ("95% CI", "right"), ("drop vs float", "right"),
                          ("95% CI of drop", "right")):
            t.add_column(col, justify=just)  # type: ignore[arg-type]
        for a in r.accuracy:
            t.add_row(a.name, f"{a.top1:.2f}%", f"{a.top1_ci95[0]:.1f} … {a.top1_ci95[1]:.1f}",
                      "-" if a.drop is None else f"{a.drop:+.2f}",
                      "-" if a.drop_ci95 is None else f"{a.drop_ci95[0]:+.2f} … {a.drop_ci95[1]:+.2f}")
        out.print(t)
        if r.vs_ptq is not None:
            d, lo, hi = r.vs_ptq
            verdict = "better than" if hi < 0 else "worse than" if lo > 0 else "within noise of"
            out.print(f"{r.tag}-int8 is {verdict} int8 PTQ: PTQ minus it {d:+.2f} points (95% CI {lo:+.2f} … "
                      f"{hi:+.2f}, paired bootstrap).", highlight=False)
    ptq = r.files.get("ptq-int8")
    t = Table(title=f"Files in {Path(r.report_path).parent}, measured in the .tflite", title_justify="left")
    for col, just in (("file", "left"), ("size", "right"), ("gzipped", "right"), ("gz vs PTQ", "right"),
                      ("sparsity (target)", "right"), ("unique/kernel (target)", "right")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for role, f in r.files.items():
        v = r.verification[role]
        mine = role != "ptq-int8"
        sp = v.sparsity(r.pruned_layers or None)
        target = f" ({r.target_sparsity:g}%)" if r.target_sparsity is not None and mine else ""
        uniq = "-"
        if r.clustered_layers and v.select(r.clustered_layers):
            uniq = f"≤{v.max_unique(r.clustered_layers)}" + (f" ({r.target_clusters})" if mine else "")
        t.add_row(Path(f["path"]).name, fmt_bytes(f["size_bytes"]), fmt_bytes(f["gzip_bytes"]),
                  f"{ptq['gzip_bytes'] / f['gzip_bytes']:.2f}x" if ptq else "-",
                  "-" if sp is None else f"{100 * sp:.1f}%{target}", uniq)
    out.print(t)
    v8 = r.verification["optimized-int8"]
    t = Table(title=f"Kernels of {Path(v8.path).name}", title_justify="left")
    for col, just in (("layer", "left"), ("optimized", "left"), ("op", "left"), ("shape", "left"),
                      ("scales", "left"), ("sparsity", "right"), ("unique", "right")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    known = [*r.pruned_layers, *r.clustered_layers, *(w for s in r.stages for w in s.wrapped_layers)]
    for row in layer_rows(v8, known):
        marks = [m for m, names in (("pruned", r.pruned_layers), ("clustered", r.clustered_layers))
                 if row["layer"] in names]
        scales = "channel" if row["per_channel"] else "tensor" if row["dtype"] == "INT8" else row["dtype"].lower()
        t.add_row(row["layer"], ", ".join(marks) or "-", row["op"].replace("_CONV_2D", "_CONV")
                  .replace("FULLY_CONNECTED", "FC"), "x".join(map(str, row["shape"])), scales,
                  f"{100 * row['sparsity']:.1f}%", f"{row['unique_values']}" + ("/ch" if row["per_channel"] else ""))
    out.print(t)
    out.print(f"[dim]Report {r.report_path}; checkpoints {r.checkpoints}"
              + (f"; model {r.keras_model}" if r.keras_model else "") + "[/]", highlight=False)


# ------------------------------------------------------------------------------------------ demo
@app.command()
@user_errors
def demo(
    out_dir: Path = typer.Option(Path("out/demo"), "--out", "-o", help="Where the model and variants go."),
    epochs: int = typer.Option(30, help="Training epochs for the digits CNN."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """The whole job on bundled data: train, convert with every preset, measure size, accuracy and latency."""
    _quiet_python_warnings()
    from tflite_deploy.bench.host import HostBenchSettings, bench_host
    from tflite_deploy.demo import train_demo_model
    from tflite_deploy.evaluate import evaluate
    from tflite_deploy.result import dump_results

    with err.status("Training a digits CNN on real handwriting (scikit-learn digits) ...") \
            if not as_json else _null():
        model_path, accuracy = train_demo_model(out_dir, epochs)
    if not as_json:
        out.print(f"Trained [bold]{model_path}[/]: float test accuracy {accuracy:.1%} on digits:test")
    from tflite_deploy.convert import convert as convert_api
    from tflite_deploy.models import load_model
    from tflite_deploy.recipes import PRESETS

    arts = _convert_with_progress(convert_api, load_model(model_path), list(PRESETS.values()),
                                  "digits:train", out_dir, show=not as_json)
    paths = [a.path for a in arts]
    with err.status("Evaluating every variant on digits:test ...") if not as_json else _null():
        evals = evaluate(model_path, paths, "digits:test")
    with err.status("Measuring host latency, interleaved ...") if not as_json else _null():
        benches = bench_host(paths, HostBenchSettings(runs=300, warmup=20, min_seconds=0.5))
    if as_json:
        from tflite_deploy.convert import conversion_table_rows

        print(json.dumps({"artifacts": conversion_table_rows(arts),
                          **{k: json.loads(dump_results(v))["results"] for k, v in
                             (("eval", evals), ("bench", benches))}}, indent=2))
        return
    from tflite_deploy.render import demo_report

    demo_report(arts, evals[1:], benches, out)
    out.print(f"Next: [bold]tflite-deploy inspect {arts[2].path}[/], "
              f"[bold]tflite-deploy eval {model_path} {arts[2].path} -d digits:test --per-layer[/]")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
