"""compare judges size, compute and accuracy too, and a tag joins its convert, eval and bench runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from tests.store.helpers import bench_result, eval_result
from tflite_deploy.cli import app
from tflite_deploy.envelope import items_of
from tflite_deploy.result import Result
from tflite_deploy.store import open_store
from tflite_deploy.store.recording import Recorder

runner = CliRunner()


def _compare(store: str, base: str, new: str) -> tuple[int, list]:
    r = runner.invoke(app, ["compare", base, new, "--store", store, "--json"])
    assert r.exit_code in (0, 1), r.output
    (doc,) = items_of(json.loads(r.stdout), "compare")
    return r.exit_code, doc


def test_convert_runs_a_recipe_that_fell_back_to_float_is_larger_and_computes_in_float(
        digits_variants: dict, tmp_path: Path) -> None:
    store = str(tmp_path / "s.db")
    for tag, made_by in (("before", "int8"), ("after", "float32")):  # "int8" now makes a float file
        path = tmp_path / tag / "digits_cnn.int8.tflite"
        path.parent.mkdir()
        shutil.copyfile(digits_variants[made_by].path, path)
        with Recorder(store, tag) as rec:
            rec.result(Result(kind="convert", artifact=str(path), recipe="int8", delegate="-", runner="converter",
                              settings={"size_bytes": path.stat().st_size}))
    code, doc = _compare(store, "before", "after")
    (cell,) = doc["cells"]
    assert code == 1 and doc["regressions"] == 1, doc
    assert cell["verdict"] == "larger, now computes in float" and cell["size"] == "larger", cell
    assert cell["compute"].startswith("now computes in float: int8 -> float32"), cell["compute"]
    assert (cell["target"], cell["delegate"]) == ("-", "-")
    r = runner.invoke(app, ["compare", "before", "after", "--store", store])
    assert "larger, now" in r.stdout and "1 regression(s)" in r.stdout and "no latency" not in r.stdout, r.stdout
    assert _compare(store, "before", "before")[0] == 0


def _release(st, tag: str, top1: float, drop: float, ci: tuple) -> None:
    """convert, eval and bench of one release, each its own run under the tag (as the README suggests)."""
    run = st.start_run(tag=tag)
    for recipe, size in (("float32", 400_000), ("int8", 110_000)):
        st.add_result(run, Result(kind="convert", artifact=f"out/net.{recipe}.tflite", recipe=recipe, delegate="-",
                                  settings={"size_bytes": size}))
    run = st.start_run(tag=tag)
    st.add_result(run, eval_result("net", "int8", top1=top1, drop=drop, ci=ci))
    run = st.start_run(tag=tag)
    for recipe in ("float32", "int8"):
        st.add_result(run, bench_result("net", recipe, p50=2.0, repeats=[2.0, 2.01, 1.99]))
    st.start_run(tag=tag)  # a refused command's empty run (older stores have them): never "the latest"


def test_a_tag_joins_its_latest_convert_eval_and_bench_runs(store_url: str) -> None:
    with open_store(store_url) as st:
        _release(st, "rel1", 97.0, 0.5, (0.1, 0.9))
        _release(st, "rel2", 91.0, 6.5, (5.5, 7.5))
    code, doc = _compare(store_url, "rel1", "rel2")
    by = {c["recipe"]: c for c in doc["cells"]}
    assert sorted(by) == ["float32", "int8"] and all(c["status"] == "compared" for c in by.values()), doc
    assert by["int8"]["verdict"] == "less accurate" and by["int8"]["new_size_bytes"] == 110_000, by["int8"]
    assert by["int8"]["new_p50_ms"] == 2.0 and by["float32"]["verdict"] == "no change", by
    assert code == 1 and doc["regressions"] == 1 and len(doc["new_runs"]) == 3, doc
    code, doc = _compare(store_url, "rel1", "rel1")
    assert code == 0 and {c["verdict"] for c in doc["cells"]} == {"no change"}, doc
