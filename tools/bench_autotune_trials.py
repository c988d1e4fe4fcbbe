"""What one autotune trial costs after the first, against one ``convert -r int8`` of the same model.

    .venv/bin/python tools/bench_autotune_trials.py [--trials 4] [--calibration-samples 100] [--eval-samples 100]

MobileNetV2 224 from ``tflite_deploy.sources.zoo`` (random weights: the converter's and the
interpreter's work are the same as with trained ones), data from the bundled ``photos`` crops
(unlabelled, so the drop is judged against the float model's own top-1, as autotune does).

1. ``convert -r int8``: the TF converter with the int8 recipe (trace, calibration, quantization),
   the work ``tflite-deploy convert`` does per recipe, timed in this process.
2. autotune's once-per-run costs: the reference outputs on the evaluation samples, and one
   calibration plus the per-layer ranking (:class:`QuantizeSession`).
3. ``--trials`` trials on prefixes of the ranking, as the bisection visits them (half, a quarter,
   ...): each is a re-quantization of the calibrated model plus a judgement on the evaluation samples.

Prints the int8 conversion, the once-per-run costs, the trial count and the mean trial time (the
first search trial included; each trial already excludes the calibration), and the ratio mean trial /
convert. Goal: <= 0.3x.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


class Clock:
    """Wall and CPU seconds of a block: on a shared machine the wall time carries other people's load."""

    def __enter__(self) -> "Clock":
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    def text(self) -> str:
        return f"{self.wall:8.2f} s wall {self.cpu:8.2f} s CPU"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=4, help="search trials to time (default 4)")
    ap.add_argument("--calibration-samples", type=int, default=100, help="calibration samples (default 100)")
    ap.add_argument("--eval-samples", type=int, default=100, help="samples each trial is judged on (default 100)")
    ap.add_argument("--size", type=int, default=224, help="MobileNetV2 input size (default 224)")
    args = ap.parse_args()
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

    import dataclasses

    import numpy as np

    from tflite_deploy.autotuning.judge import Judge
    from tflite_deploy.autotuning.session import QuantizeSession
    from tflite_deploy.conversion.tf_converter import convert_bytes
    from tflite_deploy.datasets import Preprocess
    from tflite_deploy.datasets.base import ArrayDataset
    from tflite_deploy.datasets.open import photos
    from tflite_deploy.recipes import PRESETS
    from tflite_deploy.sources import zoo
    from tflite_deploy.sources.keras import from_keras_model

    pre = Preprocess(size=(args.size, args.size))
    crops = max(args.calibration_samples, args.eval_samples)  # per photo: even crops calibrate, odd ones judge
    data = photos(pre, crops_per_photo=crops).take()
    cal = data[0::2][: args.calibration_samples].astype(np.float32)
    ev = ArrayDataset(data[1::2][: args.eval_samples], None, name="photos (held-out crops)")
    source = from_keras_model(zoo.mobilenet_v2(args.size), "mobilenet_v2")
    recipe = dataclasses.replace(PRESETS["int8"], calibration_samples=len(cal))

    with Clock() as convert:
        int8 = convert_bytes(source, recipe, cal)
    with Clock() as reference:
        judge = Judge(source, ev)
    with Clock() as calibrate:
        session = QuantizeSession(source, recipe, cal)
        ranking = [e.tensor_name for e in session.ranking()]

    k, trials = len(ranking), []
    for _ in range(args.trials):
        k = max(1, k // 2)
        with Clock() as c:
            v = judge.judge(session.quantize(ranking[:k]))
        trials.append(c)
        print(f"  trial {len(trials)}: {k:3d} of {len(ranking)} layers float, {c.text()} "
              f"(disagreement with float {v.drop:.1f} points)")
    judge.close()
    wall, cpu = statistics.mean(c.wall for c in trials), statistics.mean(c.cpu for c in trials)
    print(f"MobileNetV2 {args.size}: {len(cal)} calibration samples, {judge.samples} evaluation samples, "
          f"{len(ranking)} quantizable layers; int8 file {len(int8) / 1e6:.2f} MB")
    print(f"{'convert -r int8 (one conversion)':40s} {convert.text()}")
    print(f"{'autotune once: reference outputs':40s} {reference.text()}")
    print(f"{'autotune once: calibration + ranking':40s} {calibrate.text()}")
    print(f"{'autotune trials timed':40s} {len(trials):8d}")
    print(f"{'mean trial (quantize + judge)':40s} {wall:8.2f} s wall {cpu:8.2f} s CPU")
    print(f"{'mean trial / convert -r int8':40s} {wall / convert.wall:8.2f} x wall {cpu / convert.cpu:8.2f} x CPU"
          "   (goal <= 0.30x)")


if __name__ == "__main__":
    main()
