"""Checks on a freshly converted flatbuffer, read back with the reader (no TensorFlow)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tflite_deploy.errors import ModelError
from tflite_deploy.recipes import Recipe
from tflite_deploy.tflite.reader import inspect_model


#: TFLite's integer LSTM kernels keep the cell state in int16 inside an int8 model: still full-integer.
LSTM_OPS = ("UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM", "LSTM")


def check_full_integer(data: bytes, recipe: Recipe, model_path: Path | str) -> list[str]:
    """A full-integer int8 recipe (no float fallback) whose file still computes in float is an error.

    The converter can return such a file without a word (e.g. from degenerate calibration ranges);
    the compute ops are read back from the flatbuffer and the float ones named. Returns notes for the
    artifact's sidecar: the ops that stay float in a calibrated recipe, and LSTMs' int16 cell state.
    """
    if recipe.activations != "int8" or not recipe.needs_calibration:
        return []
    with tempfile.TemporaryDirectory(prefix="tflite-deploy-check-") as tmp:
        path = Path(tmp) / "converted.tflite"
        path.write_bytes(data)
        report = inspect_model(path)
    summary = report.quantization
    lstm = sorted(op for op in report.op_histogram if op in LSTM_OPS)
    notes = [f"{', '.join(lstm)} run on TFLite's integer LSTM kernels: int8 weights and activations, the cell "
             "state in int16."] if lstm else []
    if summary.float_ops:
        ops = sorted(set(summary.float_ops))
        notes.append(f"{len(summary.float_ops)} compute op(s) stay float ({', '.join(ops)}): they have no integer "
                     "kernel for this model.")
    if recipe.allow_float_fallback or recipe.is_selective:
        return notes
    if summary.kind in ("int8", "uint8") or (summary.kind == "int16x8" and lstm and not summary.float_ops):
        return notes
    ops = sorted(set(summary.float_ops))
    shown = f"{len(summary.float_ops)} compute op(s) run in float ({', '.join(ops)})" if ops else \
        f"the result is {summary.label}"
    raise ModelError(f"Model {model_path} converted with recipe {recipe.name!r} is not full-integer: {shown}. "
                     "Check the calibration data, or set allow_float_fallback: true in a recipe to accept "
                     "float ops on purpose.")
