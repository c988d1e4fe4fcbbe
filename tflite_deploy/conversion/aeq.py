"""Quantize a float ``.tflite`` with Google's AI Edge Quantizer (AEQ): our recipes, no TensorFlow.

A float ``.tflite`` source (:mod:`tflite_deploy.sources.tflite`) is rewritten by AEQ directly. This
module maps a :class:`~tflite_deploy.recipes.Recipe`'s fields onto an AEQ recipe (never its name),
calibrates from our dataset, and writes the same artifacts (``.tflite`` + sidecar) as the TF
converter path.

Two AEQ habits we guard against:

- its per-layer rules match op *output tensor names* by regex, and a rule that matches nothing is
  silently ignored: we resolve every ``float_layers`` name against the model's op output names
  first (an unknown name is a RecipeError listing the names there are) and every ``float_ops`` type
  against the model's ops;
- its calibration keeps a moving average of per-call min/max, so a few small calls give ranges
  that depend on call order: we calibrate with its min/max update instead (the TF converter's
  rule: the range over all samples), in large batches.
"""

from __future__ import annotations

import contextlib
import io
import re
import time
import warnings
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from tflite_deploy.artifact import Artifact, save_artifact
from tflite_deploy.datasets.inputs import sample_count
from tflite_deploy.errors import ModelError, RecipeError
from tflite_deploy.tflite.native_output import captured_native_stderr
from tflite_deploy.recipes import Recipe
from tflite_deploy.sources.common import match_layers, source_meta
from tflite_deploy.sources.tflite import TfliteSource, interpreter

_CALIBRATION_BATCH = 256  # samples per calibration call (memory, not accuracy: ranges are min/max)


# ------------------------------------------------------------------------------------- recipes
def aeq_recipe(recipe: Recipe, source: TfliteSource) -> list[dict[str, Any]]:
    """The AI Edge Quantizer recipe (a list of rules, later rules win) for ``recipe`` on ``source``."""
    from ai_edge_quantizer import algorithm_manager, qtyping, recipe_manager

    op_all = qtyping.TFLOperationName.ALL_SUPPORTED
    no_quant = algorithm_manager.AlgorithmName.NO_QUANTIZE
    manager = recipe_manager.RecipeManager()
    granularity = _granularity(recipe, qtyping)
    bits = 4 if recipe.weights == "int4" else 8
    if recipe.weights == "float16":
        manager.add_weight_only_config(".*", op_all, num_bits=16,
                                       algorithm_key=algorithm_manager.AlgorithmName.FLOAT_CASTING)
    elif recipe.activations != "float32":
        manager.add_static_config(".*", op_all, activation_num_bits=16 if recipe.activations == "int16" else 8,
                                  weight_num_bits=8, weight_granularity=granularity)
        if recipe.io == "float32":
            # AEQ quantizes the model's inputs and outputs too; no rule on them keeps float I/O,
            # with QUANTIZE/DEQUANTIZE ops at the boundary (what the TF converter makes).
            for io_op in (qtyping.TFLOperationName.INPUT, qtyping.TFLOperationName.OUTPUT):
                manager.add_quantization_config(".*", io_op, algorithm_key=no_quant)
    elif recipe.weight_only:
        manager.add_weight_only_config(".*", op_all, num_bits=bits, granularity=granularity)
    else:
        manager.add_dynamic_config(".*", op_all, num_bits=bits, granularity=granularity)
    known = {op.value for op in qtyping.TFLOperationName}
    for op in _float_ops(recipe, source):
        if op in known:  # ops AEQ has no name for are never quantized by it: float already
            manager.add_quantization_config(".*", qtyping.TFLOperationName(op), algorithm_key=no_quant)
    for name in float_layer_tensors(recipe, source):
        # AEQ's scope of an op is its output names joined and ended by ";": match one whole name
        manager.add_quantization_config(f"(^|;){re.escape(name)};", op_all, algorithm_key=no_quant)
    return manager.get_quantization_recipe()


def _granularity(recipe: Recipe, qtyping: Any) -> Any:
    if recipe.block_size:
        return qtyping.QuantGranularity(f"BLOCKWISE_{recipe.block_size}")
    return qtyping.QuantGranularity.CHANNELWISE if recipe.per_channel else qtyping.QuantGranularity.TENSORWISE


def _float_ops(recipe: Recipe, source: TfliteSource) -> list[str]:
    wanted = [op.upper() for op in recipe.float_ops]
    missing = [op for op in wanted if op not in source.op_types]
    if missing:
        raise RecipeError(f"Recipe {recipe.name!r}: float op type(s) {', '.join(missing)} do not occur in model "
                          f"{source.path}, so the rule would keep nothing in float. Its op types: "
                          f"{', '.join(source.op_types)}.")
    return wanted


def float_layer_tensors(recipe: Recipe, source: TfliteSource) -> list[str]:
    """Op output tensor names the recipe's ``float_layers`` name (each name must match one)."""
    if not recipe.float_layers:
        return []
    try:
        return match_layers(recipe.float_layers, source.op_outputs)
    except KeyError as missing:
        shown = ", ".join(source.op_outputs[:30]) + (" ..." if len(source.op_outputs) > 30 else "")
        raise RecipeError(
            f"Recipe {recipe.name!r}: float layer {missing.args[0]!r} matches no op output tensor of model "
            f"{source.path} (the AI Edge Quantizer would silently ignore the rule). Give an op output "
            f"tensor name, or a path component of one: {shown}") from None


def check_recipe(recipe: Recipe) -> None:
    """Refuse recipe settings the AI Edge Quantizer cannot make, before any work."""
    if recipe.optimize:
        raise RecipeError(f"Recipe {recipe.name!r} fine-tunes with TF-MOT ({len(recipe.optimize)} step(s)); a "
                          ".tflite source cannot be trained. Use the Keras model, or a post-training recipe.")
    if recipe.allow_float_fallback:
        raise RecipeError(f"Recipe {recipe.name!r}: allow_float_fallback is a TF converter setting; the AI Edge "
                          "Quantizer leaves ops without integer kernels in float by itself. Drop the key.")
    if recipe.activations == "int8" and recipe.io not in ("float32", "int8"):
        raise RecipeError(f"Recipe {recipe.name!r}: the AI Edge Quantizer makes int8 models with float32 or "
                          f"int8 I/O, not {recipe.io}.")
    if recipe.weights == "float16" and recipe.is_selective:
        raise RecipeError(f"Recipe {recipe.name!r}: float_layers/float_ops apply to integer recipes.")


# ---------------------------------------------------------------------------------- quantizing
def quantize_bytes(source: TfliteSource, recipe: Recipe, calibration: Optional[np.ndarray]) -> bytes:
    """Quantize the float model with ``recipe``; returns the new flatbuffer."""
    check_recipe(recipe)
    if recipe.weights == "float32":
        return source.data  # the float reference: the source itself
    from ai_edge_quantizer import quantizer

    rules = aeq_recipe(recipe, source)
    chatter = io.StringIO()
    with captured_native_stderr() as native, contextlib.redirect_stdout(chatter), _quiet_absl(), \
            warnings.catch_warnings():
        # LiteRT warns that AEQ's calibration interpreter keeps every tensor: that is how it calibrates
        warnings.simplefilter("ignore", UserWarning)
        try:
            q = quantizer.Quantizer(source.data, rules)
            cal = None
            if q.need_calibration:
                assert calibration is not None
                cal = _calibrate(source, rules, calibration, recipe.calibration_samples)
            data = bytes(q.quantize(cal, enable_progress_report=False).quantized_model)
        except (RecipeError, ModelError):
            raise
        except Exception as e:
            error: Optional[Exception] = e
        else:
            error = None
    if error is not None:
        log = (chatter.getvalue() + "\n" + native[0]).strip()
        detail = str(error).strip().splitlines()[0][:400] if str(error).strip() else type(error).__name__
        raise ModelError(f"Model {source.path} could not be quantized by the AI Edge Quantizer with recipe "
                         f"{recipe.name!r}: {detail}" + (f" (its log: {log[-600:]})" if log else ""))
    _check_io(source, recipe, data)
    _check_quantized(source, recipe, data)
    return data


def _calibrate(source: TfliteSource, rules: list, samples: Any, count: int) -> dict:
    """Activation ranges over the first ``count`` samples (min/max, as the TF converter), in large batches.

    ``samples``: one array (a single-input model) or arrays by signature input name, dtypes kept
    (token ids stay integers; floats go in as float32)."""
    from ai_edge_quantizer import calibrator, recipe_manager
    from ai_edge_quantizer.utils import qsv_utils

    manager = recipe_manager.RecipeManager()
    manager.load_quantization_recipe(rules)
    cal = calibrator.Calibrator(source.data, num_threads=1, qsv_update_func=qsv_utils.min_max_update)
    named = samples if isinstance(samples, Mapping) else {source.input_name: samples}
    named = {k: (v.astype(np.float32) if np.issubdtype(v.dtype, np.floating) else v)[:count] for k, v in named.items()}
    n = sample_count(named)

    def calls(step: int) -> list[dict[str, np.ndarray]]:
        return [{k: v[i:i + step] for k, v in named.items()} for i in range(0, n, step)]

    try:
        cal.calibrate({source.signature: calls(_CALIBRATION_BATCH)}, manager)
    except (ValueError, RuntimeError):  # a model with a fixed batch size: one sample per call
        cal.reset_model_qsvs()
        cal.calibrate({source.signature: calls(1)}, manager)
    return cal.get_model_qsvs()


def _check_io(source: TfliteSource, recipe: Recipe, data: bytes) -> None:
    """Make sure the model's I/O types are what the recipe's ``io`` asked for."""
    interp = interpreter(data, source.path)
    want = np.dtype("float32") if recipe.activations == "float32" else np.dtype(recipe.io)
    # token ids, masks and indices (int32/int64/bool) are no recipe's business: they stay as they are
    kept = {"int32", "int64", "bool"}
    got = {np.dtype(d["dtype"]).name for d in interp.get_input_details() + interp.get_output_details()} - kept
    if got != {want.name}:
        raise ModelError(f"The AI Edge Quantizer made {', '.join(sorted(got))} inputs/outputs for model "
                         f"{source.path} with recipe {recipe.name!r}, which asks for {want.name} I/O; "
                         "the file was not written.")


def _check_quantized(source: TfliteSource, recipe: Recipe, data: bytes) -> None:
    """AEQ leaves ops its policy does not cover in float without a word: refuse a result that
    quantized nothing (e.g. a block size no op of this model supports)."""
    import tempfile

    from tflite_deploy.tflite.reader import inspect_model

    with tempfile.TemporaryDirectory(prefix="tflite-deploy-aeq-") as tmp:
        probe = Path(tmp) / "probe.tflite"
        probe.write_bytes(data)
        kind = inspect_model(probe).kind
    if kind == "float32":
        raise ModelError(f"The AI Edge Quantizer quantized no op of model {source.path} with recipe {recipe.name!r} "
                         f"({recipe.summary()}): its policy supports that mode for none of the model's ops "
                         f"({', '.join(source.op_types)}). Try another mode (e.g. drop block_size or weight_only).")


@contextlib.contextmanager
def _quiet_absl() -> Any:
    """AEQ logs warnings (rule overwrites, skipped ops) through absl/logging: keep them off the terminal."""
    import logging

    loggers = [logging.getLogger(), logging.getLogger("absl")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def check_recipes(source: TfliteSource, recipes: Sequence[Recipe]) -> None:
    """Refuse, before any quantizing, recipes the quantizer cannot make or whose names match nothing."""
    for r in recipes:
        check_recipe(r)
        float_layer_tensors(r, source)
        _float_ops(r, source)


def artifact_meta(source: TfliteSource) -> dict[str, Any]:
    """The sidecar fields every artifact quantized from ``source`` shares."""
    from tflite_deploy.sources.tf_loader import versions

    return {"source": source_meta(source), "versions": {**versions(), **_aeq_version()},
            "quantizer": "ai-edge-quantizer"}


def quantize_to_artifact(source: TfliteSource, recipe: Recipe, calibration: Optional[np.ndarray],
                         out_dir: str | Path, meta: dict[str, Any], started: float) -> Artifact:
    """One recipe: quantize and write the ``.tflite`` and its sidecar (as the TF converter path does)."""
    data = quantize_bytes(source, recipe, calibration)
    return save_artifact(Path(out_dir), source.name, recipe.name, data, {**meta, "recipe": recipe.to_dict()},
                         time.perf_counter() - started)


def _aeq_version() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return {"ai-edge-quantizer": version("ai-edge-quantizer")}
    except PackageNotFoundError:
        return {}
