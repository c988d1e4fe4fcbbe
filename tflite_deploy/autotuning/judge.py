"""Judge a candidate on the held-out split: reference outputs computed once, a paired drop per trial.

The reference is the float source model run once over the evaluation samples, by input name for a
model with several inputs (a loaded Keras model directly, else through the reference cache ``eval`` uses). The task is ``eval``'s
(:func:`~tflite_deploy.evaluation.run.choose_task`): for a classifier each candidate's top-1
correctness is paired with the reference's sample by sample and the drop is in points; for a
regression model (float targets) each candidate's absolute error is paired with the reference's and
the "drop" is the MAE's increase in the targets' units. Either way the 95% interval is the paired
bootstrap ``eval`` reports. Unlabelled data is judged against the float model's own top-1 (the drop
is then the disagreement).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from tflite_deploy.datasets import Dataset
from tflite_deploy.errors import DatasetError, UserError
from tflite_deploy.evaluation.metrics import abs_errors, paired_bootstrap, regression_change
from tflite_deploy.evaluation.reference import collect_named, keras_predictor, reference_outputs
from tflite_deploy.evaluation.run import choose_task, pair_outputs
from tflite_deploy.tflite.runtime import TfliteModel


@dataclass(frozen=True)
class Verdict:
    accuracy: float                  # classification: top-1 in points; regression: the MAE
    drop: float                      # reference minus candidate top-1 in points, or candidate minus reference MAE
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
        self.reference = str(source.path)
        if getattr(source, "keras_model", None) is not None:  # loaded already (or in memory only): no second load
            self.ref = collect_named(keras_predictor(source, f"reference {source.path}", dataset.name), dataset,
                                     self.samples, batch_size)
        else:
            self.ref, _ = reference_outputs(source.path, dataset, self.samples, batch_size)
        task, key = choose_task("auto", dataset, self.ref, self.reference)
        if task == "agreement":  # unlabelled: the float model's own top-1 is the truth
            scores = [k for k, v in self.ref.items() if v.ndim == 2 and v.shape[1] > 1]
            if not scores:
                shapes = ", ".join(f"{k} {v.shape[1:]}" for k, v in self.ref.items())
                raise UserError(f"autotune judges unlabelled data by agreement with the float model's top-1, but "
                                f"model {source.path} outputs {shapes} (not one score per class): give data with "
                                "targets (y as floats) to judge a regression model by its MAE.", param="data")
            task, key = "classification", scores[0]
            self.truth: np.ndarray = self.ref[key].argmax(1)
            self.label_source = "float model's top-1"
        elif task == "classification":
            self.truth, self.label_source = np.asarray(dataset.labels[: self.samples]), "dataset"  # type: ignore[index]
        else:
            y = dataset.targets if dataset.targets is not None else dataset.labels
            self.truth, self.label_source = np.asarray(y[: self.samples], np.float64), "dataset"  # type: ignore[index]
        assert key is not None
        self.task, self.key = task, key
        ref_v = self.ref[key]
        if task == "classification":
            self.ref_correct = ref_v.argmax(1) == self.truth
            self.reference_accuracy = 100 * float(self.ref_correct.mean())
        else:
            self.reference_accuracy = float(abs_errors(ref_v, self.truth).mean())  # the float model's MAE
        self._tmp = tempfile.TemporaryDirectory(prefix="tflite-deploy-autotune-")

    def judge(self, data: bytes) -> Verdict:
        path = Path(self._tmp.name) / "candidate.tflite"
        path.write_bytes(data)
        model = TfliteModel(path)
        values = collect_named(lambda x: model.predict_named(x, self.dataset.name), self.dataset, self.samples,
                               self.batch_size)
        ref_v, var_v = pair_outputs(self.ref, values, self.reference, "the candidate")[self.key]
        if self.task == "regression":
            change = regression_change(ref_v, var_v, self.truth, self.resamples)
            lo, hi = change["mae_change_ci95"]
            return Verdict(float(abs_errors(var_v, self.truth).mean()), change["mae_change"], (lo, hi))
        correct = var_v.argmax(1) == self.truth
        drop, lo, hi = paired_bootstrap(self.ref_correct, correct, self.resamples)
        return Verdict(100 * float(correct.mean()), drop, (lo, hi))

    def close(self) -> None:
        self._tmp.cleanup()
