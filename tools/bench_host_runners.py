"""Host p50 of our two runners against LiteRT's own ``litert-benchmark``, side by side in one run.

    .venv/bin/python tools/bench_host_runners.py [--threads 1] [--runs 200] [--rounds 7]

Converts MobileNetV2 224 (``tf_keras.applications.MobileNetV2(weights=None)``: latency only) to
float32 and int8 with the package's own convert API (kept in ``--work`` for the next run), then,
round after round and in a rotating order, measures each file with our Interpreter runner, our
CompiledModel runner (both through ``bench_host``) and ``litert-benchmark`` (the CLI ai-edge-litert
ships, on the same CompiledModel API; its ``--result_json`` read back). Every measurement is a fresh
process without TensorFlow loaded, as ``tflite-deploy bench`` runs. Each round gives each runner's
p50 (the CLI's ``median_ms``); the table shows the median over rounds and the ratio to
``litert-benchmark``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table


RUNNERS = ("interpreter", "compiled", "litert-benchmark")


def litert_benchmark_p50(cli: str, model: Path, threads: int, runs: int, warmup: int, work: Path) -> float:
    out = work / "litert_benchmark.json"
    out.unlink(missing_ok=True)
    subprocess.run([cli, "--model", str(model), "--num_threads", str(threads), "--num_runs", str(runs),
                    "--warmup_runs", str(warmup), "--result_json", str(out)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return float(json.loads(out.read_text())["latency"]["median_ms"])


def ours_p50(runner: str, model: Path, threads: int, runs: int, warmup: int) -> float:
    """Our runner in a fresh process (no TensorFlow in it, as `tflite-deploy bench` runs)."""
    out = subprocess.run([sys.executable, __file__, "--measure", runner, str(model), "--threads", str(threads),
                          "--runs", str(runs), "--warmup", str(warmup)],
                         check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def measure(runner: str, model: Path, threads: int, runs: int, warmup: int) -> float:
    from tflite_deploy.benchmark.options import BenchOptions
    from tflite_deploy.benchmark.host import bench_host

    settings = BenchOptions(threads=threads, runs=runs, warmup=warmup, min_seconds=0.0, max_runs=runs,
                            runner=runner)
    (result,) = bench_host([model], settings)
    return float(result.latency.p50_ms)


def paired_ratio(model: Path, threads: int, runs: int, warmup: int) -> float:
    """compiled p50 / interpreter p50 with their invokes alternated one by one in one fresh process.

    Load from other programs then falls on both alike within milliseconds: the steadiest comparison
    of our two runners this machine allows (litert-benchmark cannot be interleaved this way).
    """
    out = subprocess.run([sys.executable, __file__, "--pair", str(model), "--threads", str(threads), "--runs",
                          str(runs), "--warmup", str(warmup)], check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def pair(model: Path, threads: int, runs: int, warmup: int) -> float:
    import time

    import numpy as np

    from tflite_deploy.benchmark.compiled import CompiledRunner
    from tflite_deploy.tflite.runtime import TfliteModel

    interp = TfliteModel(model, threads=threads)
    interp.fill_random_input()
    compiled = CompiledRunner(model, threads=threads)
    calls = {"interpreter": interp.interpreter.invoke, "compiled": compiled.invoke}
    times: dict[str, list[float]] = {k: [] for k in calls}
    for i in range(warmup + runs):
        for name in (list(calls) if i % 2 else list(calls)[::-1]):
            start = time.perf_counter_ns()
            calls[name]()
            if i >= warmup:
                times[name].append(time.perf_counter_ns() - start)
    compiled.close()
    return float(np.median(times["compiled"]) / np.median(times["interpreter"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bench-host-runners")
    ap.add_argument("--measure", nargs=2, metavar=("RUNNER", "MODEL"), help=argparse.SUPPRESS)
    ap.add_argument("--pair", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.pair:  # a child: compiled / interpreter, invokes alternated
        print(pair(args.pair, args.threads, args.runs, args.warmup))
        return
    if args.measure:  # a child: one runner, one file, its p50 on the last line
        print(measure(args.measure[0], Path(args.measure[1]), args.threads, args.runs, args.warmup))
        return
    console = Console(width=150)
    cli = shutil.which("litert-benchmark", path=os.path.dirname(sys.executable)) or shutil.which("litert-benchmark")
    if not cli:
        raise SystemExit("litert-benchmark (shipped by ai-edge-litert) is not installed next to this Python.")
    work = args.work
    arts = converted(work, console)

    p50s: dict[tuple[str, str], list[float]] = {}
    for rnd in range(args.rounds):
        order = RUNNERS[rnd % 3:] + RUNNERS[:rnd % 3]  # rotate who goes first
        for name, path in arts:
            for runner in order:
                if runner == "litert-benchmark":
                    p = litert_benchmark_p50(cli, path, args.threads, args.runs, args.warmup, work)
                else:
                    p = ours_p50(runner, path, args.threads, args.runs, args.warmup)
                p50s.setdefault((name, runner), []).append(p)
            p50s.setdefault((name, "paired"), []).append(paired_ratio(path, args.threads, args.runs, args.warmup))
        console.print(f"round {rnd + 1}/{args.rounds} done")

    table = Table(width=150, title=f"MobileNetV2 224 on the host, {args.threads} thread(s): p50 in ms, median of "
                        f"{args.rounds} interleaved rounds of {args.runs} runs", title_justify="left")
    for col in ("model", *RUNNERS, "interpreter / litert-benchmark", "compiled / litert-benchmark",
                "compiled / interpreter, invokes alternated"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, _ in arts:
        med = {r: statistics.median(p50s[(name, r)]) for r in RUNNERS}
        ref = med["litert-benchmark"]
        table.add_row(name, *(f"{med[r]:.3f}" for r in RUNNERS),
                      f"{med['interpreter'] / ref:.3f}x", f"{med['compiled'] / ref:.3f}x",
                      f"{statistics.median(p50s[(name, 'paired')]):.3f}x")
    console.print(table)
    console.print(f"Load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores. "
                  "Each measurement is its own process. Every runner measured each file once per round, in a "
                  "rotating order, so drift and other load hit all alike.")


def converted(work: Path, console: Console) -> list[tuple[str, Path]]:
    """MobileNetV2 224 as float32 and int8 .tflite in ``work`` (converted once, then reused)."""
    files = [("float32", work / "mobilenet_v2_224.float32.tflite"), ("int8", work / "mobilenet_v2_224.int8.tflite")]
    if all(p.is_file() for _, p in files):
        return files
    from tflite_deploy.sources import zoo
    from tflite_deploy.conversion.run import convert
    from tflite_deploy.sources.keras import from_keras_model
    from tflite_deploy.recipes import PRESETS, Recipe

    console.print("converting MobileNetV2 224 to float32 and int8 ...")
    source = from_keras_model(zoo.mobilenet_v2(), "mobilenet_v2_224")
    recipes = [PRESETS["float32"], Recipe(**{**PRESETS["int8"].__dict__, "calibration_samples": 16})]
    arts = convert(source, recipes, "photos", work)
    return [(a.recipe, a.path) for a in arts]


if __name__ == "__main__":
    main()
