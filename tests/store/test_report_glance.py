"""The report a lab reads at a glance: two models, two targets, three runs. Small multiples with one
Pareto front per model and target, units per plot, a device × delegate grid, one sentence per model,
size and accuracy verdicts beside latency, and a note where a cell's source model changed; checked in
headless Chromium (Debian's chromium driven by Playwright), with a screenshot kept."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.store.helpers import bench_result, eval_result
from tests.store.test_report_browser import ARGS, CHROMIUM
from tflite_deploy.reporting.build import build_report
from tflite_deploy.reporting.render import write_html
from tflite_deploy.store import open_store

# model: {recipe: (host p50 ms, size MB, drop)}; the phone is 3x slower on cpu, 0.5x on gpu
MODELS = {"mobilenet_v2": {"float32": (3.6, 13.9, 0.0), "int8": (1.8, 3.9, 0.6), "float16": (3.6, 7.0, 0.0)},
          "kws_tiny": {"float32": (0.0042, 0.09, 0.0), "int8": (0.0021, 0.025, 1.1)}}
TARGETS = (("host", "xnnpack", 1.0), ("adb:PIXEL7", "cpu", 3.0), ("adb:PIXEL7", "gpu", 0.5))


def _fill(path: Path) -> None:
    rng = np.random.default_rng(3)
    with open_store(path) as st:
        for night in range(3):
            run = st.start_run(tag="nightly")
            for model, recipes in MODELS.items():
                for recipe, (p50, mb, drop) in recipes.items():
                    slow = 1.25 if (night == 2 and model == "mobilenet_v2" and recipe == "int8") else 1.0
                    for target, delegate, f in TARGETS:
                        reps = list(p50 * f * slow * np.exp(rng.normal(0, 0.01, 5)))
                        r = bench_result(model, recipe, target=target, delegate=delegate, p50=float(np.median(reps)),
                                         repeats=reps, seed=night)
                        st.add_result(run, replace(r, settings={"size_bytes": int(mb * 1e6)}))
                    if recipe != "float32":
                        st.add_result(run, eval_result(model, recipe, top1=90 - drop, drop=drop,
                                                       ci=(drop - 0.3, drop + 0.3)))
                    # the source model behind kws_tiny.int8 was retrained for the last night
                    src = "b" * 64 if (night == 2 and model == "kws_tiny") else "a" * 64
                    st.add_artifact(f"out/{model}.{recipe}.tflite", f"{night}{model}{recipe}".ljust(64, "0"),
                                    source_sha256=src)
        # point each result at its artifact row (what a recorded bench does through Recorder)
        import sqlalchemy as sa

        from tflite_deploy.store.schema import artifacts, results
        with st.engine.begin() as conn:
            for rid, run_id, art in conn.execute(sa.select(results.c.id, results.c.run_id, results.c.artifact)):
                aid = conn.execute(sa.select(artifacts.c.id).where(
                    artifacts.c.path == art, artifacts.c.sha256.like(f"{run_id - 1}%"))).scalar()
                conn.execute(results.update().where(results.c.id == rid).values(artifact_id=aid))


def test_report_at_a_glance_two_models_two_targets_three_runs(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        why = f"{CHROMIUM} is missing (apt-get install chromium; tools/setup.sh does it as root)"
        pytest.fail(why) if os.environ.get("CI") else pytest.skip(why)
    from playwright.sync_api import sync_playwright

    store = tmp_path / "s.db"
    _fill(store)
    with open_store(store) as st:
        rep = build_report(st, ["nightly"])  # one tag: its latest state against the one before
    plots = {p.name: p for p in rep.plots}
    grid = plots["size-latency"].figure
    panels = {ax.get_title(): ax.get_xlabel() for ax in grid.axes}
    assert len(panels) == 4 and panels["kws_tiny · host"] == "p50 latency (µs)", panels  # 2 models x 2 targets
    assert panels["mobilenet_v2 · host"] == "p50 latency (ms)", panels
    assert [s["model"] for s in rep.sentences] == ["kws_tiny", "mobilenet_v2"]
    assert "fastest on host is int8 with xnnpack (2.1 µs p50)" in rep.sentences[0]["text"], rep.sentences
    assert "fastest on adb:PIXEL7 is int8 with gpu" in rep.sentences[1]["text"], rep.sentences
    assert rep.grid["columns"] == [("adb:PIXEL7", "cpu"), ("adb:PIXEL7", "gpu"), ("host", "xnnpack")]
    slower = [c for c in rep.comparison.cells if c.regression]
    assert {c.key[:2] for c in slower} == {("mobilenet_v2", "int8")}, [(c.key, c.verdict) for c in slower]
    noted = [c for c in rep.comparison.cells if "source model changed" in c.note]
    assert {c.key[0] for c in noted} == {"kws_tiny"}
    html = write_html(rep, tmp_path / "report.html")
    text = html.read_text()
    assert "0.000" not in text.split("<h2>Plots</h2>")[0]  # no µs model written as 0.0000xx ms in the tables

    shot = tmp_path / "glance.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(html.as_uri())
        assert page.locator("ul.sentences li").count() == 2
        assert page.locator("table.grid tbody tr").count() == 5
        assert page.locator("table.grid").inner_text().count("µs") >= 6
        figures = page.locator("figure.plot")
        assert figures.count() == len(rep.plots)
        for i in range(figures.count()):
            box = figures.nth(i).locator("svg").first.bounding_box()
            assert box and box["width"] > 200 and box["height"] > 100, (i, box)
        wide = page.locator('figure.plot[data-plot="size-latency"] svg').bounding_box()
        assert wide["width"] > 700  # the small multiples span the row, not one column of the plot grid
        assert page.locator("span.verdict", has_text="slower").count() >= 1
        assert page.get_by_text("source model changed").count() >= 1
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert shot.stat().st_size > 20_000
    if os.environ.get("TFLITE_DEPLOY_SCREENSHOT_DIR"):
        dest = Path(os.environ["TFLITE_DEPLOY_SCREENSHOT_DIR"])
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, dest / "report-glance.png")
