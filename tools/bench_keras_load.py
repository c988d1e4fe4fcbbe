"""Loading a tf_keras ``.keras`` file: ``tf_keras.models.load_model`` against tflite-deploy's loader
(``sources.keras.load_model``: the weights member copied out of the zip once and read from disk), side
by side in one run, on ResNet50 saved lean and as ``fit`` leaves it (with Adam's state).

    .venv/bin/python tools/bench_keras_load.py [--work DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table


def save(path: Path, trained: bool) -> None:
    import tf_keras

    model = tf_keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3))
    if trained:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(np.zeros((2, 224, 224, 3), np.float32), np.zeros(2, np.int64), epochs=1, verbose=0)
    model.save(path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=None, help="folder for the two .keras files (kept between runs)")
    args = ap.parse_args()
    import tf_keras

    from tflite_deploy.sources.keras import load_model

    work = args.work or Path(tempfile.mkdtemp(prefix="tflite-deploy-kerasload-"))
    work.mkdir(parents=True, exist_ok=True)
    t = Table(title="loading ResNet50 .keras (tf_keras 2.x), seconds", title_justify="left")
    for c in ("file", "size", "tf_keras.models.load_model", "tflite-deploy", "ratio", "same weights"):
        t.add_column(c, justify="left" if c == "file" else "right")
    for name, trained in (("lean", False), ("as fit() leaves it", True)):
        path = work / f"resnet50-{'trained' if trained else 'lean'}.keras"
        if not path.exists():
            save(path, trained)
        start = time.perf_counter()
        theirs = tf_keras.models.load_model(path, compile=False)
        mid = time.perf_counter()
        ours = load_model(path).keras_model
        end = time.perf_counter()
        same = all(np.array_equal(a, b) for a, b in zip(theirs.get_weights(), ours.get_weights(), strict=True))
        t.add_row(name, f"{path.stat().st_size / 1e6:.0f} MB", f"{mid - start:.1f}", f"{end - mid:.1f}",
                  f"{(end - mid) / (mid - start):.2f}x", str(same))
    Console(width=120).print(t)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
