"""Checks on a freshly converted flatbuffer, read back with the reader (no TensorFlow)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tflite_deploy.errors import ModelError
from tflite_deploy.recipes import Recipe
from tflite_deploy.tflite.reader import inspect_model


def check_full_integer(data: bytes, recipe: Recipe, model_path: Path | str) -> None:
    """A full-integer int8 recipe (no float fallback) whose file still computes in float is an error.

    The converter can return such a file without a word (e.g. from degenerate calibration ranges);
    the compute ops are read back from the flatbuffer and the float ones named.
    """
    if recipe.activations != "int8" or not recipe.needs_calibration or recipe.allow_float_fallback \
            or recipe.is_selective:
        return
    with tempfile.TemporaryDirectory(prefix="tflite-deploy-check-") as tmp:
        path = Path(tmp) / "converted.tflite"
        path.write_bytes(data)
        summary = inspect_model(path).quantization
    if summary.kind in ("int8", "uint8"):
        return
    ops = sorted(set(summary.float_ops))
    shown = f"{len(summary.float_ops)} compute op(s) run in float ({', '.join(ops)})" if ops else \
        f"the result is {summary.label}"
    raise ModelError(f"Model {model_path} converted with recipe {recipe.name!r} is not full-integer: {shown}. "
                     "Check the calibration data, or set allow_float_fallback: true in a recipe to accept "
                     "float ops on purpose.")
