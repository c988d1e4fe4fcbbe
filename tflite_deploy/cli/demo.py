"""``demo``: the whole job on bundled data."""

from __future__ import annotations

from pathlib import Path

import typer

from tflite_deploy import api
from tflite_deploy.cli._common import JsonFlag, console, progress_bars, quiet_python_warnings, user_errors
from tflite_deploy.envelope import dumps
from tflite_deploy.render import verbs as render
from tflite_deploy.render.items import demo_items


# ------------------------------------------------------------------------------------------ demo
@user_errors
def demo(
    out_dir: Path = typer.Option(Path("out/demo"), "--out", "-o", help="Where the model and variants go."),
    epochs: int = typer.Option(30, help="Training epochs for the digits CNN."),
    as_json: JsonFlag = False,
) -> None:
    """The whole job on bundled data: train, convert with every preset, measure size, accuracy and latency."""
    quiet_python_warnings()
    with progress_bars(as_json) as progress:
        d = api.demo(out_dir, epochs, progress=progress)
    if as_json:
        print(dumps("demo", demo_items(d)))
    else:
        render.demo_story(d, console())


def register(app: typer.Typer) -> None:
    app.command(name="demo")(demo)
