"""The float reference an evaluation compares against, run once per (model, dataset) and cached.

A reference is a float ``.tflite`` (LiteRT), a Keras file or SavedModel (TensorFlow), or an
``.onnx`` (ONNX Runtime). Its outputs over the evaluation samples, by output name, are kept on disk
keyed by the hashes of the model file, the dataset (its samples, targets and preprocessing) and the
number of samples, so a later ``eval`` of new variants against the same reference loads neither
TensorFlow nor the model: a ResNet-size Keras reference costs minutes to load and run. The cache
lives in ``$TFLITE_DEPLOY_CACHE`` (default ``~/.cache/tflite-deploy``), under ``reference/``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import numpy as np

from tflite_deploy.datasets import Dataset
from tflite_deploy.datasets.inputs import Batch, feed, sample_count
from tflite_deploy.hashing import cache_root, sha256_remembered
from tflite_deploy.tflite.runtime import TfliteModel

NamedPredictor = Callable[[Batch], dict[str, np.ndarray]]
#: Bump when what is cached changes meaning (so old entries are never read as new).
CACHE_VERSION = "1"


def cache_dir() -> Path:
    return cache_root() / "reference"


def reference_predictor(path: str | Path, threads: Optional[int] = None, dataset: str = "the dataset"
                        ) -> NamedPredictor:
    """A float reference's outputs by name for a batch (an array, or arrays by input name)."""
    p = Path(path)
    if p.suffix.lower() == ".onnx":  # hook: an ONNX source's reference is the .onnx in ONNX Runtime
        from tflite_deploy.sources.onnx_runtime import onnx_reference

        onnx = onnx_reference(p, threads)
        return lambda x: {"output_0": np.asarray(onnx(x, dataset), np.float32)}
    if p.suffix == ".tflite":
        m = TfliteModel(p, threads=threads)
        return lambda x: m.predict_named(x, dataset)
    from tflite_deploy.sources.keras import load_model

    source = load_model(p)
    where = f"reference {p}"
    if source.keras_model is not None:
        return keras_predictor(source, where, dataset)
    from tflite_deploy.sources.tf_loader import tensorflow

    tf = tensorflow()
    fn = tf.saved_model.load(str(source.saved_model_dir)).signatures["serving_default"]

    def run_saved(x: Batch) -> dict[str, np.ndarray]:
        arrays = feed(x, source.inputs, where, dataset)
        out = fn(**{k: tf.constant(v) for k, v in arrays.items()})
        return {k: np.asarray(v, np.float32) for k, v in sorted(out.items())}

    return run_saved


def keras_predictor(source: Any, where: str, dataset: str = "the dataset") -> NamedPredictor:
    """A loaded Keras source's outputs by name for a batch, its inputs fed by name."""
    model = source.keras_model
    names = list(model.output_names)

    def run_keras(x: Batch) -> dict[str, np.ndarray]:
        arrays = feed(x, source.inputs, where, dataset)
        args = [arrays[i.name] for i in source.inputs]
        out = model.predict(args[0] if len(args) == 1 else args, verbose=0, batch_size=256)
        out = out if isinstance(out, (list, tuple)) else [out]
        return {n: np.asarray(o, np.float32) for n, o in zip(names, out)}

    return run_keras


def collect_named(predict: NamedPredictor, dataset: Dataset, limit: Optional[int], batch_size: int,
                  on_batch: Optional[Callable[[int], None]] = None) -> dict[str, np.ndarray]:
    """Every output by name over the first ``limit`` samples."""
    parts: list[dict[str, np.ndarray]] = []
    for x, _ in dataset.batches(batch_size, limit):
        parts.append(predict(x))
        if on_batch:
            on_batch(sample_count(x))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def reference_outputs(reference: str | Path, dataset: Dataset, n: int, batch_size: int,
                      threads: Optional[int] = None, on_batch: Optional[Callable[[int], None]] = None,
                      cache: bool = True) -> tuple[dict[str, np.ndarray], bool]:
    """The reference's outputs over the first ``n`` samples, and whether they came from the cache."""
    key = _key(reference, dataset, n) if cache else None
    path = cache_dir() / f"{key}.npz" if key else None
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as f:
                outputs = {k: f[k] for k in f.files}
            if on_batch:
                on_batch(n)
            return outputs, True
        except (OSError, ValueError):  # a damaged entry is recomputed and rewritten
            pass
    outputs = collect_named(reference_predictor(reference, threads, dataset.name), dataset, n, batch_size, on_batch)
    if path is not None:
        _write(path, outputs)
    return outputs, False


def _key(reference: str | Path, dataset: Dataset, n: int) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION}|{sha256_remembered(reference)}|{dataset.fingerprint()}|{n}".encode())
    return h.hexdigest()[:40]


def _write(path: Path, outputs: Mapping[str, Any]) -> None:
    """Atomically (temp file + rename): two evals at once never read half an entry."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".ref-", suffix=".npz", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **outputs)
        os.replace(tmp, path)
    except OSError:  # a read-only home: the cache is an optimisation, never a failure
        pass
