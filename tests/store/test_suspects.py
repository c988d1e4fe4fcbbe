"""Suspect, then confirm: an unconfirmed "slower" is re-measured from the recorded bytes, base and new
interleaved in one process, and only a confirmed slowdown fails compare (exit 1)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from tflite_deploy.cli import app
from tflite_deploy.envelope import items_of

runner = CliRunner()
QUICK = ["--runs", "20", "--warmup", "2", "--min-seconds", "0.1"]


def _compare(store: Path, *extra: str) -> tuple[int, dict]:
    r = runner.invoke(app, ["compare", "base", "new", "--store", str(store), "--json", *extra])
    assert r.exit_code in (0, 1), r.output
    (doc,) = items_of(json.loads(r.stdout), "compare")
    (cell,) = doc["cells"]
    return r.exit_code, cell


def _bench(path: Path, store: Path, tag: str) -> None:
    r = runner.invoke(app, ["bench", str(path), "--repeat", "3", *QUICK, "--store", str(store), "--tag", tag])
    assert r.exit_code == 0, r.output


def _made_up_suspect(model: Path, store: Path) -> None:
    """Two stored runs of the same bytes whose recorded repeats say 30% slower (as a load change would)."""
    import tflite_deploy as td
    from tflite_deploy.store import open_store

    (measured,) = td.bench([model], runs=20, min_seconds=0.1)
    with open_store(store) as st:
        aid = st.add_artifact_file(model)
        for tag, scale in (("base", 1.0), ("new", 1.3)):
            reps = [measured.latency.p50_ms * scale * f for f in (0.99, 1.0, 1.01, 1.0, 0.995)]
            r = measured.__class__.from_dict({**measured.to_dict(), "metrics": {"repeat_p50_ms": reps}})
            st.add_result(st.start_run(tag=tag), r, artifact_id=aid)


def test_load_change_is_cleared_and_a_slower_model_under_the_same_names_is_confirmed(versions: dict,
                                                                                     tmp_path: Path) -> None:
    """One file, same names; a busy loop starts between base and new and runs on through compare."""
    store = tmp_path / "runs.db"
    path = tmp_path / "out" / "conv.float32.tflite"
    path.parent.mkdir()
    shutil.copyfile(versions["v1"], path)
    _bench(path, store, "base")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        _bench(path, store, "new")
        _, unconfirmed = _compare(store, "--no-confirm")  # may call the load a regression: a suspect
        suspected = unconfirmed["verdict"] == "slower" or unconfirmed["latency"]["ratio"] > 1.05
        assert unconfirmed["confirmation"] == ("suspect" if suspected else ""), unconfirmed
        code, cell = _compare(store)
        assert code == 0 and cell["verdict"] != "slower", (unconfirmed["latency"], cell["latency"])
        if suspected:  # the suspect was re-measured and cleared
            assert cell["confirmation"] == "cleared" and cell["unconfirmed"] == unconfirmed["latency"], cell
        shutil.copyfile(versions["v2"], path)  # ~20% more work, the same folder and file name
        _bench(path, store, "new")
    finally:
        busy.kill()
        busy.wait()
    code, cell = _compare(store)
    # a suspect (slower, or a slower median the load's noise hid from the verdict), re-measured: confirmed
    assert (code, cell["verdict"]) == (1, "slower"), (cell["latency"], cell.get("unconfirmed"))
    assert cell["confirmation"] == "confirmed" and cell["latency"]["ratio"] > 1.08, cell


def test_a_suspect_the_recorded_runs_made_up_is_cleared_by_measuring_the_bytes(versions: dict,
                                                                               tmp_path: Path) -> None:
    """Recorded runs that say 30% slower for the same bytes (as a load change would): the suspect is
    re-measured from the kept bytes and cleared; --no-confirm leaves it a regression."""
    store = tmp_path / "runs.db"
    _made_up_suspect(versions["v1"], store)
    code, cell = _compare(store, "--no-confirm")
    assert (code, cell["verdict"], cell["confirmation"]) == (1, "slower", "suspect"), cell
    code, cell = _compare(store)
    assert (code, cell["confirmation"]) == (0, "cleared"), cell
    assert cell["verdict"] == "no change" and cell["unconfirmed"]["verdict"] == "slower", cell["latency"]
    r = runner.invoke(app, ["compare", "base", "new", "--store", str(store)])
    assert r.exit_code == 0 and "cleared" in r.output and "re-measured" in r.output, r.output


def test_a_device_suspect_is_re_measured_on_its_phone_in_one_sitting(adb_device, versions: dict,
                                                                     benchmark_binary: Path, tmp_path: Path) -> None:
    """The test adb endpoint: base and new pushed to the same phone, runs alternated on its delegate."""
    store = tmp_path / "device.db"
    path = tmp_path / "out" / "conv.float32.tflite"
    path.parent.mkdir()
    bench = ["bench", str(path), "-D", adb_device.serial, "--repeat", "3", "--runs", "10",
             "--benchmark-binary", str(benchmark_binary), "--store", str(store)]
    for tag, version in (("base", "v1"), ("new", "v3")):  # v3: ~9x the work, under the same file name
        shutil.copyfile(versions[version], path)
        r = runner.invoke(app, [*bench, "--tag", tag])
        assert r.exit_code == 0, r.output
    path.unlink()  # the pairs use the kept bytes, not the path
    code, cell = _compare(store, "--benchmark-binary", str(benchmark_binary), "--repeat", "6")
    assert cell["target"] == f"adb:{adb_device.serial}", cell
    assert (code, cell["verdict"], cell["confirmation"]) == (1, "slower, larger", "confirmed"), (cell["latency"],
                                                                                                 cell["note"])
    basis = cell["latency"]["basis"]
    assert basis.startswith(f"re-measured interleaved on adb:{adb_device.serial} (xnnpack)"), basis
    assert "6 interleaved pairs" in basis and cell["latency"]["ratio"] > 3, cell["latency"]


def test_a_device_suspect_across_a_new_benchmark_binary_is_not_cleared_by_todays_binary(
        adb_device, versions: dict, benchmark_binary: Path, tmp_path: Path) -> None:
    """The same bytes, a binary that makes every inference 5 ms slower: pairs measured with either binary
    would call it "no change". The cell stays a suspect (a regression) and says why."""
    store = tmp_path / "device.db"
    slow = tmp_path / "slow_benchmark_model"
    src = benchmark_binary.read_text()
    slow.write_text(src.replace("            it.invoke()\n", "            it.invoke()\n            time.sleep(0.005)\n", 1))
    assert slow.read_text() != src
    slow.chmod(0o755)
    for tag, binary in (("base", benchmark_binary), ("new", slow)):
        r = runner.invoke(app, ["bench", str(versions["v1"]), "-D", adb_device.serial, "--repeat", "3", "--runs", "10",
                                "--benchmark-binary", str(binary), "--store", str(store), "--tag", tag])
        assert r.exit_code == 0, r.output
    code, cell = _compare(store, "--benchmark-binary", str(slow), "--repeat", "6")
    assert (code, cell["confirmation"]) == (1, "suspect"), (cell["latency"], cell["note"])
    assert "different benchmark binaries" in cell["note"], cell["note"]


def test_a_suspect_across_a_runtime_upgrade_is_not_cleared_by_todays_runtime(versions: dict, tmp_path: Path) -> None:
    """Pairs measured now test the bytes with today's runtime: a slowdown the runtime brought cannot show."""
    import sqlalchemy as sa

    from tflite_deploy.store import open_store
    from tflite_deploy.store.schema import runs

    store = tmp_path / "runs.db"
    _made_up_suspect(versions["v1"], store)
    with open_store(store) as st:
        with st.engine.begin() as conn:  # the base run was measured with an older LiteRT
            conn.execute(runs.update().where(runs.c.tag == "base").values(
                versions={"ai-edge-litert": "1.0.0", "tensorflow": "2.19.0"}))
            now = conn.execute(sa.select(runs.c.versions).where(runs.c.tag == "new")).scalar_one()
    code, cell = _compare(store)
    assert (code, cell["verdict"], cell["confirmation"]) == (1, "slower", "suspect"), cell
    assert f"ai-edge-litert 1.0.0 -> {now['ai-edge-litert']}" in cell["note"], cell["note"]
