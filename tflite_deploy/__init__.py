"""tflite-deploy: from a trained Keras model to a measured TensorFlow Lite model.

The Python API (the same functions the ``tflite-deploy`` CLI calls)::

    import tflite_deploy as td

    arts = td.convert("model.keras", ["int8", "float16"], data="digits:train", out="out/")
    results = td.evaluate("model.keras", [a.path for a in arts], "digits:test")
    timings = td.bench([a.path for a in arts], targets=["host"], store="results.db", tag="ci")
    td.report(["ci"], "report.html", store="results.db")  # also td.history, td.compare

Importing this package never imports TensorFlow: the names below are loaded on first use
(PEP 562), and the functions import TensorFlow only when they need it.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    **dict.fromkeys(("convert", "evaluate", "evaluate_on_device", "layer_errors", "bench", "BenchOptions", "inspect_model", "optimize",
                     "demo", "DemoReport", "list_devices", "parse_logs", "load_recipes", "preprocess", "compare",
                     "history", "report", "autotune"),
                    "tflite_deploy.api"),
    # a farm run is a client of the API itself (every cell is an API call): its functions live above it
    "farm_run": "tflite_deploy.farm.api",
    "farm_nightly": "tflite_deploy.farm.api",
    "open_dataset": "tflite_deploy.datasets",
    "Dataset": "tflite_deploy.datasets",
    "Preprocess": "tflite_deploy.datasets",
    "Recipe": "tflite_deploy.recipes",
    "OptimizeStep": "tflite_deploy.recipes",
    "Artifact": "tflite_deploy.artifact",
    "Result": "tflite_deploy.result",
    "ProgressEvent": "tflite_deploy.progress",
    "UserError": "tflite_deploy.errors",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tflite_deploy' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
