"""The convert verb: a source model to .tflite artifacts, one per recipe (the TF converter is in ``converter``).

The model is loaded once and every recipe that needs calibration draws the same samples from the
dataset, so variants differ only by their recipe.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from tflite_deploy.artifact import Artifact
from tflite_deploy.converter import convert_to_artifact
from tflite_deploy.datasets import Dataset
from tflite_deploy.errors import RecipeError
from tflite_deploy.models import SourceModel
from tflite_deploy.progress import ProgressCallback, report
from tflite_deploy.recipes import Recipe
from tflite_deploy.sources import open_source
from tflite_deploy.sources.common import calibration_samples, source_meta
from tflite_deploy.tf_loader import versions

def convert(model: str | Path | SourceModel, recipes: Sequence[Recipe], dataset: str | Dataset | None = None,
            out_dir: str | Path = "out", *, progress: Optional[ProgressCallback] = None,
            input_shape: Optional[Sequence[int]] = None) -> list[Artifact]:
    """Convert ``model`` with each recipe into ``out_dir``; returns the artifacts in recipe order.

    ``dataset`` (a spec such as ``digits:train`` or a :class:`Dataset`) is required when a recipe
    calibrates (int8, int16x8); its samples must fit the model's input, which is checked first.
    A recipe with ``optimize`` steps is fine-tuned first (the training verb), then converted.
    ``progress`` hears one ``convert`` event per recipe (item: the artifact).
    ``model`` may also be a float ``.tflite`` (quantized by the AI Edge Quantizer) or an ``.onnx``
    (converted by onnx2tf first; ``input_shape`` fixes its dynamic dimensions).
    """
    if not recipes:
        raise RecipeError("No recipe given: name at least one (see `tflite-deploy recipes`).")
    source = open_source(model, input_shape, dataset)
    if source.framework == "tflite":  # the AI Edge Quantizer rewrites the float .tflite itself
        from tflite_deploy.quantizer import quantize_all

        return quantize_all(source, recipes, dataset, out_dir, progress)
    calibration = calibration_samples(source, recipes, dataset)
    meta_common: dict[str, Any] = {"source": source_meta(source), "versions": versions()}
    if calibration is not None:
        meta_common["calibration"] = {"dataset": calibration[1], "samples_available": len(calibration[0])}
    artifacts: list[Artifact] = []
    report(progress, "convert", 0, len(recipes), recipes[0].name)
    for recipe in recipes:
        started = time.perf_counter()
        variant, extra = source, {}
        if recipe.optimize:  # TF-MOT steps (QAT, prune, cluster, ...) fine-tune on the dataset first
            from tflite_deploy.optimization.training import apply_steps

            variant, extra = apply_steps(source, recipe, dataset)
        art = convert_to_artifact(variant, recipe, None if calibration is None else calibration[0], out_dir,
                                  {**meta_common, **extra}, started)
        artifacts.append(art)
        upcoming = recipes[len(artifacts)].name if len(artifacts) < len(recipes) else ""
        report(progress, "convert", len(artifacts), len(recipes), upcoming, art)
    return artifacts


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
