"""Source models from anywhere: Keras/SavedModel (TF converter), a float ``.tflite`` (AI Edge
Quantizer), ONNX (onnx2tf, then the TF converter; ONNX Runtime as the reference).

``open_source`` is the one dispatch on the source's type; ``convert`` calls it first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np


def source_kind(model: Any) -> str:
    """``tflite``, ``onnx`` or ``tensorflow`` (Keras files, SavedModel folders, loaded models)."""
    if isinstance(model, (str, Path)):
        suffix = Path(model).suffix.lower()
        if suffix in (".tflite", ".onnx"):
            return suffix[1:]
    return "tflite" if getattr(model, "framework", None) == "tflite" else "tensorflow"


def open_source(model: Any, input_shape: str | Sequence[int] | None = None, dataset: Any = None, *,
                unsafe_deserialization: bool = False) -> Any:
    """Load ``model`` (a path or an already loaded source) as the matching source object.

    ``input_shape`` (``(1, 3, 224, 224)`` or ``"1,3,224,224"``) fixes an ONNX model's dynamic input
    dimensions; samples from ``dataset`` (a spec or a Dataset) feed onnx2tf's own checks (never a
    download). ``unsafe_deserialization`` lets a Keras file's Lambda layers load (they run Python code).
    """
    if not isinstance(model, (str, Path)):
        return model
    if isinstance(input_shape, str):
        input_shape = parse_input_shape(input_shape)
    kind = source_kind(model)
    if input_shape is not None and kind != "onnx":
        from tflite_deploy.errors import UserError

        raise UserError(f"input_shape applies to ONNX models; {model} has its input shape built in.",
                        param="input_shape")
    if kind == "tflite":
        from tflite_deploy.sources.tflite import load_tflite_source

        return load_tflite_source(model)
    if kind == "onnx":
        from tflite_deploy.sources.onnx import load_onnx

        return load_onnx(model, input_shape, _samples(dataset))
    from tflite_deploy.sources.keras import load_model

    return load_model(model, unsafe_deserialization=unsafe_deserialization)


def parse_input_shape(text: str) -> tuple[int, ...]:
    """``"1,3,224,224"`` -> ``(1, 3, 224, 224)`` (the CLI's ``--input-shape``)."""
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        from tflite_deploy.errors import UserError

        raise UserError(f"input_shape takes whole numbers separated by commas, e.g. 1,3,224,224, not {text!r}.",
                        param="input_shape") from None


def _samples(dataset: Any, n: int = 20) -> Optional[np.ndarray | dict[str, np.ndarray]]:
    """The first samples for onnx2tf's checks: one float array, or arrays by input name (dtypes kept)."""
    if dataset is None:
        return None
    from tflite_deploy.datasets import open_dataset

    ds = open_dataset(dataset) if isinstance(dataset, str) else dataset
    x = ds.take(n)
    return {k: np.asarray(v) for k, v in x.items()} if isinstance(x, dict) else np.asarray(x, dtype=np.float32)
