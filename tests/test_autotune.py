"""autotune: the bisection and the records (fast), and the whole search on a model that plain int8
honestly ruins on real data (slow): the chosen mixed variant is checked by an independent LiteRT
evaluation, its size against float16, and `convert -f` with the written recipe remakes the same file."""

from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from tflite_deploy.autotuning.records import AutotuneResult, Trial, choose, pareto_front
from tflite_deploy.autotuning.search import fewest_float_layers
from tflite_deploy.cli import app
from tflite_deploy.envelope import items_of
from tflite_deploy.errors import UserError
from tflite_deploy.recipes import PRESETS

runner = CliRunner()


# ------------------------------------------------------------------------------- search (no TF)
@pytest.mark.parametrize("layers,threshold", [(1, 1), (6, 1), (6, 2), (6, 6), (37, 5), (37, 30), (100, 64)])
def test_bisection_finds_the_fewest_layers_in_log_trials(layers, threshold):
    probed = []

    def passes(k):
        probed.append(k)
        return k >= threshold

    assert fewest_float_layers(layers, passes) == threshold
    assert threshold in probed                       # the answer was judged, not assumed
    assert len(probed) <= int(np.ceil(np.log2(layers))) + 1
    assert len(probed) < layers or layers == 1


def test_bisection_none_when_even_every_layer_float_misses():
    probed = []
    assert fewest_float_layers(8, lambda k: probed.append(k) or False) is None
    assert probed[-1] == 8                           # the whole ranking was tried before giving up


def test_bisection_stopped_keeps_the_best_judged_point():
    answers = iter([True, None])                     # k=4 passes, then the budget is spent
    assert fewest_float_layers(8, lambda k: next(answers)) == 4
    answers = iter([False, None])
    assert fewest_float_layers(8, lambda k: next(answers)) is None


def _t(i, size, hi, latency=None, ok=True, stage="plain"):
    return Trial(i, stage, PRESETS["int8"], size, hi - 0.5, (hi - 1.0, hi), 90.0, 0.1, ok, latency)


def test_pareto_front_and_choice():
    a, b, c, d = _t(0, 100, 0.5, 2.0), _t(1, 80, 0.9, 3.0), _t(2, 120, 0.9, 1.0), _t(3, 130, 1.0, 4.0)
    front = pareto_front([a, b, c, d])
    assert [t.index for t in front] == [1, 0, 2]     # d is beaten by a on every axis
    assert choose([a, b, c, d], "size") is b
    assert choose([a, b, c, d], "latency") is c
    assert choose([_t(0, 10, 5.0, ok=False)], "size") is None


def test_closest_candidates_when_nothing_meets():
    trials = (_t(0, 100, 9.0, ok=False), _t(1, 50, 3.0, ok=False), _t(2, 70, 5.0, ok=False),
              _t(3, 40, 20.0, ok=False))
    r = AutotuneResult("m", 1.0, "size", "d:test", "d:train", 10, 99.0, "dataset", trials, 0)
    assert not r.met and [t.index for t in r.closest] == [1, 2, 0]
    assert r.to_dict()["closest"] == [1, 2, 0] and r.to_dict()["chosen"] is None


def test_data_roles_keep_calibration_and_evaluation_apart():
    from tflite_deploy.autotuning.run import data_roles

    ev, cal = data_roles("digits", None)
    assert (ev.name, cal.name) == ("digits:test", "digits:train")
    ev, cal = data_roles("digits:test", None)
    assert (ev.name, cal.name) == ("digits:test", "digits:train")
    with pytest.raises(UserError, match="training split"):
        data_roles("digits:train", None)
    with pytest.raises(UserError, match="evaluation data too"):
        data_roles("digits:test", "digits:test")


@pytest.mark.parametrize("args,flag", [
    (["--max-drop", "-1"], "--max-drop"), (["--max-drop", "1", "--objective", "speed"], "--objective"),
    (["--max-drop", "1", "--max-trials", "-2"], "--max-trials"), (["--max-drop", "1", "--time-budget", "0"],
                                                                   "--time-budget")])
def test_bad_options_name_the_flag_and_write_nothing(tmp_path, args, flag):
    out = tmp_path / "out"
    r = runner.invoke(app, ["autotune", str(tmp_path / "missing.keras"), "--data", "digits", "--out", str(out),
                            "--no-store", *args])
    assert r.exit_code != 0 and flag in r.output and "Traceback" not in r.output
    assert not out.exists()


# ------------------------------------------------------------------------- the whole search (TF)
@pytest.fixture(scope="module")
def outlier_model(tmp_path_factory):
    from tests.support.autotune_models import outlier_digits_model

    return outlier_digits_model(tmp_path_factory.mktemp("autotune-model") / "outlier_cnn.keras")


@pytest.fixture(scope="module")
def tuned(outlier_model, tmp_path_factory):
    import tflite_deploy as td

    out = tmp_path_factory.mktemp("autotune-out")
    store = out / "store.db"
    return td.autotune(outlier_model, "digits", 2.0, out, store=store, tag="tune"), out, store


def _litert_top1(path, ds):
    """An evaluation of our own: a bare LiteRT loop, one sample at a time."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    x = ds.take().astype(np.float32)
    preds = []
    for k in range(len(x)):
        it.set_tensor(i["index"], x[k:k + 1])
        it.invoke()
        preds.append(int(it.get_tensor(o["index"])[0].argmax()))
    return np.asarray(preds)


@pytest.mark.slow
def test_autotune_finds_a_mixed_variant_within_budget_smaller_than_float16(tuned, outlier_model, tmp_path):
    import tflite_deploy as td
    from tflite_deploy.datasets import open_dataset
    from tflite_deploy.sources.keras import load_model

    r, out, _ = tuned
    by_name = {t.recipe.name: t for t in r.trials}
    # plain int8 PTQ honestly misses the budget on real data (and so do the other integer modes)
    for name in ("int8", "int8-per-tensor", "dynamic", "int16x8"):
        assert by_name[name].drop_ci95[0] > 2.0, (name, by_name[name].drop_ci95)
    c = r.chosen
    assert c is not None and c.stage == "search" and c.float_layers and c.recipe.activations == "int8"
    assert c.drop_ci95[1] <= 2.0
    # fewer trials than quantizable layers, and reported
    assert 0 < len(r.search_trials) < r.quantizable_layers
    doc = json.loads((out / "autotune.json").read_text())
    assert doc["search_trials"] == len(r.search_trials) and doc["quantizable_layers"] == r.quantizable_layers

    # its drop, by an independent evaluation of the written file against the Keras model
    test = open_dataset("digits:test")
    keras_top1 = load_model(outlier_model).keras_model.predict(test.take(), verbose=0).argmax(1)
    file_top1 = _litert_top1(r.artifact, test)
    drop = 100 * (np.mean(keras_top1 == test.labels) - np.mean(file_top1 == test.labels))
    assert drop == pytest.approx(c.drop, abs=1e-9) and drop <= 2.0

    # its size: what was reported, and smaller than float16 converted on its own
    size = (out / "outlier_cnn.autotune.tflite").stat().st_size
    assert size == c.size_bytes
    f16 = td.convert(outlier_model, ["float16"], None, tmp_path / "f16")[0]
    assert size < f16.size_bytes

    # the recipe file remakes it with `convert -f`
    res = runner.invoke(app, ["convert", str(outlier_model), "-f", r.recipe_file, "-r", r.recipe_name,
                              "--data", r.calibration_data, "-o", str(tmp_path / "again"), "--no-store", "--json"])
    assert res.exit_code == 0, res.output
    again = items_of(json.loads(res.stdout), "convert")[0]
    assert again["size_bytes"] == size


@pytest.mark.slow
def test_every_trial_is_in_the_store_under_one_run(tuned):
    from tflite_deploy.store import open_store

    r, _, store = tuned
    with open_store(store, create=False) as st:
        assert len(st.runs(tag="tune")) == 1
        kinds = [row.kind for row in st.results(st.resolve_run("tune"))]
    assert kinds.count("autotune") == len(r.trials)
    assert "convert" in kinds                         # the chosen file
    assert kinds.count("bench") >= 1                  # the survivors' latency


@pytest.mark.slow
def test_a_budget_nothing_meets_exits_non_zero_with_the_closest(outlier_model, tmp_path):
    # integer-only candidates and no search trials: nothing can repair the outlier layer
    res = runner.invoke(app, ["autotune", str(outlier_model), "--data", "digits", "--max-drop", "1", "-r", "int8",
                              "-r", "dynamic", "--max-trials", "0", "--out", str(tmp_path / "o"), "--no-store",
                              "--json"])
    assert res.exit_code == 1, res.output
    doc = items_of(json.loads(res.stdout), "autotune")[0]
    assert doc["met"] is False and doc["chosen"] is None and doc["artifact"] is None
    closest = [doc["trials"][i] for i in doc["closest"]]
    assert {t["recipe"] for t in closest} == {"int8", "dynamic"} and all(t["drop_ci95"][1] > 1 for t in closest)
    assert not list((tmp_path / "o").glob("*.tflite"))
    res = runner.invoke(app, ["autotune", str(outlier_model), "--data", "digits", "--max-drop", "1", "-r", "int8",
                              "--max-trials", "0", "--out", str(tmp_path / "p"), "--no-store"])
    assert res.exit_code == 1 and "Nothing met the budget" in res.output and "int8 +" in res.output


def test_the_api_function_is_not_hidden_by_its_package():
    import tflite_deploy as td
    import tflite_deploy.autotuning.records  # noqa: F401  (importing the package must not shadow the verb)

    assert callable(td.autotune) and td.autotune.__module__ == "tflite_deploy.api"


@pytest.mark.slow
def test_the_report_shows_the_search(tuned, tmp_path):
    r, _, store = tuned
    html = tmp_path / "report.html"
    res = runner.invoke(app, ["report", "tune", "--store", str(store), "--out", str(html)])
    assert res.exit_code == 0, res.output
    text = html.read_text()
    assert "Autotune search: outlier_cnn" in text
    assert f"{len(r.search_trials)} of them in the search over {r.quantizable_layers} quantizable layers" in text
    section = text.split("Autotune search: outlier_cnn")[1].split("</table>")[0]
    assert section.count("<tr>") == len(r.trials) + 1          # header + every trial
    assert section.count("<b>chosen</b>") == 1 and r.chosen.recipe.name in section


@pytest.mark.slow
def test_ctrl_c_and_max_trials_keep_what_was_found(outlier_model, tmp_path, monkeypatch):
    import tflite_deploy as td
    from tflite_deploy.autotuning.judge import Judge

    judge = Judge.judge
    calls = []

    def interrupted_at_the_second_search_trial(self, data):
        calls.append(1)
        if len(calls) == 7:                          # 5 plain candidates, 1 search trial, then Ctrl-C
            raise KeyboardInterrupt
        return judge(self, data)

    monkeypatch.setattr(Judge, "judge", interrupted_at_the_second_search_trial)
    r = td.autotune(outlier_model, "digits", 2.0, tmp_path / "a")
    assert r.stopped == "interrupted" and len(r.trials) == 6 and len(r.search_trials) == 1
    assert r.chosen is not None and (tmp_path / "a" / "outlier_cnn.autotune.tflite").is_file()
    assert len(json.loads((tmp_path / "a" / "autotune.json").read_text())["trials"]) == 6

    monkeypatch.setattr(Judge, "judge", judge)
    r = td.autotune(outlier_model, "digits", 2.0, tmp_path / "b", max_trials=1, recipes=["int8"])
    assert r.stopped == "max trials" and len(r.search_trials) == 1 and len(r.trials) == 2


@pytest.mark.slow
def test_survivors_latency_through_the_device_path(outlier_model, tmp_path, adb_device, benchmark_binary):
    import tflite_deploy as td

    r = td.autotune(outlier_model, "digits", 2.0, tmp_path / "d", recipes=["float16", "int8"],
                    target=adb_device.serial, benchmark_binary=benchmark_binary, max_trials=1, store=tmp_path / "s.db")
    assert r.latency_target == adb_device.serial and not r.warnings
    survivors = [t for t in r.trials if t.within_budget]
    assert survivors and all(t.latency_ms is not None and t.latency_ms > 0 for t in survivors)
    assert all(t.latency_ms is None for t in r.trials if not t.within_budget)
    from tflite_deploy.store import open_store

    with open_store(tmp_path / "s.db", create=False) as st:
        benches = [x for x in st.results(st.resolve_run("latest")) if x.kind == "bench"]
    assert {b.target for b in benches} == {f"adb:{adb_device.serial}"} and len(benches) == len(survivors)


def test_data_roles_apply_the_preprocessing_to_both_sets():
    from tflite_deploy.autotuning.run import data_roles
    from tflite_deploy.datasets import Preprocess

    ev, cal = data_roles("photos", None, Preprocess(size=(32, 32)))
    assert ev.sample_shape == cal.sample_shape == (32, 32, 3)
    assert len(ev) + len(cal) == 32 and ev.name == "photos:test"


# ----------------------------------------------------------------------------------- resume (TF)
def _changed_copy(model_path, to):
    """The same model with one weight nudged: another file, another sha256."""
    from tflite_deploy.sources.tf_loader import tf_keras

    m = tf_keras().models.load_model(model_path)
    w, b = m.get_layer("conv1").get_weights()
    w[0, 0, 0, 0] += 1e-3
    m.get_layer("conv1").set_weights([w, b])
    m.save(to)
    return to


@pytest.mark.slow
def test_resume_reuses_the_trials_of_the_same_model_and_data_only(outlier_model, tmp_path):
    import tflite_deploy as td
    from tflite_deploy.datasets import open_dataset
    from tflite_deploy.datasets.base import ArrayDataset

    test = open_dataset("digits:test")
    data = ArrayDataset(test.take(), test.labels, name="digits-test")
    run = dict(calibration="digits:train", recipes=["int8", "float16"], max_trials=0)
    out = tmp_path / "o"
    first = td.autotune(outlier_model, data, 2.0, out, **run)
    assert first.reused == 0 and len(first.trials) == 2
    again = td.autotune(outlier_model, data, 2.0, out, **run)
    assert again.reused == 2 and all(t.reused for t in again.trials)
    assert [(t.drop, t.drop_ci95, t.size_bytes) for t in again.trials] == \
        [(t.drop, t.drop_ci95, t.size_bytes) for t in first.trials]
    assert again.chosen.recipe.name == first.chosen.recipe.name == "float16"
    assert json.loads((out / "autotune.json").read_text())["reused_trials"] == 2
    # another budget re-judges the same measurements: nothing is within a budget of -1
    tight = td.autotune(outlier_model, data, 0.0, out, **run)
    assert tight.reused == 2 and [t.within_budget for t in tight.trials] == \
        [t.drop_ci95[1] <= 0.0 for t in first.trials]

    # changed data (one label): nothing reused, and said so
    labels = test.labels.copy()
    labels[0] = (labels[0] + 1) % 10
    other = td.autotune(outlier_model, ArrayDataset(test.take(), labels, name="digits-test"), 2.0, out, **run)
    assert other.reused == 0 and any("another model, data" in w for w in other.warnings)
    # changed model: nothing reused
    changed = _changed_copy(outlier_model, tmp_path / "outlier_cnn.keras")
    assert td.autotune(changed, data, 2.0, out, **run).reused == 0
    # resume=False starts afresh; resume=True refuses where there is nothing to resume
    assert td.autotune(outlier_model, data, 2.0, out, resume=False, **run).reused == 0
    with pytest.raises(UserError, match="resume=True: nothing to resume"):
        td.autotune(outlier_model, data, 2.0, tmp_path / "empty", resume=True, **run)
    res = runner.invoke(app, ["autotune", str(outlier_model), "--data", "digits", "--max-drop", "2", "-r", "int8",
                              "--out", str(tmp_path / "empty2"), "--resume", "--no-store"])
    assert res.exit_code == 2 and "--resume: nothing to resume" in res.output and "Traceback" not in res.output


@pytest.mark.slow
def test_ctrl_c_mid_search_then_the_same_command_resumes_to_the_same_answer(outlier_model, tuned, tmp_path):
    from tests.test_interrupt import assert_one_line, interrupt
    from tflite_deploy.autotuning.resume import TRIALS_FILE

    out = tmp_path / "o"
    args = ["autotune", str(outlier_model), "--data", "digits", "--max-drop", "2", "--out", str(out), "--no-store"]
    log = out / TRIALS_FILE

    def in_the_search():  # the 5 plain candidates and the ranking are logged: the search trials are under way
        lines = log.read_text().splitlines() if log.is_file() else []
        return sum('"trial"' in ln for ln in lines) >= 5 and any('"ranking"' in ln for ln in lines)

    # each judgement takes 1.5 s longer, so that Ctrl-C lands in the search, not after it on a loaded machine
    slowed = [sys.executable, "-c", "import time; from tflite_deploy.autotuning.judge import Judge; "
              "judge = Judge.judge; Judge.judge = lambda self, data: (time.sleep(1.5), judge(self, data))[1]; "
              "from tflite_deploy.cli import main; main()"]
    r = interrupt([*slowed, *args], tmp_path, in_the_search)
    assert_one_line(r, "run the same command again to resume")
    finished = sum('"trial"' in ln for ln in log.read_text().splitlines())
    full, _, _ = tuned
    assert 5 <= finished < len(full.trials)

    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    doc = items_of(json.loads(res.stdout), "autotune")[0]
    assert doc["reused_trials"] == finished and len(doc["trials"]) == len(full.trials)
    assert len(doc["trials"]) - doc["reused_trials"] < len(full.trials)        # fewer new trials
    chosen = doc["trials"][doc["chosen"]]
    assert chosen["float_layers"] == list(full.chosen.float_layers) and chosen["drop"] == full.chosen.drop
    assert chosen["drop_ci95"] == list(full.chosen.drop_ci95)
    assert (out / "outlier_cnn.autotune.tflite").stat().st_size == full.chosen.size_bytes


# ---------------------------------------------------- several inputs by name, and regression (TF)
@pytest.mark.slow
def test_two_named_inputs_are_calibrated_ranked_and_judged_by_name(tmp_path):
    import keras

    import tflite_deploy as td
    from tests.support import any_models as am
    from tflite_deploy.datasets import open_dataset

    model = am.two_in_two_out(tmp_path / "two.keras")
    data = tmp_path / "two.npz"
    np.savez(data, **am.two_in_data(500))
    # a budget of 0: any disagreement with the float model misses it, so plain int8 does and the search runs
    r = td.autotune(model, str(data), 0.0, tmp_path / "o")
    assert r.task == "classification" and (r.eval_data, r.calibration_data) == (f"{data}:test", f"{data}:train")
    assert all(t.error is None for t in r.trials), [t.error for t in r.trials]
    assert r.trials[0].recipe.name == "int8" and not r.trials[0].within_budget
    search = r.search_trials
    assert search and r.quantizable_layers > 1 and len(search) < r.quantizable_layers
    passing = [t for t in search if t.within_budget]
    assert passing and r.chosen is not None

    # the drops, by an evaluation of our own: Keras on both inputs, a bare LiteRT loop fed by name
    test = open_dataset(f"{data}:test")
    arrays, labels = test.take(), test.labels
    keras_top1 = keras.models.load_model(model).predict([arrays["image"], arrays["vec"]], verbose=0)[0].argmax(1)
    for trial, path in [(r.chosen, r.artifact),
                        (passing[0], tmp_path / "o" / "candidates" / f"two.{passing[0].recipe.name}.tflite")]:
        outs = am.direct_outputs(path, arrays)
        scores = next(v for v in outs.values() if v.shape[-1] == 3)
        drop = 100 * (np.mean(keras_top1 == labels) - np.mean(scores.reshape(len(labels), 3).argmax(1) == labels))
        assert drop == pytest.approx(trial.drop, abs=1e-9), trial.recipe.name


@pytest.mark.slow
def test_a_regression_model_is_judged_by_the_mae_increase_in_target_units(tmp_path):
    import tflite_deploy as td
    from tests.support import any_models as am
    from tflite_deploy.sources.tf_loader import tf_keras
    from tflite_deploy.store import open_store

    model, x_test, y_test = am.regression_mlp(tmp_path / "mlp.keras")
    (x_train, y_train), _ = am.diabetes_split()
    np.savez(tmp_path / "test.npz", features=x_test, y=y_test)
    np.savez(tmp_path / "train.npz", features=x_train, y=y_train)
    budget = 0.003                                   # standardised target units
    r = td.autotune(model, str(tmp_path / "test.npz"), budget, tmp_path / "o", calibration=str(tmp_path / "train.npz"),
                    store=tmp_path / "s.db")
    assert r.task == "regression" and r.to_dict()["task"] == "regression"
    keras_mae = float(np.mean(np.abs(tf_keras().models.load_model(model).predict(x_test, verbose=0)[:, 0] - y_test)))
    assert r.reference_accuracy == pytest.approx(keras_mae, rel=1e-5)
    int8 = r.trials[0]
    assert int8.recipe.name == "int8" and int8.drop_ci95[1] > budget and not int8.within_budget
    assert r.search_trials                           # full integer missed: the float-layer search ran
    assert all(t.within_budget == (t.drop_ci95[1] <= budget) for t in r.trials if t.error is None)
    c = r.chosen
    assert c is not None and c.drop_ci95[1] <= budget
    # the chosen file's MAE increase, by our own loop: its MAE minus the Keras model's, in target units
    mae = float(np.mean(np.abs(next(iter(am.direct_outputs(r.artifact, {"features": x_test}).values())).reshape(-1)
                               - y_test)))
    assert c.accuracy == pytest.approx(mae, rel=1e-6) and c.drop == pytest.approx(mae - keras_mae, abs=1e-6)
    with open_store(tmp_path / "s.db", create=False) as st:
        trials = [x for x in st.results(st.resolve_run("latest")) if x.kind == "autotune"]
    assert len(trials) == len(r.trials) and all("mae_change" in x.metrics for x in trials)
    res = runner.invoke(app, ["autotune", "--help"])
    assert "MAE" in res.output and "targets'" in res.output


# ---------------------------------------------------------------------------- --allow-training
@pytest.mark.slow
def test_allow_training_adds_a_qat_trial_from_the_best_ptq_point_and_names_it_when_it_misses(outlier_model,
                                                                                               tmp_path, monkeypatch):
    """On this model no training repairs int8: the dead unit's ±500 weights get no gradient, so they keep
    setting the logits' scale, and QAT (like PTQ) loses ~90 points. The trial is recorded with its drop,
    and the exit names it."""
    from tflite_deploy.optimization import training
    from tflite_deploy.store import open_store

    trained_on = []
    apply_steps = training.apply_steps

    def spy(source, recipe, dataset):
        trained_on.append((dataset.name, len(dataset)))
        return apply_steps(source, recipe, dataset)

    monkeypatch.setattr(training, "apply_steps", spy)
    out, db = tmp_path / "o", tmp_path / "s.db"
    res = runner.invoke(app, ["autotune", str(outlier_model), "--data", "digits", "--max-drop", "2", "-r", "int8",
                              "--max-trials", "0", "--allow-training", "--train-epochs", "1", "--out", str(out),
                              "--store", str(db)], env={"COLUMNS": "200"})
    assert res.exit_code == 1, res.output
    doc = json.loads((out / "autotune.json").read_text())
    plain, qat = doc["trials"]
    assert plain["recipe"] == "int8" and plain["drop_ci95"][1] > 2 and not plain["within_budget"]
    assert qat["stage"] == "qat" and qat["recipe"] == "int8-qat" and qat["error"] is None
    assert qat["recipe_fields"]["optimize"][0]["technique"] == "qat" and qat["recipe_fields"]["optimize"][0][
        "epochs"] == 1 and qat["recipe_fields"]["activations"] == "int8"
    assert qat["drop_ci95"][1] > 2 and not qat["within_budget"] and qat["size_bytes"] > 0
    assert "QAT tried (int8-qat" in res.output and f"{qat['drop']:+.2f}" in res.output
    with open_store(db, create=False) as st:
        rows = [x for x in st.results(st.resolve_run("latest")) if x.kind == "autotune"]
    assert [x.settings["stage"] for x in rows] == ["plain", "qat"] and rows[1].metrics["top1_drop"] == qat["drop"]
    # trained once, on the calibration split: never on the held-out one it is judged on
    from tflite_deploy.datasets import open_dataset

    assert trained_on == [("digits:train", len(open_dataset("digits:train")))]
    assert doc["calibration_data"] == "digits:train" and doc["eval_data"] == "digits:test"


def test_a_qat_recipe_file_keeps_its_optimize_step(tmp_path):
    from tflite_deploy.autotuning.output import write_recipe_file
    from tflite_deploy.api import load_recipes
    from tflite_deploy.recipes import OptimizeStep

    recipe = dataclasses.replace(PRESETS["int8"], name="autotune", float_layers=("dense/BiasAdd",),
                                 optimize=(OptimizeStep("qat", epochs=3),))
    path = write_recipe_file(tmp_path, recipe, "m.keras", "digits:train")
    again = load_recipes(["autotune"], [path])[0]
    assert again.optimize == recipe.optimize and again.float_layers == recipe.float_layers


@pytest.mark.parametrize("epochs", [0, -1])
def test_bad_train_epochs_name_the_flag(tmp_path, epochs):
    r = runner.invoke(app, ["autotune", str(tmp_path / "missing.keras"), "--data", "digits", "--max-drop", "1",
                            "--allow-training", "--train-epochs", str(epochs), "--out", str(tmp_path / "o"),
                            "--no-store"])
    assert r.exit_code != 0 and "--train-epochs" in r.output and "Traceback" not in r.output


def test_the_report_speaks_of_mae_for_regression_and_of_resuming():
    from rich.console import Console

    from tflite_deploy.render.autotune import autotune_report

    trials = (dataclasses.replace(_t(0, 100, 0.02, ok=False), reused=True), _t(1, 50, 0.004, ok=True))
    r = AutotuneResult("mlp.keras", 0.01, "size", "d:test", "d:train", 92, 0.59, "dataset", trials, 0,
                       task="regression", chosen=trials[1], artifact="o/mlp.autotune.tflite", recipe_file="o/a.yaml",
                       recipe_name="autotune")
    console = Console(record=True, width=200)
    autotune_report(r, console)
    text = console.export_text()
    assert "MAE 0.59 (regression)" in text and "MAE increase (95% CI)" in text and "points" not in text
    assert "Resumed: 1 of the 2 trials were reused" in text
    assert r.to_dict()["reused_trials"] == 1 and r.to_dict()["trials"][0]["reused"] is True


def test_the_trial_log_keys_on_source_data_split_and_recipe(tmp_path):
    from tflite_deploy.autotuning.resume import TRIALS_FILE, TrialLog, context_key
    from tflite_deploy.datasets.base import ArrayDataset

    x, y = np.arange(40, dtype=np.float32).reshape(20, 2), np.arange(20) % 3
    ds = ArrayDataset(x, y)
    split = lambda seed: ds.subset(np.sort(np.random.default_rng(seed).permutation(20)[:5]))  # noqa: E731
    ctx = context_key("sha-a", split(0).fingerprint(), "cal", 5, {"tensorflow": "2.21.0"})
    # another source, another split seed, other samples, another count judged, another TF: another context
    for other in (context_key("sha-b", split(0).fingerprint(), "cal", 5, {"tensorflow": "2.21.0"}),
                  context_key("sha-a", split(1).fingerprint(), "cal", 5, {"tensorflow": "2.21.0"}),
                  context_key("sha-a", split(0).fingerprint(), "cal2", 5, {"tensorflow": "2.21.0"}),
                  context_key("sha-a", split(0).fingerprint(), "cal", 4, {"tensorflow": "2.21.0"}),
                  context_key("sha-a", split(0).fingerprint(), "cal", 5, {"tensorflow": "2.22.0"})):
        assert other != ctx

    log = TrialLog(tmp_path, ctx)
    five = dataclasses.replace(PRESETS["int8"], name="int8-float1", float_layers=("a",))
    log.add(Trial(0, "search", five, 4, 0.5, (0.1, 0.9), 97.0, 1.0, True), b"tfl3")
    log.add(Trial(1, "plain", PRESETS["int8"], error="boom"), None)               # failures are not kept
    with open(tmp_path / TRIALS_FILE, "a") as f:
        f.write('{"context": "' + ctx + '", "key": "cut sh')                      # a line cut by a kill
    again = TrialLog(tmp_path, ctx)
    assert again.available == 1 and again.get("plain", PRESETS["int8"], 0, 1.0) is None
    assert again.get("search", dataclasses.replace(five, float_layers=("b",)), 0, 1.0) is None  # another denylist
    found = again.get("search", dataclasses.replace(five, name="renamed"), 3, 0.5)  # the name does not define it
    assert found.data == b"tfl3" and found.trial.index == 3 and found.trial.reused
    assert found.trial.within_budget is False                                     # re-judged: 0.9 > 0.5
    assert TrialLog(tmp_path, "another context").available == 0
    assert TrialLog(tmp_path, "another context").other_context == 1
