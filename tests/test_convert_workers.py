"""A sweep survives: a recipe that fails, or whose converter process dies, is a failed row; the others
are written, in parallel worker processes, from calibration samples drawn once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tflite_deploy.envelope import items_of

runner = CliRunner()


@pytest.fixture(scope="module")
def hard_swish_keras(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small CNN on digits with a HARD_SWISH activation (as in MobileNetV3), which int16x8 cannot quantize."""
    import tf_keras as keras

    inp = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(8, 3, padding="same")(inp)
    x = keras.layers.Multiply()([x, keras.layers.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)])  # MobileNetV3's hard_swish
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(10, activation="softmax")(x)
    path = tmp_path_factory.mktemp("hs") / "hard_swish.keras"
    keras.Model(inp, out).save(path)
    return path


def test_failing_recipe_is_a_row_and_the_sweep_goes_on(hard_swish_keras: Path, tmp_path: Path) -> None:
    from tflite_deploy.cli import app

    out = tmp_path / "out"
    res = runner.invoke(app, ["convert", str(hard_swish_keras), "-r", "float32", "-r", "int16x8", "-r", "int8",
                              "--data", "digits:train", "--out", str(out), "--jobs", "2", "--json"])
    assert res.exit_code == 1, res.output  # a recipe failed: non-zero, but after every recipe ran
    rows = {r["recipe"]: r for r in items_of(json.loads(res.stdout), "convert")}
    assert list(rows) == ["float32", "int16x8", "int8"]
    assert rows["int16x8"]["failed"] is True and rows["int16x8"]["path"] is None
    assert "HARD_SWISH" in rows["int16x8"]["error"].upper().replace("-", "_")
    for name in ("float32", "int8"):
        assert rows[name]["failed"] is False and Path(rows[name]["path"]).is_file()
    assert not (out / "hard_swish.int16x8.tflite").exists()
    assert rows["int8"]["ratio"] == rows["float32"]["size_bytes"] / rows["int8"]["size_bytes"]  # still vs float32

    table = runner.invoke(app, ["convert", str(hard_swish_keras), "-r", "float32", "-r", "int16x8",
                                "--data", "digits:train", "--out", str(out), "--jobs", "1"])
    assert table.exit_code == 1
    assert "FAILED" in table.stdout and "int16x8 failed:" in table.stdout and "1 of 2 variant(s)" in table.stdout


def test_dead_worker_fails_only_its_recipe(digits_keras: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from tflite_deploy.conversion.run import ABORT_FOR_TESTS, convert
    from tflite_deploy.recipes import PRESETS

    monkeypatch.setenv(ABORT_FOR_TESTS, "float16")  # that recipe's worker calls os.abort()
    recipes = [PRESETS[n] for n in ("float32", "float16", "dynamic", "int8")]
    got = convert(digits_keras, recipes, "digits:train", tmp_path, jobs=2)
    assert [a.recipe for a in got] == ["float32", "float16", "dynamic", "int8"]
    assert [a.failed for a in got] == [False, True, False, False]
    assert "SIGABRT" in got[1].reason and "worker process died" in got[1].reason
    for a in (got[0], got[2], got[3]):
        assert a.path.is_file() and a.size_bytes == a.path.stat().st_size
    # calibration was drawn once in the parent and shared: the sidecar says so
    assert got[3].meta["calibration"]["dataset"].startswith("digits")
    assert not (tmp_path / "digits_cnn.float16.tflite").exists()


def test_workers_match_in_process(digits_keras: Path, tmp_path: Path) -> None:
    """The same recipes through workers and in this process give the same bytes."""
    from tflite_deploy.conversion.run import convert
    from tflite_deploy.recipes import PRESETS

    recipes = [PRESETS["float32"], PRESETS["int8"]]
    parallel = convert(digits_keras, recipes, "digits:train", tmp_path / "p", jobs=2)
    serial = convert(digits_keras, recipes, "digits:train", tmp_path / "s", jobs=1)
    for a, b in zip(parallel, serial):
        assert a.path.read_bytes() == b.path.read_bytes()


def test_jobs_zero_refused(digits_keras: Path, tmp_path: Path) -> None:
    from tflite_deploy.cli import app

    res = runner.invoke(app, ["convert", str(digits_keras), "-r", "float32", "--out", str(tmp_path), "--jobs", "0"])
    assert res.exit_code != 0 and "--jobs" in res.output and "Traceback" not in res.output


def test_default_jobs_bounded_by_cores_memory_and_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    import psutil

    from tflite_deploy.conversion import workers

    class Mem:
        available = 3e9

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Mem())
    monkeypatch.setattr(workers, "available_cores", lambda: 8)
    assert workers.default_jobs(4, 1.4e9) == 2  # 3 GB free at 1.4 GB each
    assert workers.default_jobs(1, 1.4e9) == 1  # never more than the tasks
    assert workers.default_jobs(4, 10e9) == 1   # never less than one
    monkeypatch.setattr(workers, "available_cores", lambda: 2)
    assert workers.default_jobs(4, 0.5e9) == 2  # nor more than the cores
