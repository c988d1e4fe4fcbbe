"""The per-output and regression metrics of issue 27's models travel on: into the store, through
``compare`` (a regression model is "less accurate" when its MAE rose beyond noise), into the report
(MAE instead of top-1, SQNR per output) and through farm plans (``task:`` per model).
Real models from tests/support/any_models.py, converted once per session (any_model_fixtures.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.support import any_models as am

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def worse_mlp(mlp, tmp_path_factory) -> Path:
    """The regression MLP with its output shifted by 0.3 (standardised units), converted int8 under the
    same file name: a variant whose MAE is clearly worse than the real int8's."""
    import tf_keras as keras

    from tflite_deploy.conversion.run import convert
    from tflite_deploy.recipes import PRESETS

    root = tmp_path_factory.mktemp("worse")
    model = keras.models.load_model(mlp["model"])
    kernel, bias = model.layers[-1].get_weights()
    model.layers[-1].set_weights([kernel, bias + 0.3])
    model.save(root / "mlp.keras")
    (art,) = convert(root / "mlp.keras", [PRESETS["int8"]], str(mlp["data"]), root / "out")
    assert not art.failed, art.reason
    assert Path(art.path).name == Path(mlp["arts"]["int8"].path).name
    return Path(art.path)


def _stored(db: Path, run_id: int) -> list:
    from tflite_deploy.store import open_store

    with open_store(str(db), create=False) as st:
        return st.results(run_id)


def _run_id(db: Path) -> int:
    from tflite_deploy.store import open_store

    with open_store(str(db), create=False) as st:
        return st.runs()[0]["id"]


def test_eval_stores_the_regression_and_per_output_metrics(mlp, two_out, tmp_path):
    from tflite_deploy import api

    db = tmp_path / "s.db"
    given = api.evaluate(mlp["model"], [mlp["arts"]["int8"].path], str(mlp["data"]), store=str(db))
    stored = _stored(db, _run_id(db))
    assert [r.metrics["role"] for r in stored] == ["reference", "variant"]
    m = stored[1].metrics
    direct = next(iter(am.direct_outputs(mlp["arts"]["int8"].path, {"features": mlp["x"]}).values()))[:, 0]
    assert m["task"] == "regression" and "top1" not in m
    assert m["mae"] == pytest.approx(float(np.mean(np.abs(direct - mlp["y"]))), rel=1e-5)
    assert m["mae_ci95"][0] < m["mae"] < m["mae_ci95"][1]
    for k in ("rmse", "mae_change", "mae_change_ci95"):
        assert m[k] == given[1].metrics[k], k
    assert stored[0].metrics["mae_ci95"] == given[0].metrics["mae_ci95"]

    db2 = tmp_path / "t.db"
    given = api.evaluate(two_out["model"], [two_out["arts"]["int8"].path], str(two_out["data"]), store=str(db2))
    per = _stored(db2, _run_id(db2))[1].metrics["outputs"]
    assert set(per) == {"output_0", "output_1"}
    for name in per:
        assert per[name]["sqnr_db"] == pytest.approx(given[1].metrics["outputs"][name]["sqnr_db"])
        assert per[name]["max_abs_error"] > 0


def test_compare_calls_a_regression_model_with_a_higher_mae_less_accurate(mlp, worse_mlp, tmp_path):
    from tflite_deploy import api
    from tflite_deploy.cli import app

    db = str(tmp_path / "s.db")
    ref, good = mlp["model"], mlp["arts"]["int8"].path
    api.evaluate(ref, [good], str(mlp["data"]), store=db, tag="base")
    api.evaluate(ref, [good], str(mlp["data"]), store=db, tag="same")
    api.evaluate(ref, [worse_mlp], str(mlp["data"]), store=db, tag="worse", force=True)

    same = {c.key: c for c in api.compare("base", "same", store=db, confirm=False).cells}
    assert same[("mlp", "int8", "-", "-")].accuracy.verdict == "no change"
    assert not any(c.regressed for c in same.values())

    cmp = api.compare("base", "worse", store=db, confirm=False)
    cell = next(c for c in cmp.cells if c.key == ("mlp", "int8", "-", "-"))
    assert cell.regressed == ["less accurate"], cell.accuracy
    assert cell.accuracy.basis == "MAE change intervals do not overlap"
    assert cell.accuracy.change == pytest.approx(cell.new.mae - cell.base.mae) and cell.accuracy.change > 0.03
    d = cell.to_dict()
    assert d["task"] == "regression" and d["new_mae_change"] > d["new_mae_change_ci95"][0] > 0
    ref_cell = next(c for c in cmp.cells if c.key[1] is None)  # the float reference itself: unchanged
    assert ref_cell.accuracy.verdict == "no change" and ref_cell.accuracy.basis == "MAE intervals overlap"

    res = CliRunner().invoke(app, ["compare", "base", "worse", "--store", db, "--no-confirm"])
    assert res.exit_code == 1, res.output
    assert "MAE" in res.output and "less accurate" in res.output
    api.report(["base", "worse"], tmp_path / "r.html", store=db)
    assert f"worse (MAE {cell.accuracy.change:+.3g})" in (tmp_path / "r.html").read_text()


def test_compare_and_report_show_sqnr_per_output_and_mae(mlp, two_out, tmp_path):
    from tflite_deploy import api
    from tflite_deploy.cli import app

    db = str(tmp_path / "s.db")
    arts = two_out["arts"]
    api.evaluate(two_out["model"], [arts["int8"].path], str(two_out["data"]), store=db, tag="two")
    api.evaluate(two_out["model"], [arts["int8"].path], str(two_out["data"]), store=db, tag="two")
    api.evaluate(mlp["model"], [mlp["arts"]["int8"].path], str(mlp["data"]), store=db, tag="mlp")
    api.bench([mlp["arts"]["int8"].path], ["host"], runs=20, warmup=2, store=db, tag="mlp")
    two_a, two_b = sorted(r["id"] for r in _runs(db, "two"))
    cmp = api.compare(str(two_a), str(two_b), store=db, confirm=False)
    cell = next(c for c in cmp.cells if c.key == ("two", "int8", "-", "-"))
    sqnr = cell.to_dict()["outputs"]
    stored = _stored(Path(db), two_a)[1].metrics["outputs"]
    assert set(sqnr) == {"output_0", "output_1"}
    for name, o in sqnr.items():
        assert o["base_sqnr_db"] == pytest.approx(stored[name]["sqnr_db"]) and o["change_db"] == pytest.approx(0)
    res = CliRunner().invoke(app, ["compare", str(two_a), str(two_b), "--store", db, "--no-confirm"])
    assert "SQNR per output (dB), two.int8: output_0" in res.output, res.output

    out = tmp_path / "r.html"
    api.report([str(two_b), "mlp"], out, markdown=tmp_path / "md", store=db)
    html = out.read_text()
    md = (tmp_path / "md" / "report.md").read_text()
    mae = next(r for r in _stored(Path(db), _eval_run(db, "mlp", "mlp")) if r.metrics["role"] == "variant").metrics
    assert f"MAE {mae['mae']:.4g}" in html and f"MAE {mae['mae']:.4g}" in md
    assert f"{mae['mae_change']:+.3g} [{mae['mae_change_ci95'][0]:+.3g}" in html
    assert "output_1 " in html and "SQNR per output" in md
    assert 'data-plot="mae-latency"' in html
    assert "loses least accuracy (MAE" in html


def _runs(db: str, tag: str) -> list:
    from tflite_deploy.store import open_store

    with open_store(db, create=False) as st:
        return st.runs(tag=tag)


def _eval_run(db: str, tag: str, model: str) -> int:
    from tflite_deploy.store import open_store

    with open_store(db, create=False) as st:
        for run in st.runs(tag=tag):
            if any(Path(r.artifact).name.startswith(model) and r.kind == "eval" for r in st.results(run["id"])):
                return run["id"]
    raise AssertionError(f"no eval run of {model} under {tag}")


def test_a_farm_plan_takes_a_regression_dataset_and_a_task_per_model(mlp, two_out, tmp_path):
    from tflite_deploy.errors import UserError
    from tflite_deploy.farm.plan import load_plan
    from tflite_deploy.farm.run import FarmSettings, run_plan

    plan = tmp_path / "plan.yaml"
    body = f"""\
        models:
          mlp: {{path: {mlp['model']}, dataset: {mlp['data']}, task: TASK}}
          two: {{path: {two_out['model']}, dataset: {two_out['data']}}}
        recipes: [int8]
        targets: [host]
        delegates: [xnnpack]
        runs: 5
        cache: {tmp_path / 'cache'}
        """
    plan.write_text(textwrap.dedent(body.replace("TASK", "regresion")))
    with pytest.raises(UserError, match=r"models\.mlp\.task.*regresion"):
        load_plan(plan)
    plan.write_text(textwrap.dedent(body.replace("TASK", "regression")))
    db = tmp_path / "farm.db"
    run = run_plan(plan, tmp_path / "out", FarmSettings(store=str(db)))
    assert not run.failed, [r.error for r in run.failed]
    assert {r.stage for r in run.ran.values()} == {"convert", "eval", "bench"}
    from tflite_deploy.store import open_store

    with open_store(str(db), create=False) as st:
        evals = {Path(r.artifact).name.split(".")[0]: r for r in st.results() if r.kind == "eval"}
    assert set(evals) == {"mlp", "two"}
    two = evals["two"].metrics  # named inputs, two outputs: each output judged on its own
    assert two["task"] == "classification" and set(two["outputs"]) == {"output_0", "output_1"}
    assert all(o["sqnr_db"] > 10 for o in two["outputs"].values())
    ev = evals["mlp"]
    m = ev.metrics
    assert m["task"] == "regression" and ev.recipe == "int8"
    assert {"mae", "mae_ci95", "rmse", "mae_change", "mae_change_ci95"} <= set(m)
    direct = next(iter(am.direct_outputs(Path(ev.artifact), {"features": mlp["x"]}).values()))[:, 0]
    assert m["mae"] == pytest.approx(float(np.mean(np.abs(direct - mlp["y"]))), rel=1e-5)
