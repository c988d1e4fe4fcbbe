"""Scheduling overhead of the farm: 40 bench cells on 2 stand-in phones, each cell one 1 s "benchmark".

A plan (1 model × 5 recipes × 2 phones × 2 delegates × 2 thread counts = 40 bench cells) runs on the
embedded cluster (worker processes, one resource per phone) with an executor that sleeps 1 s per
run. Ideal wall time is benchmark seconds ÷ phones; the target is within 1.15× of it. The convert
cells are cache hits (their artifacts exist), as for an unchanged model.

    .venv/bin/python tools/bench_farm_overhead.py
"""

from __future__ import annotations

import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from tflite_deploy.farm.cells import ArtifactCache, expand, pending  # noqa: E402
from tflite_deploy.farm.plan import load_plan  # noqa: E402
from tflite_deploy.farm.scheduler import local_cluster, run_cells  # noqa: E402

SECONDS_PER_RUN = 1.0
TARGET_RATIO = 1.15


def stand_in_benchmark(cell):
    """benchmark_model's stand-in: a fixed 1 s per run."""
    time.sleep(SECONDS_PER_RUN * cell.runs)
    return {"cell": cell.cell_id}


def main() -> int:
    import argparse

    argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0]).parse_args()
    from distributed import Client

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "m.keras").write_bytes(b"stand-in model")
        plan_file = root / "plan.yaml"
        plan_file.write_text(textwrap.dedent("""
            models: {m: m.keras}
            recipes: [float32, dynamic, int8, float16, int16x8]
            targets: [adb:PHONE1, adb:PHONE2]
            delegates: [xnnpack, gpu]
            threads: [1, 4]
            runs: 1
            cache: cache
            """))
        plan = load_plan(plan_file)
        stages = expand(plan, plan.targets)
        for c in stages.convert:  # an unchanged model: every artifact already converted
            c.artifact.parent.mkdir(parents=True, exist_ok=True)
            c.artifact.write_bytes(b"tflite")
        todo, done = pending(stages, [], ArtifactCache(plan.cache))
        phones = len(plan.targets)
        bench_seconds = sum(c.runs * SECONDS_PER_RUN for c in todo)
        t0 = time.perf_counter()
        with local_cluster(phones=["PHONE1", "PHONE2"], host_slots=1, processes=True) as cluster, \
                Client(cluster) as client:
            client.submit(len, "warm").result()  # the cluster is up and a worker answers
            started = time.perf_counter() - t0
            t1 = time.perf_counter()
            out = run_cells(client, todo, stand_in_benchmark, done=done)
            wall = time.perf_counter() - t1
    ok = sum(o.ok for o in out.values())
    ideal = bench_seconds / phones
    ratio = wall / ideal
    table = Table(title="farm scheduling overhead (embedded cluster, worker processes)")
    for col in ("cells", "phones", "ideal s", "wall s", "ratio", "target", "cluster start s"):
        table.add_column(col, justify="right")
    table.add_row(f"{len(todo)} ({ok} ok)", str(phones), f"{ideal:.2f}", f"{wall:.2f}", f"{ratio:.3f}",
                  f"≤ {TARGET_RATIO}", f"{started:.2f}")
    Console().print(table)
    return 0 if ratio <= TARGET_RATIO and ok == len(todo) == 40 else 1


if __name__ == "__main__":
    sys.exit(main())
