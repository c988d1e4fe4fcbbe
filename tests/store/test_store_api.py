"""history, report, compare and the farm functions are public API: lazy (no TensorFlow), typed, and
what the CLI prints is what the API returns."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tflite_deploy as td
from tests.store.helpers import bench_result, eval_result
from tflite_deploy.envelope import items_of
from tflite_deploy.errors import UserError
from tflite_deploy.render.store import plain
from tflite_deploy.store import open_store

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _small_store(path: Path) -> str:
    with open_store(path) as st:
        for tag, p50, top1 in (("base", 3.0, 97.0), ("ci", 3.6, 96.0)):
            run = st.start_run(tag=tag)
            st.add_result(run, bench_result("a", "int8", p50=p50, repeats=[p50, p50 * 1.01, p50 * 0.99]))
            st.add_result(run, eval_result("a", "int8", top1=top1, drop=97.5 - top1))
    return str(path)


def test_the_store_and_farm_functions_are_public_and_import_no_tensorflow() -> None:
    code = ("import sys, tflite_deploy as t\n"
            "fs = [t.history, t.report, t.compare, t.farm_run, t.farm_nightly, t.list_devices]\n"
            "assert {'history', 'report', 'compare', 'farm_run', 'farm_nightly'} <= set(t.__all__)\n"
            "print(all(callable(f) for f in fs), sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'tf_keras', 'keras')))\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["True", "[]"]


def test_history_through_the_api_is_what_the_cli_prints(tmp_path: Path) -> None:
    store = _small_store(tmp_path / "s.db")
    found = td.history(store, kind="bench")
    assert found.kind == "history" and len(found.rows) == 2 and found.results == ()
    assert [r["tag"] for r in found.rows] == ["base", "ci"]
    res = runner.invoke(td_cli(), ["history", "--store", store, "--kind", "bench", "--json"])
    assert res.exit_code == 0, res.output
    assert items_of(json.loads(res.stdout), "history") == [{c: plain(r.get(c)) for c in found.columns}
                                                           for r in found.rows]
    runs = td.history(store, runs_only=True)
    res = runner.invoke(td_cli(), ["history", "--store", store, "--runs", "--json"])
    assert items_of(json.loads(res.stdout), "runs") == [{c: plain(r.get(c)) for c in runs.columns} for r in runs.rows]
    # with_results: the stored Result records themselves
    evals = td.history(store, run="ci", kind="eval", with_results=True).results
    assert [r.metrics["top1"] for r in evals] == [96.0]
    with pytest.raises(UserError, match=r"^until='yesterday' is not a date"):
        td.history(store, until="yesterday")
    res = runner.invoke(td_cli(), ["history", "--store", store, "--until", "yesterday"])
    assert res.exit_code == 2 and res.stderr.startswith("error: --until 'yesterday' is not a date")


def test_report_through_the_api_is_what_the_cli_writes(tmp_path: Path) -> None:
    store = _small_store(tmp_path / "s.db")
    written = td.report(["base", "ci"], tmp_path / "api.html", markdown=tmp_path / "md", store=store)
    assert written.html == tmp_path / "api.html" and written.html.stat().st_size > 1000
    assert written.markdown is not None and written.markdown.is_file() and written.plots > 0
    res = runner.invoke(td_cli(), ["report", "base", "ci", "--out", str(tmp_path / "cli.html"), "--markdown",
                                   str(tmp_path / "md2"), "--store", store, "--json"])
    assert res.exit_code == 0, res.output
    (item,) = items_of(json.loads(res.stdout), "report")
    assert (item["plots"], item["rows"]) == (written.plots, written.rows)
    assert item["html"] == str(tmp_path / "cli.html") and Path(item["html"]).is_file()

    with pytest.raises(UserError, match=r"^out=.*r\.pdf: the report is HTML") as e:
        td.report(out=tmp_path / "r.pdf", store=store)
    assert "--out" not in str(e.value)
    res = runner.invoke(td_cli(), ["report", "--out", str(tmp_path / "r.pdf"), "--store", store])
    assert res.exit_code == 2 and res.stderr.startswith("error: --out ")


def test_compare_returns_its_typed_record(tmp_path: Path) -> None:
    from tflite_deploy.reporting.compare import Comparison

    store = _small_store(tmp_path / "s.db")
    cmp = td.compare("base", "ci", store=store)
    assert isinstance(cmp, Comparison) and [c.latency.verdict for c in cmp.cells if c.key[0] == "a"][0] == "slower"


def td_cli():
    from tflite_deploy.cli import app

    return app
