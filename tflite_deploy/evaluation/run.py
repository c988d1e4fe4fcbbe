"""Evaluate variants against the float reference on the same samples, with honest uncertainty.

Every variant sees exactly the samples the reference sees, so the accuracy *drop* is a paired
quantity: its 95% interval comes from a paired bootstrap over samples (resample sample indices,
recompute both metrics on the same resample). Output agreement with the reference (MSE, max abs
error, cosine similarity, SQNR, non-finite values, label agreement) needs no labels and tells
quantization modes apart even where accuracy cannot; a model with several outputs gets it per
output, by name. The task decides the rest (:func:`choose_task`): classification (top-1/top-k,
whole-number labels), regression (MAE/RMSE against float targets, the MAE's change), or agreement
only (no targets). The reference's outputs are computed once per (model, dataset) and cached
(:mod:`tflite_deploy.evaluation.reference`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from tflite_deploy.artifact import recipe_name
from tflite_deploy.datasets import Dataset, open_dataset
from tflite_deploy.errors import DatasetError, UserError
from tflite_deploy.evaluation.metrics import (accuracy, agreement, bootstrap_interval, paired_bootstrap,
                                              regression, regression_change, topk_correct)
from tflite_deploy.evaluation.reference import collect_named, reference_outputs, reference_predictor
from tflite_deploy.progress import ProgressCallback, report
from tflite_deploy.result import Result
from tflite_deploy.tflite.runtime import TfliteModel
from tflite_deploy.vocabulary import TASKS

Predictor = Callable[[np.ndarray], np.ndarray]
__all__ = ["Outputs", "TASKS", "agreement", "bootstrap_interval", "choose_task", "collect", "evaluate",
           "paired_bootstrap", "reference_predictor", "topk_correct"]


@dataclass(frozen=True)
class Outputs:
    """One model's outputs over the evaluation samples."""

    name: str
    path: str
    values: np.ndarray  # (n, outputs...) float32


def collect(predict: Predictor, dataset: Dataset, limit: Optional[int], batch_size: int,
            on_batch: Optional[Callable[[int], None]] = None) -> np.ndarray:
    """One output over the samples (single-input, single-output models: the optimize verb's check)."""
    outs = []
    for x, _ in dataset.batches(batch_size, limit):
        outs.append(predict(x if isinstance(x, dict) else x.astype(np.float32)))
        if on_batch:
            on_batch(len(x))
    return np.concatenate(outs)


def choose_task(task: str, ds: Dataset, outputs: dict[str, np.ndarray], reference: str) -> tuple[str, Optional[str]]:
    """The task and the output it is judged on: from the targets' dtype and the outputs' shapes,
    or ``task`` when given. ``agreement``: no targets, outputs compared with the reference only."""
    if task not in TASKS:
        raise UserError(f"--task must be one of {', '.join(TASKS)}, not {task!r}.")
    if task == "agreement":
        return task, None
    has_labels, has_targets = ds.labels is not None, ds.targets is not None
    if task == "auto":
        if not (has_labels or has_targets):
            return "agreement", None
        task = "classification" if has_labels else "regression"
    if task == "classification":
        if not has_labels:
            raise DatasetError(f"--task classification needs whole-number class labels; dataset {ds.name!r} has "
                               f"{'float targets (use --task regression)' if has_targets else 'no y'}.")
        scores = [k for k, v in outputs.items() if v.ndim == 2 and v.shape[1] > 1]
        if not scores:
            shapes = ", ".join(f"{k} {v.shape[1:]}" for k, v in outputs.items())
            raise DatasetError(f"Dataset {ds.name!r} has class labels, but {reference} outputs {shapes}, not one "
                               "score per class: for numeric targets store y as floats (regression), or pass "
                               "--task agreement.")
        return task, scores[0]
    targets = ds.targets if has_targets else np.asarray(ds.labels, np.float64)
    if targets is None:
        raise DatasetError(f"--task regression needs targets (y); dataset {ds.name!r} has none.")
    per_sample = int(np.prod(targets.shape[1:])) if targets.ndim > 1 else 1
    fits = [k for k, v in outputs.items() if int(np.prod(v.shape[1:])) == per_sample]
    if not fits:
        shapes = ", ".join(f"{k} {v.shape[1:]}" for k, v in outputs.items())
        raise DatasetError(f"Dataset {ds.name!r} has {per_sample} target value(s) per sample, but {reference} "
                           f"outputs {shapes}: no output to compare them with.")
    return "regression", fits[0]


# -------------------------------------------------------------------------------------- evaluate
def evaluate(reference: str | Path, variants: Sequence[str | Path], dataset: str | Dataset, *,
             limit: Optional[int] = None, top_k: int = 5, batch_size: int = 64, resamples: int = 2000,
             threads: Optional[int] = None, delegate: str = "xnnpack", task: str = "auto",
             cache: bool = True, progress: Optional[ProgressCallback] = None) -> list[Result]:
    """Evaluate the reference and each variant on ``dataset``; one ``Result`` (kind ``eval``) each.

    The reference's result holds its task metrics; each variant's holds them, the paired change
    with its 95% interval, and output agreement with the reference (per output, by name, under
    ``outputs`` when there are several). ``task``: see :func:`choose_task`. ``cache``: reuse the
    reference's outputs from an earlier evaluation on the same data. ``progress`` hears
    ``evaluate`` events counting samples over all models (message: the model's file name).
    """
    ds = open_dataset(dataset) if isinstance(dataset, str) else dataset
    if task not in TASKS:
        raise UserError(f"--task must be one of {', '.join(TASKS)}, not {task!r}.")
    n = len(ds) if limit is None else min(limit, len(ds))
    total = n * (1 + len(variants))
    seen = [0]

    def counter(name: str) -> Optional[Callable[[int], None]]:
        if progress is None:
            return None

        def advance(k: int) -> None:
            seen[0] += k
            report(progress, "evaluate", seen[0], total, Path(name).name)

        return advance

    ref_out, cached = reference_outputs(reference, ds, n, batch_size, threads, counter(str(reference)), cache)
    chosen, key = choose_task(task, ds, ref_out, str(reference))
    truth = _truth(ds, chosen, n, ref_out, key, str(reference))
    settings = {"dataset": ds.name, "samples": n, "top_k": top_k, "resamples": resamples, "threads": threads,
                "task": chosen, "reference_cached": cached}
    if key is not None and len(ref_out) > 1:
        settings["task_output"] = key
    warnings = _dataset_warnings(ds, chosen)

    ref_metrics: dict[str, Any] = {"role": "reference", "task": chosen}
    ref_metrics.update(_task_metrics(chosen, ref_out.get(key) if key else None, truth, top_k, resamples))
    runner, ref_delegate = _reference_runner(str(reference), delegate)
    results = [Result(kind="eval", artifact=str(reference), delegate=ref_delegate, runner=runner,
                      settings=settings, metrics=ref_metrics, warnings=warnings)]

    for path in variants:
        model = TfliteModel(path, threads=threads, delegate=delegate)
        values = collect_named(lambda x: model.predict_named(x, ds.name), ds, n, batch_size, counter(str(path)))
        pairs = pair_outputs(ref_out, values, str(reference), str(path))
        metrics: dict[str, Any] = {"role": "variant", "reference": str(reference), "task": chosen}
        per_output = {name: agreement(r, v) for name, (r, v) in pairs.items()}
        main = key if key is not None else next(iter(pairs))
        metrics.update(per_output[main])
        if len(pairs) > 1:
            metrics["outputs"] = per_output
        if key is not None:
            ref_v, var_v = pairs[key]
            metrics.update(_task_metrics(chosen, var_v, truth, top_k, resamples))
            if chosen == "classification":
                drop, lo, hi = paired_bootstrap(ref_v.argmax(1) == truth, var_v.argmax(1) == truth, resamples)
                metrics.update({"top1_drop": drop, "top1_drop_ci95": [lo, hi]})
            else:
                metrics.update(regression_change(ref_v, var_v, truth, resamples))
        bad = [name for name, m in per_output.items() if m["nonfinite"]]
        notes = tuple(f"output {name!r} holds {per_output[name]['nonfinite']} NaN/Inf value(s)" for name in bad)
        results.append(Result(kind="eval", artifact=str(path), delegate=delegate, settings=settings,
                              metrics=metrics, recipe=recipe_name(path), warnings=notes))
    return results


def pair_outputs(ref: dict[str, np.ndarray], var: dict[str, np.ndarray], reference: str, path: str
                  ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Reference and variant outputs side by side, by name (else in order when the names differ)."""
    if set(ref) == set(var):
        pairs = {k: (ref[k], var[k]) for k in ref}
    elif len(ref) == len(var):
        pairs = {k: (ref[k], var[kv]) for k, kv in zip(ref, var)}
    else:
        raise UserError(f"Model {path} has {len(var)} output(s) ({', '.join(var)}), the reference {reference} "
                        f"{len(ref)} ({', '.join(ref)}): they are not variants of one model.")
    for k, (r, v) in pairs.items():
        if r.shape != v.shape:
            raise UserError(f"Model {path} gives outputs of shape {v.shape[1:]}, the reference "
                            f"{reference} {r.shape[1:]}" + (f" (output {k!r})" if len(pairs) > 1 else "") +
                            ": they are not variants of one model.")
    return pairs


def _task_metrics(task: str, values: Optional[np.ndarray], truth: Optional[np.ndarray], top_k: int,
                  resamples: int) -> dict[str, Any]:
    if values is None or truth is None:
        return {}
    if task == "classification":
        return accuracy(values, truth, top_k, resamples)
    return regression(values, truth, resamples)


def _truth(ds: Dataset, task: str, n: int, ref_out: dict[str, np.ndarray], key: Optional[str],
           reference: str) -> Optional[np.ndarray]:
    if task == "agreement" or key is None:
        return None
    if task == "regression":
        y = ds.targets if ds.targets is not None else ds.labels
        return np.asarray(y[:n], np.float64)  # type: ignore[index]
    classes = ref_out[key].shape[1]
    labels = np.asarray(ds.labels[:n])  # type: ignore[index]
    wanted = ds.num_classes or 0
    if wanted > classes or labels.max() >= classes:
        raise DatasetError(f"Dataset {ds.name!r} has {max(wanted, int(labels.max()) + 1)} classes, but "
                           f"{reference} outputs {classes} scores: the labels do not match the model's "
                           "classes (wrong dataset, or a model trained on other classes?).")
    return labels


def _dataset_warnings(ds: Dataset, task: str) -> tuple[str, ...]:
    if task == "classification" and ds.class_names is not None and len(ds.class_names) == 1:
        return (f"Dataset {ds.name!r} has a single class ({ds.class_names[0]!r}): every label is 0, so accuracy "
                "means nothing here (class 0 of the model is not this folder's class). Agreement with the "
                "reference still holds; for accuracy, give one sub-folder per class.",)
    return ()


def _reference_runner(reference: str, delegate: str) -> tuple[str, str]:
    if reference.endswith(".tflite"):
        return "litert-python", delegate
    if reference.lower().endswith(".onnx"):
        return "onnxruntime", "cpu"
    return "tensorflow", "tensorflow"
