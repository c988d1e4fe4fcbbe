"""Calibrate once, quantize per trial: TFLite's QuantizationDebugger held open for the whole search.

The debugger converts the model with the converter set to calibrate only (one trace, one
calibration over the representative samples) and keeps the calibrated model. Each
``get_nondebug_quantized_model()`` then re-quantizes that calibrated model through ``mlir_quantize``
with the debugger's current options' denylists: no new trace, no new calibration. The public
``options`` setter would also rebuild the instrumented (numeric-verify) model and its interpreter
on every change, which a trial does not need, so :meth:`QuantizeSession.quantize` swaps the options
the quantize step reads (``_debug_options``, read only by ``_get_quantized_model`` in TF 2.21's
``lite/tools/optimize/debugging/python/debugger.py``).

The bytes equal what ``convert`` makes for a recipe with the same ``float_layers`` (it runs the
same debugger over the same calibration samples), which is why the written recipe reproduces them.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from tflite_deploy.conversion.tf_converter import Calibration, configure, float_layer_names, representative
from tflite_deploy.datasets.inputs import ModelInput, match_arrays
from tflite_deploy.errors import ModelError
from tflite_deploy.evaluation.layer_errors import LayerError, layer_errors_from_dump
from tflite_deploy.recipes import Recipe
from tflite_deploy.sources.tf_loader import captured_native_stderr, tensorflow

#: Samples the per-layer comparison runs over (the calibration itself uses all of the recipe's).
RANKING_SAMPLES = 64


class QuantizeSession:
    """One calibration of ``source`` for a full-integer ``recipe``; :meth:`quantize` per trial."""

    def __init__(self, source: Any, recipe: Recipe, calibration: Calibration) -> None:
        if recipe.activations != "int8":
            raise ValueError(f"the search quantizes int8 full-integer variants, not {recipe.summary()}")
        tf = tensorflow()
        self.recipe = recipe
        self._tf = tf
        conv = source.converter()
        configure(conv, recipe, calibration)  # calibrates on the recipe's count of samples
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        self._fully = recipe.io != "float32"
        with captured_native_stderr() as log:
            try:
                self._debugger = tf.lite.experimental.QuantizationDebugger(
                    converter=conv, debug_dataset=self._debug_dataset(calibration),
                    debug_options=tf.lite.experimental.QuantizationDebugOptions(fully_quantize=self._fully))
            except Exception as e:
                raise ModelError(f"Model {source.path} could not be calibrated for {recipe.summary()}: "
                                 f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__} "
                                 f"{log[0][-300:]}") from None
        # names a recipe's float_layers resolve against (convert -f checks them the same way)
        self.layer_names = float_layer_names(source)

    def _debug_dataset(self, calibration: Calibration) -> Callable[[], Any]:
        """The samples the per-layer comparison runs over. The converter takes a model with several inputs
        by signature name (a dict per sample), but the debugger's own interpreter loop sets a list in the
        order of its input tensors: so for several inputs the arrays are put in that order when it runs."""
        if not isinstance(calibration, Mapping) or len(calibration) < 2:
            return representative(calibration, RANKING_SAMPLES)
        arrays = {k: v[:RANKING_SAMPLES] for k, v in calibration.items()}

        def in_tensor_order() -> Iterator[list[np.ndarray]]:
            details = self._debugger._quant_interpreter.get_input_details()
            inputs = [ModelInput(str(d["name"]), (), "", str(d["name"])) for d in details]
            keys = match_arrays(list(arrays), inputs, "the calibrated model", "the calibration samples")
            for i in range(len(next(iter(arrays.values())))):
                yield [arrays[keys[inp.name]][i:i + 1] for inp in inputs]

        return in_tensor_order

    def ranking(self) -> list[LayerError]:
        """Per-layer error of the full-integer model, most sensitive first, restricted to layers a
        recipe can name (op output tensors of the float model)."""
        with captured_native_stderr():
            self._debugger.run()
            buf = io.StringIO()
            self._debugger.layer_statistics_dump(buf)
        errors = layer_errors_from_dump(list(csv.DictReader(io.StringIO(buf.getvalue()))))
        known = set(self.layer_names)
        return [e for e in errors if e.tensor_name in known]

    def quantize(self, float_layers: Sequence[str] = ()) -> bytes:
        """The int8 model with ``float_layers`` (op output tensor names) kept float; no recalibration."""
        self._debugger._debug_options = self._tf.lite.experimental.QuantizationDebugOptions(
            denylisted_nodes=list(float_layers) or None, fully_quantize=self._fully)
        with captured_native_stderr():  # mlir_quantize prints its settings on stderr
            return self._debugger.get_nondebug_quantized_model()
