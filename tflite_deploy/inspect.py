"""Old import path of the ``.tflite`` reader: it now lives in :mod:`tflite_deploy.tflite`.

Every public name of the former ``inspect.py`` is re-exported from its new module, so
``from tflite_deploy.inspect import inspect_model`` keeps working. ``render_report`` moved to
:mod:`tflite_deploy.render` (the rendering layer, above this one). New code imports from the new
modules.
"""

from __future__ import annotations

from tflite_deploy.tflite.analysis import load_op_support
from tflite_deploy.tflite.quant import Quantization, dequantize, quantize
from tflite_deploy.tflite.reader import constant_values, inspect_model
from tflite_deploy.tflite.records import (
    KINDS,
    SCHEMA,
    DelegateSupport,
    LayerWeights,
    ModelReport,
    PerChannelTensor,
    QuantizationSummary,
    TensorInfo,
    UnsupportedOp,
    WeightDtype,
    WeightTensor,
)

__all__ = [
    "KINDS", "SCHEMA", "DelegateSupport", "LayerWeights", "ModelReport", "PerChannelTensor",
    "Quantization", "QuantizationSummary", "TensorInfo", "UnsupportedOp", "WeightDtype",
    "WeightTensor", "constant_values", "dequantize", "inspect_model", "load_op_support",
    "quantize",
]

