"""Speed of the results store on SQLite: writing 10,000 results, and compare over 1,000-cell runs.

    .venv/bin/python tools/bench_store.py [--results 10000] [--cells 1000] [--samples 50]

Writes synthetic bench Results (each with its raw samples, 5 per-repeat medians and a short log,
like `bench --repeat 5`) into a fresh store in a temp folder: in batches of 500 (`add_results`,
one transaction each: an import, or a farm flushing finished cells), and again one transaction
per result (`add_result`, what a measuring command does as each result completes: crash-safe, and
negligible beside a measurement that takes seconds). Then it records two runs of N cells each and
times `compare` between them (store reads plus one verdict per cell). Wall and CPU seconds are
printed: on a shared machine the wall time includes waiting for the CPU.
Target: writing 10,000 results plus the compare under 2 s on the project's 2-core machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from tflite_deploy.reporting.compare import compare_runs
from tflite_deploy.result import LatencyStats, Result
from tflite_deploy.store import open_store


def synthetic(i: int, p50: float, rng: np.random.Generator, samples: int) -> Result:
    # whole nanoseconds in milliseconds, as the host runner records them (perf_counter_ns / 1e6)
    s = np.round(p50 * np.exp(rng.normal(0, 0.02, samples)), 6)
    reps = [round(float(x), 6) for x in p50 * np.exp(rng.normal(0, 0.02, 5))]
    return Result(kind="bench", artifact=f"models/m{i // 4}.{['float32', 'int8', 'float16', 'dynamic'][i % 4]}.tflite",
                  recipe=["float32", "int8", "float16", "dynamic"][i % 4], latency=LatencyStats.from_samples(s),
                  init_ms=10.0, peak_memory_mb=50.0, metrics={"repeat_p50_ms": reps},
                  raw_log="INFO: Inference timings in us: Init: 10000, First inference: 4000")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=int, default=10_000)
    ap.add_argument("--cells", type=int, default=1_000)
    ap.add_argument("--samples", type=int, default=50)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rows = []

    def timed(op: str, count: int, fn) -> object:
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        rows.append((op, count, time.perf_counter() - t0, time.process_time() - c0))
        return out

    with tempfile.TemporaryDirectory() as tmp:
        results = [synthetic(i, 3.0 + (i % 7), rng, args.samples) for i in range(args.results)]
        with open_store(Path(tmp) / "bench.db") as st:
            run = st.start_run(tag="batch")
            timed("write, batches of 500", args.results,
                  lambda: [st.add_results(run, results[i:i + 500]) for i in range(0, len(results), 500)])
            run = st.start_run(tag="write")
            timed("write, one transaction per result", args.results,
                  lambda: [st.add_result(run, r) for r in results])
            base_cells = [synthetic(i, 3.0 + (i % 7), rng, args.samples) for i in range(args.cells)]
            new_cells = [synthetic(i, (3.0 + (i % 7)) * (1.25 if i % 10 == 0 else 1.0), rng, args.samples)
                         for i in range(args.cells)]
            for cells in (base_cells, new_cells):
                st.add_results(st.start_run(tag="nightly"), cells)
            cmp = timed(f"compare two runs of {args.cells:,} cells", args.cells,
                        lambda: compare_runs(st, "latest~1", "latest"))
            slower = sum(c.verdict == "slower" for c in cmp.cells)  # type: ignore[attr-defined]
    t = Table(title="Results store on SQLite", title_justify="left")
    for col in ("operation", "count", "seconds", "CPU seconds", "per item (ms)"):
        t.add_column(col, justify="left" if col == "operation" else "right")
    for op, n, sec, cpu in rows:
        t.add_row(op, f"{n:,}", f"{sec:.2f}", f"{cpu:.2f}", f"{1000 * sec / n:.3f}")
    batch_total = rows[0][2] + rows[2][2]
    single_total = rows[1][2] + rows[2][2]
    t.add_row("[bold]batched write + compare[/]", "", f"[bold]{batch_total:.2f}[/]", f"{rows[0][3] + rows[2][3]:.2f}", "")
    t.add_row("one-per-result write + compare", "", f"{single_total:.2f}", f"{rows[1][3] + rows[2][3]:.2f}", "")
    con = Console()
    con.print(t)
    con.print(f"compare found {slower} slower cell(s) of {args.cells} ({args.cells // 10} were made 25% slower); "
              f"target under 2 s (batched write + compare): {'met' if batch_total < 2 else 'NOT met'}")


if __name__ == "__main__":
    main()
