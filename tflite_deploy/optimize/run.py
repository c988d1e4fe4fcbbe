"""``optimize()``: wrap, fine-tune, strip, convert, verify in the file, evaluate — one call.

::

    report = optimize("model.keras", "prune", "digits:train", epochs=2, out_dir="out/prune",
                      sparsity=0.75)
    report.sparsity            # measured in the int8 .tflite, over the pruned kernels
    report.accuracy            # float before, PTQ int8, optimized int8 (and float) after, with CIs

Training
    Each stage of the technique (see :mod:`techniques`) is built and compiled under a
    ``tf.distribute`` strategy (``tf.distribute.get_strategy()`` by default; ``"mirrored"`` for
    MirroredStrategy over the local GPUs; ``"multiworker"`` for MultiWorkerMirroredStrategy, which
    reads ``TF_CONFIG``) and fine-tuned with Adam for ``epochs`` epochs per stage; ``batch_size``
    is per replica. After every epoch the wrapped model, the optimizer and the epoch number are
    checkpointed (``tf.train.Checkpoint``) to ``OUT/checkpoints/<n>-<stage>/``; ``resume=True``
    restores them and goes on from the next epoch. An interrupted run raises
    :class:`TrainingInterrupted` naming the checkpoint.

Outputs (in ``out_dir``)
    ``NAME.TAG.keras`` (the optimized tf_keras model; QAT models load under
    ``tfmot.quantization.keras.quantize_scope()``), ``NAME.TAG-int8.tflite`` (and
    ``NAME.TAG-float32.tflite`` for prune/cluster), ``NAME.int8.tflite`` (plain post-training int8 of
    the source, the baseline), each with its sidecar, and ``NAME.TAG.optimize.json`` (the report).
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from tflite_deploy.artifact import Artifact, write_atomic
from tflite_deploy.convert import convert_to_artifact, source_meta
from tflite_deploy.datasets import ArrayDataset, Dataset, check_samples, open_dataset
from tflite_deploy.errors import DatasetError, RecipeError
from tflite_deploy.models import SourceModel, from_keras_model, load_model
from tflite_deploy.optimize.techniques import (Context, OptimizeError, Options, Technique, check_keras_model,
                                               keras3_message, parse_step, tag, unsupported_layers,
                                               unsupported_message)
from tflite_deploy.optimize.techniques import technique as get_technique
from tflite_deploy.optimize.verify import Verification, verify_tflite
from tflite_deploy.recipes import PRESETS, Recipe
from tflite_deploy.tf_loader import versions

REPORT_SCHEMA = "tflite-deploy/optimize/1"


class TrainingInterrupted(OptimizeError):
    """Training stopped (Ctrl-C, a preempted job) after the last checkpoint: resume to go on."""

    exit_code = 130


# ---------------------------------------------------------------------------------------- events
@dataclass(frozen=True)
class TrainEvent:
    """What a progress display needs. ``kind``: stage, epoch, batch, epoch_end, phase."""

    kind: str
    stage: str = ""
    stage_index: int = 0
    stages: int = 0
    epoch: int = 0           # 0-based
    epochs: int = 0
    step: int = 0            # batches done in this epoch
    steps: int = 0
    logs: Mapping[str, float] = field(default_factory=dict)
    resumed_from: int = 0    # epochs already done when the stage started (from a checkpoint)
    text: str = ""           # for phase events: converting, evaluating


EventSink = Callable[[TrainEvent], None]


# --------------------------------------------------------------------------------------- reports
@dataclass(frozen=True)
class StageReport:
    kind: str
    epochs: int
    resumed_from: int          # epochs restored from a checkpoint (0: started fresh)
    epochs_run: int            # epochs trained in this call
    wrapped_layers: tuple[str, ...]
    checkpoint: str
    history: tuple[Mapping[str, float], ...]  # per epoch run in this call: loss, accuracy, epoch


@dataclass(frozen=True)
class AccuracyRow:
    """Top-1 of one model on the evaluation split; drop = reference minus this, in points."""

    name: str
    path: str
    top1: float
    top1_ci95: tuple[float, float]
    drop: Optional[float] = None
    drop_ci95: Optional[tuple[float, float]] = None


@dataclass(frozen=True)
class TrainResult:
    model: Any
    stages: tuple[StageReport, ...]
    pruned_layers: tuple[str, ...]
    clustered_layers: tuple[str, ...]
    skipped_layers: tuple[str, ...]
    strategy: str
    replicas: int


@dataclass(frozen=True)
class OptimizeReport:
    """Everything ``optimize`` did and measured. Sizes in bytes, accuracies and sparsity in percent."""

    technique: str
    tag: str
    model: str
    data: str
    eval_data: Optional[str]
    options: Mapping[str, Any]
    strategy: str
    replicas: int
    stages: tuple[StageReport, ...]
    skipped_layers: tuple[str, ...]
    pruned_layers: tuple[str, ...]
    clustered_layers: tuple[str, ...]
    target_sparsity: Optional[float]          # percent, prune techniques
    sparsity: Optional[float]                 # percent, measured in the int8 file over the pruned kernels
    sparsity_all_kernels: Optional[float]     # percent, every kernel of the int8 file
    target_clusters: Optional[int]
    unique_values: Mapping[str, int]          # clustered layer -> unique values in the int8 file
    unique_values_float: Mapping[str, int]    # ... in the float32 file (per kernel), when made
    accuracy: tuple[AccuracyRow, ...]         # float source first; drops are against it
    vs_ptq: Optional[tuple[float, float, float]]  # PTQ int8 minus optimized int8: points, 95% CI
    files: Mapping[str, Mapping[str, Any]]    # role -> path, size_bytes, gzip_bytes
    verification: Mapping[str, Verification]  # role -> what the file holds
    keras_model: Optional[str]
    checkpoints: str
    report_path: str
    seconds: float
    notes: tuple[str, ...] = ()               # what happened to an earlier run's checkpoints, ...

    @property
    def resumed(self) -> bool:
        return any(s.resumed_from for s in self.stages)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "verification"}
        d["stages"] = [dataclasses.asdict(s) for s in self.stages]
        d["accuracy"] = [dataclasses.asdict(a) for a in self.accuracy]
        d["verification"] = {k: v.to_dict() for k, v in self.verification.items()}
        return {"schema": REPORT_SCHEMA, **json.loads(json.dumps(d, default=_jsonable))}


def _jsonable(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, Mapping):
        return dict(o)
    raise TypeError(type(o).__name__)


# ----------------------------------------------------------------------------------- the API
def optimize(model: str | Path | SourceModel | Any, technique: str, data: str | Dataset,
             epochs: int = 2, out_dir: str | Path = "out/optimize", *,
             eval_data: str | Dataset | None = None, sparsity: float = 0.75, schedule: str = "polynomial",
             clusters: int = 16, init: str = "kmeans++", batch_size: int = 32, learning_rate: float = 1e-3,
             skip_unsupported: bool = False, resume: bool = False, strategy: Any = None, seed: int = 0,
             callbacks: Sequence[Any] = (), on_event: Optional[EventSink] = None,
             baseline: bool = True, verbose: int = 0) -> OptimizeReport:
    """Optimize ``model`` with ``technique`` (see ``TECHNIQUES``) on ``data``; convert, verify, evaluate.

    ``model``: a ``.keras``/``.h5`` path, a :class:`SourceModel`, or an in-memory tf_keras model.
    ``data``: the training set (labels needed), a spec such as ``digits:train`` or a Dataset.
    ``eval_data``: where accuracy before/after is measured; by default the ``:test`` split when
    ``data`` is a ``:train`` spec, else none (no accuracy). ``baseline``: also convert the source
    with plain post-training int8 to compare sizes and accuracy with.
    """
    started = time.perf_counter()
    tech = get_technique(technique)
    opts = Options(sparsity=sparsity, schedule=schedule, clusters=clusters, init=init, epochs=epochs,
                   batch_size=batch_size, learning_rate=learning_rate)
    strat = get_strategy(strategy)  # before anything else touches TensorFlow (multi-worker needs that)
    source = _source(model)
    keras_model = keras_of(source)
    train_ds = _open(data, "training")
    _check_data(train_ds, source, "training")
    eval_ds = _eval_dataset(data, eval_data)
    if eval_ds is not None:
        _check_data(eval_ds, source, "evaluation", need_labels=False)
    _check_layers(keras_model, tech, skip_unsupported, source.path)
    calibration = train_ds.take(PRESETS["int8"].calibration_samples).astype(np.float32)
    check_samples(calibration, train_ds.name)  # NaN or blank data: refused before any training

    out = Path(out_dir)
    chief = _is_chief(strat)
    if not chief:  # multi-worker: only the chief writes results; the others write to a scratch folder
        out = Path(tempfile.mkdtemp(prefix="tflite-deploy-worker-"))
    name, tg = source.name, tag(tech, opts)
    ckpt_root = out / "checkpoints"
    signature = {"technique": tech.name, "options": {k: v for k, v in dataclasses.asdict(opts).items()
                                                      if k != "epochs"},
                 "source_sha256": source.sha256, "data": train_ds.name, "seed": seed}
    notes = _prepare_checkpoints(ckpt_root, signature, resume)

    try:
        result = train(keras_model, tech, opts, train_ds, ckpt_root, resume=resume, strategy=strat,
                       skip_unsupported=skip_unsupported, callbacks=callbacks, on_event=on_event, seed=seed,
                       verbose=verbose)
    except Exception as e:  # the next run must know: --resume continues it, a different run replaces it
        if not isinstance(e, TrainingInterrupted):
            _write_state(ckpt_root, {**signature, "complete": False, "failed": type(e).__name__})
        raise
    _write_state(ckpt_root, {**signature, "complete": True})

    emit = on_event or (lambda e: None)
    emit(TrainEvent("phase", text="saving and converting"))
    keras_path = _save_keras(result.model, out / f"{name}.{tg}.keras")
    step = {"technique": tech.name, **dataclasses.asdict(opts)}
    meta_common = {"source": source_meta(source), "versions": versions(),
                   "calibration": {"dataset": train_ds.name, "samples_available": len(calibration)},
                   "optimization": _train_summary(result, train_ds.name)}
    optimized = _wrap_source(result.model, source)
    roles: dict[str, Artifact] = {}
    bases = ["int8"] if tech.quantizes else ["int8", "float32"]
    for base in bases:
        recipe = _recipe(f"{tg}-{base}", PRESETS[base], step, tech)
        roles[f"optimized-{base}"] = convert_to_artifact(
            optimized, recipe, calibration if recipe.needs_calibration else None, out, meta_common)
    if baseline:
        base_meta = {k: v for k, v in meta_common.items() if k != "optimization"}
        roles["ptq-int8"] = convert_to_artifact(source, PRESETS["int8"], calibration, out, base_meta)

    verification = {role: verify_tflite(a.path) for role, a in roles.items()}
    v8 = verification["optimized-int8"]
    vf = verification.get("optimized-float32")

    accuracy: tuple[AccuracyRow, ...] = ()
    vs_ptq = None
    if eval_ds is not None and eval_ds.labels is not None:
        emit(TrainEvent("phase", text=f"evaluating on {eval_ds.name}"))
        accuracy, vs_ptq = _accuracy(source, roles, eval_ds)

    report = OptimizeReport(
        technique=tech.name, tag=tg, model=str(source.path), data=train_ds.name,
        eval_data=None if eval_ds is None else eval_ds.name, options=step, strategy=result.strategy,
        replicas=result.replicas, stages=result.stages, skipped_layers=result.skipped_layers,
        pruned_layers=result.pruned_layers, clustered_layers=result.clustered_layers,
        target_sparsity=100 * opts.sparsity if tech.prunes else None,
        sparsity=_pct(v8.sparsity(result.pruned_layers)) if tech.prunes else None,
        sparsity_all_kernels=_pct(v8.sparsity()),
        target_clusters=opts.clusters if tech.clusters else None,
        unique_values={n: v8.max_unique([n]) for n in result.clustered_layers if v8.select([n])},
        unique_values_float={n: vf.max_unique([n]) for n in result.clustered_layers if vf and vf.select([n])},
        accuracy=accuracy, vs_ptq=vs_ptq,
        files={role: {"path": str(a.path), "size_bytes": a.size_bytes, "gzip_bytes": a.gzip_bytes}
               for role, a in roles.items()},
        verification=verification, keras_model=None if keras_path is None else str(keras_path),
        checkpoints=str(ckpt_root), report_path=str(out / f"{name}.{tg}.optimize.json"),
        seconds=time.perf_counter() - started, notes=tuple(notes))
    write_atomic(Path(report.report_path), (json.dumps(report.to_dict(), indent=2) + "\n").encode())
    return report


def apply_steps(source: SourceModel, recipe: Recipe, dataset: str | Dataset | None
                ) -> tuple[SourceModel, dict[str, Any]]:
    """The hook ``convert`` calls for a recipe with ``optimize`` steps: train on ``dataset`` first.

    Returns the optimized model (keeping the source's path and hash, which the sidecar records) and
    the extra sidecar entries (what was trained, which layers).
    """
    if len(recipe.optimize) != 1:
        raise RecipeError(f"Recipe {recipe.name!r} has {len(recipe.optimize)} optimize steps; one is supported "
                          "(pcqat combines prune, cluster and QAT in one step).")
    tech, opts = parse_step(recipe.optimize[0], f"Recipe {recipe.name!r}")
    keras_model = keras_of(source)
    if dataset is None:
        raise DatasetError(f"Recipe {recipe.name!r} fine-tunes the model ({tech.name}) before converting: pass "
                           "--data with a labelled training set (e.g. --data digits:train).")
    ds = _open(dataset, "training")
    _check_data(ds, source, "training")
    _check_layers(keras_model, tech, False, source.path)
    with tempfile.TemporaryDirectory(prefix="tflite-deploy-optimize-") as tmp:
        result = train(keras_model, tech, opts, ds, Path(tmp), strategy=get_strategy(None))
    return _wrap_source(result.model, source), {"optimization": _train_summary(result, ds.name)}


# -------------------------------------------------------------------------------------- training
def train(keras_model: Any, tech: Technique, opts: Options, ds: Dataset, ckpt_root: Path, *,
          resume: bool = False, strategy: Any = None, skip_unsupported: bool = False,
          callbacks: Sequence[Any] = (), on_event: Optional[EventSink] = None, seed: int = 0,
          verbose: int = 0) -> TrainResult:
    """Run the technique's stages on ``keras_model`` (not modified); checkpoint each epoch."""
    from tflite_deploy.tf_loader import tensorflow, tf_keras

    tf, keras = tensorflow(), tf_keras()
    strat = strategy if strategy is not None else tf.distribute.get_strategy()
    keras.utils.set_random_seed(seed)
    replicas = int(strat.num_replicas_in_sync)
    global_batch = opts.batch_size * replicas
    steps = int(math.ceil(len(ds) / global_batch))
    inputs = _train_input(ds, global_batch, seed)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=not _outputs_probabilities(keras_model, ds))
    skip = frozenset(u.name for u in unsupported_layers(keras_model, tech)) if skip_unsupported else frozenset()
    emit = on_event or (lambda e: None)

    current = keras_model
    stage_reports: list[StageReport] = []
    pruned: list[str] = []
    clustered: list[str] = []
    trained_earlier_stage = False
    for i, stage in enumerate(tech.stages):
        ckpt_dir = ckpt_root / f"{i + 1}-{stage.kind}"
        if trained_earlier_stage and ckpt_dir.exists():
            shutil.rmtree(ckpt_dir)  # built on an earlier stage that has changed since: stale
        ctx = Context(opts, skip, steps)
        with strat.scope():
            # TF-MOT wraps the layer objects it is given: work on a copy whose variables are made here,
            # under the strategy, and never train the caller's model
            wrapped = stage.wrap(_copy(current), ctx)
            wrapped.compile(optimizer=keras.optimizers.Adam(opts.learning_rate), loss=loss, metrics=["accuracy"])
        epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        ckpt = tf.train.Checkpoint(model=wrapped, optimizer=wrapped.optimizer, epoch=epoch_var)
        manager = tf.train.CheckpointManager(ckpt, str(ckpt_dir), max_to_keep=2)
        start = 0
        if resume and manager.latest_checkpoint:
            try:
                ckpt.restore(manager.latest_checkpoint).expect_partial()
            except Exception as e:
                raise OptimizeError(f"Checkpoint {manager.latest_checkpoint} does not fit this model and technique "
                                    f"({type(e).__name__}); delete {ckpt_root} to start over.") from None
            start = int(epoch_var.numpy())
        emit(TrainEvent("stage", stage.kind, i, len(tech.stages), start, opts.epochs, 0, steps, resumed_from=start))
        history: list[dict[str, float]] = []
        if start < opts.epochs:
            cbs = [*stage.callbacks(ctx), _checkpoint_callback(manager, epoch_var),
                   _progress_callback(emit, stage.kind, i, len(tech.stages), opts.epochs, steps, start, history),
                   *callbacks]
            level = tf.get_logger().level
            if not verbose:  # TF-MOT's wrappers make TF warn about kernels without gradients: expected
                tf.get_logger().setLevel("ERROR")
            try:
                wrapped.fit(inputs, epochs=opts.epochs, initial_epoch=start, steps_per_epoch=steps,
                            callbacks=cbs, verbose=verbose)
            except KeyboardInterrupt:
                done = int(epoch_var.numpy())
                raise TrainingInterrupted(
                    f"Training interrupted in stage {i + 1}/{len(tech.stages)} ({stage.kind}) after {done} of "
                    f"{opts.epochs} epoch(s). The checkpoint is in {ckpt_dir}: run the same command with --resume "
                    f"(resume=True) to continue from epoch {done + 1}.") from None
            finally:
                tf.get_logger().setLevel(level)
            trained_earlier_stage = True
        stage_reports.append(StageReport(stage.kind, opts.epochs, start, len(history), tuple(ctx.wrapped),
                                         str(ckpt_dir), tuple(history)))
        if stage.kind == "prune":
            pruned = list(ctx.wrapped)
        if stage.kind == "cluster":
            clustered = list(ctx.wrapped)
        with strat.scope():
            current = stage.strip(wrapped)
        if current is None:  # TF-MOT returns None instead of raising for models it cannot handle
            raise OptimizeError(f"TF-MOT's {stage.kind} returned no model: " + keras3_message("the model"))
    return TrainResult(current, tuple(stage_reports), tuple(pruned), tuple(clustered), tuple(sorted(skip)),
                       _strategy_name(strat), replicas)


def _copy(model: Any) -> Any:
    from tflite_deploy.tf_loader import tf_keras

    try:
        copy = tf_keras().models.clone_model(model)
    except Exception as e:
        raise OptimizeError(f"Model {model.name!r} cannot be cloned ({type(e).__name__}: {str(e)[:200]}); custom "
                            "layers need get_config() and registration (keras.saving.register_keras_serializable) "
                            "for TF-MOT to rebuild them.") from None
    copy.set_weights(model.get_weights())
    return copy


def get_strategy(strategy: Any = None) -> Any:
    """``None``/``"default"``: ``tf.distribute.get_strategy()``; ``"mirrored"``; ``"multiworker"``
    (reads ``TF_CONFIG``); or a ``tf.distribute.Strategy`` as it is."""
    from tflite_deploy.tf_loader import tensorflow

    tf = tensorflow()
    if strategy is None or strategy == "default":
        return tf.distribute.get_strategy()
    if strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    if strategy in ("multiworker", "multi-worker", "multi_worker"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if isinstance(strategy, tf.distribute.Strategy):
        return strategy
    raise OptimizeError(f"--strategy is default, mirrored or multiworker, not {strategy!r}")


def _strategy_name(strat: Any) -> str:
    from tflite_deploy.tf_loader import tensorflow

    d = tensorflow().distribute
    # tf.distribute.MultiWorkerMirroredStrategy's class is named CollectiveAllReduceStrategy: use the public names
    for cls, public in ((d.MultiWorkerMirroredStrategy, "MultiWorkerMirroredStrategy"),
                        (d.MirroredStrategy, "MirroredStrategy")):
        if isinstance(strat, cls):
            return public
    name = type(strat).__name__
    return "default" if name in ("_DefaultDistributionStrategy", "DefaultDistributionStrategy") else name


def _is_chief(strat: Any) -> bool:
    resolver = getattr(strat, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    spec = resolver.cluster_spec().as_dict()
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0
                                             and "chief" not in spec)


_CALLBACKS: dict[str, type] = {}


def _callback_classes() -> dict[str, type]:
    """Keras callbacks, defined on first use (tf_keras is imported lazily)."""
    if _CALLBACKS:
        return _CALLBACKS
    from tflite_deploy.tf_loader import tf_keras

    Callback = tf_keras().callbacks.Callback

    class CheckpointEachEpoch(Callback):  # type: ignore[misc, valid-type]
        def __init__(self, manager: Any, epoch_var: Any) -> None:
            super().__init__()
            self.manager, self.epoch_var = manager, epoch_var

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.epoch_var.assign(epoch + 1)
            self.manager.save(checkpoint_number=epoch + 1)

    class ProgressEvents(Callback):  # type: ignore[misc, valid-type]
        def __init__(self, emit: EventSink, stage: str, index: int, stages: int, epochs: int, steps: int,
                     start: int, history: list) -> None:
            super().__init__()
            self.emit, self.stage, self.index, self.stages = emit, stage, index, stages
            self.epochs, self.steps, self.start, self.history = epochs, steps, start, history
            self.epoch = start

        def _event(self, kind: str, step: int, logs: Any) -> TrainEvent:
            clean = {k: float(v) for k, v in (logs or {}).items() if np.ndim(v) == 0}
            return TrainEvent(kind, self.stage, self.index, self.stages, self.epoch, self.epochs, step,
                              self.steps, clean, self.start)

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.epoch = epoch
            self.emit(self._event("epoch", 0, logs))

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.emit(self._event("batch", batch + 1, logs))

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            event = self._event("epoch_end", self.steps, logs)
            self.history.append({"epoch": epoch + 1, **event.logs})
            self.emit(event)

    _CALLBACKS.update(checkpoint=CheckpointEachEpoch, progress=ProgressEvents)
    return _CALLBACKS


def _checkpoint_callback(manager: Any, epoch_var: Any) -> Any:
    return _callback_classes()["checkpoint"](manager, epoch_var)


def _progress_callback(*args: Any) -> Any:
    return _callback_classes()["progress"](*args)


def _train_input(ds: Dataset, global_batch: int, seed: int) -> Any:
    """A tf.data pipeline of shuffled (x, y) batches, repeated (fit counts steps per epoch)."""
    from tflite_deploy.tf_loader import tensorflow

    tf = tensorflow()
    labels = np.asarray(ds.labels).astype(np.int64)
    n = len(ds)
    shape = tuple(ds.sample_shape)
    if isinstance(ds, ArrayDataset) or n * int(np.prod(shape)) * 4 <= (1 << 30):
        x = ds.take().astype(np.float32)
        data = tf.data.Dataset.from_tensor_slices((x, labels)).shuffle(n, seed=seed, reshuffle_each_iteration=True)
        return data.batch(global_batch).repeat().prefetch(2)
    rng = np.random.default_rng(seed)

    def batches() -> Any:  # large image folders: read from disk, one shuffled batch at a time
        while True:
            order = rng.permutation(n)
            for s in range(0, n, global_batch):
                idx = order[s:s + global_batch]
                yield np.stack([ds.sample(int(i)) for i in idx]).astype(np.float32), labels[idx]

    sig = (tf.TensorSpec((None, *shape), tf.float32), tf.TensorSpec((None,), tf.int64))
    return tf.data.Dataset.from_generator(batches, output_signature=sig).prefetch(2)


def _outputs_probabilities(model: Any, ds: Dataset) -> bool:
    """Whether the model ends in a softmax (probabilities) or gives logits: decides the loss."""
    y = np.asarray(model(ds.take(32).astype(np.float32), training=False))
    return bool(y.ndim == 2 and np.all(y >= 0) and np.all(y <= 1) and np.allclose(y.sum(1), 1, atol=1e-3))


# ------------------------------------------------------------------------------ model and data checks
def _source(model: Any) -> SourceModel:
    if isinstance(model, SourceModel):
        return model
    if isinstance(model, (str, Path)):
        return load_model(model)
    check_keras_model(model, f"Model {getattr(model, 'name', type(model).__name__)!r}")
    return from_keras_model(model, getattr(model, "name", "model"))


def keras_of(source: SourceModel) -> Any:
    """The tf_keras model of a source, or a clear error for what TF-MOT cannot take."""
    where = f"Model {source.path}"
    if source.framework == "keras3":
        raise OptimizeError(keras3_message(where))
    if source.keras_model is None:
        raise OptimizeError(f"{where} is a SavedModel folder: it has no Keras layers for TF-MOT to wrap. Optimize "
                            "the .keras/.h5 file it was exported from (saved with tf_keras), then convert.")
    check_keras_model(source.keras_model, where)
    return source.keras_model


def _check_layers(model: Any, tech: Technique, skip_unsupported: bool, path: Any) -> None:
    bad = unsupported_layers(model, tech)
    if bad and not skip_unsupported:
        raise OptimizeError(unsupported_message(f"Model {path}", tech, bad))
    if bad and len(bad) == len([layer for layer in model.layers if layer.weights]):
        names = ", ".join(u.name for u in bad)
        raise OptimizeError(f"Model {path}: no layer can be wrapped for {tech.name} ({names}).")


def _open(data: str | Dataset, role: str) -> Dataset:
    return open_dataset(data) if isinstance(data, str) else data


def _check_data(ds: Dataset, source: SourceModel, role: str, need_labels: bool = True) -> None:
    ds.check_fits(source.input_shape, source.input_dtype, f"model {source.path}")
    if need_labels and ds.labels is None:
        raise DatasetError(f"Dataset {ds.name!r} has no labels; {role} needs them (an image folder with one "
                           "sub-folder per class, or a .npz with x and y).")
    outputs = getattr(source.keras_model, "outputs", None)
    if need_labels and outputs and len(outputs[0].shape) == 2 and outputs[0].shape[-1]:
        ds.check_labels(int(outputs[0].shape[-1]), f"model {source.path}")


def _eval_dataset(data: str | Dataset, eval_data: str | Dataset | None) -> Optional[Dataset]:
    if eval_data is not None:
        return _open(eval_data, "evaluation")
    if isinstance(data, str) and data.endswith(":train"):
        return open_dataset(data[: -len(":train")] + ":test")
    return None


# ------------------------------------------------------------------------------- checkpoints
def _prepare_checkpoints(root: Path, signature: Mapping[str, Any], resume: bool) -> list[str]:
    """Make ``root`` ready for this run; returns notes on what became of an earlier run's state.

    An unfinished earlier run of the *same* job (model, technique, options, data, seed) with saved
    epochs is kept: ``--resume`` continues it, and a run without it is refused rather than throwing
    the epochs away. Anything else unfinished (another job, or a run that failed before saving an
    epoch) cannot be resumed by this run: it is replaced, and the note says so.
    """
    state_file = root / "state.json"
    state = None
    if state_file.is_file():
        try:
            state = json.loads(state_file.read_text())
        except ValueError:
            state = None
    notes: list[str] = []
    theirs = {k: v for k, v in (state or {}).items() if k not in ("complete", "failed")}
    same = theirs == dict(signature)
    saved = _saved_epochs(root)
    if resume and state is not None:
        if not same:
            diff = sorted(k for k in set(theirs) | set(signature) if theirs.get(k) != signature.get(k))
            raise OptimizeError(f"The checkpoint in {root} is from another run (differs in {', '.join(diff)}): "
                                "resume with the same model, technique, options and data, or run without "
                                "--resume to replace it.")
    elif state is not None and not state.get("complete", False):
        how = f"failed ({state['failed']})" if state.get("failed") else "was interrupted"
        if same and saved:
            raise OptimizeError(f"{root} holds an unfinished run of this same job, which {how} after saving "
                                f"{saved} epoch checkpoint(s). Pass --resume (resume=True) to continue it from "
                                "there, or delete that folder to start over.")
        why = "it saved no epoch" if not saved else "it was for another model, technique, options or data"
        notes.append(f"Replaced the unfinished {state.get('technique')} run in {root}, which {how}: {why}, "
                     "so there was nothing this run could resume.")
        shutil.rmtree(root)
    elif not resume and root.exists():
        shutil.rmtree(root)
    _write_state(root, {**signature, "complete": False})
    return notes


def _saved_epochs(root: Path) -> int:
    """Epochs checkpointed under ``root`` (all stages together); 0 when none was saved."""
    return sum(len(list(d.glob("ckpt-*.index"))) for d in root.glob("*-*") if d.is_dir()) if root.is_dir() else 0


def _write_state(root: Path, state: Mapping[str, Any]) -> None:
    write_atomic(root / "state.json", (json.dumps(state, indent=2, default=_jsonable) + "\n").encode())


# ------------------------------------------------------------------------------- convert, evaluate
def _recipe(name: str, base: Recipe, step: Mapping[str, Any], tech: Technique) -> Recipe:
    fields = {k: v for k, v in dataclasses.asdict(base).items() if k not in ("name", "optimize", "description")}
    fields["float_layers"], fields["float_ops"] = tuple(fields["float_layers"]), tuple(fields["float_ops"])
    return Recipe(name=name, **fields, optimize=(dict(step),),
                  description=f"{tech.description} (TF-MOT), then {base.name}")


def _wrap_source(model: Any, source: SourceModel) -> SourceModel:
    sm = from_keras_model(model, source.name)
    sm.path, sm.sha256, sm.name = source.path, source.sha256, source.name
    return sm


def _save_keras(model: Any, path: Path) -> Optional[Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.part.keras")
    try:
        model.save(tmp)
        tmp.replace(path)
        return path
    except Exception:  # a model TF-MOT left unserialisable: the .tflite files are what matter
        tmp.unlink(missing_ok=True)
        return None


def _accuracy(source: SourceModel, roles: Mapping[str, Artifact], ds: Dataset
              ) -> tuple[tuple[AccuracyRow, ...], Optional[tuple[float, float, float]]]:
    from tflite_deploy.evaluate import bootstrap_interval, collect, paired_bootstrap
    from tflite_deploy.runtime import TfliteModel

    labels = np.asarray(ds.labels)
    ref = collect(lambda x: np.asarray(source.keras_model.predict(x, verbose=0, batch_size=256)), ds, None, 256)
    ref_ok = ref.argmax(1) == labels
    rows = [AccuracyRow("float (before)", str(source.path), 100 * float(ref_ok.mean()), bootstrap_interval(ref_ok))]
    correct = {}
    order = [r for r in ("ptq-int8", "optimized-int8", "optimized-float32") if r in roles]
    for role in order:
        art = roles[role]
        values = collect(TfliteModel(art.path).predict, ds, None, 256)
        ok = values.argmax(1) == labels
        correct[role] = ok
        drop, lo, hi = paired_bootstrap(ref_ok, ok)
        label = {"ptq-int8": "int8 PTQ", "optimized-int8": f"{art.recipe}",
                 "optimized-float32": f"{art.recipe}"}[role]
        rows.append(AccuracyRow(label, str(art.path), 100 * float(ok.mean()), bootstrap_interval(ok), drop, (lo, hi)))
    vs = None
    if "ptq-int8" in correct:
        vs = paired_bootstrap(correct["ptq-int8"], correct["optimized-int8"])
    return tuple(rows), vs


def _train_summary(result: TrainResult, data: str) -> dict[str, Any]:
    return {"data": data, "strategy": result.strategy, "replicas": result.replicas,
            "stages": [{"kind": s.kind, "epochs": s.epochs, "resumed_from": s.resumed_from,
                        "wrapped_layers": list(s.wrapped_layers),
                        "final": dict(s.history[-1]) if s.history else None} for s in result.stages],
            "pruned_layers": list(result.pruned_layers), "clustered_layers": list(result.clustered_layers),
            "skipped_layers": list(result.skipped_layers)}


def _pct(x: Optional[float]) -> Optional[float]:
    return None if x is None else 100 * x
