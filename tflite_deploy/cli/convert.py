"""``recipes`` and ``convert``: the recipes known, and a model converted with some of them."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from tflite_deploy import api
from tflite_deploy.cli._common import (ColorMode, ImageSize, JsonFlag, Layout, NoStore, PixelMean, PixelScale,
                                       PixelStd, RecipeFiles, RunTag, StoreTo, Unsafe, console, progress_bars,
                                       quiet_python_warnings, store_target, user_errors)
from tflite_deploy.envelope import dumps
from tflite_deploy.render import verbs as render
from tflite_deploy.render.items import convert_items


# --------------------------------------------------------------------------------------- recipes
@user_errors
def recipes(recipe_files: RecipeFiles = [], as_json: JsonFlag = False) -> None:  # noqa: B006
    """List the built-in recipes (presets), those in recipe files, and the optimization name patterns."""
    from tflite_deploy.recipes import OPTIMIZE_NAME_PATTERNS

    found = api.load_recipes(files=recipe_files)
    if as_json:
        print(dumps("recipes", [*(r.to_dict() for r in found), *({"name": n, "pattern": True, "description": d}
                                                                   for n, d in OPTIMIZE_NAME_PATTERNS)]))
        return
    render.recipes_table(found, OPTIMIZE_NAME_PATTERNS, console())


# --------------------------------------------------------------------------------------- convert
@user_errors
def convert(
    model: Path = typer.Argument(..., help="A .keras/.h5 file, a SavedModel folder, a float .tflite or an .onnx."),
    recipe: List[str] = typer.Option(["float32", "int8"], "--recipe", "-r",
                                     help="Recipe name; repeat for several (see `tflite-deploy recipes`)."),
    data: Optional[str] = typer.Option(None, "--data", "-d",
                                       help="Representative dataset: digits[:train], photos, an image folder, "
                                            "or a .npz/.npy file."),
    out_dir: Path = typer.Option(Path("out"), "--out", "-o", help="Folder for the .tflite files and sidecars."),
    recipe_files: RecipeFiles = [],  # noqa: B006
    size: ImageSize = None, scale: PixelScale = None, mean: PixelMean = None, std: PixelStd = None,
    color: ColorMode = None, layout: Layout = None, unsafe_deserialization: Unsafe = False, as_json: JsonFlag = False,
    input_shape: Optional[str] = typer.Option(None, "--input-shape", help="ONNX models with dynamic "
                                              "dimensions: the input shape to convert with, e.g. 1,3,224,224."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="Recipes converted at a time, each in its own "
                                       "process (default: by cores and free memory; 1: in this process)."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Static batch to convert a Keras/SavedModel model "
                                        "with a dynamic batch with (default: dynamic, or 1 where the converter "
                                        "needs a static one: LSTM/GRU layers)."),
    store: StoreTo = None, tag: RunTag = None, no_store: NoStore = False,
) -> None:
    """Convert a model with one or more recipes; writes NAME.RECIPE.tflite and a sidecar JSON each."""
    pre = api.preprocess(size, scale, mean, std, color, layout)
    quiet_python_warnings()
    with progress_bars(as_json) as progress:
        arts = api.convert(model, recipe, data, out_dir, recipe_files=recipe_files, preprocess=pre,
                           input_shape=input_shape, progress=progress, store=store_target(store, no_store),
                           tag=tag, unsafe_deserialization=unsafe_deserialization, jobs=jobs,
                           batch=batch)
    rows = convert_items(arts)
    if as_json:
        print(dumps("convert", rows))
    else:
        render.conversion_table(rows, console())
    raise typer.Exit(1 if any(r["failed"] for r in rows) else 0)  # every recipe ran; failed ones are rows


def register(app: typer.Typer) -> None:
    app.command(name="recipes")(recipes)
    app.command(name="convert")(convert)
