"""farm run / farm nightly end to end: real conversions, evaluation and benchmarks through the public
API, a real adb server with a fake device, the results store; killed half-way and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from collections import Counter
from pathlib import Path

import pytest

from tests.support import farm_executors as fx
from tflite_deploy.farm.cells import expand
from tflite_deploy.farm.plan import load_plan
from tflite_deploy.farm.record import CellRecord, JsonLinesRecord, StoreRecord
from tflite_deploy.farm.run import FarmSettings, run_plan
from tflite_deploy.result import Result
from tflite_deploy.store import open_store

ROOT = Path(__file__).resolve().parents[1]
FAKE_TOOL = Path(__file__).parent / "support" / "fake_benchmark_model.py"
CLI = [sys.executable, "-m", "tflite_deploy.cli"]


def write_plan(tmp: Path, models: dict, recipes: str, targets: str, delegates: str, extra: str = "") -> Path:
    body = "\n".join(f"  {name}: {{path: {path}, dataset: 'digits:test'}}" for name, path in models.items())
    p = tmp / "plan.yaml"
    p.write_text(f"models:\n{body}\n" + textwrap.dedent(f"""\
        recipes: {recipes}
        targets: {targets}
        delegates: {delegates}
        runs: 5
        warmup: 1
        cache: {tmp / 'cache'}
        """) + extra)
    return p


def tool(tmp: Path, slow_ms: float = 0.0) -> Path:
    """The stand-in benchmark_model; ``slow_ms`` adds that much to every inference (a regression)."""
    exe = tmp / ("benchmark_model" if not slow_ms else "slow_benchmark_model")
    src = FAKE_TOOL.read_text()
    if slow_ms:
        src = src.replace("        it.invoke()\n", f"        it.invoke()\n        time.sleep({slow_ms / 1000})\n")
        assert "time.sleep(" in src.split("def stats")[0]
    exe.write_text(f"#!{sys.executable}\n" + src)
    exe.chmod(0o755)
    return exe


def stored_cells(db: Path, run: int) -> Counter:
    with open_store(db, create=False) as st:
        return Counter(r.settings["farm_cell"] for r in st.results(run))


# ------------------------------------------------------------------------ the records (fast)
def _result(cell: str, status: str = "ok") -> Result:
    return Result(kind="bench", artifact="/x/m.float32.tflite", status=status, settings={"farm_cell": cell})


def test_jsonl_record_resumes_finished_cells_and_skips_a_torn_line(tmp_path: Path) -> None:
    rec = JsonLinesRecord.start(tmp_path, "nightly", ["farm", "run"])
    rec.add(CellRecord("bench/a", "bench", "ok", results=(_result("bench/a"),)))
    rec.add(CellRecord("bench/b", "bench", "failed", error="boom", results=(_result("bench/b", "failed"),)))
    rec.add(CellRecord("bench/c", "bench", "not-run", error="phone left"))
    rec.add(CellRecord("convert/a", "convert", "ok"))
    with open(rec.path, "a") as f:
        f.write('{"cell_id": "bench/d", "stage": "bench", "sta')  # killed mid-line
    again = JsonLinesRecord.resume(tmp_path, rec.run_id)
    # failed is finished (stored as failed); not-run and convert (the cache decides) run again
    assert again.finished() == {"bench/a", "bench/b"}
    assert again.tag == "nightly" and [r.status for r in again.results()] == ["ok", "failed"]


def test_a_cell_that_failed_with_its_lost_phone_is_run_again_on_resume(tmp_path: Path) -> None:
    from tflite_deploy.farm.record import PHONE_LOST

    lost = replace(_result("bench/lost", "failed"), fault=PHONE_LOST)
    slow = replace(_result("bench/slow", "failed"), fault="timeout")  # the model's own: measured, finished
    rec = JsonLinesRecord.start(tmp_path, "nightly", ["farm", "run"])
    rec.add(CellRecord("bench/lost", "bench", "failed", error="phone P1 stopped answering", results=(lost,)))
    rec.add(CellRecord("bench/slow", "bench", "failed", error="time-out", results=(slow,)))
    assert rec.finished() == {"bench/slow"}
    st = StoreRecord.start(str(tmp_path / "s.db"), "nightly", [])
    try:
        st.store.add_result(st.run, lost)
        st.store.add_result(st.run, slow)
        assert st.finished() == {"bench/slow"}
    finally:
        st.close()


def test_store_record_resumes_from_the_cell_ids_in_the_results(tmp_path: Path) -> None:
    rec = StoreRecord.start(str(tmp_path / "s.db"), "nightly", ["farm"])
    rec.add(CellRecord("bench/a", "bench", "ok", results=(_result("bench/a"),)))
    rec.add(CellRecord("bench/b", "bench", "failed", results=(_result("bench/b", "failed"),)))
    rec.close()
    again = StoreRecord.resume(str(tmp_path / "s.db"), rec.run_id)
    assert again.finished() == {"bench/a", "bench/b"} and again.tag == "nightly"
    again.close()


def test_summary_counts_cells_per_target_even_on_a_remote_adb_server() -> None:
    from types import SimpleNamespace

    from rich.console import Console

    from tflite_deploy.render import farm as view

    remote = "adb://10.0.0.7:5037/R58M"
    ran = {c.cell_id: c for c in [
        CellRecord("eval/m/int8@k", "eval", "ok"),
        CellRecord(f"bench/m/int8@k/{remote}/gpu/t1", "bench", "failed", error="no OpenCL", target=remote),
        CellRecord(f"bench/m/int8@k/{remote}/cpu/t1", "bench", "ok", target=remote)]}
    run = SimpleNamespace(run_id="3", ran=ran, already=2, skipped=("host × gpu: host takes xnnpack",),
                          failed=[r for r in ran.values() if r.status != "ok"])
    console = Console(record=True, width=200)
    view.summary(run, console)
    text = console.export_text()
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if line.count("│") == 5}
    assert [c.strip() for c in rows[remote].split("│")[2:5]] == ["1", "1", "0"]
    assert [c.strip() for c in rows["host"].split("│")[2:5]] == ["1", "0", "0"]
    assert "no OpenCL" in text and "2 cell(s) were already done" in text


def test_accuracy_drop_beyond_the_plan_threshold_is_a_regression() -> None:
    from tflite_deploy.farm.run import accuracy_breaches

    def ev(drop, status="ok"):
        return Result(kind="eval", artifact="m.int8.tflite", status=status, metrics={"top1_drop": drop})

    rs = [ev(0.4), ev(1.6), ev(3.0, "failed"), _result("bench/a")]
    assert accuracy_breaches(rs, 1.0) == (rs[1],)
    assert accuracy_breaches(rs, None) == () and accuracy_breaches(rs, 2.0) == ()


def test_resume_of_an_unknown_run_is_a_clear_error(tmp_path: Path, digits_keras: Path) -> None:
    plan = write_plan(tmp_path, {"m": digits_keras}, "[float32]", "[host]", "[xnnpack]")
    open_store(tmp_path / "s.db").close()
    r = subprocess.run([*CLI, "farm", "run", str(plan), "--store", str(tmp_path / "s.db"), "--resume", "7"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode != 0 and "has no run 7" in r.stderr and "Traceback" not in r.stderr


# ------------------------------------------------------------------------ real cells (slow)
@pytest.mark.slow
def test_converter_crash_fails_its_cells_only_and_the_rest_is_stored(tmp_path: Path, digits_keras: Path) -> None:
    plan = write_plan(tmp_path, {"m": digits_keras}, "[float32, dynamic]", "[host]", "[xnnpack]")
    done = run_plan(plan, tmp_path / "out", FarmSettings(store=str(tmp_path / "s.db"), executor=fx.AbortOnRecipe("dynamic")))
    status = {cid: r.status for cid, r in done.ran.items()}
    crashed = next(cid for cid in status if cid.startswith("convert/m/dynamic"))
    assert "killed by SIGABRT" in done.ran[crashed].error
    assert {s for cid, s in status.items() if "/dynamic@" in cid and cid != crashed} == {"not-run"}
    assert {s for cid, s in status.items() if "/float32@" in cid} == {"ok"}
    with open_store(tmp_path / "s.db", create=False) as st:
        stored = st.results(int(done.run_id))
    assert sorted((r.kind, r.recipe, r.status) for r in stored) == [("bench", "float32", "ok"),
                                                                   ("eval", "float32", "ok")]
    bench = next(r for r in stored if r.kind == "bench")
    assert bench.latency.count >= 5 and bench.settings["farm_cell"].startswith("bench/m/float32@")


@pytest.fixture(scope="module")
def second_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tflite_deploy.sources import zoo

    path = tmp_path_factory.mktemp("model2") / "digits_small.keras"
    zoo.train_digits_cnn(epochs=2).save(path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("adb_binary", ["adb36"], indirect=True)
def test_plan_killed_half_way_resumes_missing_cells_then_nightly_verdict(
        tmp_path: Path, digits_keras: Path, second_model: Path, adb_device) -> None:
    """2 models × 3 recipes × (host, the fake device) × 2 delegates; SIGKILL half-way; resume; nightly."""
    target = f"adb:{adb_device.serial}"
    plan = write_plan(tmp_path, {"big": digits_keras, "small": second_model}, "[float32, float16, dynamic]",
                      f"[host, '{target}']", "[xnnpack, cpu]", "tag: base\nbaseline: base\n")
    p = load_plan(plan)
    expected = {c.cell_id for c in expand(p, p.targets).cells if c.stage != "convert"}
    assert len(expected) == 6 + 6 + 12  # eval; host × xnnpack; device × xnnpack, cpu (host has no 'cpu')
    db, fast = tmp_path / "s.db", tool(tmp_path)
    args = [*CLI, "farm", "run", str(plan), "--store", str(db), "--benchmark-binary", str(fast), "--host-slots", "2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(1)
            if db.is_file() and sum(stored_cells(db, 1).values()) >= 8:
                break
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the farm run and its Dask workers, mid-run
        proc.communicate()
    before = stored_cells(db, 1)
    assert proc.returncode == -signal.SIGKILL and 8 <= sum(before.values()) < len(expected), before

    r = subprocess.run([*args, "--resume", "1"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    after = stored_cells(db, 1)
    assert set(after) == expected
    assert set(after.values()) == {1}, "a cell finished before the kill was run again"
    with open_store(db, create=False) as st:
        results = st.results(1)
    device = [x for x in results if x.target == target]
    assert {(x.delegate, x.status) for x in device} == {("xnnpack", "ok"), ("cpu", "ok")}
    assert all(x.latency.count == 5 for x in device)

    # nightly against the run above, with every device inference 3 ms slower: a regression
    slow = tool(tmp_path, slow_ms=3)
    n = subprocess.run([*CLI, "farm", "nightly", str(plan), "--store", str(db), "--out", str(tmp_path / "out"),
                        "--tag", "nightly", "--benchmark-binary", str(slow), "--host-slots", "2"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert n.returncode == 1, n.stdout + n.stderr
    assert "verdict:" in n.stdout and "regression" in n.stdout.split("verdict:")[1]
    report = tmp_path / "out" / "report-2.html"
    assert report.is_file() and target in report.read_text()
    cmp = subprocess.run([*CLI, "compare", "1", "2", "--store", str(db), "--json"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    cells = json.loads(cmp.stdout)["items"][0]["cells"]
    slower = {(c["target"], c["delegate"]) for c in cells if c["regression"]}
    assert (target, "xnnpack") in slower and (target, "cpu") in slower
