"""A lab on one machine: a scheduler and `farm worker` processes, one phone each; a worker killed
mid-run loses no cell; TLS with throw-away certificates refuses a client without the lab's."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import farm_executors as fx
from tests.support.pki import make_ca, make_host_cert
from tests.test_farm_cells import VERSIONS, make_plan
from tflite_deploy.farm.cells import expand
from tflite_deploy.farm.scheduler import NOT_RUN, OK, RetryPolicy, local_cluster, offered_resources, run_cells
from tflite_deploy.farm.security import lab_security

REPO = Path(__file__).resolve().parents[1]


def start_worker(address: str, phone: str, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "tflite_deploy.cli.farm", "farm", "worker", "--scheduler", address,
                             "--phone", phone, "--name", f"w-{phone}", *extra],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for_resources(client, names: set[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not names <= set(offered_resources(client)):
        if time.monotonic() > deadline:
            raise AssertionError(f"workers never offered {names}")
        time.sleep(0.2)


def stop(procs) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def test_killed_worker_loses_no_cell(tmp_path: Path) -> None:
    from distributed import Client

    plan = make_plan(tmp_path, "threads: [1, 2]\n", recipes="[float32, int8]", targets="[adb:P1, adb:P2]")
    plan = plan.__class__(**{**plan.__dict__, "delegates": ("xnnpack", "cpu")})
    st = expand(plan, plan.targets, versions=VERSIONS)
    assert len([c for c in st.bench if c.target == "adb:P1"]) == 16
    with local_cluster(host_slots=0) as cluster, Client(cluster) as client:
        w1 = start_worker(cluster.scheduler_address, "P1", "--host-slots", "1")
        w2 = start_worker(cluster.scheduler_address, "P2", "--host-slots", "1")
        try:
            wait_for_resources(client, {"phone-P1", "phone-P2"})
            killed_at: list[float] = []

            def on_outcome(o):
                # kill P1's worker once it has finished three bench cells: the rest were queued on it
                done_p1 = sum(1 for c in st.bench if c.target == "adb:P1" and c.cell_id in seen)
                seen.add(o.cell_id)
                if not killed_at and done_p1 >= 2 and "/adb:P1/" in o.cell_id:
                    os.kill(w1.pid, signal.SIGKILL)
                    killed_at.append(time.monotonic())

            seen: set[str] = set()
            out = run_cells(client, st.cells, fx.make_sleeper(0.25), on_outcome,
                            retry=RetryPolicy(first_delay=0.01), lost_grace=2.0)
        finally:
            stop([w1, w2])
    assert killed_at, "the worker was never killed: the test did not test anything"
    assert set(out) == {c.cell_id for c in st.cells}  # none lost
    statuses = {cid: o.status for cid, o in out.items()}
    assert set(statuses.values()) <= {OK, NOT_RUN}
    for c in st.cells:
        o = out[c.cell_id]
        if c.target == "adb:P1":
            assert o.status == OK or "no worker holds phone P1" in o.error, o
        else:  # P2's cells and the host's conversions finish, on the surviving worker if need be
            assert o.status == OK, o
    p1 = [out[c.cell_id] for c in st.bench if c.target == "adb:P1"]
    assert 3 <= sum(o.ok for o in p1) < 16 and any(o.status == NOT_RUN for o in p1)


def tls_client_without_cert_is_dropped(address: str, ca: Path) -> bool:
    """A TLS client that trusts the lab CA but shows no certificate: the scheduler must hang up."""
    import socket
    import ssl

    host, port = address.removeprefix("tls://").rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.check_hostname = False
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        try:
            with ctx.wrap_socket(raw) as tls:  # TLS 1.3: the server judges the client after the handshake
                tls.sendall(b"\0" * 16)
                return tls.recv(16) == b""
        except (ssl.SSLError, ConnectionError):
            return True


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    ca_path, ca_cert, ca_key = make_ca(folder)
    hosts = {h: make_host_cert(folder, h, ca_cert, ca_key) for h in ("scheduler-host", "phone-host", "laptop")}
    rogue_path, rogue_cert, rogue_key = make_ca(folder / "rogue", "rogue-ca")
    rogue = make_host_cert(folder / "rogue", "intruder", rogue_cert, rogue_key)
    return {"ca": ca_path, "hosts": hosts, "rogue": (rogue_path, *rogue)}


def test_tls_lab_runs_a_cell_and_refuses_strangers(pki, tmp_path: Path) -> None:
    from distributed import Client

    cert, key = pki["hosts"]["scheduler-host"]
    with local_cluster(host_slots=0, security=lab_security(pki["ca"], cert, key)) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tls://127.0.0.1:")
        wc, wk = pki["hosts"]["phone-host"]
        worker = start_worker(address, "S1", "--tls-ca", str(pki["ca"]), "--tls-cert", str(wc), "--tls-key", str(wk))
        try:
            lc, lk = pki["hosts"]["laptop"]
            with Client(address, security=lab_security(pki["ca"], lc, lk), timeout="20s") as client:
                wait_for_resources(client, {"phone-S1"})
                plan = make_plan(tmp_path, recipes="[float32]", targets="[adb:S1]")
                st = expand(plan, plan.targets, versions=VERSIONS)
                cell = next(c for c in st.bench if c.needs == (st.convert[0].cell_id,))
                out = run_cells(client, [cell], fx.record, done=[st.convert[0].cell_id])
                assert out[cell.cell_id].status == OK and out[cell.cell_id].worker == "w-S1/S1"
            with pytest.raises(TypeError, match="ssl_context"):  # Dask will not even try without certificates
                Client(address, timeout="3s").close()
            # a half-made Client closes itself in __del__: let that run now, not when the garbage collector
            # happens to fire inside the next Client's start, which holds the lock its close needs (a hang)
            gc.collect()
            assert tls_client_without_cert_is_dropped(address, pki["ca"])  # ... and the scheduler refuses one
            rogue_ca, rogue_cert, rogue_key = pki["rogue"]
            with pytest.raises(OSError, match="certificate"):  # a certificate the lab's CA did not sign
                Client(address, security=lab_security(rogue_ca, rogue_cert, rogue_key), timeout="3s").close()
            gc.collect()
        finally:
            stop([worker])
        assert worker.returncode is not None
