"""Device leases: one farm run per phone; expiry; a dead holder's lease taken over; release on exit.

Every behaviour is checked on each backend: a folder (``--no-store``), the results store on SQLite,
and the results store on a real PostgreSQL server (the lab's set-up).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.postgres import postgres_server  # noqa: F401  (a session fixture)
from tflite_deploy.farm.leases import FileLeases, Leases, LeaseHeld, StoreLeases, holding

REPO = Path(__file__).resolve().parents[1]
OPEN = {"folder": "FileLeases(sys.argv[1])", "sqlite": "StoreLeases(open_store(sys.argv[1]))",
        "postgresql": "StoreLeases(open_store(sys.argv[1]))"}
IMPORTS = "import sys, time; from tflite_deploy.farm.leases import FileLeases, StoreLeases, holding; " \
          "from tflite_deploy.store import open_store\n"


@dataclass
class Backend:
    kind: str
    location: str  # a folder, a SQLite file or a PostgreSQL URL: sys.argv[1] of the helper processes
    opened: list[Any] = field(default_factory=list)

    def open(self) -> Leases:
        if self.kind == "folder":
            return FileLeases(self.location)
        from tflite_deploy.store import open_store

        store = open_store(self.location)
        self.opened.append(store)
        return StoreLeases(store)

    def python(self, body: str, *args: str, **popen: Any) -> subprocess.Popen:
        """A helper process with ``leases`` open on this backend, running ``body``."""
        code = IMPORTS + f"leases = {OPEN[self.kind]}\n" + textwrap.dedent(body)
        return subprocess.Popen([sys.executable, "-c", code, self.location, *args], cwd=REPO,
                                env={**os.environ, "PYTHONPATH": str(REPO)}, text=True, **popen)

    def rows(self) -> list[dict]:
        import sqlalchemy as sa

        store = self.opened[0] if self.opened else None
        assert store is not None
        with store.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.text("select * from device_leases")).mappings()]


@pytest.fixture(params=["folder", "sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "folder":
        b = Backend("folder", str(tmp_path / "leases"))
    elif request.param == "sqlite":
        b = Backend("sqlite", str(tmp_path / "results.db"))
    else:
        b = Backend("postgresql", request.getfixturevalue("postgres_server").new_database())
    yield b
    for store in b.opened:
        store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_backend(request: pytest.FixtureRequest, tmp_path: Path):
    location = str(tmp_path / "results.db") if request.param == "sqlite" \
        else request.getfixturevalue("postgres_server").new_database()
    b = Backend(request.param, location)
    yield b
    for store in b.opened:
        store.close()


def test_second_acquire_refused_while_held(backend: Backend) -> None:
    leases = backend.open()
    first = leases.acquire("R58M", "farm run 1", ttl=30)
    with pytest.raises(LeaseHeld, match=r"Phone R58M is in use by farm run 1 \(pid \d+ on .*for \d+ s more"):
        leases.acquire("R58M", "farm run 2", ttl=30)
    other = leases.acquire("emulator-5554", "farm run 2", ttl=30)  # other phones are free
    assert leases.current("R58M") == first and other.serial == "emulator-5554"
    leases.release(first)
    assert leases.current("R58M") is None
    assert leases.acquire("R58M", "farm run 2", ttl=30).holder == "farm run 2"


def test_expired_lease_is_taken_over_and_the_old_holder_cannot_touch_it(backend: Backend) -> None:
    leases = backend.open()
    old = leases.acquire("adb://farm:5037/X", "run-1", ttl=0.2)
    time.sleep(0.3)
    assert leases.current("adb://farm:5037/X") is None
    new = leases.acquire("adb://farm:5037/X", "run-2", ttl=30)
    assert new.holder == "run-2"
    with pytest.raises(LeaseHeld, match="our lease lapsed and it is now held by run-2"):
        leases.renew(old, 30)
    leases.release(old)  # a no-op: it is not ours any more
    assert leases.current("adb://farm:5037/X") == new
    renewed = leases.renew(new, 60)
    assert renewed.expires > new.expires and leases.current("adb://farm:5037/X") == renewed


def test_lease_of_a_killed_process_on_this_host_lapses_at_once(backend: Backend) -> None:
    p = backend.python("leases.acquire('P1', 'run-dead', ttl=3600); print('held', flush=True); time.sleep(60)",
                       stdout=subprocess.PIPE)
    try:
        assert p.stdout.readline().strip() == "held"
        leases = backend.open()
        with pytest.raises(LeaseHeld, match=f"in use by run-dead \\(pid {p.pid} "):
            leases.acquire("P1", "run-2", ttl=30)
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    assert leases.current("P1") is None
    assert leases.acquire("P1", "run-2", ttl=30).holder == "run-2"  # ttl not over, but its holder is gone


def test_holding_renews_and_releases_on_exit(backend: Backend) -> None:
    leases = backend.open()
    with holding(leases, ["A", "B"], "run-1", ttl=0.6) as held:
        assert [lease.serial for lease in held] == ["A", "B"]
        time.sleep(1.3)  # two ttls: only renewal keeps them
        assert leases.current("A") is not None and leases.current("B") is not None
        with pytest.raises(LeaseHeld):
            leases.acquire("B", "run-2", ttl=1)
    assert leases.current("A") is None and leases.current("B") is None
    # all or none: B busy means A is not left taken
    b = leases.acquire("B", "run-3", ttl=30)
    with pytest.raises(LeaseHeld):
        with holding(leases, ["A", "B"], "run-4"):
            pass
    assert leases.current("A") is None and leases.current("B") == b


def test_lease_released_when_a_run_exits_normally(backend: Backend) -> None:
    p = backend.python("with holding(leases, ['P9'], 'run-x', ttl=3600):\n    print('working')\n",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0 and "working" in out, err
    leases = backend.open()
    assert leases.current("P9") is None
    if backend.kind == "folder":
        assert not list(Path(backend.location).iterdir())  # nothing left behind
    else:
        assert backend.rows() == []


RACER = """
    print('ready', flush=True)
    while not __import__('os').path.exists(sys.argv[2]):
        time.sleep(0.001)
    try:
        leases.acquire('R1', 'racer', ttl=60)
        print('won', flush=True)
    except Exception as e:
        print('lost', type(e).__name__, e, flush=True)
    time.sleep(2)  # keep holding (alive) while the others look
"""


def race(backend: Backend, tmp_path: Path, n: int = 4) -> list[str]:
    """``n`` processes acquire phone R1 at the same moment; returns each one's verdict line."""
    go = tmp_path / "go"
    procs = [backend.python(RACER, str(go), stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(n)]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        go.touch()
        return [p.communicate(timeout=120)[0].strip() for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def test_processes_racing_for_a_free_phone_one_wins(backend: Backend, tmp_path: Path) -> None:
    backend.open()  # the store made before the racers open it
    verdicts = race(backend, tmp_path)
    assert sorted(v.split()[0] for v in verdicts) == ["lost", "lost", "lost", "won"], verdicts
    assert all("LeaseHeld" in v for v in verdicts if v.startswith("lost")), verdicts


def other_host_row(serial: str, expires_in: float) -> dict:
    """A lease as a run on another host wrote it (its pid means nothing here)."""
    return {"serial": serial, "holder": "farm run 7", "token": "f" * 32, "hostname": "phonehost2.lab",
            "pid": dead_pid(), "expires": time.time() + expires_in, "acquired_at": time.time()}


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_processes_racing_to_take_over_a_stale_lease_one_wins(store_backend: Backend, tmp_path: Path) -> None:
    leases = store_backend.open()
    assert leases.rows.insert(other_host_row("R1", expires_in=-5))  # expired: free to take over
    verdicts = race(store_backend, tmp_path)
    assert sorted(v.split()[0] for v in verdicts) == ["lost", "lost", "lost", "won"], verdicts
    assert leases.rows.get("R1")["holder"] == "racer"  # (the racers have exited: their lease is dead now)


def test_lease_from_another_host_lapses_only_at_expiry(store_backend: Backend) -> None:
    leases = store_backend.open()
    row = other_host_row("R2", expires_in=1.5)
    assert leases.rows.insert(row)
    # its pid is dead here, but that says nothing about a process on another host: it holds until expiry
    with pytest.raises(LeaseHeld, match=r"in use by farm run 7 \(pid \d+ on phonehost2.lab\)"):
        leases.acquire("R2", "farm run 8", ttl=30)
    assert leases.current("R2").hostname == "phonehost2.lab"
    time.sleep(max(0.0, row["expires"] - time.time()) + 0.1)
    assert leases.current("R2") is None
    mine = leases.acquire("R2", "farm run 8", ttl=30)
    assert [(r["holder"], r["token"]) for r in store_backend.rows()] == [("farm run 8", mine.token)]


# ------------------------------------------------------------------ through `farm run` itself
def one_phone_plan(tmp: Path) -> Path:
    """One model, one recipe, phone P1 (no phone needed: the tests' executors stand in for the cells)."""
    (tmp / "m.keras").write_bytes(b"a model")
    plan = tmp / "plan.yaml"
    plan.write_text("models: {m: m.keras}\nrecipes: [float32]\ntargets: ['adb:P1']\ndelegates: [xnnpack]\n"
                    "cache: cache\n")
    return plan


FIRST_RUN = """\
import sys, time
from tflite_deploy.farm.run import FarmSettings, run_plan

def slow_cell(cell):
    time.sleep(2)
    return []

run_plan(sys.argv[1], sys.argv[2], FarmSettings(store=sys.argv[3], executor=slow_cell))
"""


def test_second_farm_run_on_the_same_phone_is_refused_naming_the_first(tmp_path: Path) -> None:
    from tflite_deploy.store import open_store

    plan = one_phone_plan(tmp_path)
    db = tmp_path / "results.db"
    open_store(db).close()
    first = subprocess.Popen([sys.executable, "-c", FIRST_RUN, str(plan), str(tmp_path / "out"), str(db)],
                             cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with open_store(db) as st:
            leases = StoreLeases(st)
            deadline = time.monotonic() + 120
            while leases.current("P1") is None and first.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            held = leases.current("P1")
            assert held is not None, first.communicate()
            assert (held.holder, held.pid) == ("farm run 1", first.pid)
        second = subprocess.run([sys.executable, "-m", "tflite_deploy.cli", "farm", "run", str(plan), "--store",
                                 str(db), "--out", str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True,
                                timeout=300)
        assert second.returncode == 3, second.stdout + second.stderr
        assert f"Phone P1 is in use by farm run 1 (pid {first.pid} " in " ".join(second.stderr.split())
        assert "Traceback" not in second.stderr
        assert first.poll() is None, "the first run ended before the second tried: nothing was tested"
        out, err = first.communicate(timeout=300)
        assert first.returncode == 0, err
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    with open_store(db, create=False) as st:
        assert StoreLeases(st).rows.get("P1") is None  # released (row deleted) when the first run ended
        assert [r["id"] for r in st.runs()] == [2, 1] and st.count_results(2) == 0  # the refused run did nothing


def test_farm_run_leases_in_its_store_and_in_a_folder_only_without_one(tmp_path: Path) -> None:
    from tflite_deploy.farm.plan import load_plan
    from tflite_deploy.farm.record import JsonLinesRecord, StoreRecord
    from tflite_deploy.farm.run import phone_leases

    plan = load_plan(one_phone_plan(tmp_path))
    rec = StoreRecord.start(str(tmp_path / "results.db"), "t", [])
    try:
        leases = phone_leases(plan, rec)
        assert isinstance(leases, StoreLeases)
        leases.acquire("P1", "farm run 1", ttl=30)
        assert StoreLeases(rec.store).rows.get("P1")["holder"] == "farm run 1"
    finally:
        rec.close()
    folder = phone_leases(plan, JsonLinesRecord.start(tmp_path / "out", "t", []))
    assert isinstance(folder, FileLeases) and folder.root == plan.cache / "leases"


def test_renewal_survives_a_store_that_fails_to_answer_once(tmp_path: Path) -> None:
    class Flaky(FileLeases):
        renewals = 0

        def renew(self, lease, ttl):
            Flaky.renewals += 1
            if Flaky.renewals == 1:
                raise ConnectionError("server closed the connection unexpectedly")
            return super().renew(lease, ttl)

    leases = Flaky(tmp_path)
    with holding(leases, ["A"], "run-1", ttl=0.6):
        time.sleep(1.5)  # the first renewal fails; the later ones still keep the lease
        assert Flaky.renewals >= 3 and leases.current("A") is not None
