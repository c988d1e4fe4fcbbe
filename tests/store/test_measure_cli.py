"""The measuring commands record into the store (--store, --tag, --no-store), and compare judges
what they recorded, through the CLI end to end: host and the test adb endpoint, with --repeat."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tflite_deploy.cli import app
from tflite_deploy.envelope import items_of

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).parent / "tflite-deploy")
QUICK = ["--runs", "20", "--warmup", "2", "--min-seconds", "0.1"]


def _convert(model, path: Path) -> Path:
    import tensorflow as tf

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """conv v1, a v2 of it (same file name, another folder) whose 70x70 input is ~20% more work, and a
    v3 with three times the channels (~9x the work) for the fake device, whose runs share this loaded CPU."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tf_keras as keras

    keras.utils.set_random_seed(0)

    def conv(side: int, width: int = 32):
        return keras.Sequential([keras.Input((side, side, 3)),
                                 keras.layers.Conv2D(width, 3, padding="same", activation="relu"),
                                 keras.layers.Conv2D(2 * width, 3, strides=2, padding="same", activation="relu"),
                                 keras.layers.Conv2D(2 * width, 3, padding="same", activation="relu"),
                                 keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)])

    out = tmp_path_factory.mktemp("versions")
    return {"v1": _convert(conv(64), out / "v1" / "conv.float32.tflite"),
            "v2": _convert(conv(70), out / "v2" / "conv.float32.tflite"),
            "v3": _convert(conv(64, 96), out / "v3" / "conv.float32.tflite")}  # ~9x the work of v1


def _items(r, kind: str) -> list:
    assert r.exit_code in (0, 1), r.output
    return items_of(json.loads(r.stdout), kind)


def _cell(store: Path, *extra: str) -> tuple[int, dict]:
    r = runner.invoke(app, ["compare", "latest~1", "latest", "--store", str(store), "--json", *extra])
    (doc,) = _items(r, "compare")
    (cell,) = doc["cells"]
    return r.exit_code, cell


def test_host_bench_records_and_compare_judges_through_the_cli(versions: dict, tmp_path: Path) -> None:
    store = tmp_path / "runs.db"
    bench = ["bench", "--repeat", "3", *QUICK, "--store", str(store), "--tag", "nightly"]
    for _ in range(2):  # the same benchmark twice: no change, exit 0
        r = runner.invoke(app, [*bench[:1], str(versions["v1"]), *bench[1:]])
        assert r.exit_code == 0, r.output
    code, cell = _cell(store, "--confirm")  # between two processes load moves: --confirm pairs them in one
    assert (code, cell["verdict"], cell["new_repeats"]) == (0, "no change", 3), cell
    # a new version of the model, ~20% more work: slower, and compare exits 1 for CI
    r = runner.invoke(app, [*bench[:1], str(versions["v2"]), *bench[1:]])
    assert r.exit_code == 0, r.output
    code, cell = _cell(store, "--confirm")
    assert (code, cell["verdict"]) == (1, "slower"), (cell["latency"], cell["base_p50_ms"], cell["new_p50_ms"])
    assert cell["latency"]["ratio"] > 1.1 and cell["latency"]["basis"].startswith("confirmed"), cell
    # what history shows: three runs tagged nightly, each result with its three repeat medians
    rows = _items(runner.invoke(app, ["history", "--store", str(store), "--tag", "nightly", "--json"]), "history")
    assert [(x["run_id"], x["kind"], x["status"]) for x in rows] == [(1, "bench", "ok"), (2, "bench", "ok"),
                                                                       (3, "bench", "ok")]


def test_no_store_records_nothing_and_the_default_store_is_the_environment_one(versions: dict, tmp_path: Path,
                                                                               monkeypatch) -> None:
    default = tmp_path / "env.db"
    monkeypatch.setenv("TFLITE_DEPLOY_STORE", str(default))
    r = runner.invoke(app, ["bench", str(versions["v1"]), *QUICK, "--no-store"])
    assert r.exit_code == 0 and not default.exists(), r.output
    r = runner.invoke(app, ["bench", str(versions["v1"]), *QUICK, "--tag", "t"])
    assert r.exit_code == 0 and default.is_file(), r.output
    rows = _items(runner.invoke(app, ["history", "--json"]), "history")
    assert [(x["tag"], x["model"]) for x in rows] == [("t", "conv.float32")]


def test_parse_log_convert_and_eval_record_their_results(digits_keras: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "s.db")
    log = REPO / "tests" / "data" / "benchmark_logs" / "tf2_cpu_memory_delta.txt"
    r = runner.invoke(app, ["parse-log", str(log), "--target", "adb:X", "--store", store, "--tag", "logs"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["convert", str(digits_keras), "-r", "float32", "-o", str(tmp_path / "out"),
                            "--store", store, "--tag", "rel"])
    assert r.exit_code == 0, r.output
    art = tmp_path / "out" / "digits_cnn.float32.tflite"
    r = runner.invoke(app, ["eval", str(digits_keras), str(art), "-d", "digits:test", "-n", "100",
                            "--store", store, "--tag", "rel"])
    assert r.exit_code == 0, r.output
    rows = _items(runner.invoke(app, ["history", "--store", store, "--json"]), "history")
    assert [(x["run_id"], x["tag"], x["kind"], x["target"]) for x in rows] == [
        (1, "logs", "bench", "adb:X"), (2, "rel", "convert", "host"), (3, "rel", "eval", "host"),
        (3, "rel", "eval", "host")]
    assert rows[1]["size_bytes"] == art.stat().st_size and rows[3]["accuracy_top1"] is not None


def test_kill_9_half_way_through_a_bench_keeps_every_finished_result(versions: dict, tmp_path: Path) -> None:
    models = []
    for i in range(3):
        models.append(tmp_path / f"m{i}.float32.tflite")
        shutil.copy(versions["v1"], models[-1])
    store = tmp_path / "kill.db"
    proc = subprocess.Popen([CLI, "bench", *map(str, models), "--repeat", "2", "--runs", "20",
                             "--min-seconds", "1.5", "--store", str(store), "--tag", "killed"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:  # kill once the first result is in
            if store.exists() and _count(store) >= 1:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "bench finished before it could be killed half-way"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    r = subprocess.run([CLI, "history", "--store", str(store), "--json"], capture_output=True, text=True, timeout=120)
    rows = items_of(json.loads(r.stdout), "history")
    assert r.returncode == 0 and 1 <= len(rows) < 3, rows  # the finished ones, never the one cut off
    assert [x["artifact"] for x in rows] == [str(m) for m in models[:len(rows)]]
    assert all(x["status"] == "ok" and x["p50_ms"] > 0 and x["tag"] == "killed" for x in rows)


def _count(store: Path) -> int:
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT count(*) FROM results").fetchone()[0]
    except sqlite3.Error:  # not created yet
        return 0


# --------------------------------------------------------------------------- the test adb endpoint
def test_device_bench_with_repeat_records_and_compare_judges(adb_device, versions: dict, benchmark_binary: Path,
                                                              tmp_path: Path) -> None:
    store = tmp_path / "device.db"
    bench = ["-D", adb_device.serial, "--repeat", "5", "--runs", "15", "--benchmark-binary", str(benchmark_binary),
             "--store", str(store), "--tag", "pixel"]
    for model in ("v1", "v1"):
        r = runner.invoke(app, ["bench", str(versions[model]), *bench, "--json"])
        (res,) = _items(r, "bench")
        assert r.exit_code == 0 and res["settings"]["repeats"] == 5 and len(res["metrics"]["repeat_p50_ms"]) == 5
        assert res["target"] == f"adb:{adb_device.serial}" and res["latency"]["count"] == 75
    code, cell = _cell(store)
    assert (code, cell["verdict"], cell["target"]) == (0, "no change", f"adb:{adb_device.serial}"), cell
    # the fake device is this host's CPU, shared with the test run: under load its repeats spread by up
    # to 2-3x (the stand-in tool prints means, not medians), so only a large slowdown is beyond doubt
    r = runner.invoke(app, ["bench", str(versions["v3"]), *bench])
    assert r.exit_code == 0, r.output
    code, cell = _cell(store)
    assert (code, cell["verdict"]) == (1, "slower"), (cell["latency"], cell["base_p50_ms"], cell["new_p50_ms"])


def test_python_api_records_with_store_and_tag(versions: dict, tmp_path: Path) -> None:
    import tflite_deploy as td
    from tflite_deploy.store import open_store

    results = td.bench([versions["v1"], versions["v2"]], repeat=2, runs=10, min_seconds=0.05,
                       store=tmp_path / "api.db", tag="api")
    assert [r.settings["repeats"] for r in results] == [2, 2]
    assert td.bench([versions["v1"]], runs=10, min_seconds=0.05)[0].ok  # no store= : nothing recorded
    with open_store(tmp_path / "api.db", create=False) as st:
        (run,) = st.runs()
        stored = st.results(run["id"])
    assert run["tag"] == "api" and [r.metrics["repeat_p50_ms"] for r in stored] == \
        [r.metrics["repeat_p50_ms"] for r in results]
