"""Warm child processes for isolated farm cells: reused cell after cell, a crash costs one child and
one cell, retired after max_jobs, gone when idle or when their parent dies."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import psutil
import pytest

from tests.support import farm_executors as fx
from tests.test_farm_cells import VERSIONS, make_plan
from tflite_deploy.farm.cells import expand
from tflite_deploy.farm.children import ChildDied, ChildPool
from tflite_deploy.farm.scheduler import _run_isolated

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cells(tmp_path: Path):
    plan = make_plan(tmp_path, recipes="[float32, int8, float16]", targets="[host]")
    return list(expand(plan, plan.targets, versions=VERSIONS).convert)


def run_job(pool: ChildPool, tmp: Path, executor, cell) -> tuple:
    job, out = tmp / "job.pkl", tmp / "out.pkl"
    out.unlink(missing_ok=True)
    job.write_bytes(cloudpickle.dumps((executor, cell)))
    pool.run(job, out, cell.stage)
    return cloudpickle.loads(out.read_bytes())


def test_cells_share_a_warm_child_and_a_crash_costs_only_that_child(cells) -> None:
    first = _run_isolated(fx.record, cells[0])
    again = _run_isolated(fx.record, cells[1])
    assert first["pid"] == again["pid"] != os.getpid()  # one child, warm, not this process
    with pytest.raises(RuntimeError, match="the convert process was killed by SIGABRT before finishing"):
        _run_isolated(fx.crash_on({"float16": "abort"}), cells[2])
    after = _run_isolated(fx.record, cells[0])
    assert after["pid"] != first["pid"] and not psutil.pid_exists(first["pid"])


def test_a_child_is_retired_after_max_jobs_and_leaves_when_idle(cells, tmp_path: Path) -> None:
    pool = ChildPool(max_jobs=2, idle_seconds=1.0)
    try:
        pids = [run_job(pool, tmp_path, fx.record, cells[0])[1]["pid"] for _ in range(3)]
        assert pids[0] == pids[1] != pids[2]
        assert not psutil.pid_exists(pids[0]) or psutil.Process(pids[0]).status() == psutil.STATUS_ZOMBIE
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and psutil.pid_exists(pids[2]) \
                and psutil.Process(pids[2]).status() != psutil.STATUS_ZOMBIE:
            time.sleep(0.1)
        assert not psutil.pid_exists(pids[2]) or psutil.Process(pids[2]).status() == psutil.STATUS_ZOMBIE
        assert run_job(pool, tmp_path, fx.record, cells[0])[1]["pid"] not in pids  # a new one on demand
    finally:
        pool.close()


def chatty(cell):
    """Prints what the control protocol says, on stdout and stderr: it must not confuse the parent."""
    print("done\ndone", flush=True)
    print("done", file=sys.stderr, flush=True)
    time.sleep(0.2)
    return {"cell": cell.cell_id}


def test_what_a_cell_prints_does_not_reach_the_control_pipe(cells, tmp_path: Path) -> None:
    pool = ChildPool()
    try:
        assert run_job(pool, tmp_path, chatty, cells[0]) == ("ok", {"cell": cells[0].cell_id})
        assert run_job(pool, tmp_path, fx.record, cells[1])[0] == "ok"
        with pytest.raises(ChildDied, match=r"exited with code 1 before finishing"):
            run_job(pool, tmp_path, fx.crash_on({"float32": "exit"}), cells[0])
    finally:
        pool.close()


def test_children_leave_with_their_parent(cells, tmp_path: Path) -> None:
    """A Dask worker killed with SIGKILL leaves no warm child behind: its stdin closes."""
    job = tmp_path / "cell.pkl"
    job.write_bytes(cloudpickle.dumps(cells[0]))
    code = (
        "import os, sys, cloudpickle; from pathlib import Path; from tests.support import farm_executors as fx; "
        "from tflite_deploy.farm.scheduler import _run_isolated; "
        "cell = cloudpickle.loads(Path(sys.argv[1]).read_bytes()); "
        "print(_run_isolated(fx.record, cell)['pid'], flush=True); os._exit(0)"
    )
    r = subprocess.run([sys.executable, "-c", code, str(job)], cwd=ROOT, capture_output=True, text=True,
                       timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    child = int(r.stdout.strip())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and psutil.pid_exists(child):
        time.sleep(0.1)
    assert not psutil.pid_exists(child), "the warm child outlived its parent"


def test_a_child_started_under_other_settings_is_not_reused(cells, tmp_path: Path, monkeypatch) -> None:
    pool = ChildPool()
    try:
        before = run_job(pool, tmp_path, fx.record, cells[0])[1]["pid"]
        monkeypatch.setenv("TFLITE_DEPLOY_TEST_ABORT_RECIPE", "float32")  # a setting the next cell must see
        after = run_job(pool, tmp_path, fx.record, cells[0])[1]["pid"]
        assert after != before
    finally:
        pool.close()
