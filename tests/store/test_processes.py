"""Real processes: concurrent writers on one SQLite store, and a writer killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


from tflite_deploy.result import Result
from tflite_deploy.store import open_store
from tflite_deploy.store.query import history

REPO = Path(__file__).resolve().parents[2]


def _writer(store: str, tag: str, count: int, delay: float = 0.0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.store.writer", store, tag, str(count), str(delay)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_four_processes_write_to_one_sqlite_store_at_once(tmp_path: Path) -> None:
    store = str(tmp_path / "shared.db")  # not created yet: the writers race to create it too
    procs = {f"w{i}": _writer(store, f"w{i}", 50) for i in range(4)}
    outs = {tag: p.communicate(timeout=300) for tag, p in procs.items()}
    for tag, p in procs.items():
        assert p.returncode == 0, f"{tag} failed: {outs[tag][1][-2000:]}"
    with open_store(store) as st:
        for tag in procs:
            rows = history(st, tag=tag, with_document=False)
            assert sorted(r["model"] for r in rows) == sorted(f"{tag}-m{i}" for i in range(50))
        assert st.count_results() == 200 and len(st.runs()) == 4


def test_sigkill_mid_run_keeps_every_finished_result_and_no_half_row(tmp_path: Path) -> None:
    store = str(tmp_path / "killed.db")
    p = _writer(store, "k", 1000, delay=0.01)
    done = -1
    for line in p.stdout:  # type: ignore[union-attr]
        done = int(line.split()[1])
        if done >= 40:
            break
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=30)
    assert p.returncode == -signal.SIGKILL
    with open_store(store) as st:
        rows = history(st, tag="k")
    models = [r["model"] for r in rows]
    # every result it said it wrote is there; anything after was either whole or absent
    assert models[: done + 1] == [f"k-m{i}" for i in range(done + 1)]
    assert len(models) < 1000
    for r in rows:
        res = Result.from_dict(r["document"])
        assert res.latency is not None and len(res.latency.samples_ms) == 200
