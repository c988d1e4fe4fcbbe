"""Transitional: the ``tflite-deploy`` console script installed before the CLI was split imports
``tflite_deploy.cli.commands:main``. pyproject.toml now names ``tflite_deploy.cli:main``; delete this
module once ``pip install -e . --no-deps`` has regenerated the script."""

from tflite_deploy.cli.app import app, main

__all__ = ["app", "main"]
