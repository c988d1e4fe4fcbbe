"""compare over stored runs, and the history / compare / report commands."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.store.helpers import bench_result, eval_result
from tflite_deploy.envelope import items_of
from tflite_deploy.reporting.compare import compare_runs
from tflite_deploy.store import open_store


def _fill(store_url: str) -> tuple[int, int]:
    """Base and new runs (tag nightly): one cell 20% slower, one unchanged, one failed, one missing."""
    with open_store(store_url) as st:
        base = st.start_run(tag="nightly")
        st.add_result(base, bench_result("a", "int8", p50=3.0, repeats=[3.00, 3.03, 2.98, 3.01, 2.99]))
        st.add_result(base, bench_result("b", "int8", p50=5.0, repeats=[5.0, 5.05, 4.97, 5.02, 4.99]))
        st.add_result(base, bench_result("c", "int8", p50=1.0))
        st.add_result(base, bench_result("d", "int8", p50=2.0))
        st.add_result(base, eval_result("a", "int8", top1=97.0, drop=0.5, ci=(0.1, 0.9)))
        new = st.start_run(tag="nightly")
        st.add_result(new, bench_result("a", "int8", p50=3.6, repeats=[3.60, 3.62, 3.58, 3.63, 3.59]))
        st.add_result(new, bench_result("b", "int8", p50=5.0, repeats=[5.01, 4.98, 5.03, 4.96, 5.0]))
        st.add_result(new, bench_result("c", "int8", status="failed", error="GPU delegate failed"))
        st.add_result(new, eval_result("a", "int8", top1=92.0, drop=5.5, ci=(4.8, 6.2)))
    return base, new


def test_compare_stored_runs_gives_a_verdict_per_cell(store_url: str) -> None:
    base, new = _fill(store_url)
    with open_store(store_url) as st:
        cmp = compare_runs(st, "latest~1", "nightly")
    by = {c.key[0]: c for c in cmp.cells}
    assert (cmp.base_run["id"], cmp.new_run["id"]) == (base, new)
    assert by["a"].latency.verdict == "slower" and by["a"].accuracy.verdict == "worse"
    assert by["b"].verdict == "no change"
    assert by["c"].verdict == "failed on new" and "GPU delegate failed" in by["c"].note
    assert by["d"].verdict == "missing on new"
    assert {c.key[0] for c in cmp.regressions} == {"a", "c", "d"}


def test_history_of_a_cell_under_the_tag_widens_the_band(store_url: str) -> None:
    with open_store(store_url) as st:
        for f in (0.88, 1.10, 0.95, 1.12, 0.90, 1.05):  # past nightly runs that wander ±12%
            run = st.start_run(tag="nightly")
            st.add_result(run, bench_result("a", "int8", p50=3.0 * f))
        other = st.start_run(tag="weekly")  # another tag's history does not count
        st.add_result(other, bench_result("a", "int8", p50=30.0))
        base = st.start_run(tag="nightly")
        st.add_result(base, bench_result("a", "int8", p50=3.0))
        for factor, expected in ((1.18, "no change"), (1.8, "slower")):
            new = st.start_run(tag="nightly")
            st.add_result(new, bench_result("a", "int8", p50=3.0 * factor))
            cell, = compare_runs(st, str(base), str(new)).cells
            assert "history band" in cell.latency.basis and "past runs" in cell.latency.basis  # weekly not among them
            assert cell.latency.threshold > 0.2 and cell.verdict == expected, cell.latency


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


def _app():
    from tflite_deploy.cli import app

    return app


def test_history_command_json_csv_and_table(store_url: str, cli: CliRunner) -> None:
    _fill(store_url)
    r = cli.invoke(_app(), ["history", "--store", store_url, "--model", "a", "--json"])
    assert r.exit_code == 0, r.output
    rows = items_of(json.loads(r.stdout), "history")
    assert [(x["kind"], x["run_id"]) for x in rows] == [("bench", 1), ("eval", 1), ("bench", 2), ("eval", 2)]
    assert rows[2]["p50_ms"] == pytest.approx(3.6)
    r = cli.invoke(_app(), ["history", "--store", store_url, "--kind", "bench", "--csv"])
    table = list(csv.DictReader(io.StringIO(r.stdout)))
    assert r.exit_code == 0 and len(table) == 7 and {t["status"] for t in table} == {"ok", "failed"}
    r = cli.invoke(_app(), ["history", "--store", store_url, "--tag", "nightly", "--delegate", "xnnpack"])
    assert r.exit_code == 0 and "int8" in r.stdout and "result(s)" in r.stdout
    r = cli.invoke(_app(), ["history", "--store", store_url, "--runs", "--json"])
    assert [x["tag"] for x in items_of(json.loads(r.stdout), "runs")] == ["nightly", "nightly"]
    missing = str(Path(store_url).parent / "none.db") if "://" not in store_url else None
    if missing:  # reading commands never create a store
        r = cli.invoke(_app(), ["history", "--store", missing])
        assert r.exit_code == 2 and "There is no results store at" in r.stderr and not Path(missing).exists()
    r = cli.invoke(_app(), ["history", "--store", store_url, "--since", "tomorrow"])
    assert r.exit_code == 2 and "--since 'tomorrow' is not a date" in r.stderr and "Traceback" not in r.output


def test_compare_command_exits_one_on_regression_and_zero_without(store_url: str, cli: CliRunner) -> None:
    base, new = _fill(store_url)
    r = cli.invoke(_app(), ["compare", str(base), str(new), "--store", store_url])
    assert r.exit_code == 1, r.output
    assert "slower" in r.stdout and "failed on new" in r.stdout and "missing on new" in r.stdout
    assert "3 regression(s)" in r.stdout
    r = cli.invoke(_app(), ["compare", str(base), str(new), "--store", store_url, "--json"])
    (doc,) = items_of(json.loads(r.stdout), "compare")
    assert r.exit_code == 1 and doc["regressions"] == 3
    assert {c["model"]: c["verdict"] for c in doc["cells"]}["b"] == "no change"
    r = cli.invoke(_app(), ["compare", str(base), str(base), "--store", store_url])
    assert r.exit_code == 0 and "no regressions" in r.stdout
    r = cli.invoke(_app(), ["compare", "weekly", "latest", "--store", store_url])
    assert r.exit_code == 2 and "no run tagged 'weekly'" in r.stderr


def test_report_command_writes_html_and_markdown(store_url: str, cli: CliRunner, tmp_path: Path) -> None:
    _fill(store_url)
    out, md = tmp_path / "r.html", tmp_path / "md"
    r = cli.invoke(_app(), ["report", "latest~1", "latest", "--out", str(out), "--markdown", str(md),
                            "--store", store_url])
    assert r.exit_code == 0, r.output
    html = out.read_text()
    assert html.count("<svg") == int(html.split('data-plot-count="')[1].split('"')[0]) >= 4
    # opens offline: the only URLs are SVG's XML namespace names, never fetched
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    assert "slower" in html and "failed on new" in html
    pngs = sorted(p.name for p in md.glob("*.png"))
    text = (md / "report.md").read_text()
    assert pngs and all(f"]({p})" in text for p in pngs)
    assert (md / pngs[0]).read_bytes()[:4] == b"\x89PNG"
    r = cli.invoke(_app(), ["report", "--out", str(tmp_path / "r.pdf"), "--store", store_url])
    assert r.exit_code == 2 and "ending in .html" in r.stderr
