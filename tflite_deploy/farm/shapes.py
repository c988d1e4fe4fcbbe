"""A model's input shape and dtype read without TensorFlow (the plan's cheap dataset-fit check)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Mapping, Optional

from tflite_deploy.errors import UserError


def cheap_input_shape(path: Path) -> Optional[tuple[tuple[Optional[int], ...], str]]:
    """The first input's shape (with batch) and dtype, read without TensorFlow, or None.

    ``.tflite``: from the flatbuffer. ``.keras``: the ``config.json`` inside the zip. ``.h5``: the
    ``model_config`` attribute. A SavedModel (or a config we cannot read) gives None: not checked.
    """
    suffix = path.suffix.lower()
    try:
        if suffix == ".tflite":
            from tflite_deploy.tflite.reader import inspect_model

            first = inspect_model(path).inputs[0]
            return tuple(first.shape), first.dtype
        if suffix == ".keras" and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                return _keras_input(json.loads(z.read("config.json")))
        if suffix in (".h5", ".hdf5"):
            import h5py

            with h5py.File(path, "r") as f:
                raw = f.attrs.get("model_config")
            if raw is not None:
                return _keras_input(json.loads(raw.decode() if isinstance(raw, bytes) else raw))
    except UserError:
        raise
    except Exception:  # an unreadable file is the converter's to report, with its own message
        return None
    return None


def _keras_input(config: Mapping[str, Any]) -> Optional[tuple[tuple[Optional[int], ...], str]]:
    """Input shape from a Keras model config (Keras 3 ``batch_shape``, Keras 2 ``batch_input_shape``)."""
    inner = config.get("config", {}) if isinstance(config.get("config"), Mapping) else {}
    layers = inner.get("layers") or []
    inputs = [lay for lay in layers if isinstance(lay, Mapping) and lay.get("class_name") == "InputLayer"]
    if len(inputs) == 1:
        c = inputs[0].get("config", {})
        shape = c.get("batch_shape") or c.get("batch_input_shape")
        dtype = c.get("dtype")
        dtype = dtype.get("config", {}).get("name") if isinstance(dtype, Mapping) else dtype
        if shape:
            return tuple(shape), str(dtype or "float32")
    build = config.get("build_config", {}) or {}
    shape = build.get("input_shape") if isinstance(build, Mapping) else None
    if shape and all(isinstance(d, (int, type(None))) for d in shape):
        return tuple(shape), "float32"
    return None
