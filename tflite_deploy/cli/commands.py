"""The ``tflite-deploy`` command: map options onto one API call, hand the answer to ``render``.

The API (:mod:`tflite_deploy.api`) imports heavy modules (TensorFlow above all) only in the
functions that need them, so ``--help``, ``inspect``, ``bench`` and ``devices`` start fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer
from rich.console import Console

from tflite_deploy import __version__, api
from tflite_deploy.cli import store as store_cli
from tflite_deploy.render import verbs as render
from tflite_deploy.envelope import dumps
from tflite_deploy.errors import UserError
from tflite_deploy.cli import farm as farm_cli
from tflite_deploy.cli.store import NoStore, RunTag, StoreTo, store_target, user_errors

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


def _quiet_python_warnings() -> None:
    """TensorFlow and TF-MOT emit deprecation warnings a user can do nothing about."""
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(tensorflow|tf_keras|keras)")


JsonFlag = Annotated[bool, typer.Option("--json", help="Print the JSON envelope instead of tables.")]
Unsafe = Annotated[bool, typer.Option("--unsafe-deserialization", help="Load Lambda layers (runs code in the file).")]
Force = Annotated[bool, typer.Option("--force", help="Compare variants made from different source models anyway.")]
RecipeFiles = Annotated[List[Path], typer.Option("--recipes-file", "-f", help="YAML/TOML file(s) of user recipes.")]


def _bars(as_json: bool):  # type: ignore[no-untyped-def]
    return render.progress_bars(err, disable=as_json)


# --------------------------------------------------------------------------------------- recipes
@app.command()
@user_errors
def recipes(recipes_file: RecipeFiles = [], as_json: JsonFlag = False) -> None:  # noqa: B006
    """List the built-in recipes (presets), those in recipe files, and the optimization name patterns."""
    from tflite_deploy.recipes import OPTIMIZE_NAME_PATTERNS

    found = api.load_recipes(files=recipes_file)
    if as_json:
        print(dumps("recipes", [*(r.to_dict() for r in found), *({"name": n, "pattern": True, "description": d}
                                                                   for n, d in OPTIMIZE_NAME_PATTERNS)]))
        return
    render.recipes_table(found, OPTIMIZE_NAME_PATTERNS, out)


# --------------------------------------------------------------------------------------- convert
@app.command()
@user_errors
def convert(
    model: Path = typer.Argument(..., help="A .keras/.h5 file, a SavedModel folder, a float .tflite or an .onnx."),
    recipe: List[str] = typer.Option(["float32", "int8"], "--recipe", "-r",
                                     help="Recipe name; repeat for several (see `tflite-deploy recipes`)."),
    data: Optional[str] = typer.Option(None, "--data", "-d",
                                       help="Representative dataset: digits[:train], photos, an image folder, "
                                            "or a .npz/.npy file."),
    out_dir: Path = typer.Option(Path("out"), "--out", "-o", help="Folder for the .tflite files and sidecars."),
    recipes_file: RecipeFiles = [],  # noqa: B006
    size: ImageSize = None, scale: PixelScale = None, mean: PixelMean = None, std: PixelStd = None,
    color: ColorMode = None, layout: Layout = None, unsafe_deserialization: Unsafe = False, as_json: JsonFlag = False,
    input_shape: Optional[str] = typer.Option(None, "--input-shape", help="ONNX models with dynamic "
                                              "dimensions: the input shape to convert with, e.g. 1,3,224,224."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="Recipes converted at a time, each in its own "
                                       "process (default: by cores and free memory; 1: in this process)."),
    store: StoreTo = None, tag: RunTag = None, no_store: NoStore = False,
) -> None:
    """Convert a model with one or more recipes; writes NAME.RECIPE.tflite and a sidecar JSON each."""
    pre = api.preprocess(size, scale, mean, std, color, layout)
    _quiet_python_warnings()
    with _bars(as_json) as progress:
        arts = api.convert(model, recipe, data, out_dir, recipe_files=recipes_file, preprocess=pre,
                           input_shape=input_shape, progress=progress, store=store_target(store, no_store),
                           tag=tag, unsafe_deserialization=unsafe_deserialization, jobs=jobs)
    rows = api.as_items("convert", arts)
    if as_json:
        print(dumps("convert", rows))
    else:
        render.conversion_table(rows, out)
    raise typer.Exit(1 if any(r["failed"] for r in rows) else 0)  # every recipe ran; failed ones are rows


# --------------------------------------------------------------------------------------- inspect
@app.command()
@user_errors
def inspect(
    model: Path = typer.Argument(..., help="A .tflite file."),
    top: int = typer.Option(10, "--top", help="Show the N layers with the most weight bytes."),
    tensors: bool = typer.Option(False, "--tensors", help="With --json, include every tensor."),
    as_json: JsonFlag = False,
) -> None:
    """Inputs, outputs, ops, dtypes, quantization and delegate support of a .tflite (no TensorFlow)."""
    report = api.inspect_model(model)
    if as_json:
        print(dumps("inspect", [report.to_dict(include_tensors=tensors)]))
    else:
        render.inspect_report(report, out, top=top)


# ------------------------------------------------------------------------------------------ eval
@app.command(name="eval")
@user_errors
def eval_cmd(
    models: List[Path] = typer.Argument(..., help="The float reference (.keras/.h5/SavedModel, a float32 .tflite "
                                                  "or an .onnx) first, then the .tflite variants to judge."),
    data: str = typer.Option(..., "--data", "-d", help="Evaluation data, e.g. digits:test or an image folder."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", help="Use at most this many samples."),
    top_k: int = typer.Option(5, "--top-k", help="Also report top-k accuracy (when there are more classes)."),
    per_layer: bool = typer.Option(False, "--per-layer", help="Per-layer error of full-integer variants "
                                                              "(QuantizationDebugger), worst first."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Interpreter threads."),
    task: str = typer.Option("auto", "--task", help="auto (from the targets: whole-number y classifies, float y "
                                                    "regresses, no y: agreement only), classification, regression "
                                                    "or agreement."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Run the reference again even when its outputs on "
                                                            "this data are cached from an earlier eval."),
    size: ImageSize = None, scale: PixelScale = None, mean: PixelMean = None, std: PixelStd = None,
    color: ColorMode = None, layout: Layout = None, force: Force = False, as_json: JsonFlag = False,
    store: StoreTo = None, tag: RunTag = None, no_store: NoStore = False,
) -> None:
    """Accuracy (or MAE/RMSE) of each variant against the float reference, with a 95% interval on the change."""
    if len(models) < 2:
        raise UserError("Give the float reference and at least one .tflite variant to compare with it.")
    _quiet_python_warnings()
    from tflite_deploy.datasets import open_dataset

    ds = open_dataset(data, api.preprocess(size, scale, mean, std, color, layout))
    with _bars(as_json) as progress:
        results = api.evaluate(models[0], models[1:], ds, limit=limit, top_k=top_k, threads=threads,
                               progress=progress, store=store_target(store, no_store), tag=tag, force=force,
                               task=task, cache=not no_cache)
        layers = api.layer_errors([r.artifact for r in results[1:]], ds, progress=progress) if per_layer else {}
    if as_json:
        print(dumps("eval", [{**r.to_dict(), **({"per_layer": [e.to_dict() for e in layers[r.artifact]]}
                                                 if r.artifact in layers else {})} for r in results]))
        return
    render.eval_report(results, out)
    for path, rows in layers.items():
        render.layer_report(Path(path).name, rows, out)
    if per_layer and not layers:
        out.print("[dim]--per-layer: no full-integer variant with a sidecar among the models given.[/]")


# ----------------------------------------------------------------------------------------- bench
@app.command()
@user_errors
def bench(
    files: List[Path] = typer.Argument(..., help=".tflite files (.onnx on the host); measured interleaved."),
    device: List[str] = typer.Option([], "--device", "-D", help="Android device: SERIAL, adb:SERIAL or "
                                     "adb://HOST:PORT/SERIAL (remote adb server); repeat for several."),
    delegate: str = typer.Option("xnnpack", "--delegate", help="Host: xnnpack, none or reference. Device: a "
                                 "comma list of xnnpack, gpu, nnapi, cpu, npu."),
    adb_server: Optional[str] = typer.Option(None, "--adb-server", help="HOST:PORT of a remote adb server for "
                                             "the --device serials (a device farm)."),
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
        npu_dispatch_lib=npu_dispatch_lib, npu_compiler_plugin=npu_compiler_plugin, data=data)
    with _bars(as_json) as progress:
        results = api.bench(files, device or ["host"], adb_server=adb_server, options=opts, progress=progress,
                            store=store_target(store, no_store), tag=tag, force=force)
    if csv_path:
        from tflite_deploy.store.export import write_csv

        write_csv(results, csv_path)
    if as_json:
        print(dumps("bench", [r.to_dict() for r in results]))
    else:
        render.bench_report(results, out)
    if results and not any(r.ok for r in results):
        raise typer.Exit(1)


# ---------------------------------------------------------------------------------------- devices
@app.command()
@user_errors
def devices(
    adb_server: Optional[str] = typer.Option(None, "--adb-server", help="HOST:PORT of a remote adb server."),
    as_json: JsonFlag = False,
) -> None:
    """Android devices the adb server knows, with their facts; offline ones with what to do."""
    from dataclasses import asdict

    found = api.list_devices(adb_server)
    if as_json:
        print(dumps("devices", [asdict(d) for d in found]))
    else:
        render.devices_table(found, out)


# -------------------------------------------------------------------------------------- parse-log
@app.command(name="parse-log")
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
        render.bench_report(results, out)
    raise typer.Exit(0 if all(r.ok for r in results) else 1)  # a cut-off or foreign log is not a measurement


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
    size: ImageSize = None, scale: PixelScale = None, mean: PixelMean = None, std: PixelStd = None,
    color: ColorMode = None, layout: Layout = None, unsafe_deserialization: Unsafe = False, as_json: JsonFlag = False,
) -> None:
    """Fine-tune with TF-MOT (QAT, pruning, clustering, PQAT, CQAT, PCQAT), convert to int8, verify in the file."""
    _quiet_python_warnings()
    with _bars(as_json) as progress:
        report = api.optimize(model, technique, data, epochs, out_dir, eval_data=eval_data,
                              preprocess=api.preprocess(size, scale, mean, std, color, layout), progress=progress,
                              sparsity=sparsity, schedule=schedule, clusters=clusters, init=init,
                              batch_size=batch_size, learning_rate=learning_rate, skip_unsupported=skip_unsupported,
                              resume=resume, strategy=strategy, seed=seed,
                              unsafe_deserialization=unsafe_deserialization)
    if as_json:
        print(dumps("optimize", [report.to_dict()]))
    else:
        render.optimize_report(report, out)


# ------------------------------------------------------------------------------------------ demo
@app.command()
@user_errors
def demo(
    out_dir: Path = typer.Option(Path("out/demo"), "--out", "-o", help="Where the model and variants go."),
    epochs: int = typer.Option(30, help="Training epochs for the digits CNN."),
    as_json: JsonFlag = False,
) -> None:
    """The whole job on bundled data: train, convert with every preset, measure size, accuracy and latency."""
    _quiet_python_warnings()
    with _bars(as_json) as progress:
        d = api.demo(out_dir, epochs, progress=progress)
    if as_json:
        print(dumps("demo", api.as_items("demo", d)))
        return
    out.print(f"Trained [bold]{d.model}[/]: float test accuracy {d.float_accuracy:.1%} on digits:test")
    render.demo_report(d.artifacts, d.evals[1:], d.benches, out)
    out.print(f"Next: [bold]tflite-deploy inspect {d.artifacts[2].path}[/], "
              f"[bold]tflite-deploy eval {d.model} {d.artifacts[2].path} -d digits:test --per-layer[/]")


farm_cli.register(app)  # the farm group: tflite_deploy/cli/farm.py
store_cli.register(app)  # history, compare, report (the results store)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
