"""Wall time and peak memory of a 4-recipe convert sweep with ``--jobs 2`` against ``--jobs 1``, in one run.

    .venv/bin/python tools/bench_convert_jobs.py [--jobs 2] [--rounds 1]

Saves MobileNetV2 224 (``tf_keras.applications.MobileNetV2(weights=None)``: random weights, the
converter's work is the same) to a .keras file and runs ``tflite-deploy convert`` with the recipes
float32, dynamic, int8 and float16 (calibrated on the bundled ``photos``), once with ``--jobs 1``
(in one process) and once with ``--jobs N`` (one worker process per recipe, N at a time), each as
its own command. Peak memory is the largest sum of RSS over the command's process tree (psutil,
sampled every 0.1 s). Target on 2 cores: ratio (jobs N / jobs 1) <= 0.65.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from rich.console import Console
from rich.table import Table

RECIPES = ("float32", "dynamic", "int8", "float16")


def save_mobilenet_v2(path: Path) -> None:
    import tf_keras

    tf_keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3)).save(path)


def run(cmd: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak tree RSS in bytes, exit code."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
                total = 0
                for p in procs:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                peak = max(peak, total)
            except psutil.Error:
                pass
            stop.wait(0.1)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    code = proc.wait()
    wall = time.perf_counter() - started
    stop.set()
    t.join()
    return wall, peak, code


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1, help="Alternate jobs-1 and jobs-N runs this many times.")
    args = ap.parse_args()
    exe = str(Path(sys.executable).with_name("tflite-deploy"))
    with tempfile.TemporaryDirectory(prefix="bench-convert-jobs-") as tmp:
        model = Path(tmp) / "mobilenet_v2.keras"
        save_mobilenet_v2(model)
        rows: dict[int, list[tuple[float, float, int]]] = {1: [], args.jobs: []}
        for r in range(args.rounds):
            for jobs in (1, args.jobs) if r % 2 == 0 else (args.jobs, 1):
                cmd = [exe, "convert", str(model), *[x for n in RECIPES for x in ("-r", n)], "--data", "photos",
                       "--out", str(Path(tmp) / f"out-{jobs}-{r}"), "--jobs", str(jobs), "--json"]
                rows[jobs].append(run(cmd))
    t = Table(title=f"convert MobileNetV2 224, recipes {', '.join(RECIPES)} (photos), {psutil.cpu_count()} cores",
              title_justify="left")
    for col in ("jobs", "wall (s)", "ratio to jobs 1", "peak RSS, process tree", "exit codes"):
        t.add_column(col, justify="right")
    base = min(w for w, _, _ in rows[1])
    for jobs, runs in rows.items():
        wall = min(w for w, _, _ in runs)
        peak = max(p for _, p, _ in runs)
        t.add_row(str(jobs), f"{wall:.1f}", f"{wall / base:.2f}", f"{peak / 1e9:.2f} GB",
                  ",".join(str(c) for _, _, c in runs))
    Console().print(t)


if __name__ == "__main__":
    main()
