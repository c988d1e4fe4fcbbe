"""A farm run with two phones, one of which freezes completely (no stream answered, not even a new one)
during a short command or just as a benchmark starts: that phone's cell fails well within a minute,
its other cell is not run, the healthy phone finishes, and once the phone is back, ``--resume`` runs
the lost phone's cells and nothing else. Default liveness settings; adb 29 and adb 36, a point each."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.test_device_freeze import FREEZE_POINTS
from tests.test_farm_faults import write_device_plan
from tflite_deploy.farm.cells import expand
from tflite_deploy.farm.plan import load_plan
from tflite_deploy.farm.run import CellExecutor, FarmSettings, run_plan
from tflite_deploy.farm.scheduler import FAILED, NOT_RUN, OK
from tflite_deploy.store import open_store


@pytest.mark.slow
# one freeze point per adb version (pairs, ~28 s each): tests/test_device_freeze.py runs every point on both
@pytest.mark.parametrize("adb_binary, point", [("adb29", "benchmark-start"), ("adb36", "short-command")],
                         indirect=["adb_binary"])
def test_a_phone_freezing_in_a_farm_run_is_given_up_and_resumed_when_back(
        point, tmp_path: Path, adb_server, fake_devices, digits_keras: Path, digits_variants: dict,
        benchmark_binary: Path) -> None:
    healthy, freezing = fake_devices(), fake_devices()
    serials = [adb_server.connect(healthy), adb_server.connect(freezing)]
    control, text = FREEZE_POINTS[point]
    setattr(freezing, control, text)
    plan = write_device_plan(tmp_path, digits_keras, serials)
    p = load_plan(plan)
    for cell in expand(p, p.targets).convert:  # converted already: this test is about the phones
        cell.artifact.parent.mkdir(parents=True)
        shutil.copy(digits_variants[cell.recipe.name].path, cell.artifact)
    store = str(tmp_path / "s.db")
    executor = CellExecutor(benchmark_tool=str(benchmark_binary), min_seconds=0)

    started = time.monotonic()
    done = run_plan(plan, tmp_path / "out", FarmSettings(store=store, executor=executor))
    ended = time.monotonic()
    assert freezing.frozen_at is not None, f"the phone never froze at {point}"
    assert ended - started < 150, f"the run took {ended - started:.0f} s"
    assert ended - freezing.frozen_at < 60, f"the run ended {ended - freezing.frozen_at:.0f} s after the freeze"
    by_target = {s: {cid: r for cid, r in done.ran.items() if r.target == f"adb:{s}"} for s in serials}
    assert {r.status for r in by_target[serials[0]].values()} == {OK}, by_target[serials[0]]
    lost = by_target[serials[1]]
    assert sorted(r.status for r in lost.values()) == [FAILED, NOT_RUN], lost
    failed = next(r for r in lost.values() if r.status == FAILED)
    assert "stopped answering" in failed.error and failed.seconds < 60, (failed.error, failed.seconds)
    assert f"phone {serials[1]} was lost earlier" in next(r for r in lost.values() if r.status == NOT_RUN).error

    # the phone is back (rebooted: its link drops, adb reconnects it); --resume runs its two cells only
    freezing.freeze_on = freezing.freeze_on_open = freezing.freeze_on_push = None
    freezing.resume()
    freezing.drop()
    adb_server.wait_for_state(serials[1], timeout=20)
    runs_before = sum("run_benchmark.sh run" in c for c in healthy.shell_commands)
    again = run_plan(plan, tmp_path / "out", FarmSettings(store=store, resume=done.run_id, executor=executor))
    assert set(again.ran) == set(lost), again.ran
    assert {r.status for r in again.ran.values()} == {OK}, again.ran
    assert sum("run_benchmark.sh run" in c for c in healthy.shell_commands) == runs_before
    with open_store(tmp_path / "s.db", create=False) as st:
        stored = st.results(int(done.run_id))
    assert sorted((r.target, r.status) for r in stored if r.fault is None) == sorted(
        [(f"adb:{s}", "ok") for s in serials for _ in range(2)])
