"""Host p50 of our two runners against LiteRT's own ``litert-benchmark``, side by side in one run.

    .venv/bin/python tools/bench_host_runners.py [--threads 1] [--runs 200] [--rounds 7]

Converts MobileNetV2 224 (``tf_keras.applications.MobileNetV2(weights=None)``: latency only) to
float32 and int8 with the package's own convert API, then, round after round and in a rotating
order, measures each file with our Interpreter runner, our CompiledModel runner (both through
``bench_host``) and ``litert-benchmark`` (the CLI ai-edge-litert ships, on the same CompiledModel
API; run as a subprocess, its ``--result_json`` read back). Each round gives each runner's p50 (the
CLI's ``median_ms``); the table shows the median over rounds and the ratio to ``litert-benchmark``.
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

from tflite_deploy import zoo
from tflite_deploy.bench.host import HostBenchSettings, bench_host
from tflite_deploy.convert import convert
from tflite_deploy.models import from_keras_model
from tflite_deploy.recipes import PRESETS, Recipe

RUNNERS = ("interpreter", "compiled", "litert-benchmark")


def litert_benchmark_p50(cli: str, model: Path, threads: int, runs: int, warmup: int, work: Path) -> float:
    out = work / "litert_benchmark.json"
    out.unlink(missing_ok=True)
    subprocess.run([cli, "--model", str(model), "--num_threads", str(threads), "--num_runs", str(runs),
                    "--warmup_runs", str(warmup), "--result_json", str(out)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return float(json.loads(out.read_text())["latency"]["median_ms"])


def ours_p50(runner: str, model: Path, threads: int, runs: int, warmup: int) -> float:
    settings = HostBenchSettings(threads=threads, runs=runs, warmup=warmup, min_seconds=0.0, max_runs=runs,
                                 runner=runner)
    (result,) = bench_host([model], settings)
    return float(result.latency.p50_ms)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    console = Console()
    cli = shutil.which("litert-benchmark", path=os.path.dirname(sys.executable)) or shutil.which("litert-benchmark")
    if not cli:
        raise SystemExit("litert-benchmark (shipped by ai-edge-litert) is not installed next to this Python.")
    work = Path(tempfile.mkdtemp(prefix="bench-runners-"))
    source = from_keras_model(zoo.mobilenet_v2(), "mobilenet_v2_224")
    recipes = [PRESETS["float32"], Recipe(**{**PRESETS["int8"].__dict__, "calibration_samples": 16})]
    console.print("converting MobileNetV2 224 to float32 and int8 ...")
    arts = convert(source, recipes, "photos", work)

    p50s: dict[tuple[str, str], list[float]] = {}
    for rnd in range(args.rounds):
        order = RUNNERS[rnd % 3:] + RUNNERS[:rnd % 3]  # rotate who goes first
        for art in arts:
            for runner in order:
                if runner == "litert-benchmark":
                    p = litert_benchmark_p50(cli, art.path, args.threads, args.runs, args.warmup, work)
                else:
                    p = ours_p50(runner, art.path, args.threads, args.runs, args.warmup)
                p50s.setdefault((art.recipe, runner), []).append(p)
        console.print(f"round {rnd + 1}/{args.rounds} done")

    table = Table(title=f"MobileNetV2 224 on the host, {args.threads} thread(s): p50 in ms, median of "
                        f"{args.rounds} interleaved rounds of {args.runs} runs", title_justify="left")
    for col in ("model", *RUNNERS, "interpreter / litert-benchmark", "compiled / litert-benchmark"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for art in arts:
        med = {r: statistics.median(p50s[(art.recipe, r)]) for r in RUNNERS}
        ref = med["litert-benchmark"]
        table.add_row(art.recipe, *(f"{med[r]:.3f}" for r in RUNNERS),
                      f"{med['interpreter'] / ref:.3f}x", f"{med['compiled'] / ref:.3f}x")
    console.print(table)
    console.print("litert-benchmark runs in its own process (its median_ms); ours run in this one. Every runner "
                  "measured each file once per round, in a rotating order, so drift hits all alike.")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
