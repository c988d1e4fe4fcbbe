"""Device leases: one farm run per phone; expiry; a dead holder's lease taken over; release on exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tflite_deploy.farm.leases import FileLeases, LeaseHeld, holding

REPO = Path(__file__).resolve().parents[1]


def test_second_acquire_refused_while_held(tmp_path: Path) -> None:
    leases = FileLeases(tmp_path)
    first = leases.acquire("R58M", "run-1", ttl=30)
    with pytest.raises(LeaseHeld, match=r"R58M is in use by run run-1 \(pid \d+"):
        leases.acquire("R58M", "run-2", ttl=30)
    other = leases.acquire("emulator-5554", "run-2", ttl=30)  # other phones are free
    assert leases.current("R58M") == first and other.serial == "emulator-5554"
    leases.release(first)
    assert leases.current("R58M") is None
    assert leases.acquire("R58M", "run-2", ttl=30).holder == "run-2"


def test_expired_lease_is_taken_over_and_the_old_holder_cannot_touch_it(tmp_path: Path) -> None:
    leases = FileLeases(tmp_path)
    old = leases.acquire("adb://farm:5037/X", "run-1", ttl=0.2)
    time.sleep(0.3)
    assert leases.current("adb://farm:5037/X") is None
    new = leases.acquire("adb://farm:5037/X", "run-2", ttl=30)
    assert new.holder == "run-2"
    with pytest.raises(LeaseHeld, match="lapsed"):
        leases.renew(old, 30)
    leases.release(old)  # a no-op: it is not ours any more
    assert leases.current("adb://farm:5037/X") == new
    renewed = leases.renew(new, 60)
    assert renewed.expires > new.expires


def test_lease_of_a_dead_process_on_this_host_lapses_at_once(tmp_path: Path) -> None:
    code = ("import sys, time; from tflite_deploy.farm.leases import FileLeases; "
            "FileLeases(sys.argv[1]).acquire('P1', 'run-dead', ttl=3600); print('held', flush=True); time.sleep(60)")
    p = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "held"
        leases = FileLeases(tmp_path)
        with pytest.raises(LeaseHeld):
            leases.acquire("P1", "run-2", ttl=30)
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    assert leases.acquire("P1", "run-2", ttl=30).holder == "run-2"  # ttl not over, but its holder is gone


def test_holding_renews_and_releases_on_exit(tmp_path: Path) -> None:
    leases = FileLeases(tmp_path)
    with holding(leases, ["A", "B"], "run-1", ttl=0.3) as held:
        assert [lease.serial for lease in held] == ["A", "B"]
        time.sleep(0.6)  # two ttls: only renewal keeps them
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


def test_lease_released_when_a_run_exits_normally(tmp_path: Path) -> None:
    code = ("import sys; from tflite_deploy.farm.leases import FileLeases, holding\n"
            "with holding(FileLeases(sys.argv[1]), ['P9'], 'run-x', ttl=3600):\n    print('working')\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0 and "working" in out.stdout
    assert FileLeases(tmp_path).current("P9") is None
    assert not list(tmp_path.iterdir())  # nothing left behind
