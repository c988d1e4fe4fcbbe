"""``inspect``: what is inside a .tflite file (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path

import typer

from tflite_deploy import api
from tflite_deploy.cli._common import JsonFlag, console, user_errors
from tflite_deploy.envelope import dumps
from tflite_deploy.render import verbs as render


# --------------------------------------------------------------------------------------- inspect
@user_errors
def inspect(
    model: Path = typer.Argument(..., help="A .tflite file."),
    top: int = typer.Option(10, "--top", help="Show the N layers with the most weight bytes."),
    tensors: bool = typer.Option(False, "--tensors", help="With --json, include every tensor."),
    as_json: JsonFlag = False,
) -> None:
    """Inputs, outputs, ops, dtypes, quantization and delegate support of a .tflite (no TensorFlow)."""
    report = api.inspect_model(model)
    if as_json:
        print(dumps("inspect", [report.to_dict(include_tensors=tensors)]))
    else:
        render.inspect_report(report, console(), top=top)


def register(app: typer.Typer) -> None:
    app.command(name="inspect")(inspect)
