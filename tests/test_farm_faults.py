"""Device faults in a farm run: a dropped adb link is retried after a pause; a phone that froze (or
stays gone after the retries) fails its cell, its waiting cells are reported not-run, and the other
phones finish. Never a lost cell, never a hung farm."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from tests.support import farm_executors as fx
from tests.test_farm_cells import VERSIONS, make_plan
from tflite_deploy.farm.cells import expand
from tflite_deploy.farm.plan import load_plan
from tflite_deploy.farm.record import StoreRecord
from tflite_deploy.farm.run import CellExecutor, FarmSettings, run_plan
from tflite_deploy.farm.scheduler import FAILED, NOT_RUN, OK, RetryPolicy, local_cluster, run_cells
from tflite_deploy.store import open_store

FAST_RETRY = RetryPolicy(attempts=3, first_delay=0.01)


@pytest.fixture(scope="module")
def client():
    from distributed import Client

    with local_cluster(phones=["A", "B"], host_slots=1, processes=False) as cluster, Client(cluster) as c:
        yield c


@pytest.mark.parametrize("how", ["frozen", "gone"])
def test_a_lost_phone_fails_one_cell_and_its_waiting_cells_are_not_run(client, tmp_path: Path, how: str) -> None:
    plan = make_plan(tmp_path, recipes="[float32, int8, float16]", targets="[host, adb:A, adb:B]")
    st = expand(plan, plan.targets, versions=VERSIONS)
    convert_ids = [c.cell_id for c in st.convert]
    bench = list(st.bench)
    out = run_cells(client, bench, fx.lose_phone("A", how), done=convert_ids, retry=FAST_RETRY)
    assert set(out) == {c.cell_id for c in bench}  # every cell has an outcome: none lost
    on_a = [out[c.cell_id] for c in bench if c.resource == "phone-A"]
    others = [out[c.cell_id] for c in bench if c.resource != "phone-A"]
    assert len(on_a) > 2 and others and all(o.status == OK for o in others)
    (failed,) = [o for o in on_a if o.status == FAILED]
    # one attempt for a frozen phone (a person must act); the retries first for a link that stays down
    assert failed.attempts == (1 if how == "frozen" else 3) and failed.resource_lost
    rest = [o for o in on_a if o is not failed]
    assert all(o.status == NOT_RUN and "phone A was lost earlier" in o.error and failed.cell_id in o.error
               for o in rest), rest


def write_device_plan(tmp: Path, model: Path, serials: list[str]) -> Path:
    targets = ", ".join(f"'adb:{s}'" for s in serials)
    p = tmp / "plan.yaml"
    p.write_text(textwrap.dedent(f"""\
        models:
          m: {{path: {model}}}
        recipes: [float32, float16]
        targets: [{targets}]
        delegates: [xnnpack]
        runs: 5
        warmup: 1
        cache: {tmp / 'cache'}
        """))
    return p


@pytest.mark.parametrize("adb_binary", ["adb36"], indirect=True)
def test_farm_retries_a_dropped_link_and_gives_up_on_a_frozen_phone(
        tmp_path: Path, adb_server, fake_devices, digits_keras: Path, digits_variants: dict,
        benchmark_binary: Path) -> None:
    flaky, frozen = fake_devices(), fake_devices()
    serials = [adb_server.connect(flaky), adb_server.connect(frozen)]
    flaky.drop_on = "run_benchmark.sh run"  # the link drops once, mid-benchmark
    frozen.freeze_on = "run_benchmark.sh run"  # freezes as its first benchmark starts
    plan = write_device_plan(tmp_path, digits_keras, serials)
    p = load_plan(plan)
    for cell in expand(p, p.targets).convert:  # converted already: this test is about the phones
        cell.artifact.parent.mkdir(parents=True)
        shutil.copy(digits_variants[cell.recipe.name].path, cell.artifact)

    done = run_plan(plan, tmp_path / "out", FarmSettings(store=str(tmp_path / "s.db"),
                    executor=CellExecutor(benchmark_tool=str(benchmark_binary), min_seconds=0)))
    by_target = {s: {cid: r for cid, r in done.ran.items() if r.target == f"adb:{s}"} for s in serials}
    flaky_cells, frozen_cells = by_target[serials[0]], by_target[serials[1]]
    # the dropped link: that cell ran again (three benchmark processes for two cells), both ok
    assert {r.status for r in flaky_cells.values()} == {OK}, flaky_cells
    assert sorted(r.attempts for r in flaky_cells.values()) == [1, 2]
    assert sum("run_benchmark.sh run" in c for c in flaky.shell_commands) == 3, "\n".join(flaky.shell_commands)
    # the frozen phone: one cell failed, found by the liveness probe well within a minute; the other not run
    statuses = sorted(r.status for r in frozen_cells.values())
    assert statuses == [FAILED, NOT_RUN], frozen_cells
    failed = next(r for r in frozen_cells.values() if r.status == FAILED)
    assert "stopped answering" in failed.error and failed.seconds < 60
    skipped = next(r for r in frozen_cells.values() if r.status == NOT_RUN)
    assert f"phone {serials[1]} was lost earlier" in skipped.error
    with open_store(tmp_path / "s.db", create=False) as st:
        stored = st.results(int(done.run_id))
    assert sorted((r.target, r.status) for r in stored) == sorted(
        [(f"adb:{serials[0]}", "ok")] * 2 + [(f"adb:{serials[1]}", "failed")])
    # nothing was measured on the lost phone: --resume runs both its cells again, the dropped link's not
    assert {r.fault for r in stored} == {None, "phone-lost"}
    record = StoreRecord.resume(str(tmp_path / "s.db"), done.run_id)
    try:
        assert record.finished() == set(flaky_cells)
    finally:
        record.close()


def test_a_transient_fault_on_the_host_gives_up_that_cell_only(client, tmp_path: Path) -> None:
    plan = make_plan(tmp_path, recipes="[float32, int8]", targets="[host]")
    cells = list(expand(plan, plan.targets, versions=VERSIONS).convert)
    counters = tmp_path / "counts"
    counters.mkdir()
    out = run_cells(client, cells, fx.flaky(str(counters), 5), retry=FAST_RETRY)
    # each host cell gets its own attempts: one that gives up does not take this host's other cells along
    assert [out[c.cell_id].status for c in cells] == [FAILED] * len(cells) and len(cells) > 1
    assert all(out[c.cell_id].attempts == 3 for c in cells)
