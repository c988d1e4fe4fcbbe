"""Warm children against a fresh Python per isolated cell, side by side in one run.

The same host-only plan (the digits CNN × 4 recipes: convert, eval on digits:test, host bench =
12 isolated cells) runs twice on an in-process cluster with the real cell executor: once with a
child pool that retires each child after one cell (a fresh Python, TensorFlow imported again, per
cell: the behaviour before warm children) and once with the default pool. Each pass converts into
its own cache, so both do the same work. Printed: cells, seconds per pass, the ratio warm/cold.

    .venv/bin/python tools/bench_farm_children.py
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

from tflite_deploy.farm import children  # noqa: E402
from tflite_deploy.farm.cells import expand  # noqa: E402
from tflite_deploy.farm.plan import load_plan  # noqa: E402
from tflite_deploy.farm.run import CellExecutor  # noqa: E402
from tflite_deploy.farm.scheduler import local_cluster, run_cells  # noqa: E402


def one_pass(root: Path, model: Path, name: str, max_jobs: int) -> tuple[float, int, int]:
    plan_file = root / f"plan-{name}.yaml"
    plan_file.write_text(textwrap.dedent(f"""
        models: {{m: {{path: {model}, dataset: 'digits:test'}}}}
        recipes: [float32, float16, dynamic, int8]
        targets: [host]
        delegates: [xnnpack]
        runs: 20
        cache: {root / ('cache-' + name)}
        """))
    plan = load_plan(plan_file)
    cells = list(expand(plan, plan.targets).cells)
    from distributed import Client

    children._pool = children.ChildPool(max_jobs=max_jobs)
    try:
        with local_cluster(host_slots=1, processes=False) as cluster, Client(cluster) as client:
            t0 = time.perf_counter()
            out = run_cells(client, cells, CellExecutor(min_seconds=0))
            wall = time.perf_counter() - t0
    finally:
        children._pool.close()
        children._pool = None
    return wall, len(cells), sum(o.ok for o in out.values())


def main() -> int:
    import argparse

    argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0]).parse_args()
    import logging

    from tflite_deploy.sources import zoo

    logging.getLogger("distributed").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = root / "digits.keras"
        zoo.train_digits_cnn(epochs=2).save(model)
        cold = one_pass(root, model, "cold", max_jobs=1)
        warm = one_pass(root, model, "warm", max_jobs=children.MAX_JOBS)
    table = Table(title="isolated farm cells: a fresh child per cell vs warm children (one host slot)")
    for col in ("cells", "fresh child s", "warm child s", "warm / fresh"):
        table.add_column(col, justify="right")
    table.add_row(f"{cold[1]} ({cold[2]}/{warm[2]} ok)", f"{cold[0]:.1f}", f"{warm[0]:.1f}", f"{warm[0] / cold[0]:.2f}")
    Console().print(table)
    return 0 if cold[2] == warm[2] == cold[1] else 1


if __name__ == "__main__":
    sys.exit(main())
