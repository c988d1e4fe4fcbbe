"""Farm cells on an embedded Dask cluster: streamed outcomes, one cell per phone, crashes, retries, resume."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.support import farm_executors as fx
from tests.test_farm_cells import VERSIONS, make_plan
from tflite_deploy.farm.cells import Cell, expand, pending
from tflite_deploy.farm.scheduler import FAILED, NOT_RUN, OK, RetryPolicy, local_cluster, run_cells

FAST_RETRY = RetryPolicy(attempts=3, first_delay=0.01)


@pytest.fixture(scope="module")
def client():
    """One in-process cluster for the module: phones A and B, two host slots (threads, not processes:
    cells that could crash run in child processes of their own)."""
    from distributed import Client

    with local_cluster(phones=["A", "B"], host_slots=2, processes=False) as cluster, Client(cluster) as c:
        yield c


def stages(tmp: Path, recipes: str = "[float32, int8, float16]"):
    plan = make_plan(tmp, recipes=recipes, targets="[host, adb:A, adb:B]")
    return expand(plan, plan.targets, versions=VERSIONS)


def test_every_cell_streams_one_outcome_and_phones_run_one_at_a_time(client, tmp_path: Path) -> None:
    st = stages(tmp_path)
    # device cells sleep: they must not overlap on a phone, and phones A and B run side by side
    st_cells = list(st.cells)
    calls: list[tuple[float, str]] = []
    executor = fx.make_sleeper(0.15)
    t0 = time.monotonic()
    out = run_cells(client, st_cells, executor, lambda o: calls.append((time.monotonic(), o.cell_id)),
                    retry=FAST_RETRY)
    wall = time.monotonic() - t0
    assert set(out) == {c.cell_id for c in st.cells} and all(o.status == OK for o in out.values())
    assert sorted(cid for _, cid in calls) == sorted(out)  # the callback saw each cell once
    assert calls[0][0] - t0 < wall / 2  # ... as it completed, not all at the end
    by_target: dict[str, list] = {}
    for c in st.bench:
        if c.target != "host":
            v = out[c.cell_id].value
            by_target.setdefault(c.target, []).append((v["start"], v["end"]))
    for target, spans in by_target.items():
        spans.sort()
        assert all(b[0] >= a[1] for a, b in zip(spans, spans[1:])), f"two cells at once on {target}"
    convert_end = {c.cell_id: out[c.cell_id].value["end"] for c in st.convert}
    for c in st.bench + st.eval:
        assert out[c.cell_id].value["start"] >= convert_end[c.needs[0]]  # after its own conversion


def test_phones_run_side_by_side(client, tmp_path: Path) -> None:
    """Each phone has its own worker: one phone's queue never holds up another's."""
    st = stages(tmp_path)
    device = [c for c in st.bench if c.target != "host"]
    out = run_cells(client, device, fx.make_sleeper(0.1), done=[c.cell_id for c in st.convert])
    spans = [(o.value["start"], o.value["end"]) for o in out.values()]
    busy = sum(end - start for start, end in spans)
    wall = max(e for _, e in spans) - min(s for s, _ in spans)
    assert len(spans) == 24 and wall < 0.75 * busy, (wall, busy)  # one phone after the other: 1.0


def test_converter_crash_fails_its_cell_only(client, tmp_path: Path) -> None:
    st = stages(tmp_path)
    out = run_cells(client, st.cells, fx.crash_on({"int8": "exit", "float16": "abort", "float32": "raise"}),
                    retry=FAST_RETRY)
    assert len(out) == len(st.cells)
    for c in st.convert:
        o = out[c.cell_id]
        assert o.status == FAILED
        expect = {"int8": "exited with code 1", "float16": "killed by SIGABRT", "float32": "converter said no"}
        assert expect[c.recipe.name] in o.error, o.error
    for c in st.bench + st.eval:
        assert out[c.cell_id].status == NOT_RUN and c.needs[0] in out[c.cell_id].error
    # the farm is still whole: a clean run on the same cluster succeeds
    again = run_cells(client, st.cells[:3], fx.record)
    assert all(o.status == OK for o in again.values())


def test_transient_errors_retried_with_back_off(client, tmp_path: Path) -> None:
    st = stages(tmp_path, "[float32]")
    conv = st.convert[0]  # isolated: its TransientError crosses the child process
    cells = [conv] + [c for c in st.bench if c.target == "adb:A" and c.needs == (conv.cell_id,)]
    counters = tmp_path / "counts"
    counters.mkdir()
    out = run_cells(client, cells, fx.flaky(str(counters), 2), retry=FAST_RETRY)
    assert len(out) == 3
    assert all(o.status == OK and o.attempts == 3 and o.value == {"attempts": 3} for o in out.values()), out
    counters2 = tmp_path / "counts2"
    counters2.mkdir()
    t0 = time.monotonic()
    out = run_cells(client, cells[1:2], fx.flaky(str(counters2), 5), done=[conv.cell_id],
                    retry=RetryPolicy(attempts=3, first_delay=0.2, factor=2))
    o = next(iter(out.values()))
    assert o.status == FAILED and "gave up after 3 attempts" in o.error and "device offline" in o.error
    assert time.monotonic() - t0 >= 0.2 + 0.4  # back-off: 0.2 s, then 0.4 s


def test_resume_runs_only_missing_cells(client, tmp_path: Path) -> None:
    st = stages(tmp_path)
    ran: list[str] = []
    lock = threading.Lock()

    def note(o):
        with lock:
            ran.append(o.cell_id)

    # "killed half-way": the first run finished only these cells
    half = [c.cell_id for c in st.cells[: len(st.cells) // 2]]
    todo, done = pending(st, half)
    assert len(todo) == len(st.cells) - len(half)
    out = run_cells(client, todo, fx.record, note, done=done)
    assert set(ran) == {c.cell_id for c in todo} and set(ran).isdisjoint(half)
    assert all(o.status == OK for o in out.values())


def test_cell_whose_phone_no_worker_holds_is_reported_not_run(client, tmp_path: Path) -> None:
    st = stages(tmp_path, "[float32]")
    conv = st.convert[0]
    ghost = Cell("bench/ghost", "bench", conv.model, conv.recipe, conv.key, conv.artifact, target="adb:Z",
                 resource="phone-Z", isolate=False, needs=(conv.cell_id,))
    t0 = time.monotonic()
    real = next(c for c in st.bench if c.needs == (conv.cell_id,) and c.target == "adb:B")
    out = run_cells(client, [conv, ghost, real], fx.record, lost_grace=0.5)
    assert out[conv.cell_id].status == OK and out[real.cell_id].status == OK
    assert out["bench/ghost"].status == NOT_RUN and "phone Z" in out["bench/ghost"].error
    assert time.monotonic() - t0 < 5


def test_a_second_cluster_on_this_machine_gets_no_port_in_use_warning() -> None:
    """The embedded scheduler's HTTP server takes a free port: with 8787 taken (another farm run, a
    notebook's Dask), Dask used to warn "Port 8787 is already in use"."""
    import socket
    import warnings

    from distributed import Client

    holder = socket.socket()
    try:
        holder.bind(("0.0.0.0", 8787))
        holder.listen(1)
    except OSError:
        pass  # taken already: just as good
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            with local_cluster(phones=["A"], host_slots=1, processes=False) as cluster, Client(cluster) as c:
                assert c.submit(lambda: 42).result() == 42
        assert not [w for w in seen if "already in use" in str(w.message)], [str(w.message) for w in seen]
    finally:
        holder.close()
