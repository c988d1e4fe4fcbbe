"""What autotune leaves on disk: the chosen .tflite (+ sidecar), a recipe file that reproduces it, the trial log."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from tflite_deploy.artifact import Artifact, save_artifact, write_atomic
from tflite_deploy.recipes import Recipe

#: The chosen variant's recipe name: the file is MODEL.autotune.tflite, and `convert -r autotune` remakes it.
CHOSEN_RECIPE = "autotune"
RECIPE_FILE = "autotune.yaml"
LOG_FILE = "autotune.json"


def chosen_recipe(recipe: Recipe, description: str) -> Recipe:
    return dataclasses.replace(recipe, name=CHOSEN_RECIPE, description=description)


def write_chosen(out_dir: Path, model: str, recipe: Recipe, data: bytes, meta: dict[str, Any],
                 seconds: float) -> Artifact:
    return save_artifact(out_dir, model, recipe.name, data, {**meta, "recipe": recipe.to_dict()}, seconds)


def write_recipe_file(out_dir: Path, recipe: Recipe, model_path: str, calibration_data: str) -> Path:
    """``autotune.yaml``: the recipe spelled out field by field (no base), so it needs no preset to mean
    the same thing later; its comment says the command that remakes the file."""
    import yaml

    fields = {k: v for k, v in recipe.to_dict().items() if k != "name" and (k != "optimize" or v)}
    doc = yaml.safe_dump({"recipes": {recipe.name: fields}}, sort_keys=False, width=200)
    head = (f"# Written by tflite-deploy autotune. Remake the chosen file with:\n"
            f"#   tflite-deploy convert {model_path} -f {Path(out_dir) / RECIPE_FILE} -r {recipe.name} "
            f"--data {calibration_data}\n")
    path = Path(out_dir) / RECIPE_FILE
    write_atomic(path, (head + doc).encode())
    return path


def write_log(out_dir: Path, doc: dict[str, Any]) -> Path:
    path = Path(out_dir) / LOG_FILE
    write_atomic(path, (json.dumps(doc, indent=2, default=str) + "\n").encode())
    return path
