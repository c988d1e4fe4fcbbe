"""The public Python API: one function per verb, the same ones the CLI calls.

``tflite_deploy`` re-exports everything here lazily, so ``import tflite_deploy`` stays light; each
function imports the heavy modules (TensorFlow above all) only when it needs them. Every function
takes ``progress``, a callable that receives :class:`~tflite_deploy.progress.ProgressEvent` records.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Optional, Sequence, Union

from tflite_deploy.artifact import Artifact, ConversionFailure
from tflite_deploy.benchmark.options import BenchOptions
from tflite_deploy.benchmark.options import check_threads as _check_threads
from tflite_deploy.errors import Interrupted, UserError
from tflite_deploy.progress import ProgressCallback, ProgressEvent
from tflite_deploy.progress import report as report_progress  # `report` is the HTML report verb here
from tflite_deploy.recipes import PRESETS, OptimizeStep, Recipe, load_recipe_file, resolve
from tflite_deploy.store.recording import Recorder, StoreSpec, open_recorder
from tflite_deploy.result import Result

if TYPE_CHECKING:  # records of the heavier modules (numpy, TensorFlow), for signatures only
    from tflite_deploy.adb import DeviceInfo
    from tflite_deploy.reporting.compare import Comparison
    from tflite_deploy.reporting.render import ReportFiles
    from tflite_deploy.store.query import History
    from tflite_deploy.datasets import Dataset, Preprocess
    from tflite_deploy.evaluation.layer_errors import LayerError
    from tflite_deploy.tflite.records import ModelReport
    from tflite_deploy.optimization.run import OptimizeReport
    from tflite_deploy.autotuning.records import AutotuneResult

PathLike = Union[str, Path]
DataSpec = Union[str, "Dataset", None]

__all__ = ["Artifact", "BenchOptions", "ConversionFailure", "DemoReport", "ProgressEvent", "Recipe", "Result", "autotune",
           "bench", "compare", "convert", "demo", "evaluate", "evaluate_on_device", "history", "inspect_model", "layer_errors", "list_devices",
           "load_recipes", "open_dataset", "optimize", "parse_logs", "preprocess", "report"]


@contextlib.contextmanager
def _recording(store: StoreSpec, tag: Optional[str]) -> Iterator[Optional[Recorder]]:
    """The run a measuring function records into (None without a store); closed however it ends."""
    rec = open_recorder(store, tag)
    try:
        yield rec
    except KeyboardInterrupt as e:  # Ctrl-C: say what is kept (each result was committed as it came)
        if isinstance(e, Interrupted):
            raise
        kept = (f"the {rec.count} result(s) finished before it are kept in {rec.name} (run {rec.run_id})"
                if rec else "nothing was recorded (--no-store)")
        raise Interrupted(f"{kept}; run the command again to measure the rest") from None
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

    return Preprocess.from_settings(size=size, scale=scale, mean=mean, std=std, color=color, layout=layout)


def _dataset(data: DataSpec, preprocess: Optional[Preprocess]) -> DataSpec:
    if isinstance(data, str) and preprocess is not None:
        return open_dataset(data, preprocess)
    return data


# ---------------------------------------------------------------------------------------- convert
def convert(model: Any, recipes: Sequence[str | Recipe] = ("float32", "int8"), data: DataSpec = None,
            out: PathLike = "out", *, recipe_files: Sequence[PathLike] = (), preprocess: Optional[Preprocess] = None,
            input_shape: str | Sequence[int] | None = None, progress: Optional[ProgressCallback] = None,
            store: StoreSpec = None, tag: Optional[str] = None, unsafe_deserialization: bool = False,
            jobs: Optional[int] = None, batch: Optional[int] = None) -> list[Union[Artifact, ConversionFailure]]:
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
    ``batch``: convert a model with a dynamic batch with this static one (Keras/SavedModel); without it
    the batch stays dynamic except where the converter needs a static one (LSTM/GRU loops): then 1.
    """
    chosen = load_recipes(recipes, recipe_files)
    dataset = _dataset(data, preprocess)
    from tflite_deploy.conversion.run import convert as convert_verb
    from tflite_deploy.sources import open_source

    if isinstance(model, (str, Path)):
        report_progress(progress, "load", 0, None, f"Loading {model} ...")
        model = open_source(model, input_shape, dataset, unsafe_deserialization=unsafe_deserialization)
    elif input_shape is not None:
        raise UserError("input_shape applies to an ONNX model given by its path, not to a loaded model.")
    with _recording(store, tag) as rec:
        def on_event(e: ProgressEvent) -> None:
            if rec and isinstance(e.item, Artifact):
                from tflite_deploy.store.recording import conversion_result

                rec.result(conversion_result(e.item))
            elif rec and isinstance(e.item, ConversionFailure):  # a failed recipe is a failed row
                from tflite_deploy.store.recording import conversion_failure_result

                rec.result(conversion_failure_result(e.item, out))
            if progress:
                progress(e)

        return convert_verb(model, chosen, dataset, out, progress=on_event, jobs=jobs, batch=batch)


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


def evaluate_on_device(variant: PathLike, data: DataSpec, devices: Sequence[str], *,
                       delegates: Sequence[str] = ("xnnpack",), samples: int = 100,
                       reference: Optional[PathLike] = None, adb_server: Optional[str] = None,
                       benchmark_binary: Optional[PathLike] = None, threads: Optional[int] = None,
                       min_agreement: float = 0.99, min_sqnr_db: float = 30.0, gpu_precision: str = "fp16",
                       timeout: Optional[float] = None, save_outputs: Optional[PathLike] = None,
                       preprocess: Optional[Preprocess] = None, progress: Optional[ProgressCallback] = None,
                       store: StoreSpec = None, tag: Optional[str] = None, force: bool = False,
                       cache: bool = True) -> list[Result]:
    """Accuracy on the phone: ``variant`` run by each delegate on each device, sample by sample, against the
    same variant on the host (LiteRT) and, when given, the float ``reference``.

    One ``eval`` Result per device x delegate (``target`` ``adb:SERIAL``): max abs error, SQNR, NaN/Inf count
    and top-1 agreement against the host, top-1 accuracy with its 95% interval when the data has labels,
    ``vs_reference`` with a reference, and ``diverged`` (with the reasons in ``divergence`` and the warnings)
    when top-1 agreement is below ``min_agreement`` (a fraction), SQNR below ``min_sqnr_db`` or any value is
    NaN/Inf. A phone or delegate that fails is a failed Result; the others finish. ``save_outputs``: a folder
    that keeps each pulled output file (``SERIAL/DELEGATE.out``: per sample, every output's raw bytes).
    """
    from tflite_deploy.evaluation.device import DeviceEvalOptions, eval_devices

    if not devices:
        raise UserError("Name at least one device (SERIAL, adb:SERIAL or adb://HOST:PORT/SERIAL).", param="devices")
    opts = DeviceEvalOptions(delegates=tuple(delegates.split(",") if isinstance(delegates, str) else delegates),
                             samples=samples, threads=threads, min_agreement=min_agreement, min_sqnr_db=min_sqnr_db,
                             gpu_precision=gpu_precision, timeout=timeout,
                             save_outputs=str(save_outputs) if save_outputs is not None else None)
    opts.check()
    dataset = open_dataset(data, preprocess) if isinstance(data, str) else data
    ref_out = None
    marks: Mapping[str, str] = {}
    if reference is not None:
        from tflite_deploy.evaluation.provenance import check_against_reference
        from tflite_deploy.evaluation.reference import reference_outputs

        marks = check_against_reference(reference, [variant], force)
        ref_out, _ = reference_outputs(reference, dataset, min(samples, len(dataset)), 64, threads, cache=cache)
    if adb_server:
        devices = [d if d.startswith("adb://") else f"adb://{adb_server}/{d.removeprefix('adb:')}" for d in devices]
    import threading

    total = len(devices) * len(opts.delegates)
    finished, counting = [0], threading.Lock()  # one worker thread per phone reports here
    with _recording(store, tag) as rec:
        def done(r: Result) -> Result:  # recorded as each phone x delegate completes
            r = _marked([r], marks)[0]
            with counting:
                finished[0] += 1
                report_progress(progress, "eval on device", finished[0], total, f"{r.target} {r.delegate}")
            return rec.result(r) if rec else r

        report_progress(progress, "eval on device", 0, total, "running the host side")
        return eval_devices(variant, dataset, devices, benchmark_binary, opts, ref_out, on_result=done)


def _marked(results: list[Result], marks: Mapping[str, str]) -> list[Result]:
    """Results of files that ``marks`` names, with that warning added (forced comparisons)."""
    return [replace(r, warnings=r.warnings + (marks[str(Path(r.artifact))],)) if str(Path(r.artifact)) in marks
            else r for r in results]


def layer_errors(variants: Sequence[PathLike], data: DataSpec, *, preprocess: Optional[Preprocess] = None,
                 progress: Optional[ProgressCallback] = None) -> dict[str, list["LayerError"]]:
    """Per-layer quantization error (worst first) of each full-integer int8 variant that has a sidecar."""
    from tflite_deploy.evaluation.layer_errors import int8_layer_errors

    return int8_layer_errors(variants, open_dataset(data, preprocess) if isinstance(data, str) else data, progress)


# ------------------------------------------------------------------------------------------ bench
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

    from tflite_deploy.benchmark.repeat import bench_devices_repeated, bench_host_repeated

    marks = check_same_source(paths, force)
    devices = [t for t in targets if t != "host"]
    opts.check(on_device=bool(devices))
    onnx_files = [str(f) for f in paths if f.suffix.lower() == ".onnx"]
    if devices and onnx_files:  # ONNX Runtime runs here only; phones run .tflite
        raise UserError(f"{', '.join(onnx_files)}: .onnx files are measured on this machine with ONNX Runtime; "
                        "devices run .tflite files. Measure them on the host target only, or leave out the .onnx.")
    if adb_server:
        devices = [d if d.startswith("adb://") else f"adb://{adb_server}/{d.removeprefix('adb:')}" for d in devices]
    results: list[Result] = []
    with _recording(store, tag) as rec:
        def done(r: Result) -> Result:
            r = _marked([r], marks)[0]
            return rec.result(r) if rec else r

        if "host" in targets:
            results += bench_host_repeated(paths, opts.for_host(), opts.repeat, progress,
                                           done if opts.measure == "time" else _instructions(done))
        if devices:
            results += bench_devices_repeated(paths, devices, Path(opts.tool) if opts.tool else None,
                                              opts.for_device(), opts.repeat, progress, done)
    return results


def _instructions(done: Any) -> Any:
    """``done`` for host results that also carry instructions per invoke (benchmark/instructions.py)."""
    def counted(r: Result) -> Result:
        from tflite_deploy.benchmark.instructions import with_instructions

        return done(with_instructions(r))
    return counted


def list_devices(adb_server: Optional[str] = None) -> list["DeviceInfo"]:
    """Android devices the adb server (the default one, or ``HOST:PORT``) knows, with their facts."""
    from tflite_deploy.adb import AdbServer
    from tflite_deploy.adb import list_devices as adb_list

    server = None
    if adb_server:
        host, _, port = adb_server.rpartition(":")
        if not host or not port.isdigit():
            raise UserError(f"adb_server takes HOST:PORT, not {adb_server!r}.", param="adb_server")
        server = AdbServer(host, int(port))
    return adb_list(server)


def parse_logs(logs: Sequence[PathLike], *, delegate: str = "cpu", target: str = "unknown",
               store: StoreSpec = None, tag: Optional[str] = None) -> list[Result]:
    """benchmark_model output (or a logcat dump of the benchmark APK) captured elsewhere, as bench Results."""
    from tflite_deploy.benchmark.parse import read_log_files

    results = read_log_files(logs, delegate=delegate, target=target)
    with _recording(store, tag) as rec:  # every log is read first: a bad one records nothing
        return [rec.result(r) for r in results] if rec else results


# ---------------------------------------------------------------------------------------- compare
def compare(base: str, new: str = "latest", *, store: StoreSpec = True, min_effect: float = 0.05,
            confirm: Union[bool, str] = "suspects", repeat: int = 10, tool: Optional[PathLike] = None,
            cooldown: float = 0.0, progress: Optional[ProgressCallback] = None) -> "Comparison":
    """Compare two stored runs (ids, tags, ``latest``, ``latest~1``) cell by cell with a noise-aware verdict.

    An unconfirmed "slower" is a suspect (:mod:`~tflite_deploy.reporting.suspects`). ``confirm``:
    ``"suspects"`` (default) re-measures the suspects, ``True`` every host cell, ``False`` none; each
    re-measured cell's recorded bytes (kept by content in the store) are measured again, base and new
    alternating ``repeat`` times in this one process, and judged on those pairs alone
    (:func:`~tflite_deploy.reporting.verdict.paired_verdict`: drift between the runs cancels). A device
    cell is re-measured on its phone and delegate (``tool``: the benchmark_model binary, None to fetch
    the official one; ``cooldown`` seconds between runs). Returns a :class:`tflite_deploy.reporting.compare.Comparison`.
    """
    from tflite_deploy.reporting.compare import compare_runs
    from tflite_deploy.store import open_store

    if not 0 <= min_effect < 1:
        raise UserError(f"min_effect={min_effect} must be a fraction between 0 and 1 (0.05 = 5%).", param="min_effect")
    if confirm not in (True, False, "suspects"):
        raise UserError(f"confirm={confirm!r}: True (every cell), False (none) or 'suspects'.", param="confirm")
    if cooldown < 0:
        raise UserError(f"cooldown={cooldown:g}: seconds between device runs, 0 or more.", param="cooldown")
    with open_store(None if store is True else store, create=False) as st:
        cmp = compare_runs(st, base, new, min_effect=min_effect)
    try:
        return _confirm(cmp, repeat, progress, every_cell=confirm is True, tool=tool,
                        cooldown=cooldown) if confirm else cmp
    except KeyboardInterrupt:
        raise Interrupted("the stored runs are unchanged (a re-measurement keeps nothing); run it again, or with "
                          "--no-confirm for the verdict on the stored numbers") from None


def _confirm(cmp: "Comparison", repeat: int, progress: Optional[ProgressCallback], every_cell: bool = False,
             tool: Optional[PathLike] = None, cooldown: float = 0.0) -> "Comparison":
    """Suspects (or every cell) re-measured in interleaved pairs of their recorded bytes."""
    import functools

    from tflite_deploy.benchmark.paired import measure_pairs
    from tflite_deploy.reporting.suspects import confirm

    measure = functools.partial(measure_pairs, tool=Path(tool) if tool else None, cooldown=cooldown)
    return confirm(cmp, measure, repeat=repeat, every_cell=every_cell, progress=progress)


# ---------------------------------------------------------------------------------------- history
def history(store: StoreSpec = True, *, model: Optional[str] = None, recipe: Optional[str] = None,
            target: Optional[str] = None, delegate: Optional[str] = None, tag: Optional[str] = None,
            kind: Optional[str] = None, run: Optional[str] = None, since: Optional[str] = None,
            until: Optional[str] = None, limit: Optional[int] = None, runs_only: bool = False,
            with_results: bool = False) -> "History":
    """Results in the store (``store``: a path, a database URL, or True for the default one), oldest
    first, filtered by model, recipe, target, delegate, tag, kind (bench or eval), ``run`` (an id, a tag
    or ``latest``) and time (``since``/``until``: ``2026-11-02``, an ISO time, or ``7d`` / ``12h`` ago);
    at most ``limit`` rows. ``runs_only``: the runs (filtered by ``tag``) instead of their results.
    ``with_results``: also the rows' :class:`Result` records (reads each stored document).
    Returns a :class:`tflite_deploy.store.query.History`."""
    from tflite_deploy.store import open_store
    from tflite_deploy.store.query import read_history

    with open_store(None if store is True else store, create=False) as st:
        return read_history(st, model=model, recipe=recipe, target=target, delegate=delegate, tag=tag, kind=kind,
                            run=run, since=since, until=until, limit=limit, runs_only=runs_only,
                            with_results=with_results)


# ----------------------------------------------------------------------------------------- report
def report(runs: Sequence[str] = ("latest",), out: PathLike = "report.html", *, markdown: Optional[PathLike] = None,
           store: StoreSpec = True, min_effect: float = 0.05) -> "ReportFiles":
    """An HTML report of stored runs (ids, tags, ``latest``): tables, plots and, with two or more runs,
    the first compared with the last. Writes ``out`` (self-contained, opens offline) and, with
    ``markdown`` (a folder), report.md and PNG plots for a pull request. Returns the files written
    (:class:`tflite_deploy.reporting.render.ReportFiles`)."""
    from tflite_deploy.reporting.build import build_report
    from tflite_deploy.reporting.render import check_html_name, write_report
    from tflite_deploy.store import open_store

    check_html_name(Path(out))
    with open_store(None if store is True else store, create=False) as st:
        rep = build_report(st, list(runs) or ["latest"], min_effect=min_effect)
    return write_report(rep, Path(out), Path(markdown) if markdown is not None else None)


# ---------------------------------------------------------------------------------------- inspect
def inspect_model(model: PathLike) -> "ModelReport":
    """Inputs, outputs, ops, dtypes, quantization and delegate support of a .tflite (no TensorFlow)."""
    from tflite_deploy.tflite.reader import inspect_model as read_report

    return read_report(model)


# --------------------------------------------------------------------------------------- optimize
def optimize(model: Any, step: OptimizeStep, data: str | Dataset, out: PathLike = "out/optimize", *,
             eval_data: DataSpec = None, preprocess: Optional[Preprocess] = None,
             progress: Optional[ProgressCallback] = None, unsafe_deserialization: bool = False,
             **options: Any) -> "OptimizeReport":
    """Fine-tune with TF-MOT (``step``: the technique, qat, prune, cluster, pqat, cqat or pcqat, and its
    settings), convert to int8, verify in the file, and measure accuracy before/after on ``eval_data``
    (default: the ``:test`` split of a ``:train`` spec). ``options``: skip_unsupported, resume,
    strategy, seed (see :func:`tflite_deploy.optimization.run.optimize`). ``unsafe_deserialization``:
    load Lambda layers (runs the Python code stored in the file)."""
    from tflite_deploy.optimization.run import optimize as optimize_verb

    if unsafe_deserialization and isinstance(model, (str, Path)):
        from tflite_deploy.sources.keras import load_model

        model = load_model(model, unsafe_deserialization=True)

    from tflite_deploy.datasets import eval_split

    if eval_data is None:
        eval_data = eval_split(data)
    return optimize_verb(model, step, _dataset(data, preprocess), out,
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
    from tflite_deploy.benchmark.host import bench_host
    from tflite_deploy.sources.demo import train_demo_model

    report_progress(progress, "train", 0, None, "Training a digits CNN on real handwriting (scikit-learn digits) ...")
    model_path, accuracy = train_demo_model(Path(out), epochs)
    report_progress(progress, "train", 1, 1, f"Trained {model_path}: float test accuracy {accuracy:.1%} on digits:test",
           model_path)
    arts = convert(model_path, list(PRESETS), "digits:train", out, progress=progress)
    paths = [a.path for a in arts]
    report_progress(progress, "evaluate", 0, None, "Evaluating every variant on digits:test ...")
    evals = evaluate(model_path, paths, "digits:test")
    report_progress(progress, "bench", 0, None, "Measuring host latency, interleaved ...")
    benches = bench_host(paths, BenchOptions(runs=300, warmup=20, min_seconds=0.5))
    return DemoReport(str(model_path), accuracy, tuple(arts), tuple(evals), tuple(benches))


# --------------------------------------------------------------------------------------- autotune
def autotune(model: Any, data: DataSpec, max_drop: float, out: PathLike = "out/autotune", *,
             calibration: DataSpec = None, objective: str = "size", recipes: Optional[Sequence[str | Recipe]] = None,
             recipe_files: Sequence[PathLike] = (), max_trials: Optional[int] = None,
             time_budget: Optional[float] = None, limit: Optional[int] = None, target: str = "host",
             adb_server: Optional[str] = None, benchmark_binary: Optional[PathLike] = None,
             preprocess: Optional[Preprocess] = None, progress: Optional[ProgressCallback] = None,
             store: StoreSpec = None, tag: Optional[str] = None, unsafe_deserialization: bool = False,
             resume: Optional[bool] = None, allow_training: bool = False, train_epochs: int = 2
             ) -> "AutotuneResult":
    """The smallest (``objective="size"``) or fastest (``"latency"``) variant whose top-1 drop's upper 95%
    end is within ``max_drop`` points, judged on ``data``'s held-out split (``digits`` judges on
    ``digits:test`` and calibrates on ``digits:train``; ``calibration=`` names another source).

    Tries the plain ``recipes`` (default: int8 per-channel and per-tensor, int16x8, float16, dynamic),
    then, if no int8 one meets the budget, keeps the fewest most sensitive layers float (one calibration,
    bisection over the ranking; ``max_trials``/``time_budget`` bound it). Survivors are timed on ``target``
    (``host`` or a device serial, run by ``benchmark_binary`` as ``bench`` does). Writes
    ``MODEL.autotune.tflite`` (+ sidecar), ``autotune.yaml`` (remade by ``convert -f autotune.yaml -r
    autotune``) and ``autotune.json`` into ``out``; every trial goes into the
    store (``store=``). Returns an :class:`~tflite_deploy.autotuning.records.AutotuneResult` (``chosen`` None
    when nothing met the budget; ``closest`` then says how near the candidates came).

    ``allow_training``: when no int8 PTQ candidate meets the budget, one QAT trial (``train_epochs`` on the
    calibration split; Keras classifiers) from the best of them, judged the same way.

    Resume: every judged trial is logged in ``out`` (``autotune-trials.jsonl``) as it finishes; a later
    run into the same ``out`` reuses those of the same model, data and tool versions instead of making
    them again (``resume=None``; ``True`` refuses when there is nothing to reuse, ``False`` starts afresh).
    """
    from tflite_deploy.autotuning.run import PLAIN_RECIPES, autotune as autotune_verb, check_options, data_roles
    from tflite_deploy.sources import open_source

    check_options(max_drop, objective, max_trials, time_budget, train_epochs)
    plain = list(PLAIN_RECIPES) if recipes is None else load_recipes(recipes, recipe_files)
    if not plain:
        raise UserError("recipes= (--recipe) is empty: give at least one plain candidate, or leave it out.")
    eval_ds, cal_ds = data_roles(data, calibration, preprocess)
    if isinstance(model, (str, Path)):
        report_progress(progress, "load", 0, None, f"Loading {model} ...")
        model = open_source(model, None, cal_ds, unsafe_deserialization=unsafe_deserialization)
    if model.framework in ("tflite", "onnx"):
        raise UserError(f"autotune searches with the TF converter's QuantizationDebugger: give the Keras or "
                        f"SavedModel source, not {model.path} ({model.framework}).")
    with _recording(store, tag) as rec:
        def on_trial(trial: Any, task: str) -> None:
            if rec:
                from tflite_deploy.autotuning.records import trial_result

                rec.result(trial_result(trial, model.name, max_drop, task))

        def measure(paths: list[Path]) -> list[Result]:  # the survivors' latency, recorded under the same run
            results = bench(paths, [target], adb_server=adb_server, runs=30, warmup=3, min_seconds=0.3,
                            tool=benchmark_binary)
            return [rec.result(r) for r in results] if rec else results

        result = autotune_verb(model, eval_ds, cal_ds, max_drop, out, objective=objective, recipes=plain,
                               max_trials=max_trials, time_budget=time_budget, limit=limit, measure=measure,
                               target=target, on_trial=on_trial, progress=progress, resume=resume,
                               allow_training=allow_training, train_epochs=train_epochs)
        if rec and result.artifact:
            from tflite_deploy.autotuning.records import chosen_result

            rec.result(chosen_result(result))
    return result
