"""The convert verb: a source model to .tflite artifacts, one per recipe (the TF converter is in ``converter``).

The model is loaded once and every recipe that needs calibration draws the same samples from the
dataset, so variants differ only by their recipe.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from tflite_deploy.artifact import Artifact
from tflite_deploy.converter import convert_to_artifact, source_meta
from tflite_deploy.datasets import Dataset, open_dataset
from tflite_deploy.errors import DatasetError, RecipeError
from tflite_deploy.models import SourceModel, load_model
from tflite_deploy.progress import ProgressCallback, report
from tflite_deploy.recipes import Recipe
from tflite_deploy.tf_loader import versions

def convert(model: str | Path | SourceModel, recipes: Sequence[Recipe], dataset: str | Dataset | None = None,
            out_dir: str | Path = "out", *, progress: Optional[ProgressCallback] = None) -> list[Artifact]:
    """Convert ``model`` with each recipe into ``out_dir``; returns the artifacts in recipe order.

    ``dataset`` (a spec such as ``digits:train`` or a :class:`Dataset`) is required when a recipe
    calibrates (int8, int16x8); its samples must fit the model's input, which is checked first.
    A recipe with ``optimize`` steps is fine-tuned first (the training verb), then converted.
    ``progress`` hears one ``convert`` event per recipe (item: the artifact).
    """
    if not recipes:
        raise RecipeError("No recipe given: name at least one (see `tflite-deploy recipes`).")
    source = model if isinstance(model, SourceModel) else load_model(model)
    calibration = _calibration_samples(source, recipes, dataset)
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
