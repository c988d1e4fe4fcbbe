"""The ``tflite-deploy`` command line: a Typer app, one module per command group.

``commands`` holds the app and the model commands, ``store`` the results-store commands, ``farm``
the farm group; the plumbing they share (errors to exit codes, the console, the common options) is
in ``_common``.
"""

from tflite_deploy.cli.commands import app, main

__all__ = ["app", "main"]
