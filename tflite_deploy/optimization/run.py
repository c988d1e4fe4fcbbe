"""``optimize()``: wrap, fine-tune, strip, convert, verify in the file, evaluate — one call.

::

    report = optimize("model.keras", OptimizeStep("prune", sparsity=0.75, epochs=2), "digits:train",
                      out_dir="out/prune")
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
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from tflite_deploy.artifact import Artifact, write_atomic
from tflite_deploy.conversion.tf_converter import convert_to_artifact
from tflite_deploy.datasets import Dataset, check_samples, eval_split
from tflite_deploy.sources.keras import SourceModel
from tflite_deploy.optimization.techniques import OptimizeError, Technique, tag
from tflite_deploy.optimization.techniques import technique as get_technique
from tflite_deploy.optimization.training import (StageReport, TrainEvent, TrainingInterrupted,  # noqa: F401
                                                 _check_data, _check_layers, _is_chief, _open, _source,
                                                 _train_summary, _wrap_source, get_strategy, keras_of,
                                                 progress_events, train)
from tflite_deploy.optimization.verify import Verification, verify_tflite
from tflite_deploy.progress import ProgressCallback
from tflite_deploy.recipes import PRESETS, OptimizeStep, Recipe
from tflite_deploy.sources.common import source_meta
from tflite_deploy.sources.tf_loader import versions
from tflite_deploy.tflite.checks import check_full_integer

REPORT_SCHEMA = "tflite-deploy/optimize/1"


# --------------------------------------------------------------------------------------- reports


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
def optimize(model: str | Path | SourceModel | Any, step: OptimizeStep, data: str | Dataset,
             out_dir: str | Path = "out/optimize", *, eval_data: str | Dataset | None = None,
             skip_unsupported: bool = False, resume: bool = False, strategy: Any = None, seed: int = 0,
             callbacks: Sequence[Any] = (), progress: Optional[ProgressCallback] = None,
             baseline: bool = True, verbose: int = 0) -> OptimizeReport:
    """Optimize ``model`` with ``step`` (a technique of ``TECHNIQUES`` and its settings) on ``data``;
    convert, verify, evaluate.

    ``model``: a ``.keras``/``.h5`` path, a :class:`SourceModel`, or an in-memory tf_keras model.
    ``data``: the training set (labels needed), a spec such as ``digits:train`` or a Dataset.
    ``eval_data``: where accuracy before/after is measured; by default the ``:test`` split when
    ``data`` is a ``:train`` spec, else none (no accuracy). ``baseline``: also convert the source
    with plain post-training int8 to compare sizes and accuracy with.
    """
    started = time.perf_counter()
    on_event = progress_events(progress)
    if not isinstance(step, OptimizeStep):
        raise OptimizeError(f"step must be an OptimizeStep such as OptimizeStep('prune', sparsity=0.5), "
                            f"not {step!r}")
    tech = get_technique(step.technique)
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
    name, tg = source.name, tag(step)
    ckpt_root = out / "checkpoints"
    signature = {"technique": tech.name, "options": {k: v for k, v in step.to_dict().items()
                                                      if k not in ("technique", "epochs")},
                 "source_sha256": source.sha256, "data": train_ds.name, "seed": seed}
    notes = _prepare_checkpoints(ckpt_root, signature, resume)

    try:
        result = train(keras_model, step, train_ds, ckpt_root, resume=resume, strategy=strat,
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
    meta_common = {"source": source_meta(source), "versions": versions(),
                   "calibration": {"dataset": train_ds.name, "samples_available": len(calibration)},
                   "optimization": _train_summary(result, train_ds.name)}
    optimized = _wrap_source(result.model, source)
    roles: dict[str, Artifact] = {}
    bases = ["int8"] if tech.quantizes else ["int8", "float32"]
    for base in bases:
        recipe = _recipe(f"{tg}-{base}", PRESETS[base], step, tech)
        roles[f"optimized-{base}"] = convert_to_artifact(
            optimized, recipe, calibration if recipe.needs_calibration else None, out, meta_common,
            check=check_full_integer)
    if baseline:
        base_meta = {k: v for k, v in meta_common.items() if k != "optimization"}
        roles["ptq-int8"] = convert_to_artifact(source, PRESETS["int8"], calibration, out, base_meta,
                                                 check=check_full_integer)

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
        eval_data=None if eval_ds is None else eval_ds.name, options=step.to_dict(), strategy=result.strategy,
        replicas=result.replicas, stages=result.stages, skipped_layers=result.skipped_layers,
        pruned_layers=result.pruned_layers, clustered_layers=result.clustered_layers,
        target_sparsity=100 * step.sparsity if tech.prunes else None,
        sparsity=_pct(v8.sparsity(result.pruned_layers)) if tech.prunes else None,
        sparsity_all_kernels=_pct(v8.sparsity()),
        target_clusters=step.clusters if tech.clusters else None,
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


def _eval_dataset(data: str | Dataset, eval_data: str | Dataset | None) -> Optional[Dataset]:
    spec = eval_data if eval_data is not None else eval_split(data)
    return None if spec is None else _open(spec, "evaluation")


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
                                "resume=True to replace it.", param="resume")
    elif state is not None and not state.get("complete", False):
        how = f"failed ({state['failed']})" if state.get("failed") else "was interrupted"
        if same and saved:
            raise OptimizeError(f"{root} holds an unfinished run of this same job, which {how} after saving "
                                f"{saved} epoch checkpoint(s). Pass resume=True to continue it from there, or "
                                "delete that folder to start over.", param="resume")
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
def _recipe(name: str, base: Recipe, step: OptimizeStep, tech: Technique) -> Recipe:
    fields = {k: v for k, v in dataclasses.asdict(base).items() if k not in ("name", "optimize", "description")}
    fields["float_layers"], fields["float_ops"] = tuple(fields["float_layers"]), tuple(fields["float_ops"])
    return Recipe(name=name, **fields, optimize=(step,),
                  description=f"{tech.description} (TF-MOT), then {base.name}")


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
    from tflite_deploy.evaluation.run import bootstrap_interval, collect, paired_bootstrap
    from tflite_deploy.tflite.runtime import TfliteModel

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


def _pct(x: Optional[float]) -> Optional[float]:
    return None if x is None else 100 * x
