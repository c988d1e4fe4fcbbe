"""Per-layer quantization error of a full-integer variant (TFLite's QuantizationDebugger).

An adapter over TensorFlow's debugger: it re-quantizes the variant's source model with the
variant's recipe (read from the sidecar) through the converter's settings.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from tflite_deploy.datasets import Dataset, open_dataset
from tflite_deploy.errors import UserError
from tflite_deploy.progress import ProgressCallback, report


@dataclass(frozen=True)
class LayerError:
    op_name: str
    tensor_name: str
    scale: float
    zero_point: int
    mean_error: float
    max_abs_error: float
    rmse: float

    @property
    def rmse_over_scale(self) -> float:
        """RMSE in units of the quantization step: ~0.29 is ideal rounding noise, > 1 hurts."""
        return self.rmse / self.scale if self.scale else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "rmse_over_scale": self.rmse_over_scale}


def per_layer_errors(variant: str | Path, dataset: str | Dataset, samples: int = 64) -> list[LayerError]:
    """Per-layer quantization error of a full-integer variant, worst first (TFLite's QuantizationDebugger).

    The debugger re-quantizes the source model with the variant's recipe and compares every
    quantized op with its float twin on the same samples; the variant's sidecar says which source
    model and recipe made it.
    """
    from tflite_deploy.artifact import read_sidecar
    from tflite_deploy.conversion.tf_converter import configure
    from tflite_deploy.sources.keras import load_model
    from tflite_deploy.recipes import Recipe
    from tflite_deploy.sources.tf_loader import captured_native_stderr, tensorflow

    side = read_sidecar(Path(variant))
    if side is None:
        raise UserError(f"Per-layer errors need the sidecar JSON of {variant} (written by `tflite-deploy "
                        "convert`) to know its source model and recipe.")
    recipe = Recipe.from_dict(side["recipe"])
    if recipe.activations != "int8":
        # The debugger's float/quantized comparison exists for int8 only; for int16x8 it silently
        # quantizes to int8 instead, which would report the wrong model.
        raise UserError(f"Per-layer errors apply to int8 full-integer variants; {variant} is {recipe.summary()}.")
    source_path = Path(side["source"]["path"])
    if side["source"].get("format") == "tflite":  # AEQ-made variants have no TF converter to replay
        raise UserError(f"Per-layer errors re-quantize the source with the TF converter's QuantizationDebugger; "
                        f"{variant} was made from a .tflite by the AI Edge Quantizer, which it cannot replay.")
    if side["source"].get("format") == "onnx":  # reconverted through onnx2tf, as convert did
        from tflite_deploy.sources import open_source

        source = open_source(source_path, side["source"].get("onnx_input_shape"))
    else:
        source = load_model(source_path)
    ds = open_dataset(dataset) if isinstance(dataset, str) else dataset
    ds.check_fits(source.input_shape, source.input_dtype, f"model {source_path}")
    x = ds.take(max(samples, recipe.calibration_samples)).astype(np.float32)
    conv = source.converter()
    configure(conv, recipe, x)
    tf = tensorflow()
    debug_x = x[:samples]
    with captured_native_stderr():
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=conv, debug_dataset=lambda: ([debug_x[i:i + 1]] for i in range(len(debug_x))),
            debug_options=tf.lite.experimental.QuantizationDebugOptions(
                fully_quantize=recipe.io != "float32"))
        debugger.run()
        buf = io.StringIO()
        debugger.layer_statistics_dump(buf)
    import csv

    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    layers = [LayerError(r["op_name"], r["tensor_name"], float(r["scale"]), int(float(r["zero_point"])),
                         float(r["mean_error"]), float(r["max_abs_error"]),
                         float(np.sqrt(float(r["mean_squared_error"])))) for r in rows]
    return sorted(layers, key=lambda e: -np.nan_to_num(e.rmse_over_scale, nan=-1.0))


def int8_layer_errors(variants: Sequence[str | Path], dataset: str | Dataset,
                      progress: Optional[ProgressCallback] = None) -> dict[str, list[LayerError]]:
    """Per-layer errors (worst first) of each variant whose sidecar says full-integer int8; others are left out."""
    from tflite_deploy.artifact import read_sidecar

    chosen = [str(v) for v in variants if (read_sidecar(Path(v)) or {}).get("recipe", {}).get("activations") == "int8"]
    out = {}
    for i, v in enumerate(chosen):
        report(progress, "per-layer", i, len(chosen), f"Per-layer error of {Path(v).name} ...")
        out[v] = per_layer_errors(v, dataset)
    return out
