"""The nightly's terminal output names what regressed: every target in full (serial and phone model) at
any width, off a terminal too; one count equal to the numbered regressions, each saying what got worse
(a row counted for its size says "larger", never "no change"); the basis below the compact table."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

from rich.console import Console

from tflite_deploy.farm.record import CellRecord
from tflite_deploy.reporting.compare import Cell, Comparison, compare_cells
from tflite_deploy.render.farm import night
from tflite_deploy.result import Result

PHONE_A = "adb:R58M123ABCDEF0123"
PHONE_B = "adb://10.0.0.7:5037/192.168.100.200:5555"


def _cell(target: str, recipe: str, p50: float, size: int) -> Cell:
    key = ("digits_cnn", recipe, target, "xnnpack")
    return Cell(key, bench_status="ok", repeats=[p50 * f for f in (0.99, 1.0, 1.01)], size_bytes=size)


def _nightly(tmp: Path) -> SimpleNamespace:
    base, new = {}, {}
    for target in (PHONE_A, PHONE_B):
        for recipe, (p50, size), (p50_new, size_new) in (
                ("int8", (1.0, 100_000), (1.5, 100_000)),       # slower
                ("float16", (2.0, 200_000), (2.0, 260_000)),    # larger only: latency unchanged
                ("float32", (3.0, 400_000), (3.0, 400_000))):   # no change
            b, n = _cell(target, recipe, p50, size), _cell(target, recipe, p50_new, size_new)
            base[b.key], new[n.key] = b, n
    cmp = Comparison({"id": 1, "tag": "base"}, {"id": 2, "tag": "nightly"}, compare_cells(base, new), 0.05)
    ran = {}
    for target, model in ((PHONE_A, "Pixel 7"), (PHONE_B, "Galaxy S23 Ultra")):
        r = Result(kind="bench", artifact="x.tflite", target=target, status="ok", device={"model": model})
        ran[target] = CellRecord(f"bench/{target}", "bench", "ok", results=(r,), target=target)
    run = SimpleNamespace(run_id="2", ran=ran, failed=[], skipped=(), already=0)
    return SimpleNamespace(run=run, comparison=cmp, report=tmp / "report-2.html", note="", accuracy_breaches=(),
                           regressions=cmp.regressions)


def test_nightly_names_each_regression_in_full_at_any_width(tmp_path: Path) -> None:
    n = _nightly(tmp_path)
    for width in (60, 120):
        buf = io.StringIO()
        night(n, Console(file=buf, width=width, force_terminal=False, color_system=None))
        text = buf.getvalue()
        assert "…" not in text, text  # nothing cut
        for full in (f"{PHONE_A} (Pixel 7)", f"{PHONE_B} (Galaxy S23 Ultra)"):
            assert full in text, text
        numbered = [ln.strip()[3:] for ln in text.splitlines() if ln.strip()[:3] in {f"{i}. " for i in range(1, 10)}]
        assert len(numbered) == 4, text  # int8 slower and float16 larger, on each phone
        assert sum(ln.startswith("slower: digits_cnn int8") for ln in numbered) == 2
        assert sum(ln.startswith("larger: digits_cnn float16") for ln in numbered) == 2
        assert all("Mann-Whitney" in ln for ln in numbered)  # the basis of each verdict, below the table
        assert "regressions (4)" in text and "verdict: 4 regression(s)" in text
    verdicts = {c.key[1]: c.verdict for c in n.comparison.cells}
    assert verdicts == {"int8": "slower", "float16": "larger", "float32": "no change"}
    assert sum(c.to_dict()["regression"] for c in n.comparison.cells) == 4


def test_nightly_confirms_with_the_plans_benchmark_binary_and_cooldown(tmp_path: Path, monkeypatch) -> None:
    """A phone's suspects are re-measured with the binary the plan's cells ran with (the official build
    would measure something else, or nothing offline); ``--benchmark-binary`` wins over the plan's."""
    from tflite_deploy.farm import run as farm_run

    plan = SimpleNamespace(baseline="base", bench=(("tool", "/lab/benchmark_model"), ("cooldown", 2.0)),
                           thresholds=SimpleNamespace(min_effect=0.05, max_accuracy_drop=None))
    monkeypatch.setattr(farm_run, "run_plan", lambda *a, **k: SimpleNamespace(run_id="2", plan=plan))
    runs = [{"id": 1, "tag": "base"}, {"id": 2, "tag": "nightly"}]
    monkeypatch.setattr(farm_run.api, "history", lambda *a, tag=None, runs_only=False, **k: SimpleNamespace(
        rows=[r for r in runs if tag in (None, r["tag"])], results=[]))
    monkeypatch.setattr(farm_run.api, "report", lambda *a, **k: SimpleNamespace(html=tmp_path / "r.html"))
    asked: list = []
    monkeypatch.setattr(farm_run.api, "compare", lambda *a, **k: asked.append(k))
    farm_run.nightly("plan.yaml", tmp_path, farm_run.FarmSettings())
    farm_run.nightly("plan.yaml", tmp_path, farm_run.FarmSettings(benchmark_tool="/cli/benchmark_model"))
    assert [(k["tool"], k["cooldown"]) for k in asked] == [("/lab/benchmark_model", 2.0), ("/cli/benchmark_model", 2.0)]


def test_nightly_shows_a_regression_models_mae_where_a_classifier_shows_top1(tmp_path: Path) -> None:
    def cell(mae: float, ci: list) -> Cell:
        c = _cell(PHONE_A, "int8", 1.0, 100_000)
        c.key = ("price_mlp", "int8", PHONE_A, "xnnpack")
        c.task, c.mae, c.mae_ci, c.mae_change, c.mae_change_ci = "regression", mae, [mae - 0.01, mae + 0.01], \
            sum(ci) / 2, ci
        return c

    b, n = cell(0.5, [0.00, 0.01]), cell(0.6, [0.09, 0.11])
    cmp = Comparison({"id": 1, "tag": "base"}, {"id": 2, "tag": "nightly"}, compare_cells({b.key: b}, {n.key: n}), 0.05)
    nightly = _nightly(tmp_path)
    nightly.comparison, nightly.regressions = cmp, cmp.regressions
    buf = io.StringIO()
    night(nightly, Console(file=buf, width=160, force_terminal=False, color_system=None))
    text = buf.getvalue()
    assert cmp.cells[0].regressed == ["less accurate"]
    assert "MAE 0.5 -> 0.6" in text and "MAE 0.6 (+0.1)" in text, text
