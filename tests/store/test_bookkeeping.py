"""What the store records is what happened: a failed recipe is a failed row, a command refused before it
measures anything records no run, and history shows whole values."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from tflite_deploy.cli import app
from tflite_deploy.envelope import items_of

runner = CliRunner()


def _runs(store: Path) -> list:
    r = runner.invoke(app, ["history", "--runs", "--store", str(store), "--json"])
    assert r.exit_code == 0, r.output
    return items_of(json.loads(r.stdout), "runs")


def test_a_failed_recipe_is_a_failed_row(digits_keras: Path, tmp_path: Path) -> None:
    import tflite_deploy as td
    from tflite_deploy.recipes import Recipe
    from tflite_deploy.store import open_store

    bad = Recipe("sel", weights="int8", activations="int8", float_layers=("no_such_layer",))
    made = td.convert(digits_keras, ["float32", bad], "digits:train", tmp_path / "out", store=tmp_path / "s.db",
                      tag="rel")
    assert [a.failed for a in made] == [False, True]
    with open_store(tmp_path / "s.db", create=False) as st:
        rows = st.results()
    # recipes convert in parallel workers: each row is recorded when its recipe ends, in either order
    assert sorted((r.kind, r.recipe, r.status) for r in rows) == [("convert", "float32", "ok"),
                                                                  ("convert", "sel", "failed")]
    (failed,) = [r for r in rows if r.recipe == "sel"]
    assert "no_such_layer" in failed.error and failed.artifact.endswith("digits_cnn.sel.tflite")


def test_refused_or_crashed_commands_record_no_run(versions: dict, tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    r = runner.invoke(app, ["bench", str(versions["v1"]), "--runs", "10", "--min-seconds", "0.05", "--store",
                            str(store), "--tag", "t"])
    assert r.exit_code == 0, r.output
    junk = tmp_path / "junk.float32.tflite"
    junk.write_bytes(b"not a flatbuffer at all")
    r = runner.invoke(app, ["bench", str(junk), "--store", str(store), "--tag", "t"])  # fails before a result
    assert r.exit_code != 0, r.output
    r = runner.invoke(app, ["eval", str(versions["v1"]), str(junk), "-d", "digits:test", "--store", str(store),
                            "--tag", "t"])
    assert r.exit_code != 0, r.output
    assert [x["tag"] for x in _runs(store)] == ["t"]  # only the bench that measured: compare t finds it


def test_history_shows_whole_values_in_a_narrow_terminal(tmp_path: Path) -> None:
    from tflite_deploy.render.store import history_table
    from tflite_deploy.result import Result
    from tflite_deploy.store import open_store
    from tflite_deploy.store.query import HISTORY_COLUMNS, history

    art = tmp_path / "mobilenet_v2_1.0_224.float16.tflite"
    art.write_bytes(b"x" * 1608263)
    with open_store(tmp_path / "s.db") as st:
        run = st.start_run(tag="nightly")
        st.add_result(run, Result(kind="convert", artifact=str(art), recipe="float16", delegate="-",
                                  settings={"size_bytes": 1608263}), artifact_id=st.add_artifact_file(art))
        rows = history(st, with_document=False)
    console = Console(width=100, record=True)
    history_table(rows, list(HISTORY_COLUMNS), "h", console)
    text = console.export_text()
    assert "…" not in text and "float16" in text and "1608263" in text, text
