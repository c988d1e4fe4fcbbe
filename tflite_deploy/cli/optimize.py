"""``optimize``: fine-tune with TF-MOT, convert to int8, verify what the file holds."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from tflite_deploy import api
from tflite_deploy.cli._common import (ColorMode, ImageSize, JsonFlag, Layout, PixelMean, PixelScale, PixelStd,
                                       Unsafe, console, progress_bars, quiet_python_warnings, user_errors)
from tflite_deploy.envelope import dumps
from tflite_deploy.recipes import OptimizeStep
from tflite_deploy.render import verbs as render


# -------------------------------------------------------------------------------------- optimize
@user_errors
def optimize(
    model: Path = typer.Argument(..., help="A .keras or .h5 model saved with tf_keras (Keras 2)."),
    technique: str = typer.Option(..., "--technique", "-t", help="qat, prune, cluster, pqat (prune, then QAT "
                                  "keeping zeros), cqat (cluster, then QAT keeping centroids) or pcqat (all three)."),
    data: str = typer.Option(..., "--data", "-d", help="Labelled training data: digits:train, an image folder "
                             "with class sub-folders, or a .npz with x and y."),
    epochs: int = typer.Option(2, "--epochs", "-e", help="Fine-tuning epochs per stage."),
    out_dir: Path = typer.Option(Path("out/optimize"), "--out", "-o", help="Folder for the model, the .tflite "
                                 "files, the report and checkpoints/."),
    sparsity: float = typer.Option(0.75, "--sparsity", help="prune/pqat/pcqat: target fraction of zero weights."),
    schedule: str = typer.Option("polynomial", "--schedule", help="prune: polynomial (ramp 0 -> target) or constant."),
    clusters: int = typer.Option(16, "--clusters", help="cluster/cqat/pcqat: unique values per kernel."),
    init: str = typer.Option("kmeans++", "--init", help="Centroid initialisation: kmeans++, linear, density, random."),
    batch_size: int = typer.Option(32, "--batch-size", help="Batch size per replica."),
    learning_rate: float = typer.Option(1e-3, "--learning-rate", "--lr", help="Adam learning rate."),
    eval_data: Optional[str] = typer.Option(None, "--eval-data", help="Evaluation split for accuracy before/after "
                                            "(default: the :test split when --data is a :train split)."),
    skip_unsupported: bool = typer.Option(False, "--skip-unsupported", help="Leave layers TF-MOT cannot wrap as "
                                          "they are and optimize the others."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from OUT/checkpoints."),
    strategy: str = typer.Option("default", "--strategy", help="tf.distribute strategy: default, mirrored "
                                 "(all local GPUs) or multiworker (TF_CONFIG)."),
    seed: int = typer.Option(0, "--seed", help="Random seed for shuffling and initialisation."),
    size: ImageSize = None, scale: PixelScale = None, mean: PixelMean = None, std: PixelStd = None,
    color: ColorMode = None, layout: Layout = None, unsafe_deserialization: Unsafe = False, as_json: JsonFlag = False,
) -> None:
    """Fine-tune with TF-MOT (QAT, pruning, clustering, PQAT, CQAT, PCQAT), convert to int8, verify in the file."""
    quiet_python_warnings()
    with progress_bars(as_json) as progress:
        step = OptimizeStep(technique, sparsity=sparsity, schedule=schedule, clusters=clusters, init=init,
                            epochs=epochs, batch_size=batch_size, learning_rate=learning_rate)
        report = api.optimize(model, step, data, out_dir, eval_data=eval_data,
                              preprocess=api.preprocess(size, scale, mean, std, color, layout), progress=progress,
                              skip_unsupported=skip_unsupported, resume=resume, strategy=strategy, seed=seed,
                              unsafe_deserialization=unsafe_deserialization)
    if as_json:
        print(dumps("optimize", [report.to_dict()]))
    else:
        render.optimize_report(report, console())


def register(app: typer.Typer) -> None:
    app.command(name="optimize")(optimize)
