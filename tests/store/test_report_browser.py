"""The HTML report in a real headless browser (Debian's chromium driven by Playwright): every plot
the report says it has is there and drawn, and a screenshot is kept."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.store.helpers import bench_result, eval_result
from tflite_deploy.reporting.build import build_report
from tflite_deploy.reporting.render import write_html
from tflite_deploy.store import open_store

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def _store_with_history(path: Path) -> None:
    rng = np.random.default_rng(1)
    recipes = {"float32": (3.6, 13.9, None), "int8": (1.8, 3.9, 0.6), "float16": (3.6, 7.0, 0.0),
               "dynamic": (9.9, 3.9, 0.4)}
    with open_store(path) as st:
        for night in range(5):
            run = st.start_run(tag="nightly")
            for recipe, (p50, mb, drop) in recipes.items():
                slow = 1.2 if (night == 4 and recipe == "int8") else 1.0
                for delegate, f in (("xnnpack", 1.0), ("none", 2.1)):
                    reps = list(p50 * f * slow * np.exp(rng.normal(0, 0.02, 5)))
                    r = bench_result("mobilenet_v2", recipe, delegate=delegate, p50=float(np.median(reps)),
                                     repeats=reps, seed=night)
                    st.add_result(run, replace(r, settings={"size_bytes": int(mb * 1e6)}))
                if drop is not None:
                    st.add_result(run, eval_result("mobilenet_v2", recipe, top1=71.8 - drop, drop=drop,
                                                   ci=(drop - 0.4, drop + 0.4)))


def test_report_plots_render_in_headless_chromium(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():  # CI must run it: tools/setup.sh --tests installs chromium
        why = f"{CHROMIUM} is missing (apt-get install chromium; tools/setup.sh --tests does it as root)"
        pytest.fail(why) if os.environ.get("CI") else pytest.skip(why)
    from playwright.sync_api import sync_playwright

    store = tmp_path / "s.db"
    _store_with_history(store)
    with open_store(store) as st:
        rep = build_report(st, ["latest~1", "latest"])
    html = write_html(rep, tmp_path / "report.html")
    names = {p.name for p in rep.plots}
    assert {"size-latency-host", "drop-latency-host", "latency-dist-host", "trend-nightly", "verdicts"} <= names
    assert any(n.startswith("per-layer-") for n in names)

    shot = tmp_path / "report.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        requests: list = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(html.as_uri())
        declared = int(page.locator("body").get_attribute("data-plot-count"))
        figures = page.locator("figure.plot")
        assert declared == len(rep.plots) == figures.count()
        for i in range(declared):
            svg = figures.nth(i).locator("svg").first
            box = svg.bounding_box()
            assert box and box["width"] > 200 and box["height"] > 100, (i, box)
            # drawn: the SVG holds paths that themselves take space on the page
            assert svg.locator("path").count() > 10
        assert page.locator("span.verdict.v-slower").count() >= 1
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert [u for u in requests if not u.startswith("file:")] == []  # opened offline, nothing fetched
    assert shot.stat().st_size > 20_000
    if os.environ.get("TFLITE_DEPLOY_SCREENSHOT_DIR"):
        dest = Path(os.environ["TFLITE_DEPLOY_SCREENSHOT_DIR"])
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, dest / "report.png")
