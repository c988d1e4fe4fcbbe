"""The convert verb: a source model to .tflite artifacts, one per recipe (the TF converter is in ``converter``).

The model is loaded once and every recipe that needs calibration draws the same samples from the
dataset, so variants differ only by their recipe. Each recipe converts in its own worker process
(:mod:`tflite_deploy.conversion.workers`, ``jobs`` at a time; one conversion uses one core): recipes convert in
parallel, and a recipe that fails, or whose converter crashes or runs out of memory, becomes a
:class:`ConversionFailure` row while the others are written. The calibration samples go to the
workers in a temporary ``.npy`` file. Recipes with ``optimize`` steps (TF-MOT fine-tuning), models
that exist only in memory, and ``jobs=1`` convert in this process, still one failure per recipe.
A float ``.tflite`` source goes the same way, each recipe quantized by the AI Edge Quantizer
(:mod:`tflite_deploy.conversion.aeq`) instead of the TF converter.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from tflite_deploy.artifact import Artifact, ConversionFailure
from tflite_deploy.conversion.tf_converter import convert_to_artifact
from tflite_deploy.datasets import Dataset
from tflite_deploy.errors import RecipeError, UserError
from tflite_deploy.sources.keras import SourceModel, load_model
from tflite_deploy.progress import ProgressCallback, report
from tflite_deploy.recipes import Recipe
from tflite_deploy.sources import open_source
from tflite_deploy.sources.common import calibration_samples, source_meta
from tflite_deploy.sources.tf_loader import versions
from tflite_deploy.tflite.checks import check_full_integer
from tflite_deploy.conversion.workers import Outcome, default_jobs, failure_message, run_isolated

Converted = Union[Artifact, ConversionFailure]

#: Peak memory of one conversion per byte of the source model: MobileNetV2 (a 14 MB file) peaks at
#: ~1.4 GB (measured, see docs/ENVIRONMENT); small models still cost TensorFlow's own ~0.5 GB.
BYTES_PER_MODEL_BYTE = 100
MIN_CONVERSION_BYTES = 500e6
#: For tests only: a worker converting the recipe of this name calls ``os.abort()``, as a crashing
#: converter would (tests/test_convert_workers.py). Never set it otherwise.
ABORT_FOR_TESTS = "TFLITE_DEPLOY_TEST_ABORT_RECIPE"


def convert(model: str | Path | SourceModel, recipes: Sequence[Recipe], dataset: str | Dataset | None = None,
            out_dir: str | Path = "out", *, progress: Optional[ProgressCallback] = None,
            input_shape: Optional[Sequence[int]] = None, jobs: Optional[int] = None,
            batch: Optional[int] = None) -> list[Converted]:
    """Convert ``model`` with each recipe into ``out_dir``; returns an :class:`Artifact`, or a
    :class:`ConversionFailure` (``.failed``) with its reason, per recipe, in recipe order.

    ``dataset`` (a spec such as ``digits:train`` or a :class:`Dataset`) is required when a recipe
    calibrates (int8, int16x8); its samples must fit the model's input, which is checked first.
    A recipe with ``optimize`` steps is fine-tuned first (the training verb), then converted.
    ``jobs``: conversions at a time in worker processes (default: the cores, bounded by the memory
    available at :data:`BYTES_PER_MODEL_BYTE` per model byte; 1 converts in this process).
    ``progress`` hears one ``convert`` event per recipe (item: the artifact or the failure).
    ``model`` may also be a float ``.tflite`` (quantized by the AI Edge Quantizer) or an ``.onnx``
    (converted by onnx2tf first; ``input_shape`` fixes its dynamic dimensions).
    ``batch``: the static batch to convert a Keras/SavedModel model with a dynamic batch with. Without it
    the batch stays dynamic, except where the converter needs a static one (recurrent layers): then 1.
    """
    if not recipes:
        raise RecipeError("No recipe given: name at least one (see `tflite-deploy recipes`).")
    if jobs is not None and jobs < 1:
        raise UserError(f"jobs must be 1 or more, not {jobs}: it is how many recipes convert at a time.", param="jobs")
    source = open_source(model, input_shape, dataset)
    check_batch(source, batch)
    if source.framework == "tflite":  # the AI Edge Quantizer rewrites the float .tflite itself
        from tflite_deploy.conversion import aeq as quantizer

        quantizer.check_recipes(source, recipes)
        meta_common: dict[str, Any] = quantizer.artifact_meta(source)
    else:
        meta_common = {"source": source_meta(source), "versions": versions()}
    calibration = calibration_samples(source, recipes, dataset)
    if calibration is not None:
        first = next(iter(calibration[0].values())) if isinstance(calibration[0], dict) else calibration[0]
        meta_common["calibration"] = {"dataset": calibration[1], "samples_available": len(first)}
    samples = None if calibration is None else calibration[0]
    done: dict[int, Converted] = {}

    def finished(i: int, item: Converted) -> None:
        done[i] = item
        upcoming = next((r.name for k, r in enumerate(recipes) if k not in done), "")
        report(progress, "convert", len(done), len(recipes), upcoming, item)

    report(progress, "convert", 0, len(recipes), recipes[0].name)
    isolated = [i for i, r in enumerate(recipes) if not r.optimize] if _on_disk(source) else []
    n_jobs = jobs or default_jobs(len(isolated), _conversion_bytes(source))
    if n_jobs > 1 and len(isolated) > 1:
        _convert_in_workers(source, recipes, isolated, samples, out_dir, meta_common, n_jobs, finished, batch)
    for i, recipe in enumerate(recipes):
        if i not in done:
            finished(i, _convert_here(source, recipe, samples, dataset, out_dir, meta_common, batch))
    return [done[i] for i in range(len(recipes))]


def check_batch(source: Any, batch: Optional[int]) -> None:
    """Refuse a ``batch`` that cannot apply: not a whole number above 0, a source that is not traced by
    TensorFlow here (a .tflite or ONNX source keeps its shapes), or a model whose batch is already fixed."""
    if batch is None:
        return
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise UserError(f"batch must be a whole number of 1 or more, not {batch!r}.", param="batch")
    if source.framework not in ("tf_keras", "keras3", "saved_model"):
        raise UserError(f"batch applies to Keras and SavedModel models; {source.path} ({source.framework}) keeps "
                        "the shapes it has" + (" (fix an ONNX model's with input_shape)." if source.framework == "onnx"
                                               else "."), param="batch")
    if not source.dynamic_batch and source.input_shape and source.input_shape[0] != batch:
        raise UserError(f"Model {source.path} has a fixed batch of {source.input_shape[0]}; batch={batch} cannot "
                        "change it (re-save the model with a dynamic batch, or leave batch out).", param="batch")


def _convert_here(source: Any, recipe: Recipe, samples: Any, dataset: Any,
                  out_dir: str | Path, meta_common: dict[str, Any], batch: Optional[int] = None) -> Converted:
    started = time.perf_counter()
    try:
        if source.framework == "tflite":
            from tflite_deploy.conversion.aeq import quantize_to_artifact

            return quantize_to_artifact(source, recipe, samples, out_dir, meta_common, started)
        variant, extra = source, {}
        if recipe.optimize:  # TF-MOT steps (QAT, prune, cluster, ...) fine-tune on the dataset first
            from tflite_deploy.optimization.training import apply_steps

            variant, extra = apply_steps(source, recipe, dataset)
        return convert_to_artifact(variant, recipe, samples, out_dir, {**meta_common, **extra}, started,
                                   check=check_full_integer, batch=batch)
    except Exception as e:  # one recipe's failure is its row; the sweep goes on
        return _failure(source, recipe, failure_message(e), time.perf_counter() - started)


def _convert_in_workers(source: SourceModel, recipes: Sequence[Recipe], which: list[int],
                        samples: Any, out_dir: str | Path, meta_common: dict[str, Any],
                        jobs: int, finished: Any, batch: Optional[int] = None) -> None:
    with tempfile.TemporaryDirectory(prefix="tflite-deploy-calibration-") as tmp:
        calib_path = None
        if isinstance(samples, dict):  # inputs by name: one array each, dtypes kept
            calib_path = str(Path(tmp) / "samples.npz")
            np.savez(calib_path, **samples)
        elif samples is not None:
            calib_path = str(Path(tmp) / "samples.npy")
            np.save(calib_path, samples)
        args = [(str(source.path), source.framework, getattr(source, "unsafe_deserialization", False), recipes[i],
                 calib_path, str(out_dir), meta_common, batch) for i in which]

        def done(k: int, outcome: Outcome) -> None:
            i = which[k]
            finished(i, outcome.value if outcome.ok else _failure(source, recipes[i], outcome.error, 0.0))

        run_isolated(convert_in_worker, args, jobs, done)


def convert_in_worker(model_path: str, framework: str, unsafe: bool, recipe: Recipe, calib_path: Optional[str],
                      out_dir: str, meta: dict[str, Any], batch: Optional[int] = None) -> Artifact:
    """One recipe in a worker process (see :mod:`tflite_deploy.conversion.workers`): load, convert, write."""
    if os.environ.get(ABORT_FOR_TESTS) == recipe.name:
        os.abort()
    for module in ("tensorflow", "tf_keras", "keras"):  # the CLI hides these in its own process too
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=module)
        warnings.filterwarnings("ignore", category=UserWarning, module=module)
    calibration: Any = None
    if calib_path is not None and calib_path.endswith(".npz"):
        with np.load(calib_path) as named:
            calibration = {k: named[k] for k in named.files}
    elif calib_path is not None:
        calibration = np.load(calib_path)
    if framework == "tflite":
        from tflite_deploy.conversion.aeq import quantize_to_artifact
        from tflite_deploy.sources.tflite import load_tflite_source

        return quantize_to_artifact(load_tflite_source(model_path), recipe, calibration, out_dir, meta,
                                    time.perf_counter())
    source = load_model(model_path, unsafe_deserialization=unsafe)
    started = time.perf_counter()  # the recorded time is the conversion's, as in one process
    return convert_to_artifact(source, recipe, calibration, out_dir, meta, started, check=check_full_integer,
                               batch=batch)


def _failure(source: SourceModel, recipe: Recipe, reason: str, seconds: float) -> ConversionFailure:
    return ConversionFailure(source.name, recipe.name, reason, seconds, {"recipe": recipe.to_dict()})


def _on_disk(source: SourceModel) -> bool:
    """Whether a worker can load the model again from its file (a Keras file or SavedModel, not an
    in-memory model or an ONNX source, which onnx2tf converted in this process)."""
    return (source.framework in ("tf_keras", "keras3", "saved_model", "tflite") and source.sha256 != "in-memory"
            and Path(source.path).exists())


def _conversion_bytes(source: SourceModel) -> float:
    p = Path(source.path)
    size = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else \
        (p.stat().st_size if p.exists() else 0)
    return max(MIN_CONVERSION_BYTES, BYTES_PER_MODEL_BYTE * size)
