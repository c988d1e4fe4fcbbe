"""The public Python API: one function per verb, the same ones the CLI calls.

``tflite_deploy`` re-exports everything here lazily, so ``import tflite_deploy`` stays light; each
function imports the heavy modules (TensorFlow above all) only when it needs them. Every function
takes ``progress``, a callable that receives :class:`~tflite_deploy.progress.ProgressEvent` records.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Union

from tflite_deploy.artifact import Artifact, recipe_name
from tflite_deploy.errors import UserError
from tflite_deploy.hashing import sha256_file
from tflite_deploy.progress import ProgressCallback, ProgressEvent, report
from tflite_deploy.recipes import PRESETS, Recipe, load_recipe_file, resolve
from tflite_deploy.result import Result

if TYPE_CHECKING:  # records of the heavier modules (numpy, TensorFlow), for signatures only
    from tflite_deploy.datasets import Dataset, Preprocess
    from tflite_deploy.debug import LayerError
    from tflite_deploy.inspect import ModelReport
    from tflite_deploy.optimization.run import OptimizeReport

PathLike = Union[str, Path]
DataSpec = Union[str, "Dataset", None]

__all__ = ["Artifact", "DemoReport", "ProgressEvent", "Recipe", "Result", "bench", "convert", "demo", "evaluate",
           "inspect_model", "layer_errors", "list_devices", "load_recipes", "open_dataset", "optimize",
           "parse_logs"]


def open_dataset(spec: str, preprocess: Optional["Preprocess"] = None) -> "Dataset":
    """A Dataset from a spec: ``digits[:train|:test]``, ``photos``, an image folder, a .npz/.npy file."""
    from tflite_deploy.datasets import open_dataset as open_spec

    return open_spec(spec, preprocess)


# ---------------------------------------------------------------------------------------- recipes
def load_recipes(names: Optional[Sequence[str | Recipe]] = None, files: Sequence[PathLike] = ()) -> list[Recipe]:
    """Recipes by name (presets, user files, optimize-made names such as ``prune50-int8``) or as given.

    Without ``names``: every preset and every recipe in ``files``, in that order.
    """
    if names is None:
        found = dict(PRESETS)
        for f in files:
            found.update(load_recipe_file(f))
        return list(found.values())
    by_name = resolve([n for n in names if not isinstance(n, Recipe)], files)
    it = iter(by_name)
    return [n if isinstance(n, Recipe) else next(it) for n in names]


def preprocess(size: Optional[str] = None, scale: Optional[float] = None, mean: Optional[str] = None,
               std: Optional[str] = None, color: Optional[str] = None, layout: Optional[str] = None
               ) -> Optional[Preprocess]:
    """A Preprocess from text options as the CLI takes them (``size="224,224"``, ``mean="0.5,0.5,0.5"``);
    None when every option is left at its default."""
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


def _dataset(data: DataSpec, preprocess: Optional[Preprocess]) -> DataSpec:
    if isinstance(data, str) and preprocess is not None:
        return open_dataset(data, preprocess)
    return data


# ---------------------------------------------------------------------------------------- convert
def convert(model: Any, recipes: Sequence[str | Recipe] = ("float32", "int8"), data: DataSpec = None,
            out: PathLike = "out", *, recipe_files: Sequence[PathLike] = (), preprocess: Optional[Preprocess] = None,
            progress: Optional[ProgressCallback] = None) -> list[Artifact]:
    """Convert ``model`` (a .keras/.h5 path, a SavedModel folder or a loaded SourceModel) with each recipe.

    Writes ``NAME.RECIPE.tflite`` and a sidecar JSON per recipe into ``out``; returns the artifacts.
    ``data`` (``digits:train``, an image folder, a .npz, or a Dataset) calibrates int8/int16x8 recipes.
    """
    chosen = load_recipes(recipes, recipe_files)
    dataset = _dataset(data, preprocess)
    from tflite_deploy.conversion import convert as convert_verb
    from tflite_deploy.models import SourceModel, load_model

    if not isinstance(model, SourceModel):
        report(progress, "load", 0, None, f"Loading {model} (TensorFlow) ...")
        model = load_model(model)
    return convert_verb(model, chosen, dataset, out, progress=progress)


# --------------------------------------------------------------------------------------- evaluate
def evaluate(reference: PathLike, variants: Sequence[PathLike], data: DataSpec, *, limit: Optional[int] = None,
             top_k: int = 5, threads: Optional[int] = None, preprocess: Optional[Preprocess] = None,
             progress: Optional[ProgressCallback] = None) -> list[Result]:
    """Accuracy and output agreement of each variant against the float reference, on the same samples.

    Returns one ``eval`` Result for the reference, then one per variant (with the paired drop and its 95% CI).
    """
    if not variants:
        raise UserError("Give the float reference and at least one .tflite variant to compare with it.")
    from tflite_deploy.evaluation import evaluate as evaluate_verb

    dataset = open_dataset(data, preprocess) if isinstance(data, str) else data
    return evaluate_verb(reference, list(variants), dataset, limit=limit, top_k=top_k, threads=threads,
                         progress=progress)


def layer_errors(variants: Sequence[PathLike], data: DataSpec, *, preprocess: Optional[Preprocess] = None,
                 progress: Optional[ProgressCallback] = None) -> dict[str, list["LayerError"]]:
    """Per-layer quantization error (worst first) of each full-integer int8 variant that has a sidecar."""
    from tflite_deploy.artifact import read_sidecar
    from tflite_deploy.debug import per_layer_errors

    dataset = open_dataset(data, preprocess) if isinstance(data, str) else data
    chosen = [str(v) for v in variants if (read_sidecar(Path(v)) or {}).get("recipe", {}).get("activations") == "int8"]
    out = {}
    for i, v in enumerate(chosen):
        report(progress, "per-layer", i, len(chosen), f"Per-layer error of {Path(v).name} ...")
        out[v] = per_layer_errors(v, dataset)
    return out


# ------------------------------------------------------------------------------------------ bench
@dataclass(frozen=True)
class BenchOptions:
    """What ``bench`` measures with. Host runs use threads (default 1) and one host delegate; device
    runs default to 4 threads and may list several delegates."""

    delegate: str | Sequence[str] = "xnnpack"
    threads: Optional[int] = None
    runs: int = 50
    warmup: int = 5
    min_seconds: float = 1.0
    runner: str = "binary"
    tool: Optional[PathLike] = None        # benchmark_model binary, or the APK with runner="apk"
    gpu_precision: str = "fp16"
    nnapi_accelerator: Optional[str] = None
    op_profiling: bool = False
    pin_big_cores: bool = False
    cooldown: float = 0.0
    timeout: float = 600.0
    cleanup: bool = False

    def check(self) -> None:
        if self.runs < 1 or self.warmup < 0 or (self.threads is not None and self.threads < 1):
            raise UserError("--runs and --threads must be at least 1, --warmup at least 0.")
        if self.runner not in ("binary", "apk"):
            raise UserError(f"--runner is binary or apk, not {self.runner!r}")
        if self.gpu_precision not in ("fp16", "fp32"):
            raise UserError(f"--gpu-precision is fp16 or fp32, not {self.gpu_precision!r}")

    @property
    def delegates(self) -> tuple[str, ...]:
        names = self.delegate.split(",") if isinstance(self.delegate, str) else self.delegate
        return tuple(d.strip() for d in names if d.strip())


def bench(files: Sequence[PathLike], targets: Sequence[str] = ("host",), *, adb_server: Optional[str] = None,
          options: Optional[BenchOptions] = None, progress: Optional[ProgressCallback] = None,
          **option_values: Any) -> list[Result]:
    """Latency and memory of ``files`` on each target: ``host`` (LiteRT here) or an Android device
    (``adb:SERIAL``, a bare ``SERIAL``, or ``adb://HOST:PORT/SERIAL``). ``adb_server`` (``HOST:PORT``)
    puts the bare and ``adb:`` serials on a remote adb server. Options: :class:`BenchOptions` fields,
    as ``options=`` or keywords (``runs=100``). Host results come first, then device results.
    """
    opts = replace(options or BenchOptions(), **option_values)
    paths = [Path(f) for f in files]
    for f in paths:
        if not f.is_file():
            raise UserError(f"Model {f} does not exist.")
    opts.check()
    devices = [t for t in targets if t != "host"]
    if adb_server:
        devices = [d if d.startswith("adb://") else f"adb://{adb_server}/{d.removeprefix('adb:')}" for d in devices]
    results: list[Result] = []
    if "host" in targets:
        results += _bench_host(paths, opts, progress)
    if devices:
        results += _bench_devices(paths, devices, opts, progress)
    return results


def _bench_host(paths: list[Path], opts: BenchOptions, progress: Optional[ProgressCallback]) -> list[Result]:
    from tflite_deploy.benchmark.host import HostBenchSettings, bench_host
    from tflite_deploy.runtime import check_host_delegate

    delegate = ",".join(opts.delegates) or "xnnpack"
    check_host_delegate(delegate)  # one host delegate: a list is refused here with the choices
    settings = HostBenchSettings(threads=opts.threads or 1, runs=opts.runs, warmup=opts.warmup,
                                 min_seconds=opts.min_seconds, delegate=delegate)
    report(progress, "bench", 0, opts.runs, f"Measuring {len(paths)} model(s), interleaved ...")
    return bench_host(paths, settings, progress=progress)


def _bench_devices(paths: list[Path], devices: list[str], opts: BenchOptions,
                   progress: Optional[ProgressCallback]) -> list[Result]:
    from tflite_deploy.benchmark.device import DeviceBenchSettings, bench_devices

    settings = DeviceBenchSettings(
        delegates=opts.delegates, threads=opts.threads or 4, runs=opts.runs, warmup_runs=opts.warmup,
        min_seconds=opts.min_seconds, gpu_precision=opts.gpu_precision, nnapi_accelerator=opts.nnapi_accelerator,
        op_profiling=opts.op_profiling, pin_big_cores=opts.pin_big_cores, cooldown_seconds=opts.cooldown,
        timeout_seconds=opts.timeout, cleanup=opts.cleanup, runner=opts.runner)
    total = len(paths) * len(devices) * len(settings.delegates)
    done = [0]

    def on_result(r: Result) -> None:
        done[0] += 1
        report(progress, "device", done[0], total, f"{r.target} {r.delegate}: {r.status}", r)

    report(progress, "device", 0, total, "")
    tool = Path(opts.tool) if opts.tool else None
    return [fill_like_host(r) for r in bench_devices(paths, devices, tool, settings, on_result=on_result)]


def fill_like_host(r: Result) -> Result:
    """A device Result with what a host one carries: the recipe and hash of the file measured, and
    ``settings["runs"]`` as the runs measured (the runs asked for stay in ``requested_runs``)."""
    path = Path(r.artifact)
    settings = dict(r.settings)
    if "runs" in settings and "requested_runs" not in settings:
        settings["requested_runs"] = settings["runs"]
        settings["runs"] = r.latency.count if r.latency else 0
    return replace(r, settings=settings, recipe=r.recipe or recipe_name(path),
                   artifact_sha256=r.artifact_sha256 or (sha256_file(path) if path.is_file() else r.artifact_sha256))


def list_devices(adb_server: Optional[str] = None) -> list:
    """Android devices the adb server (the default one, or ``HOST:PORT``) knows, with their facts."""
    from tflite_deploy.adb import AdbServer
    from tflite_deploy.adb import list_devices as adb_list

    server = None
    if adb_server:
        host, _, port = adb_server.rpartition(":")
        if not host or not port.isdigit():
            raise UserError(f"--adb-server takes HOST:PORT, not {adb_server!r}")
        server = AdbServer(host, int(port))
    return adb_list(server)


def parse_logs(logs: Sequence[PathLike], *, delegate: str = "cpu", target: str = "unknown") -> list[Result]:
    """benchmark_model output (or a logcat dump of the benchmark APK) captured elsewhere, as bench Results."""
    from tflite_deploy.benchmark.parse import parse_benchmark_log, to_result

    results = []
    for f in map(Path, logs):
        if not f.is_file():
            raise UserError(f"Log {f} does not exist.")
        log = parse_benchmark_log(f.read_bytes())
        graph = log.params.get("Graph") or str(f)
        threads = log.params.get("Num threads") or log.params.get("#threads used for CPU inference")
        results.append(to_result(log, artifact=graph, target=target, delegate=delegate, runner="log",
                                 settings={"log_file": str(f), "threads": int(threads) if threads and
                                           threads.isdigit() else None}))
    return results


# ---------------------------------------------------------------------------------------- inspect
def inspect_model(model: PathLike) -> "ModelReport":
    """Inputs, outputs, ops, dtypes, quantization and delegate support of a .tflite (no TensorFlow)."""
    from tflite_deploy.inspect import inspect_model as read_report

    return read_report(model)


# --------------------------------------------------------------------------------------- optimize
def optimize(model: Any, technique: str, data: str | Dataset, epochs: int = 2, out: PathLike = "out/optimize", *,
             eval_data: DataSpec = None, preprocess: Optional[Preprocess] = None,
             progress: Optional[ProgressCallback] = None, **options: Any) -> "OptimizeReport":
    """Fine-tune with TF-MOT (qat, prune, cluster, pqat, cqat, pcqat), convert to int8, verify in the file,
    and measure accuracy before/after on ``eval_data`` (default: the ``:test`` split of a ``:train`` spec).
    ``options``: sparsity, schedule, clusters, init, batch_size, learning_rate, skip_unsupported, resume,
    strategy, seed (see :func:`tflite_deploy.optimization.run.optimize`)."""
    from tflite_deploy.optimization.run import optimize as optimize_verb

    from tflite_deploy.datasets import eval_split

    if eval_data is None:
        eval_data = eval_split(data)
    return optimize_verb(model, technique, _dataset(data, preprocess), epochs, out,
                         eval_data=_dataset(eval_data, preprocess), progress=progress, **options)


# ------------------------------------------------------------------------------------------- demo
@dataclass(frozen=True)
class DemoReport:
    model: str
    float_accuracy: float          # Keras model on digits:test, fraction
    artifacts: tuple[Artifact, ...]
    evals: tuple[Result, ...]      # reference first, then one per artifact
    benches: tuple[Result, ...]    # one per artifact


def demo(out: PathLike = "out/demo", epochs: int = 30, *, progress: Optional[ProgressCallback] = None) -> DemoReport:
    """The whole job on bundled data: train a digits CNN, convert with every preset, evaluate, measure."""
    from tflite_deploy.benchmark.host import HostBenchSettings, bench_host
    from tflite_deploy.demo_model import train_demo_model

    report(progress, "train", 0, None, "Training a digits CNN on real handwriting (scikit-learn digits) ...")
    model_path, accuracy = train_demo_model(Path(out), epochs)
    report(progress, "train", 1, 1, f"Trained {model_path}: float test accuracy {accuracy:.1%} on digits:test",
           model_path)
    arts = convert(model_path, list(PRESETS), "digits:train", out, progress=progress)
    paths = [a.path for a in arts]
    report(progress, "evaluate", 0, None, "Evaluating every variant on digits:test ...")
    evals = evaluate(model_path, paths, "digits:test")
    report(progress, "bench", 0, None, "Measuring host latency, interleaved ...")
    benches = bench_host(paths, HostBenchSettings(runs=300, warmup=20, min_seconds=0.5))
    return DemoReport(str(model_path), accuracy, tuple(arts), tuple(evals), tuple(benches))


def as_items(kind: str, value: Any) -> list[Mapping[str, Any]]:
    """The items of a ``--json`` envelope for what an API function returned (see :mod:`envelope`)."""
    if kind == "convert":
        from tflite_deploy.conversion import conversion_table_rows

        return conversion_table_rows(value)
    if kind == "demo":
        rows = as_items("convert", value.artifacts)
        return [{"recipe": a["recipe"], "artifact": a, "eval": e.to_dict(), "bench": b.to_dict()}
                for a, e, b in zip(rows, value.evals[1:], value.benches)]
    raise ValueError(kind)
