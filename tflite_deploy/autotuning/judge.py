"""Judge a candidate on the held-out split: reference outputs computed once, a paired drop per trial.

The reference is the float source model run once over the evaluation samples; each candidate's
top-1 correctness is paired with the reference's sample by sample, and the drop's 95% interval is
the paired bootstrap of :mod:`tflite_deploy.evaluation.run` (the same numbers ``eval`` reports).
Unlabelled data is judged against the float model's own top-1 (the drop is then the disagreement).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from tflite_deploy.datasets import Dataset
from tflite_deploy.errors import DatasetError, UserError
from tflite_deploy.evaluation.run import collect, paired_bootstrap, reference_predictor
from tflite_deploy.tflite.runtime import TfliteModel


@dataclass(frozen=True)
class Verdict:
    accuracy: float                  # top-1 in points
    drop: float                      # reference minus candidate, points
    drop_ci95: tuple[float, float]


class Judge:
    """The float model's outputs on ``dataset`` (once), then :meth:`judge` per candidate's bytes."""

    def __init__(self, source: Any, dataset: Dataset, limit: Optional[int] = None, batch_size: int = 64,
                 resamples: int = 2000) -> None:
        self.dataset = dataset
        self.samples = len(dataset) if limit is None else min(limit, len(dataset))
        if self.samples < 2:
            raise DatasetError(f"Dataset {dataset.name!r} has {self.samples} sample(s) to judge with: the drop's "
                               "interval needs many (a few hundred for a budget of a point).")
        self.batch_size, self.resamples = batch_size, resamples
        if getattr(source, "keras_model", None) is not None:
            model = source.keras_model
            predict = lambda x: np.asarray(model.predict(x, verbose=0, batch_size=256), np.float32)  # noqa: E731
        else:
            predict = reference_predictor(source.path)
        ref = collect(predict, dataset, self.samples, batch_size)
        if ref.ndim != 2 or ref.shape[1] < 2:
            raise UserError(f"autotune judges classifiers by their top-1 (one score per class); model "
                            f"{source.path} outputs shape {ref.shape[1:]}.")
        if dataset.labels is not None:
            self.labels = np.asarray(dataset.labels[: self.samples])
            self.label_source = "dataset"
        else:
            self.labels = ref.argmax(1)
            self.label_source = "float model's top-1"
        self.ref_correct = ref.argmax(1) == self.labels
        self.reference_accuracy = 100 * float(self.ref_correct.mean())
        self._tmp = tempfile.TemporaryDirectory(prefix="tflite-deploy-autotune-")

    def judge(self, data: bytes) -> Verdict:
        path = Path(self._tmp.name) / "candidate.tflite"
        path.write_bytes(data)
        model = TfliteModel(path)
        model.check_input(self.dataset.sample_shape, f"dataset {self.dataset.name!r}")
        values = collect(model.predict, self.dataset, self.samples, self.batch_size)
        correct = values.argmax(1) == self.labels
        drop, lo, hi = paired_bootstrap(self.ref_correct, correct, self.resamples)
        return Verdict(100 * float(correct.mean()), drop, (lo, hi))

    def close(self) -> None:
        self._tmp.cleanup()
