"""Fine-tuning with TF-MOT: a technique's stages on a tf_keras model, checkpointed and resumable.

:func:`train` runs the stages (wrap -> fit -> strip) under a ``tf.distribute`` strategy;
:func:`apply_steps` is what the convert verb calls for a recipe with an ``optimize`` step. Nothing
here converts or evaluates: the verbs (``conversion``, ``optimization.run``) orchestrate.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from tflite_deploy.datasets import ArrayDataset, Dataset, open_dataset
from tflite_deploy.errors import DatasetError, RecipeError
from tflite_deploy.sources.keras import SourceModel, from_keras_model, load_model
from tflite_deploy.optimization.techniques import (Context, OptimizeError, Technique, check_keras_model,
                                                   keras3_message, technique, unsupported_layers,
                                                   unsupported_message)
from tflite_deploy.progress import ProgressCallback, ProgressEvent
from tflite_deploy.recipes import OptimizeStep, Recipe


class TrainingInterrupted(OptimizeError):
    """Training stopped (Ctrl-C, a preempted job) after the last checkpoint: resume to go on."""

    exit_code = 130


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
class TrainResult:
    model: Any
    stages: tuple[StageReport, ...]
    pruned_layers: tuple[str, ...]
    clustered_layers: tuple[str, ...]
    skipped_layers: tuple[str, ...]
    strategy: str
    replicas: int


def apply_steps(source: SourceModel, recipe: Recipe, dataset: str | Dataset | None
                ) -> tuple[SourceModel, dict[str, Any]]:
    """The hook ``convert`` calls for a recipe with ``optimize`` steps: train on ``dataset`` first.

    Returns the optimized model (keeping the source's path and hash, which the sidecar records) and
    the extra sidecar entries (what was trained, which layers).
    """
    if len(recipe.optimize) != 1:
        raise RecipeError(f"Recipe {recipe.name!r} has {len(recipe.optimize)} optimize steps; one is supported "
                          "(pcqat combines prune, cluster and QAT in one step).")
    opts = recipe.optimize[0]
    tech = technique(opts.technique)
    keras_model = keras_of(source)
    if dataset is None:
        raise DatasetError(f"Recipe {recipe.name!r} fine-tunes the model ({tech.name}) before converting: pass "
                           "data=digits:train or another labelled training set.", param="data")
    ds = _open(dataset, "training")
    _check_data(ds, source, "training")
    _check_layers(keras_model, tech, False, source.path)
    with tempfile.TemporaryDirectory(prefix="tflite-deploy-optimize-") as tmp:
        result = train(keras_model, opts, ds, Path(tmp), strategy=get_strategy(None))
    return _wrap_source(result.model, source), {"optimization": _train_summary(result, ds.name)}


def train(keras_model: Any, opts: OptimizeStep, ds: Dataset, ckpt_root: Path, *,
          resume: bool = False, strategy: Any = None, skip_unsupported: bool = False,
          callbacks: Sequence[Any] = (), on_event: Optional[EventSink] = None, seed: int = 0,
          verbose: int = 0) -> TrainResult:
    """Run the stages of the step's technique on ``keras_model`` (not modified); checkpoint each epoch."""
    from tflite_deploy.sources.tf_loader import tensorflow, tf_keras

    tech = technique(opts.technique)
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
                    f"{opts.epochs} epoch(s). The checkpoint is in {ckpt_dir}: run it again with resume=True "
                    f"to continue from epoch {done + 1}.", param="resume") from None
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
    from tflite_deploy.sources.tf_loader import tf_keras

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
    from tflite_deploy.sources.tf_loader import tensorflow

    tf = tensorflow()
    if strategy is None or strategy == "default":
        return tf.distribute.get_strategy()
    if strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    if strategy in ("multiworker", "multi-worker", "multi_worker"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if isinstance(strategy, tf.distribute.Strategy):
        return strategy
    raise OptimizeError(f"strategy is default, mirrored or multiworker, not {strategy!r}", param="strategy")


def _strategy_name(strat: Any) -> str:
    from tflite_deploy.sources.tf_loader import tensorflow

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
    from tflite_deploy.sources.tf_loader import tf_keras

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
    from tflite_deploy.sources.tf_loader import tensorflow

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
        raise OptimizeError(unsupported_message(f"Model {path}", tech, bad), param="skip_unsupported")
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


def _wrap_source(model: Any, source: SourceModel) -> SourceModel:
    sm = from_keras_model(model, source.name)
    sm.path, sm.sha256, sm.name = source.path, source.sha256, source.name
    return sm


def _train_summary(result: TrainResult, data: str) -> dict[str, Any]:
    return {"data": data, "strategy": result.strategy, "replicas": result.replicas,
            "stages": [{"kind": s.kind, "epochs": s.epochs, "resumed_from": s.resumed_from,
                        "wrapped_layers": list(s.wrapped_layers),
                        "final": dict(s.history[-1]) if s.history else None} for s in result.stages],
            "pruned_layers": list(result.pruned_layers), "clustered_layers": list(result.clustered_layers),
            "skipped_layers": list(result.skipped_layers)}


def progress_events(progress: Optional[ProgressCallback]) -> Optional[EventSink]:
    """Training events in the one progress shape: a bar per stage, counted in batches."""
    if progress is None:
        return None

    def sink(e: TrainEvent) -> None:
        if e.kind == "phase":
            progress(ProgressEvent(e.text, 0, None, e.text, e))
            return
        logs = "  ".join(f"{k} {v:.3f}" for k, v in e.logs.items() if k in ("loss", "accuracy"))
        progress(ProgressEvent(f"train {e.stage_index + 1}/{e.stages} {e.stage}", e.epoch * e.steps + e.step,
                               e.epochs * e.steps, f"{e.stage} {e.stage_index + 1}/{e.stages}  epoch "
                               f"{e.epoch + 1}/{e.epochs}  {logs}".rstrip(), e))

    return sink
