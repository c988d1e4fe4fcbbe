"""Optimization with TF-MOT before conversion: QAT, pruning, clustering, and their collaborative forms.

- :func:`optimize` (``run.py``): wrap -> fine-tune (checkpointed, resumable, under a
  ``tf.distribute`` strategy) -> strip -> convert -> verify in the ``.tflite`` -> evaluate.
- :data:`TECHNIQUES` (``techniques.py``): the registry, technique name -> stages.
- :func:`verify_tflite` (``verify.py``): sparsity and unique values per kernel, read from the file.
- :func:`recipe_from_name` (re-exported from :mod:`tflite_deploy.recipes`): names such as
  ``prune50-int8`` or ``cqat16-int8``; :func:`apply_steps` (``training.py``) is what ``convert``
  calls for a recipe with ``optimize`` steps.

Importing this package does not import TensorFlow.
"""

from tflite_deploy.optimization.techniques import (TECHNIQUES, OptimizeError, Technique, technique,
                                                   unsupported_layers)
from tflite_deploy.recipes import recipe_from_name
from tflite_deploy.optimization.verify import KernelStats, Verification, verify_tflite

__all__ = ["TECHNIQUES", "KernelStats", "OptimizeError", "OptimizeReport", "Technique",
           "TrainEvent", "TrainingInterrupted", "Verification", "apply_steps", "optimize", "technique",
           "recipe_from_name", "unsupported_layers", "verify_tflite"]


def __getattr__(name: str):  # run.py pulls in the converter and evaluation: load it on first use
    if name in ("optimize", "OptimizeReport"):
        from tflite_deploy.optimization import run

        return getattr(run, name)
    if name in ("apply_steps", "TrainingInterrupted", "TrainEvent"):
        from tflite_deploy.optimization import training

        return getattr(training, name)
    raise AttributeError(name)
