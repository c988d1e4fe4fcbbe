"""Honest outputs: variants of another model are never compared without a word, rows are told apart
by file, cut-off logs and bad thread counts are errors that name what is wrong."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tflite_deploy.cli import app
from tflite_deploy.envelope import items_of

runner = CliRunner()
LOGS = Path(__file__).parent / "data" / "benchmark_logs"


@pytest.fixture(scope="module")
def other_int8(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``digits_cnn.int8.tflite`` of ANOTHER model (same file name, other folder, other source sha256)."""
    import tf_keras as keras

    from tflite_deploy.conversion.run import convert
    from tflite_deploy.recipes import PRESETS

    root = tmp_path_factory.mktemp("other")
    inp = keras.Input((8, 8, 1))
    model = keras.Model(inp, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inp)))
    (root / "src").mkdir()
    model.save(root / "src" / "digits_cnn.keras")
    [art] = convert(root / "src" / "digits_cnn.keras", [PRESETS["int8"]], "digits:train", root / "v2", jobs=1)
    return art.path


def test_eval_refuses_a_variant_of_another_model(digits_keras, digits_variants, other_int8) -> None:
    ours = str(digits_variants["int8"].path)
    args = ["eval", str(digits_keras), ours, str(other_int8), "--data", "digits:test", "--limit", "60"]
    res = runner.invoke(app, args)
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert "Not variants of the same model" in res.output and str(other_int8) in res.output
    assert "--force" in res.output
    forced = runner.invoke(app, [*args, "--force", "--json"])
    assert forced.exit_code == 0, forced.output
    ref, mine, theirs = items_of(json.loads(forced.stdout), "eval")
    assert mine["warnings"] == [] or all("NOT the same source" not in w for w in mine["warnings"])
    assert any("NOT the same source model" in w for w in theirs["warnings"])
    table = runner.invoke(app, [*args, "--force"])
    # two int8 rows from two folders are told apart by file, and the odd one is marked
    mine_label = f"{Path(ours).parent.name}/digits_cnn.int8.tflite"
    assert mine_label in table.stdout and "v2/digits_cnn.int8.tflite" in table.stdout, table.stdout
    assert "NOT the same source model" in table.stdout


def test_bench_refuses_mixed_sources_and_labels_rows_by_file(digits_variants, other_int8, tmp_path) -> None:
    ours = digits_variants["int8"].path
    res = runner.invoke(app, ["bench", str(ours), str(other_int8), "--runs", "3", "--min-seconds", "0"])
    assert res.exit_code != 0 and "Not variants of the same model" in res.output and str(other_int8) in res.output
    forced = runner.invoke(app, ["bench", str(ours), str(other_int8), "--runs", "3", "--min-seconds", "0",
                                 "--force", "--json"])
    assert forced.exit_code == 0, forced.output
    a, b = items_of(json.loads(forced.stdout), "bench")
    assert not any("NOT the same" in w for w in a["warnings"])
    assert any("NOT the same source model" in w for w in b["warnings"])
    # the same variant copied into two folders: one source, two rows labelled by folder
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        shutil.copy(ours, tmp_path / d)
        shutil.copy(ours.with_suffix(".json"), tmp_path / d)
    same = runner.invoke(app, ["bench", str(tmp_path / "a" / ours.name), str(tmp_path / "b" / ours.name),
                               "--runs", "3", "--min-seconds", "0"])
    assert same.exit_code == 0, same.output
    assert f"a/{ours.name}" in same.stdout and f"b/{ours.name}" in same.stdout


def test_file_labels() -> None:
    from tflite_deploy.render.verbs import file_labels

    assert file_labels(["/x/v1/m.int8.tflite", "/x/v2/m.int8.tflite", "/x/v1/m.float32.tflite"]) == {
        "/x/v1/m.int8.tflite": "v1/m.int8.tflite", "/x/v2/m.int8.tflite": "v2/m.int8.tflite",
        "/x/v1/m.float32.tflite": "m.float32.tflite"}


@pytest.mark.parametrize("name", ["logcat_apk_cpu_cut_mid_run.txt", "tf1x_truncated_oldest_markers.txt", None])
def test_parse_log_of_a_cut_off_or_foreign_file_fails(name, tmp_path) -> None:
    path = LOGS / name if name else tmp_path / "notes.txt"
    if name is None:
        path.write_text("shopping list\nmilk\neggs\n")
    res = runner.invoke(app, ["parse-log", str(path)])
    assert res.exit_code != 0, res.output
    assert "None thread(s)" not in res.output and "Traceback" not in res.output
    ok = runner.invoke(app, ["parse-log", str(LOGS / "tf2_cpu_memory_delta.txt")])
    assert ok.exit_code == 0 and "4 thread(s)" in ok.output


def test_threads_zero_is_refused_naming_the_option(digits_keras, digits_variants) -> None:
    int8 = str(digits_variants["int8"].path)
    for args in (["eval", str(digits_keras), int8, "--data", "digits:test", "--threads", "0"],
                 ["bench", int8, "--threads", "0"]):
        res = runner.invoke(app, args)
        assert res.exit_code != 0 and "Traceback" not in res.output
        assert "--threads" in res.output and "not 0" in res.output
        assert "Model " not in res.output  # the option is at fault, not the model file
