"""Convert a source model to .tflite artifacts, one per recipe, with the TFLite converter.

The model is loaded once and every recipe that needs calibration draws the same samples from the
dataset, so variants differ only by their recipe.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

from tflite_deploy.artifact import Artifact, save_artifact
from tflite_deploy.datasets import Dataset, open_dataset
from tflite_deploy.errors import DatasetError, ModelError, RecipeError
from tflite_deploy.models import SourceModel, load_model
from tflite_deploy.recipes import Recipe
from tflite_deploy.tf_loader import captured_native_stderr, tensorflow, versions

Progress = Callable[[Recipe, Optional[Artifact]], None]


def convert(model: str | Path | SourceModel, recipes: Sequence[Recipe], dataset: str | Dataset | None = None,
            out_dir: str | Path = "out", *, on_done: Optional[Progress] = None) -> list[Artifact]:
    """Convert ``model`` with each recipe into ``out_dir``; returns the artifacts in recipe order.

    ``dataset`` (a spec such as ``digits:train`` or a :class:`Dataset`) is required when a recipe
    calibrates (int8, int16x8); its samples must fit the model's input, which is checked first.
    """
    if not recipes:
        raise RecipeError("No recipe given: name at least one (see `tflite-deploy recipes`).")
    source = model if isinstance(model, SourceModel) else load_model(model)
    calibration = _calibration_samples(source, recipes, dataset)
    meta_common: dict[str, Any] = {"source": source_meta(source), "versions": versions()}
    if calibration is not None:
        meta_common["calibration"] = {"dataset": calibration[1], "samples_available": len(calibration[0])}
    artifacts = []
    for recipe in recipes:
        started = time.perf_counter()
        variant, extra = source, {}
        if recipe.optimize:  # TF-MOT steps (QAT, prune, cluster, ...) fine-tune on the dataset first
            from tflite_deploy.optimize.run import apply_steps

            variant, extra = apply_steps(source, recipe, dataset)
        art = convert_to_artifact(variant, recipe, None if calibration is None else calibration[0], out_dir,
                                  {**meta_common, **extra}, started)
        artifacts.append(art)
        if on_done:
            on_done(recipe, art)
    return artifacts


def source_meta(source: SourceModel) -> dict[str, Any]:
    """What a sidecar records of the model a variant was made from."""
    return {"path": str(source.path), "sha256": source.sha256, "format": source.framework,
            "input_shape": list(source.input_shape), "input_dtype": source.input_dtype}


def convert_to_artifact(source: SourceModel, recipe: Recipe, calibration: Optional[np.ndarray],
                        out_dir: str | Path, meta: dict[str, Any], started: Optional[float] = None) -> Artifact:
    """Convert with one recipe and write ``NAME.RECIPE.tflite`` and its sidecar.

    ``started`` (a ``time.perf_counter()`` value) lets the recorded time include earlier work on
    this variant, such as fine-tuning.
    """
    started = time.perf_counter() if started is None else started
    data = convert_bytes(source, recipe, calibration)
    return save_artifact(Path(out_dir), source.name, recipe.name, data, {**meta, "recipe": recipe.to_dict()},
                         time.perf_counter() - started)


def _calibration_samples(source: SourceModel, recipes: Sequence[Recipe], dataset: str | Dataset | None
                         ) -> Optional[tuple[np.ndarray, str]]:
    needed = max((r.calibration_samples for r in recipes if r.needs_calibration), default=0)
    if dataset is None:
        if needed:
            names = ", ".join(r.name for r in recipes if r.needs_calibration)
            raise DatasetError(f"Recipe(s) {names} calibrate activation ranges and need a representative "
                               "dataset: pass --data (e.g. --data digits:train or an image folder).")
        return None
    ds = open_dataset(dataset) if isinstance(dataset, str) else dataset
    ds.check_fits(source.input_shape, source.input_dtype, f"model {source.path}")
    return ds.take(max(needed, 1)).astype(np.float32), ds.name


def convert_bytes(source: SourceModel, recipe: Recipe, calibration: Optional[np.ndarray]) -> bytes:
    """Run the TFLite converter for one recipe; returns the flatbuffer."""
    conv = source.converter()
    configure(conv, recipe, calibration)
    with captured_native_stderr() as log:
        try:
            if recipe.is_selective:
                return _selective(source, conv, recipe, calibration)
            return conv.convert()
        except (ModelError, RecipeError):
            raise
        except Exception as e:
            error = e
    raise ModelError(_explain_converter_error(source.path, recipe, error, log[0]))


def configure(conv: Any, recipe: Recipe, calibration: Optional[np.ndarray]) -> None:
    """Set converter options from the recipe's fields (never from its name)."""
    tf = tensorflow()
    quantized = recipe.weights != "float32"
    if quantized:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if recipe.weights == "float16":
        conv.target_spec.supported_types = [tf.float16]
    if recipe.needs_calibration:
        assert calibration is not None
        samples = calibration[: recipe.calibration_samples]
        conv.representative_dataset = lambda: ([samples[i:i + 1]] for i in range(len(samples)))
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8 if recipe.activations == "int8"
               else tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        if recipe.allow_float_fallback or recipe.is_selective:
            ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
        conv.target_spec.supported_ops = ops
        if recipe.io != "float32":
            conv.inference_input_type = conv.inference_output_type = getattr(tf, recipe.io.replace("uint8", "int8"))
    if quantized and not recipe.per_channel:
        # The converter has no public switch for per-tensor weights; this private one is stable
        # since TF 2.4 and is what TFLite's own tests use.
        conv._experimental_disable_per_channel = True


def _selective(source: SourceModel, conv: Any, recipe: Recipe, calibration: np.ndarray) -> bytes:
    """Keep the recipe's layers/ops in float with TFLite's QuantizationDebugger denylists."""
    tf = tensorflow()
    nodes = _resolve_float_layers(source, recipe) if recipe.float_layers else None
    samples = calibration[: recipe.calibration_samples]
    options = tf.lite.experimental.QuantizationDebugOptions(
        denylisted_nodes=nodes,
        denylisted_ops=list(recipe.float_ops) or None,
        fully_quantize=recipe.io != "float32")
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=conv, debug_dataset=lambda: ([samples[i:i + 1]] for i in range(len(samples))),
        debug_options=options)
    return debugger.get_nondebug_quantized_model()


def float_layer_names(source: SourceModel) -> list[str]:
    """Names a recipe's ``float_layers`` can use: output tensor names of the float model's ops."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=source.converter().convert())
    tensors = interp.get_tensor_details()
    return [tensors[op["outputs"][0]]["name"] for op in interp._get_ops_details() if len(op["outputs"])]


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


def conversion_table_rows(artifacts: Iterable[Artifact]) -> list[dict[str, Any]]:
    """Rows for the size table: raw and gzipped size, and the ratio to the float32 variant."""
    arts = list(artifacts)
    ref = next((a for a in arts if a.meta.get("recipe", {}).get("weights") == "float32"
                and a.meta.get("recipe", {}).get("activations") == "float32"), None)
    rows = []
    for a in arts:
        rows.append({**a.to_dict(),
                     "ratio": (ref.size_bytes / a.size_bytes) if ref else None,
                     "gzip_ratio": (ref.gzip_bytes / a.gzip_bytes) if ref else None,
                     "summary": Recipe.from_dict(a.meta["recipe"]).summary()})
    return rows
