"""The ``tflite-deploy`` Typer app: ``--version`` and every command group registered once.

The API (:mod:`tflite_deploy.api`) imports heavy modules (TensorFlow above all) only in the
functions that need them, so ``--help``, ``inspect``, ``bench`` and ``devices`` start fast.
"""

from __future__ import annotations

import typer

from tflite_deploy import __version__
from tflite_deploy.cli import bench, convert, demo, evaluate, farm, inspect, optimize, store
from tflite_deploy.cli._common import console

app = typer.Typer(
    name="tflite-deploy",
    help="Take a trained Keras model to a fast, small, accurate TensorFlow Lite model, and prove it "
         "with numbers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        console().print(f"tflite-deploy {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                        help="Print the version and exit.")) -> None:
    pass


# The order of `tflite-deploy --help`: the model commands, then the farm and the results store.
for group in (convert, inspect, evaluate, bench, optimize, demo, farm, store):
    group.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
