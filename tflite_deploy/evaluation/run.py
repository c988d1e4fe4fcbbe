"""Evaluate variants against the float reference on the same samples, with honest uncertainty.

Every variant sees exactly the samples the reference sees, so the accuracy *drop* is a paired
quantity: its 95% interval comes from a paired bootstrap over samples (resample sample indices,
recompute both accuracies on the same resample). Output agreement with the reference (MSE, max
abs error, cosine similarity, SQNR, label agreement) needs no labels and tells quantization modes
apart even where accuracy cannot.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from tflite_deploy.artifact import recipe_name
from tflite_deploy.datasets import Dataset, open_dataset
from tflite_deploy.errors import DatasetError, UserError
from tflite_deploy.progress import ProgressCallback, report
from tflite_deploy.result import Result
from tflite_deploy.tflite.runtime import TfliteModel

Predictor = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Outputs:
    """One model's outputs over the evaluation samples."""

    name: str
    path: str
    values: np.ndarray  # (n, outputs...) float32


def reference_predictor(path: str | Path, threads: Optional[int] = None) -> Predictor:
    """A float reference: a float .tflite, or a Keras/SavedModel model run by TensorFlow."""
    p = Path(path)
    if p.suffix.lower() == ".onnx":  # hook: an ONNX source's reference is the .onnx in ONNX Runtime
        from tflite_deploy.sources.onnx_runtime import onnx_reference

        return onnx_reference(p, threads)
    if p.suffix == ".tflite":
        m = TfliteModel(p, threads=threads)
        return _checked(m.predict, m, p)
    from tflite_deploy.sources.keras import load_model

    source = load_model(p)
    if source.keras_model is not None:
        return lambda x: np.asarray(source.keras_model.predict(x, verbose=0, batch_size=256), np.float32)
    from tflite_deploy.sources.tf_loader import tensorflow

    tf = tensorflow()
    fn = tf.saved_model.load(str(source.saved_model_dir)).signatures["serving_default"]
    arg = list(fn.structured_input_signature[1])[0]
    return lambda x: np.asarray(list(fn(**{arg: tf.constant(x)}).values())[0], np.float32)


def _checked(predict: Predictor, model: TfliteModel, path: Path) -> Predictor:
    checked: list[bool] = []

    def run(x: np.ndarray) -> np.ndarray:
        if not checked:
            model.check_input(tuple(x.shape[1:]), "the dataset")
            checked.append(True)
        return predict(x)

    return run


def collect(predict: Predictor, dataset: Dataset, limit: Optional[int], batch_size: int,
            on_batch: Optional[Callable[[int], None]] = None) -> np.ndarray:
    outs = []
    for x, _ in dataset.batches(batch_size, limit):
        outs.append(predict(x.astype(np.float32)))
        if on_batch:
            on_batch(len(x))
    return np.concatenate(outs)


# ------------------------------------------------------------------------------------- metrics
def agreement(ref: np.ndarray, var: np.ndarray) -> dict[str, float]:
    """How close a variant's outputs are to the reference's, sample by sample."""
    r = ref.reshape(len(ref), -1).astype(np.float64)
    v = var.reshape(len(var), -1).astype(np.float64)
    err = v - r
    noise = float(np.sum(err ** 2))
    signal = float(np.sum(r ** 2))
    norms = np.linalg.norm(r, axis=1) * np.linalg.norm(v, axis=1)
    cos = np.where(norms > 0, np.sum(r * v, axis=1) / np.where(norms > 0, norms, 1), 1.0)
    out = {
        "mse": float(np.mean(err ** 2)),
        "max_abs_error": float(np.max(np.abs(err))),
        "cosine": float(np.mean(cos)),
        "sqnr_db": float("inf") if noise == 0 else float(10 * np.log10(signal / noise)) if signal else float("-inf"),
    }
    if r.shape[1] > 1:
        out["label_agreement"] = float(np.mean(r.argmax(1) == v.argmax(1)))
    return out


def topk_correct(values: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    k = min(k, values.shape[1])
    top = np.argpartition(-values, k - 1, axis=1)[:, :k]
    return (top == labels[:, None]).any(axis=1)


def paired_bootstrap(ref_correct: np.ndarray, var_correct: np.ndarray, resamples: int = 2000,
                     seed: int = 0) -> tuple[float, float, float]:
    """Accuracy drop (reference minus variant, in points) and its 95% interval."""
    n = len(ref_correct)
    rng = np.random.default_rng(seed)
    diff = ref_correct.astype(np.float64) - var_correct.astype(np.float64)
    means = np.zeros(resamples)  # zeros, not empty: a slot the loop missed would be a visible 0, not stale memory
    for start in range(0, resamples, 250):  # chunks keep memory flat for large sets
        idx = rng.integers(0, n, size=(min(250, resamples - start), n))
        means[start:start + len(idx)] = diff[idx].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return 100 * float(diff.mean()), 100 * float(lo), 100 * float(hi)


def bootstrap_interval(correct: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    c = correct.astype(np.float64)
    idx = rng.integers(0, len(c), size=(resamples, len(c)))
    lo, hi = np.percentile(c[idx].mean(axis=1), [2.5, 97.5])
    return 100 * float(lo), 100 * float(hi)


# -------------------------------------------------------------------------------------- evaluate
def evaluate(reference: str | Path, variants: Sequence[str | Path], dataset: str | Dataset, *,
             limit: Optional[int] = None, top_k: int = 5, batch_size: int = 64, resamples: int = 2000,
             threads: Optional[int] = None, delegate: str = "xnnpack",
             progress: Optional[ProgressCallback] = None) -> list[Result]:
    """Evaluate the reference and each variant on ``dataset``; one ``Result`` (kind ``eval``) each.

    The reference's result holds its accuracy; each variant's holds accuracy, the paired drop with
    its 95% interval, and output agreement with the reference. ``progress`` hears ``evaluate``
    events counting samples over all models (message: the model's file name).
    """
    ds = open_dataset(dataset) if isinstance(dataset, str) else dataset
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

    ref_predict = reference_predictor(reference, threads)
    ref_values = collect(ref_predict, ds, n, batch_size, counter(str(reference)))
    labels = _labels_for(ds, ref_values, n, str(reference))
    settings = {"dataset": ds.name, "samples": n, "top_k": top_k, "resamples": resamples, "threads": threads}

    ref_metrics: dict[str, Any] = {"role": "reference"}
    ref_correct = None
    if labels is not None:
        ref_correct = ref_values.argmax(1) == labels
        ref_metrics.update(_accuracy(ref_values, labels, top_k, resamples))
    runner, ref_delegate = _reference_runner(str(reference), delegate)
    results = [Result(kind="eval", artifact=str(reference), delegate=ref_delegate, runner=runner,
                      settings=settings, metrics=ref_metrics)]

    for path in variants:
        model = TfliteModel(path, threads=threads, delegate=delegate)
        model.check_input(ds.sample_shape, f"dataset {ds.name!r}")
        values = collect(model.predict, ds, n, batch_size, counter(str(path)))
        if values.shape != ref_values.shape:
            raise UserError(f"Model {path} gives outputs of shape {values.shape[1:]}, the reference "
                            f"{reference} {ref_values.shape[1:]}: they are not variants of one model.")
        metrics: dict[str, Any] = {"role": "variant", "reference": str(reference), **agreement(ref_values, values)}
        if labels is not None and ref_correct is not None:
            metrics.update(_accuracy(values, labels, top_k, resamples))
            drop, lo, hi = paired_bootstrap(ref_correct, values.argmax(1) == labels, resamples)
            metrics.update({"top1_drop": drop, "top1_drop_ci95": [lo, hi]})
        results.append(Result(kind="eval", artifact=str(path), delegate=delegate, settings=settings,
                              metrics=metrics, recipe=recipe_name(path)))
    return results


def _reference_runner(reference: str, delegate: str) -> tuple[str, str]:
    if reference.endswith(".tflite"):
        return "litert-python", delegate
    if reference.lower().endswith(".onnx"):
        return "onnxruntime", "cpu"
    return "tensorflow", "tensorflow"


def _accuracy(values: np.ndarray, labels: np.ndarray, top_k: int, resamples: int) -> dict[str, Any]:
    correct = values.argmax(1) == labels
    out: dict[str, Any] = {"top1": 100 * float(correct.mean()),
                           "top1_ci95": list(bootstrap_interval(correct, resamples))}
    if values.shape[1] > top_k:
        out[f"top{top_k}"] = 100 * float(topk_correct(values, labels, top_k).mean())
    return out


def _labels_for(ds: Dataset, ref_values: np.ndarray, n: int, reference: str) -> Optional[np.ndarray]:
    if ds.labels is None:
        return None
    if ref_values.ndim != 2:
        raise DatasetError(f"Dataset {ds.name!r} has class labels, but {reference} outputs shape "
                           f"{ref_values.shape[1:]}, not one score per class.")
    classes = ref_values.shape[1]
    labels = np.asarray(ds.labels[:n])
    wanted = ds.num_classes or 0
    if wanted > classes or labels.max() >= classes:
        raise DatasetError(f"Dataset {ds.name!r} has {max(wanted, int(labels.max()) + 1)} classes, but "
                           f"{reference} outputs {classes} scores: the labels do not match the model's "
                           "classes (wrong dataset, or a model trained on other classes?).")
    return labels
