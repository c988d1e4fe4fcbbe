"""What every source path shares, whichever tool makes the variants (TF converter or AI Edge Quantizer).

Plain functions over a duck-typed source (``path``, ``sha256``, ``framework``, ``input_shape``,
``input_dtype``): the sidecar's record of the source, the calibration samples all recipes share,
and the matching of a recipe's ``float_layers`` names to op output tensor names.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from tflite_deploy.datasets import Dataset, check_samples, open_dataset
from tflite_deploy.datasets.inputs import feed
from tflite_deploy.errors import DatasetError
from tflite_deploy.recipes import Recipe


def source_meta(source: Any) -> dict[str, Any]:
    """What a sidecar records of the model a variant was made from."""
    meta = {"path": str(source.path), "sha256": source.sha256, "format": source.framework,
            "input_shape": list(source.input_shape), "input_dtype": source.input_dtype}
    inputs = getattr(source, "inputs", ())
    if len(inputs) > 1:
        meta["inputs"] = [{"name": i.name, "shape": list(i.shape), "dtype": i.dtype} for i in inputs]
    onnx_shape = getattr(source, "onnx_input_shape", None)  # ONNX sources: the --input-shape converted with
    if onnx_shape:
        meta["onnx_input_shape"] = list(onnx_shape)
    return meta


def calibration_samples(source: Any, recipes: Sequence[Recipe], dataset: str | Dataset | None
                        ) -> Optional[tuple[Any, str]]:
    """The samples (and the dataset's name) every calibrating recipe draws from, checked against the model.

    For a model with inputs by name (a Keras or SavedModel source) the samples are a dict
    {input name: array}, dtypes kept (token ids stay integers); else one float32 array."""
    needed = max((r.calibration_samples for r in recipes if r.needs_calibration), default=0)
    if dataset is None:
        if needed:
            names = ", ".join(r.name for r in recipes if r.needs_calibration)
            raise DatasetError(f"Recipe(s) {names} calibrate activation ranges and need a representative "
                               "dataset: pass data=digits:train (or an image folder, a .npz/.npy file).", param="data")
        return None
    ds = open_dataset(dataset) if isinstance(dataset, str) else dataset
    inputs = getattr(source, "inputs", ())
    if inputs:
        named = feed(ds.take(max(needed, 1)), inputs, f"model {source.path}", ds.name)
        if needed:  # NaN/Inf or constant samples would calibrate a model that silently runs in float
            for name, x in named.items():
                if np.issubdtype(x.dtype, np.floating):
                    check_samples(x, ds.name if len(named) == 1 else f"{ds.name}[{name}]")
        return named, ds.name
    ds.check_fits(source.input_shape, source.input_dtype, f"model {source.path}")
    samples = ds.take(max(needed, 1)).astype(np.float32)
    if needed:  # NaN/Inf or constant samples would calibrate a model that silently runs in float
        check_samples(samples, ds.name)
    return samples, ds.name


def match_layers(wanted: Sequence[str], names: Sequence[str]) -> list[str]:
    """Expand user layer names to op output tensor names.

    A name matches a tensor name exactly, or matches a Keras layer: the converter names tensors
    like ``model/logits/MatMul;model/logits/BiasAdd``, so ``logits`` matches any op whose name has
    ``logits`` as a path component.
    """
    out = []
    for w in wanted:
        hits = [n for n in names if n == w or any(w in part.split("/") for part in n.split(";"))]
        if not hits:
            raise KeyError(w)
        out += [h for h in hits if h not in out]
    return out
