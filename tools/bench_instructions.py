"""Instructions per invoke under callgrind: their spread over processes, and a small change they see.

    .venv/bin/python tools/bench_instructions.py [--processes 5] [--invokes 3] [--repeats 5]

Builds MobileNetV2 224 (random weights: cost only) and the same network behind one extra 3x3
convolution (3 -> 3 channels at 224x224: ~4.1 M more MACs, ~1.4% of MobileNetV2's ~300 M on paper;
measured +13.4% instructions: a 3-channel convolution fits XNNPACK's int8 kernels poorly), converts
both to int8 (16 calibration photos), then

* counts instructions per invoke of each in ``--processes`` separate processes under valgrind
  (tflite_deploy.benchmark.instructions: the invoke region only) and prints their spread;
* measures each with ``--repeats`` independent host timings and the time-based verdict compare
  gives (reporting.verdict.latency_verdict), side by side with the instruction-count change.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tflite_deploy.benchmark.host import bench_host
from tflite_deploy.benchmark.options import BenchOptions
from tflite_deploy.benchmark.instructions import count_instructions
from tflite_deploy.conversion.run import convert
from tflite_deploy.recipes import PRESETS, Recipe
from tflite_deploy.reporting.verdict import latency_verdict
from tflite_deploy.sources import zoo
from tflite_deploy.sources.keras import from_keras_model
from tflite_deploy.sources.tf_loader import tf_keras


def with_extra_conv(base):
    """``base`` behind one 3x3 convolution that keeps the input's shape."""
    keras = tf_keras()
    inp = keras.Input(base.input_shape[1:], name="image")
    x = keras.layers.Conv2D(3, 3, padding="same", name="extra_conv3x3")(inp)
    return keras.Model(inp, base(x), name="mobilenet_v2_plus_conv")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--processes", type=int, default=5, help="valgrind processes per model")
    ap.add_argument("--invokes", type=int, default=3, help="invokes counted per process")
    ap.add_argument("--repeats", type=int, default=5, help="independent host timings per model")
    args = ap.parse_args()
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="bench-instructions-"))
    int8 = Recipe(**{**PRESETS["int8"].__dict__, "calibration_samples": 16})
    base = zoo.mobilenet_v2()
    files = {}
    for name, model in (("mobilenet_v2", base), ("mobilenet_v2+conv3x3", with_extra_conv(base))):
        console.print(f"converting {name} to int8 ...")
        (art,) = convert(from_keras_model(model, name.replace("+", "_")), [int8], "photos", work)
        files[name] = art.path
    counts, times = {}, {}
    for name, path in files.items():
        counts[name] = []
        for i in range(args.processes):
            c = count_instructions(path, invokes=args.invokes)
            counts[name].append(c.per_invoke)
            console.print(f"{name}: process {i + 1}: {c.per_invoke:,.0f} instructions per invoke "
                          f"(toggle pair {c.empty_region:,.0f} taken off)")
    settings = BenchOptions(runs=30, warmup=3, min_seconds=0.5).for_host()
    for k in range(args.repeats):  # the two models alternate: the time-based verdict's best case
        for name, path in files.items():
            times.setdefault(name, []).append(bench_host([path], settings)[0].latency.p50_ms)
    table = Table(title="MobileNetV2 int8: instructions per invoke (callgrind) and time (host)", title_justify="left")
    for col in ("model", "instructions / invoke (mean)", "spread over processes", "p50 ms (median of repeats)"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name in files:
        xs = counts[name]
        mean = statistics.fmean(xs)
        table.add_row(name, f"{mean:,.0f}", f"{(max(xs) - min(xs)) / mean:.4%} ({len(xs)} processes)",
                      f"{statistics.median(times[name]):.3f}")
    console.print(table)
    (b, n) = files
    change = statistics.fmean(counts[n]) / statistics.fmean(counts[b]) - 1
    spread = max((max(x) - min(x)) / statistics.fmean(x) for x in counts.values())
    v = latency_verdict(times[b], times[n])
    console.print(f"instructions: {change:+.2%} (spread {spread:.4%}: "
                  f"{'flagged' if change > 10 * spread else 'not separable'})")
    console.print(f"time: {v.ratio - 1:+.2%} -> verdict '{v.verdict}' ({v.basis})")


if __name__ == "__main__":
    main()
