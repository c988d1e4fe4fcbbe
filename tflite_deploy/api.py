"""The public Python API: one function per verb, the same ones the CLI calls.

``tflite_deploy`` re-exports everything here lazily, so ``import tflite_deploy`` stays light; each
function imports the heavy modules (TensorFlow above all) only when it needs them. Every function
takes ``progress``, a callable that receives :class:`~tflite_deploy.progress.ProgressEvent` records.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Optional, Sequence, Union

from tflite_deploy.artifact import Artifact, ConversionFailure, recipe_name
from tflite_deploy.errors import UserError
from tflite_deploy.hashing import sha256_file
from tflite_deploy.progress import ProgressCallback, ProgressEvent, report
from tflite_deploy.recipes import PRESETS, Recipe, load_recipe_file, resolve
from tflite_deploy.store.recording import Recorder, StoreSpec, open_recorder
from tflite_deploy.result import Result

if TYPE_CHECKING:  # records of the heavier modules (numpy, TensorFlow), for signatures only
    from tflite_deploy.datasets import Dataset, Preprocess
    from tflite_deploy.evaluation.layer_errors import LayerError
    from tflite_deploy.tflite.records import ModelReport
    from tflite_deploy.optimization.run import OptimizeReport

PathLike = Union[str, Path]
DataSpec = Union[str, "Dataset", None]

__all__ = ["Artifact", "ConversionFailure", "DemoReport", "ProgressEvent", "Recipe", "Result", "bench", "compare",
           "convert", "demo", "evaluate", "inspect_model", "layer_errors", "list_devices", "load_recipes",
           "open_dataset", "optimize",
           "parse_logs"]


@contextlib.contextmanager
def _recording(store: StoreSpec, tag: Optional[str]) -> Iterator[Optional[Recorder]]:
    """The run a measuring function records into (None without a store); closed however it ends."""
    rec = open_recorder(store, tag)
    try:
        yield rec
    finally:
        if rec:
            rec.close()


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
            input_shape: str | Sequence[int] | None = None, progress: Optional[ProgressCallback] = None,
            store: StoreSpec = None, tag: Optional[str] = None, unsafe_deserialization: bool = False,
            jobs: Optional[int] = None) -> list[Union[Artifact, ConversionFailure]]:
    """Convert ``model`` (a .keras/.h5 path, a SavedModel folder, a float .tflite, an .onnx, or a loaded
    SourceModel) with each recipe.

    Writes ``NAME.RECIPE.tflite`` and a sidecar JSON per recipe into ``out``; returns per recipe an
    Artifact or, for a recipe that failed (the others are still made), a ConversionFailure (``.failed``).
    ``jobs``: recipes converted at a time, each in its own worker process (default: by cores and memory).
    ``data`` (``digits:train``, an image folder, a .npz, or a Dataset) calibrates int8/int16x8 recipes.
    A float .tflite is quantized by the AI Edge Quantizer; an .onnx is converted by onnx2tf first, and
    ``input_shape`` (``(1, 3, 224, 224)`` or ``"1,3,224,224"``) fixes its dynamic dimensions.
    ``store`` (a path, a database URL, or True for the default store) records each artifact as it is written.
    ``unsafe_deserialization``: load Lambda layers (runs the Python code stored in the file).
    ``jobs``: recipes converted at a time, each in its own worker process (a failed recipe is a
    :class:`ConversionFailure` in the list, the others are written).
    """
    chosen = load_recipes(recipes, recipe_files)
    dataset = _dataset(data, preprocess)
    from tflite_deploy.conversion.run import convert as convert_verb
    from tflite_deploy.sources import open_source

    if isinstance(model, (str, Path)):
        report(progress, "load", 0, None, f"Loading {model} ...")
        model = open_source(model, input_shape, dataset, unsafe_deserialization=unsafe_deserialization)
    elif input_shape is not None:
        raise UserError("input_shape applies to an ONNX model given by its path, not to a loaded model.")
    with _recording(store, tag) as rec:
        def on_event(e: ProgressEvent) -> None:
            if rec and isinstance(e.item, Artifact):
                from tflite_deploy.store.recording import conversion_result

                rec.result(conversion_result(e.item))
            if progress:
                progress(e)

        return convert_verb(model, chosen, dataset, out, progress=on_event, jobs=jobs)


# --------------------------------------------------------------------------------------- evaluate
def evaluate(reference: PathLike, variants: Sequence[PathLike], data: DataSpec, *, limit: Optional[int] = None,
             top_k: int = 5, threads: Optional[int] = None, preprocess: Optional[Preprocess] = None,
             progress: Optional[ProgressCallback] = None, store: StoreSpec = None, tag: Optional[str] = None,
             force: bool = False, task: str = "auto", cache: bool = True) -> list[Result]:
    """Accuracy and output agreement of each variant against the float reference, on the same samples.

    ``task``: ``auto`` (from the targets: whole-number labels classify, floats regress, none: agreement
    only), or ``classification``, ``regression``, ``agreement``. ``cache``: reuse the reference's outputs
    computed by an earlier evaluation on the same data (keyed by the file's and the data's hashes).

    Returns one ``eval`` Result for the reference, then one per variant (with the paired drop and its 95% CI).
    A variant whose sidecar names another source model than the reference is refused
    (:class:`SourceMismatchError`); ``force=True`` measures it with a warning on its row.
    """
    if not variants:
        raise UserError("Give the float reference and at least one .tflite variant to compare with it.")
    _check_threads(threads)
    from tflite_deploy.evaluation.run import evaluate as evaluate_verb
    from tflite_deploy.evaluation.provenance import check_against_reference

    marks = check_against_reference(reference, variants, force)
    dataset = open_dataset(data, preprocess) if isinstance(data, str) else data
    with _recording(store, tag) as rec:  # the paired drops need every variant: results complete together
        results = _marked(evaluate_verb(reference, list(variants), dataset, limit=limit, top_k=top_k,
                                        threads=threads, task=task, cache=cache, progress=progress), marks)
        return [rec.result(r) for r in results] if rec else results


def _marked(results: list[Result], marks: Mapping[str, str]) -> list[Result]:
    """Results of files that ``marks`` names, with that warning added (forced comparisons)."""
    return [replace(r, warnings=r.warnings + (marks[str(Path(r.artifact))],)) if str(Path(r.artifact)) in marks
            else r for r in results]


def layer_errors(variants: Sequence[PathLike], data: DataSpec, *, preprocess: Optional[Preprocess] = None,
                 progress: Optional[ProgressCallback] = None) -> dict[str, list["LayerError"]]:
    """Per-layer quantization error (worst first) of each full-integer int8 variant that has a sidecar."""
    from tflite_deploy.artifact import read_sidecar
    from tflite_deploy.evaluation.layer_errors import per_layer_errors

    dataset = open_dataset(data, preprocess) if isinstance(data, str) else data
    chosen = [str(v) for v in variants if (read_sidecar(Path(v)) or {}).get("recipe", {}).get("activations") == "int8"]
    out = {}
    for i, v in enumerate(chosen):
        report(progress, "per-layer", i, len(chosen), f"Per-layer error of {Path(v).name} ...")
        out[v] = per_layer_errors(v, dataset)
    return out


def _check_threads(threads: Optional[int]) -> None:
    """A bad thread count is the option's fault: say so before any model is opened."""
    if threads is not None and threads < 1:
        raise UserError(f"--threads (threads=) must be 1 or more, not {threads}: it is how many CPU threads the "
                        "interpreter uses; leave it out for the default.")


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
    runner: Optional[str] = None           # device: binary (default) or apk; host: auto (default), compiled, interpreter
    tool: Optional[PathLike] = None        # benchmark_model binary, or the APK with runner="apk"
    runtime: str = "auto"                  # device benchmark_model: litert, tflite or auto (see benchmark.flags)
    model_cache: bool = True               # LiteRT on a device: cold and warm init
    npu_dispatch_lib: Optional[PathLike] = None      # delegate npu: the vendor's dispatch library
    npu_compiler_plugin: Optional[PathLike] = None   # delegate npu: the vendor's compiler plugin
    gpu_precision: str = "fp16"
    nnapi_accelerator: Optional[str] = None
    op_profiling: bool = False
    pin_big_cores: bool = False
    cooldown: float = 0.0
    timeout: Optional[float] = None        # one device run; None: from its bounds (benchmark.flags.run_timeout)
    cleanup: bool = False
    repeat: int = 1                        # independent measurements per file (fresh interpreter / run)
    data: Optional[str] = None             # inputs from this dataset's first sample(s); else valid random values

    def check(self, on_device: bool = True) -> None:
        _check_threads(self.threads)
        if self.runs < 1:
            raise UserError(f"--runs must be at least 1, not {self.runs}.")
        if self.warmup < 0:
            raise UserError(f"--warmup must be at least 0, not {self.warmup}.")
        if self.repeat < 1:
            raise UserError(f"--repeat is how many independent measurements per file: at least 1, not {self.repeat}.")
        if self.timeout is not None and self.timeout <= 0:
            raise UserError(f"--timeout is a positive number of seconds, not {self.timeout:g}.")
        if on_device and self.runner not in (None, "binary", "apk"):
            raise UserError(f"--runner on a device is binary or apk, not {self.runner!r}")
        if self.gpu_precision not in ("fp16", "fp32"):
            raise UserError(f"--gpu-precision is fp16 or fp32, not {self.gpu_precision!r}")

    @property
    def delegates(self) -> tuple[str, ...]:
        names = self.delegate.split(",") if isinstance(self.delegate, str) else self.delegate
        return tuple(d.strip() for d in names if d.strip())


def bench(files: Sequence[PathLike], targets: Sequence[str] = ("host",), *, adb_server: Optional[str] = None,
          options: Optional[BenchOptions] = None, progress: Optional[ProgressCallback] = None,
          store: StoreSpec = None, tag: Optional[str] = None, force: bool = False, **option_values: Any
          ) -> list[Result]:
    """Latency and memory of ``files`` on each target: ``host`` (LiteRT here; ONNX Runtime for .onnx files)
    or an Android device (``adb:SERIAL``, a bare ``SERIAL``, or ``adb://HOST:PORT/SERIAL``). ``adb_server`` (``HOST:PORT``)
    puts the bare and ``adb:`` serials on a remote adb server. Options: :class:`BenchOptions` fields,
    as ``options=`` or keywords (``runs=100``). Host results come first, then device results.
    Files whose sidecars name different source models are refused; ``force=True`` marks their rows.

    ``repeat=K`` measures each file K times independently (host: a fresh interpreter each time; device:
    K benchmark_model runs, ``cooldown`` seconds apart) and folds them with ``merge_repeats``: the
    per-repeat medians are what ``compare`` judges. ``store`` records each result as it completes.
    """
    opts = replace(options or BenchOptions(), **option_values)
    paths = [Path(f) for f in files]
    for f in paths:
        if f.is_dir():
            empty = not any(f.iterdir())
            raise UserError(f"Model {f} is a folder{' and it is empty' if empty else ''}: bench measures .tflite "
                            f"files; give them one by one (e.g. {f}/*.tflite).")
        if not f.is_file():
            raise UserError(f"Model {f} does not exist.")
    from tflite_deploy.evaluation.provenance import check_same_source

    marks = check_same_source(paths, force)
    devices = [t for t in targets if t != "host"]
    opts.check(on_device=bool(devices))
    onnx_files = [str(f) for f in paths if f.suffix.lower() == ".onnx"]
    if devices and onnx_files:  # ONNX Runtime runs here only; phones run .tflite
        raise UserError(f"{', '.join(onnx_files)}: .onnx files are measured on this machine with ONNX Runtime; "
                        "devices run .tflite files. Leave out --device, or the .onnx.")
    if adb_server:
        devices = [d if d.startswith("adb://") else f"adb://{adb_server}/{d.removeprefix('adb:')}" for d in devices]
    results: list[Result] = []
    with _recording(store, tag) as rec:
        def done(r: Result) -> Result:
            r = _marked([r], marks)[0]
            return rec.result(r) if rec else r

        if "host" in targets:
            results += _bench_host(paths, opts, progress, done)
        if devices:
            results += _bench_devices(paths, devices, opts, progress, done)
    return results


def _bench_host(paths: list[Path], opts: BenchOptions, progress: Optional[ProgressCallback],
                done: Any) -> list[Result]:
    from tflite_deploy.benchmark.host import HostBenchSettings, bench_host
    from tflite_deploy.benchmark.repeat import merge_repeats
    from tflite_deploy.tflite.runtime import check_host_delegate

    delegate = ",".join(opts.delegates) or "xnnpack"
    check_host_delegate(delegate)  # one host delegate: a list is refused here with the choices
    settings = HostBenchSettings(threads=opts.threads or 1, runs=opts.runs, warmup=opts.warmup,
                                 min_seconds=opts.min_seconds, delegate=delegate, runner=opts.runner or "auto")
    if opts.repeat == 1:  # one pass, the files interleaved: they finish together
        report(progress, "bench", 0, opts.runs, f"Measuring {len(paths)} model(s), interleaved ...")
        return [done(r) for r in bench_host(paths, settings, progress=progress, data=opts.data)]
    out = []
    for i, p in enumerate(paths):  # file by file, so each is recorded as soon as its K repeats are in
        reps = []
        for k in range(opts.repeat):
            report(progress, "bench", i * opts.repeat + k, len(paths) * opts.repeat, f"{p.name}: repeat {k + 1}")
            reps += bench_host([p], settings, data=opts.data)  # a fresh interpreter instance each time
        out.append(done(merge_repeats(reps)))
    report(progress, "bench", len(paths) * opts.repeat, len(paths) * opts.repeat, "")
    return out


def _bench_devices(paths: list[Path], devices: list[str], opts: BenchOptions,
                   progress: Optional[ProgressCallback], done: Any) -> list[Result]:
    from tflite_deploy.benchmark.device import DeviceBenchSettings, bench_devices
    from tflite_deploy.benchmark.repeat import merge_repeats

    settings = DeviceBenchSettings(
        delegates=opts.delegates, threads=opts.threads or 4, runs=opts.runs, warmup_runs=opts.warmup,
        min_seconds=opts.min_seconds, gpu_precision=opts.gpu_precision, nnapi_accelerator=opts.nnapi_accelerator,
        op_profiling=opts.op_profiling, pin_big_cores=opts.pin_big_cores, cooldown_seconds=opts.cooldown,
        timeout_seconds=opts.timeout, cleanup=opts.cleanup, runner=opts.runner or "binary", runtime=opts.runtime,
        model_cache=opts.model_cache, input_data=opts.data, npu_dispatch_lib=str(opts.npu_dispatch_lib) if opts.npu_dispatch_lib else None,
        npu_compiler_plugin=str(opts.npu_compiler_plugin) if opts.npu_compiler_plugin else None)
    total = len(paths) * len(devices) * len(settings.delegates) * opts.repeat
    count = [0]

    def on_result(r: Result) -> None:
        count[0] += 1
        report(progress, "device", count[0], total, f"{r.target} {r.delegate}: {r.status}", r)
        if opts.repeat == 1:
            done(fill_like_host(r))

    report(progress, "device", 0, total, "")
    tool = Path(opts.tool) if opts.tool else None
    if opts.repeat == 1:
        return [fill_like_host(r) for r in bench_devices(paths, devices, tool, settings, on_result=on_result)]
    out = []
    for p in paths:  # file by file: K runs of it on every device and delegate, then one merged Result each
        cells: dict[tuple, list[Result]] = {}
        for k in range(opts.repeat):
            if k and opts.cooldown:
                time.sleep(opts.cooldown)  # the same rest bench_devices takes between its own runs
            for r in bench_devices([p], devices, tool, settings, on_result=on_result):
                cells.setdefault((r.target, r.delegate), []).append(r)
        out += [done(fill_like_host(merge_repeats(reps))) for reps in cells.values()]
    return out


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


def parse_logs(logs: Sequence[PathLike], *, delegate: str = "cpu", target: str = "unknown",
               store: StoreSpec = None, tag: Optional[str] = None) -> list[Result]:
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
    with _recording(store, tag) as rec:  # every log is read first: a bad one records nothing
        return [rec.result(r) for r in results] if rec else results


# ---------------------------------------------------------------------------------------- compare
def compare(base: str, new: str = "latest", *, store: StoreSpec = True, min_effect: float = 0.05,
            confirm: bool = False, repeat: int = 10, progress: Optional[ProgressCallback] = None) -> Any:
    """Compare two stored runs (ids, tags, ``latest``, ``latest~1``) cell by cell with a noise-aware verdict.

    ``confirm``: every host cell measured on both sides whose two artifacts are still on disk is measured
    again, base and new alternating ``repeat`` times in this one process, and judged on those pairs alone
    (:func:`~tflite_deploy.reporting.verdict.paired_verdict`: no between-process noise, drift cancelled).
    Returns a :class:`tflite_deploy.reporting.compare.Comparison`.
    """
    from tflite_deploy.reporting.compare import compare_runs
    from tflite_deploy.store import open_store

    if not 0 <= min_effect < 1:
        raise UserError(f"--min-effect {min_effect} must be a fraction between 0 and 1 (0.05 = 5%).")
    with open_store(None if store is True else store, create=False) as st:
        cmp = compare_runs(st, base, new, min_effect=min_effect)
    return _confirm(cmp, max(repeat, 3), progress) if confirm else cmp


def _confirm(cmp: Any, repeat: int, progress: Optional[ProgressCallback]) -> Any:
    from tflite_deploy.benchmark.host import HostBenchSettings, bench_host
    from tflite_deploy.reporting.verdict import NOT_COMPARABLE, paired_verdict

    def on_disk(cell: Any, run: dict) -> Optional[Path]:
        p = Path(cell.artifact or "")
        p = p if p.is_absolute() else Path(run.get("cwd") or ".") / p
        return p if cell.artifact and p.is_file() else None

    def settings(cell: Any, delegate: str) -> HostBenchSettings:
        s = cell.settings
        return HostBenchSettings(threads=s.get("threads") or 1, runs=min(s.get("runs") or 50, 50),
                                 warmup=s.get("warmup") or 5, min_seconds=0.2, delegate=delegate)

    todo = [c for c in cmp.cells if c.status == "compared" and c.latency.verdict != NOT_COMPARABLE
            and c.key[2] == "host" and on_disk(c.base, cmp.base_run) and on_disk(c.new, cmp.new_run)]
    for i, c in enumerate(todo):
        report(progress, "confirm", i, len(todo), f"Re-measuring {c.key[0]} base and new, interleaved ...")
        sides = [(on_disk(c.base, cmp.base_run), settings(c.base, c.key[3])),
                 (on_disk(c.new, cmp.new_run), settings(c.new, c.key[3]))]
        medians: list[list[float]] = [[], []]
        for k in range(repeat):  # base, new, base, new ...: drift hits both sides alike
            for side, (path, s) in enumerate(sides if k % 2 == 0 else sides[::-1]):
                r = bench_host([path], s)[0]
                medians[side if k % 2 == 0 else 1 - side].append(r.latency.p50_ms if r.latency else None)
        v = paired_verdict(medians[0], medians[1], min_effect=cmp.min_effect)
        c.latency = replace(v, basis=f"confirmed in one process: {v.basis}")
        cmp.confirmed.append(c.key)
    report(progress, "confirm", len(todo), len(todo), "")
    return cmp


# ---------------------------------------------------------------------------------------- inspect
def inspect_model(model: PathLike) -> "ModelReport":
    """Inputs, outputs, ops, dtypes, quantization and delegate support of a .tflite (no TensorFlow)."""
    from tflite_deploy.tflite.reader import inspect_model as read_report

    return read_report(model)


# --------------------------------------------------------------------------------------- optimize
def optimize(model: Any, technique: str, data: str | Dataset, epochs: int = 2, out: PathLike = "out/optimize", *,
             eval_data: DataSpec = None, preprocess: Optional[Preprocess] = None,
             progress: Optional[ProgressCallback] = None, unsafe_deserialization: bool = False,
             **options: Any) -> "OptimizeReport":
    """Fine-tune with TF-MOT (qat, prune, cluster, pqat, cqat, pcqat), convert to int8, verify in the file,
    and measure accuracy before/after on ``eval_data`` (default: the ``:test`` split of a ``:train`` spec).
    ``options``: sparsity, schedule, clusters, init, batch_size, learning_rate, skip_unsupported, resume,
    strategy, seed (see :func:`tflite_deploy.optimization.run.optimize`). ``unsafe_deserialization``:
    load Lambda layers (runs the Python code stored in the file)."""
    from tflite_deploy.optimization.run import optimize as optimize_verb

    if unsafe_deserialization and isinstance(model, (str, Path)):
        from tflite_deploy.sources.keras import load_model

        model = load_model(model, unsafe_deserialization=True)

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
    from tflite_deploy.sources.demo import train_demo_model

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
        from tflite_deploy.conversion.run import conversion_table_rows

        return conversion_table_rows(value)
    if kind == "demo":
        rows = as_items("convert", value.artifacts)
        return [{"recipe": a["recipe"], "artifact": a, "eval": e.to_dict(), "bench": b.to_dict()}
                for a, e, b in zip(rows, value.evals[1:], value.benches)]
    raise ValueError(kind)
