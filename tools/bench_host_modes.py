"""Host latency of each post-training mode, side by side in one interleaved run.

    .venv/bin/python tools/bench_host_modes.py [--threads 1] [--runs 100] [--model mobilenet_v2|digits|all]

Builds the digits CNN (trained on the bundled digits) and MobileNetV2 224 (random weights: latency
only), converts each with float32 / dynamic / int8 / float16, benchmarks all variants of a model
interleaved with the LiteRT interpreter (XNNPACK), and prints p50 and the ratio to float32. It also
measures the harness's own cost per invoke with a one-op model, so the model times can be read
against it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tflite_deploy.sources import zoo
from tflite_deploy.benchmark.options import BenchOptions
from tflite_deploy.benchmark.host import bench_host
from tflite_deploy.conversion.run import convert
from tflite_deploy.sources.keras import from_keras_model
from tflite_deploy.recipes import PRESETS, Recipe
from tflite_deploy.render.verbs import ms
from tflite_deploy.sources.tf_loader import tf_keras

MODES = ("float32", "dynamic", "int8", "float16")


def one_op_model():
    keras = tf_keras()
    inp = keras.Input((1,), name="x")
    return keras.Model(inp, keras.layers.Lambda(lambda t: t + 1.0, name="add")(inp), name="one_op")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--model", choices=("digits", "mobilenet_v2", "all"), default="all")
    args = ap.parse_args()
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="bench-modes-"))
    settings = BenchOptions(threads=args.threads, runs=args.runs, warmup=10, min_seconds=2.0)

    recipes = [PRESETS[m] for m in MODES]
    models = []
    if args.model in ("digits", "all"):
        models.append((from_keras_model(zoo.train_digits_cnn(), "digits_cnn"), "digits:train", recipes))
    if args.model in ("mobilenet_v2", "all"):
        calib = [r if not r.needs_calibration else Recipe(**{**r.__dict__, "calibration_samples": 16})
                 for r in recipes]
        models.append((from_keras_model(zoo.mobilenet_v2(), "mobilenet_v2_224"), "photos", calib))

    (noop,) = convert(from_keras_model(one_op_model(), "one_op"), [PRESETS["float32"]], None, work)
    table = Table(title=f"Host latency by mode (LiteRT {settings.delegate}, {args.threads} thread(s), "
                        "interleaved, p50)", title_justify="left")
    for col in ("model", *MODES, "harness cost / float32 p50"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for source, data, rs in models:
        console.print(f"converting {source.name} ...")
        arts = convert(source, rs, data, work)
        console.print(f"measuring {source.name} ({len(arts)} variants + the one-op model, interleaved) ...")
        results = bench_host([a.path for a in arts] + [noop.path], settings)
        base = results[0].latency.p50_ms
        cells = [f"{ms(r.latency.p50_ms)} ({r.latency.p50_ms / base:.2f}x)" for r in results[:-1]]
        harness = results[-1].latency.p50_ms
        table.add_row(source.name, *cells, f"{ms(harness)} = {harness / base:.1%}")
        for r in results:
            for w in r.warnings:
                console.print(f"[yellow]{Path(r.artifact).name}:[/] {w}")
    console.print(table)
    console.print("Ratios are to float32 in the same run. 'harness cost' is the p50 of invoking a one-op model "
                  "through the same loop: an upper bound on what the measurement itself adds per invoke.")


if __name__ == "__main__":
    main()
