"""``eval``: accuracy of .tflite variants against their float reference."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from tflite_deploy import api
from tflite_deploy.cli._common import (ColorMode, Force, ImageSize, JsonFlag, Layout, NoStore, PixelMean, PixelScale,
                                       PixelStd, RunTag, StoreTo, console, progress_bars, quiet_python_warnings,
                                       store_target, user_errors)
from tflite_deploy.envelope import dumps
from tflite_deploy.errors import UserError
from tflite_deploy.render import verbs as render
from tflite_deploy.render.items import eval_items


# ------------------------------------------------------------------------------------------ eval
@user_errors
def eval_cmd(
    models: List[Path] = typer.Argument(..., help="The float reference (.keras/.h5/SavedModel, a float32 .tflite "
                                                  "or an .onnx) first, then the .tflite variants to judge."),
    data: str = typer.Option(..., "--data", "-d", help="Evaluation data, e.g. digits:test or an image folder."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", help="Use at most this many samples."),
    top_k: int = typer.Option(5, "--top-k", help="Also report top-k accuracy (when there are more classes)."),
    per_layer: bool = typer.Option(False, "--per-layer", help="Per-layer error of full-integer variants "
                                                              "(QuantizationDebugger), worst first."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Interpreter threads."),
    task: str = typer.Option("auto", "--task", help="auto (from the targets: whole-number y classifies, float y "
                                                    "regresses, no y: agreement only), classification, regression "
                                                    "or agreement."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Run the reference again even when its outputs on "
                                                            "this data are cached from an earlier eval."),
    size: ImageSize = None, scale: PixelScale = None, mean: PixelMean = None, std: PixelStd = None,
    color: ColorMode = None, layout: Layout = None, force: Force = False, as_json: JsonFlag = False,
    store: StoreTo = None, tag: RunTag = None, no_store: NoStore = False,
) -> None:
    """Accuracy (or MAE/RMSE) of each variant against the float reference, with a 95% interval on the change."""
    if len(models) < 2:
        raise UserError("Give the float reference and at least one .tflite variant to compare with it.")
    quiet_python_warnings()
    from tflite_deploy.datasets import open_dataset

    ds = open_dataset(data, api.preprocess(size, scale, mean, std, color, layout))
    with progress_bars(as_json) as progress:
        results = api.evaluate(models[0], models[1:], ds, limit=limit, top_k=top_k, threads=threads,
                               progress=progress, store=store_target(store, no_store), tag=tag, force=force,
                               task=task, cache=not no_cache)
        layers = api.layer_errors([r.artifact for r in results[1:]], ds, progress=progress) if per_layer else {}
    if as_json:
        print(dumps("eval", eval_items(results, layers)))
    else:
        render.eval_with_layers(results, layers, per_layer, console())


def register(app: typer.Typer) -> None:
    app.command(name="eval")(eval_cmd)
