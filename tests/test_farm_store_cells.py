"""Every farm cell is in the store, conversions included (``history --kind convert`` lists them), and a
brand-new store whose conversions come from the artifact cache is not told cells "were already done"."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from tflite_deploy.cli import app
from tflite_deploy.envelope import items_of
from tflite_deploy.farm.record import StoreRecord
from tflite_deploy.farm.run import FarmSettings, run_plan
from tflite_deploy.render import farm as view


@pytest.mark.slow
def test_conversions_are_stored_and_cached_ones_are_not_called_done(tmp_path: Path, digits_keras: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(textwrap.dedent(f"""\
        models:
          m: {{path: {digits_keras}}}
        recipes: [float32, float16]
        targets: [host]
        delegates: [xnnpack]
        runs: 5
        cache: {tmp_path / 'cache'}
        """))
    first = run_plan(plan, tmp_path / "out", FarmSettings(store=str(tmp_path / "a.db")))
    assert {r.stage for r in first.ran.values()} == {"convert", "bench"} and not first.failed
    r = CliRunner().invoke(app, ["history", "--kind", "convert", "--store", str(tmp_path / "a.db"), "--json"])
    assert r.exit_code == 0, r.output
    rows = items_of(json.loads(r.stdout), "history")
    assert sorted(x["recipe"] for x in rows) == ["float16", "float32"] and {x["status"] for x in rows} == {"ok"}
    # a stored conversion never stands for a finished cell: the artifact cache does
    rec = StoreRecord.resume(str(tmp_path / "a.db"), first.run_id)
    try:
        assert all(cid.startswith("bench/") for cid in rec.finished())
    finally:
        rec.close()

    second = run_plan(plan, tmp_path / "out", FarmSettings(store=str(tmp_path / "b.db")))  # a brand-new store, same cache
    assert (second.already, second.cached) == (0, 2) and {r.stage for r in second.ran.values()} == {"bench"}
    console = Console(record=True, width=200)
    view.summary(second, console)
    text = console.export_text()
    assert "already done" not in text and "2 conversion(s) came from the artifact cache" in text
