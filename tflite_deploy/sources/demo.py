"""The quick start: a digits CNN trained on real data, saved as a .keras file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tflite_deploy.datasets import open_dataset


def train_demo_model(out_dir: Path, epochs: int = 30) -> tuple[Path, float]:
    """Train the digits CNN on ``digits:train``, save it, return its path and ``digits:test`` accuracy."""
    from tflite_deploy.sources import zoo

    model = zoo.train_digits_cnn(epochs=epochs)
    test = open_dataset("digits:test")
    accuracy = float(np.mean(model.predict(test.take(), verbose=0).argmax(-1) == test.labels))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "digits_cnn.keras"
    model.save(path)
    return path, accuracy
