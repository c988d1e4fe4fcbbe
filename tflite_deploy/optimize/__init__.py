"""Optimization with TF-MOT before conversion: QAT, pruning, clustering, and their collaborative forms.

- :func:`optimize` (``run.py``): wrap -> fine-tune (checkpointed, resumable, under a
  ``tf.distribute`` strategy) -> strip -> convert -> verify in the ``.tflite`` -> evaluate.
- :data:`TECHNIQUES` (``techniques.py``): the registry, technique name -> stages.
- :func:`verify_tflite` (``verify.py``): sparsity and unique values per kernel, read from the file.
- :func:`recipe_from_name`: recipe names such as ``prune50-int8`` or ``cqat16-int8`` for ``convert``;
  :func:`apply_steps` is what ``convert`` calls for a recipe with ``optimize`` steps.

Importing this package does not import TensorFlow.
"""

from tflite_deploy.optimize.techniques import (TECHNIQUES, OptimizeError, Options, Technique, parse_step,
                                               recipe_from_name, unsupported_layers)
from tflite_deploy.optimize.verify import KernelStats, Verification, verify_tflite

__all__ = ["TECHNIQUES", "KernelStats", "OptimizeError", "OptimizeReport", "Options", "Technique",
           "TrainEvent", "TrainingInterrupted", "Verification", "apply_steps", "optimize", "parse_step",
           "recipe_from_name", "unsupported_layers", "verify_tflite"]


def __getattr__(name: str):  # run.py pulls in convert/evaluate: load it on first use
    if name in ("optimize", "apply_steps", "OptimizeReport", "TrainingInterrupted", "TrainEvent"):
        from tflite_deploy.optimize import run

        return getattr(run, name)
    raise AttributeError(name)
