"""The TFLite converter adapter: one recipe + one (possibly fine-tuned) model -> a .tflite artifact.

This module only drives TensorFlow's converter; it never trains. Recipes with ``optimize`` steps
are fine-tuned by the verb layer (:mod:`tflite_deploy.conversion.run`) before they reach it.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Union

import numpy as np

from tflite_deploy.artifact import Artifact, save_artifact
from tflite_deploy.errors import ModelError, RecipeError
from tflite_deploy.sources.keras import SourceModel
from tflite_deploy.recipes import Recipe
from tflite_deploy.sources.common import match_layers
from tflite_deploy.sources.tf_loader import captured_native_stderr, tensorflow


def convert_to_artifact(source: SourceModel, recipe: Recipe, calibration: Optional[np.ndarray],
                        out_dir: str | Path, meta: dict[str, Any], started: Optional[float] = None, *,
                        check: Optional[Callable[[bytes, Recipe, Path], Any]] = None,
                        batch: Optional[int] = None) -> Artifact:
    """Convert with one recipe and write ``NAME.RECIPE.tflite`` and its sidecar.

    ``started`` (a ``time.perf_counter()`` value) lets the recorded time include earlier work on
    this variant, such as fine-tuning. ``check(data, recipe, model path)`` may refuse the converted
    bytes (raise) before anything is written (the verbs pass the reader's full-integer check); the
    lines it returns join the sidecar's ``warnings``. ``batch``: see :func:`convert_bytes`.
    """
    started = time.perf_counter() if started is None else started
    notes: dict[str, Any] = {}
    data = convert_bytes(source, recipe, calibration, notes, batch)
    if check is not None:
        said = check(data, recipe, source.path) or []
        if said:
            notes["warnings"] = [*notes.get("warnings", []), *said]
    return save_artifact(Path(out_dir), source.name, recipe.name, data,
                         {**meta, **notes, "recipe": recipe.to_dict()}, time.perf_counter() - started)


#: The converter's words when recurrent layers (LSTM/GRU loops) need static shapes to become builtins.
_NEEDS_STATIC_BATCH = ("TensorListReserve", "tensor list ops", "TensorList")

Calibration = Union[np.ndarray, Mapping[str, np.ndarray]]


def convert_bytes(source: SourceModel, recipe: Recipe, calibration: Optional[Calibration],
                  notes: Optional[dict[str, Any]] = None, batch: Optional[int] = None) -> bytes:
    """Run the TFLite converter for one recipe; returns the flatbuffer.

    A model with a dynamic batch whose recurrent layers cannot lower with it (TensorList ops) is
    converted again with a static batch: ``batch``, else 1; ``notes`` then gets ``fixed_batch`` and a
    ``warnings`` line. ``batch`` given fixes the batch of any model with a dynamic one (the verb checks it).
    """
    if recipe.needs_aeq:  # hook: int4 / weight-only / blockwise exist only in the AI Edge Quantizer
        raise RecipeError(f"Recipe {recipe.name!r} ({recipe.summary()}) needs the AI Edge Quantizer, which "
                          f"quantizes float .tflite files: convert {source.path} with -r float32 first, then "
                          "convert the float32 .tflite with this recipe.")
    loops = getattr(source, "while_loops", ())
    if recipe.needs_calibration and loops:  # refused before the converter runs: it would take the process down
        raise RecipeError(
            f"Recipe {recipe.name!r} calibrates activations, and TensorFlow's converter crashes (SIGSEGV) calibrating "
            f"the WHILE loop that {', '.join(loops)} in {source.path} converts to (GRU and SimpleRNN have no fused "
            "TFLite op, unlike LSTM). Use float32, float16 or dynamic; for int8, re-save the model with the layer "
            "unrolled (unroll=True): one step per token, no loop, and it calibrates.")
    dynamic = getattr(source, "dynamic_batch", False)
    if batch is not None and dynamic:  # the user's static batch, whatever the layers
        data = _convert_once(source, recipe, calibration, batch)
        if notes is not None:
            notes["fixed_batch"] = batch
            notes["warnings"] = [f"{source.path} has a dynamic batch: converted with the fixed batch of {batch} "
                                 f"asked for (batch={batch}); it runs {batch} sample(s) at a time."]
        return data
    if not (dynamic and getattr(source, "recurrent", False)):  # known recurrent: straight to a static batch
        try:
            return _convert_once(source, recipe, calibration, None)
        except ModelError as e:
            if not (dynamic and any(w in str(e) for w in _NEEDS_STATIC_BATCH)):
                raise
    data = _convert_once(source, recipe, calibration, 1)
    if notes is not None:
        notes["fixed_batch"] = 1
        notes["warnings"] = [f"{source.path} has a dynamic batch its recurrent layers (TensorList ops) cannot be "
                             "converted with: converted with a fixed batch of 1 (run it one sample at a time; "
                             "batch=N / --batch N fixes another)."]
    return data


def _convert_once(source: SourceModel, recipe: Recipe, calibration: Optional[Calibration],
                  fixed_batch: Optional[int]) -> bytes:
    conv = source.converter(fixed_batch) if fixed_batch else source.converter()
    configure(conv, recipe, calibration, fixed_batch or 1)
    with captured_native_stderr() as log:
        try:
            if recipe.is_selective:
                return _selective(source, conv, recipe, calibration, fixed_batch or 1)
            return conv.convert()
        except (ModelError, RecipeError):
            raise
        except Exception as e:
            error = e
    raise ModelError(_explain_converter_error(source.path, recipe, error, log[0]))


def representative(calibration: Calibration, count: int, batch: int = 1) -> Callable[[], Any]:
    """The converter's representative dataset: ``batch`` samples at a time (a model converted with a static
    batch takes exactly that many), by input name when there are several."""
    if isinstance(calibration, Mapping):
        arrays = {k: v[:count] for k, v in calibration.items()}
        n = len(next(iter(arrays.values())))
        starts = range(0, n - batch + 1, batch)
        if len(arrays) == 1:
            only = next(iter(arrays.values()))
            return lambda: ([only[i:i + batch]] for i in starts)
        return lambda: ({k: v[i:i + batch] for k, v in arrays.items()} for i in starts)
    samples = calibration[:count]
    return lambda: ([samples[i:i + batch]] for i in range(0, len(samples) - batch + 1, batch))


def configure(conv: Any, recipe: Recipe, calibration: Optional[Calibration], batch: int = 1) -> None:
    """Set converter options from the recipe's fields (never from its name)."""
    tf = tensorflow()
    quantized = recipe.weights != "float32"
    if quantized:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if recipe.weights == "float16":
        conv.target_spec.supported_types = [tf.float16]
    if recipe.needs_calibration:
        assert calibration is not None
        conv.representative_dataset = representative(calibration, recipe.calibration_samples, batch)
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8 if recipe.activations == "int8"
               else tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        if recipe.allow_float_fallback or recipe.is_selective:
            ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
        conv.target_spec.supported_ops = ops
        if recipe.io != "float32":
            conv.inference_input_type = conv.inference_output_type = getattr(tf, recipe.io)
    if quantized and not recipe.per_channel:
        # The converter has no public switch for per-tensor weights; this private one is stable
        # since TF 2.4 and is what TFLite's own tests use.
        conv._experimental_disable_per_channel = True


def _selective(source: SourceModel, conv: Any, recipe: Recipe, calibration: Calibration, batch: int = 1) -> bytes:
    """Keep the recipe's layers/ops in float with TFLite's QuantizationDebugger denylists."""
    tf = tensorflow()
    nodes = _resolve_float_layers(source, recipe) if recipe.float_layers else None
    options = tf.lite.experimental.QuantizationDebugOptions(
        denylisted_nodes=nodes,
        denylisted_ops=list(recipe.float_ops) or None,
        fully_quantize=recipe.io != "float32")
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=conv, debug_dataset=representative(calibration, recipe.calibration_samples, batch),
        debug_options=options)
    return debugger.get_nondebug_quantized_model()


def float_layer_names(source: SourceModel) -> list[str]:
    """Names a recipe's ``float_layers`` can use: output tensor names of the float model's ops."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=source.converter().convert())
    tensors = interp.get_tensor_details()
    return [tensors[op["outputs"][0]]["name"] for op in interp._get_ops_details() if len(op["outputs"])]


def _resolve_float_layers(source: SourceModel, recipe: Recipe) -> list[str]:
    names = float_layer_names(source)
    try:
        return match_layers(recipe.float_layers, names)
    except KeyError as missing:
        shown = ", ".join(names[:30]) + (" ..." if len(names) > 30 else "")
        raise RecipeError(f"Recipe {recipe.name!r}: float layer {missing.args[0]!r} not found in model "
                          f"{source.path}. Give a Keras layer name or an op output tensor name: {shown}"
                          ) from None


_TF_OP = re.compile(r"\btf\.([A-Z][A-Za-z0-9_]*)")  # TF op names are CamelCase


def _explain_converter_error(path: Path, recipe: Recipe, e: Exception, native_log: str = "") -> str:
    text = f"{e}\n{native_log}"
    ops = sorted(set(_TF_OP.findall(text)))
    if ops and ("not supported" in text or "Select TF" in text or "custom" in text.lower()):
        return (f"Model {path} cannot be converted with recipe {recipe.name!r}: op(s) "
                f"{', '.join(ops)} are not TFLite builtins. Replace them in the model, or convert with "
                "TensorFlow select ops (not supported by tflite-deploy yet).")
    if "quantiz" in text.lower() and recipe.needs_calibration and not recipe.allow_float_fallback:
        first = text.strip().splitlines()[0][:400] if text.strip() else type(e).__name__
        return (f"Model {path} cannot be fully quantized with recipe {recipe.name!r}: {first}. Some op has "
                "no integer kernel; set allow_float_fallback: true in a recipe to keep it in float.")
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    detail = "; ".join(lines[:3])[:600] if lines else type(e).__name__
    return f"Model {path} could not be converted with recipe {recipe.name!r}: {detail}"
