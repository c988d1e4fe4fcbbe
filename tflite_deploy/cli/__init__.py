"""The ``tflite-deploy`` command line: a Typer app, one module per command group.

``app`` holds the Typer app and registers the groups: ``convert`` (recipes, convert), ``inspect``,
``evaluate`` (eval), ``bench`` (bench, devices, parse-log), ``optimize``, ``demo``, ``farm`` and
``store`` (history, compare, report). The plumbing they share (errors to exit codes, the console,
the options used by several commands) is in ``_common``. Every command maps its options onto one
API call and hands the answer to :mod:`tflite_deploy.render`.
"""

from tflite_deploy.cli.app import app, main

__all__ = ["app", "main"]
