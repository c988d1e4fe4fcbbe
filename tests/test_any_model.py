"""Models users ship besides single-input image classifiers (issue 27): several inputs and outputs,
token ids, recurrent layers with a dynamic batch, regression targets. Every figure is checked
against a plain LiteRT signature-runner loop (tests/support/any_models.direct_outputs)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support import any_models as am
from tflite_deploy.errors import DatasetError

pytestmark = pytest.mark.slow


def _sqnr(ref: np.ndarray, var: np.ndarray) -> float:
    r, v = ref.astype(np.float64).ravel(), var.astype(np.float64).ravel()
    return float(10 * np.log10(np.sum(r ** 2) / np.sum((v - r) ** 2)))


# ------------------------------------------------------------------------- recurrent, token ids
def test_lstm_with_a_dynamic_batch_converts_with_a_fixed_batch_and_says_so(lstm):
    from tflite_deploy.tflite.reader import inspect_model

    for recipe, art in lstm["arts"].items():
        assert art.meta["fixed_batch"] == 1, recipe
        assert any("fixed batch of 1" in w for w in art.to_dict()["warnings"]), recipe
        report = inspect_model(art.path)
        assert report.inputs[0].shape == (1, am.SEQ) and report.inputs[0].dtype == "int32"
        assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in report.op_histogram  # a builtin, no select TF ops
    int8 = inspect_model(lstm["arts"]["int8"].path)
    assert not int8.quantization.float_ops and int8.quantization.activation_dtypes.get("int8", 0) > 0
    assert any("integer LSTM" in w for w in lstm["arts"]["int8"].meta["warnings"])


def test_lstm_eval_matches_a_direct_interpreter_loop(lstm):
    import tf_keras as keras

    from tflite_deploy.evaluation.run import evaluate

    arts = lstm["arts"]
    results = evaluate(lstm["model"], [arts[r].path for r in ("float32", "int8")], str(lstm["data"]))
    ref_values = keras.models.load_model(lstm["model"]).predict(lstm["ids"], verbose=0)
    ref = results[0].metrics
    assert ref["task"] == "classification"
    assert ref["top1"] == pytest.approx(100 * np.mean(ref_values.argmax(1) == lstm["y"]))
    assert ref["top1"] > 60  # the model learned its rule: accuracy means something here
    for r, recipe in zip(results[1:], ("float32", "int8")):
        direct = next(iter(am.direct_outputs(arts[recipe].path, {"tokens": lstm["ids"]}).values()))
        m = r.metrics
        assert m["top1"] == pytest.approx(100 * np.mean(direct.argmax(1) == lstm["y"]))
        assert m["max_abs_error"] == pytest.approx(float(np.max(np.abs(direct - ref_values))), rel=1e-4, abs=1e-6)
        assert m["sqnr_db"] == pytest.approx(_sqnr(ref_values, direct), rel=1e-3)
        assert m["top1_drop"] == pytest.approx(ref["top1"] - m["top1"])
    assert results[1].metrics["sqnr_db"] > results[2].metrics["sqnr_db"] > 15  # int8 is noisier, still close


def test_bench_of_a_token_model_draws_valid_ids_from_the_embedding(lstm):
    from tflite_deploy.benchmark.host import bench_host
    from tflite_deploy.benchmark.options import BenchOptions
    from tflite_deploy.tflite.runtime import TfliteModel

    for recipe in ("float32", "int8"):
        m = TfliteModel(lstm["arts"][recipe].path)
        assert m.value_ranges() == {"tokens": (0, am.VOCAB - 1)}  # read from the GATHER's table
        m.fill_random_input()
        ids = m.interpreter.get_tensor(m.input["index"])
        assert ids.min() >= 0 and ids.max() <= am.VOCAB - 1 and ids.max() > am.VOCAB // 2
    results = bench_host([lstm["arts"]["float32"].path, lstm["arts"]["int8"].path],
                         BenchOptions(runs=5, warmup=1, min_seconds=0.0))
    assert all(r.ok and r.latency.count >= 5 for r in results)


def test_token_ids_beyond_the_vocabulary_and_wrong_dtypes_are_refused_by_name(lstm):
    from tflite_deploy.evaluation.run import evaluate

    root, art = lstm["root"], lstm["arts"]["float32"].path
    too_big = lstm["ids"].copy()
    too_big[3, 2] = am.VOCAB + 7
    np.savez(root / "big.npz", tokens=too_big, y=lstm["y"])
    with pytest.raises(DatasetError) as e:
        evaluate(art, [art], str(root / "big.npz"))
    assert "'tokens'" in str(e.value) and "int32" in str(e.value) and f"{am.VOCAB + 7}" in str(e.value) \
        and f"0..{am.VOCAB - 1}" in str(e.value)
    np.savez(root / "floats.npz", tokens=lstm["ids"].astype(np.float32), y=lstm["y"])
    with pytest.raises(DatasetError, match=r"float32 data for input 'tokens' \(shape \(1, 12\), int32\)"):
        evaluate(art, [art], str(root / "floats.npz"))


# --------------------------------------------------------------------------- three int32 inputs
def test_bert_like_three_int32_inputs_convert_calibrate_eval_and_bench(bert):
    from tflite_deploy.benchmark.host import bench_host
    from tflite_deploy.benchmark.options import BenchOptions
    from tflite_deploy.evaluation.run import evaluate
    from tflite_deploy.tflite.reader import inspect_model
    from tflite_deploy.tflite.runtime import TfliteModel

    arts, arrays = bert["arts"], bert["arrays"]
    int8 = inspect_model(arts["int8"].path)
    assert sorted(t.signature_name for t in int8.inputs) == ["ids", "mask", "type_ids"]
    assert {t.dtype for t in int8.inputs} == {"int32"}
    assert int8.quantization.activation_dtypes.get("int8", 0) > 0
    m = TfliteModel(arts["int8"].path)
    assert m.value_ranges() == {"ids": (0, 29), "mask": (0, 1), "type_ids": (0, 1)}

    results = evaluate(bert["model"], [arts["float32"].path, arts["int8"].path], str(bert["data"]))
    feed = {k: v for k, v in arrays.items() if k != "y"}
    import tf_keras as keras

    ref_values = keras.models.load_model(bert["model"]).predict([feed["ids"], feed["mask"], feed["type_ids"]],
                                                                verbose=0)
    for r, recipe in zip(results[1:], ("float32", "int8")):
        direct = next(iter(am.direct_outputs(arts[recipe].path, feed).values()))
        assert r.metrics["top1"] == pytest.approx(100 * np.mean(direct.argmax(1) == arrays["y"]))
        assert r.metrics["sqnr_db"] == pytest.approx(_sqnr(ref_values, direct), rel=1e-3)
    assert results[1].metrics["sqnr_db"] > 60  # float32 is the same model
    bench = bench_host([arts["int8"].path], BenchOptions(runs=5, warmup=1, min_seconds=0.0))
    assert bench[0].ok


def test_a_missing_input_array_is_named_with_its_shape_and_dtype(bert):
    from tflite_deploy.evaluation.run import evaluate

    arrays = {k: v for k, v in bert["arrays"].items() if k != "mask"}
    path = bert["root"] / "no_mask.npz"
    np.savez(path, **arrays)
    art = bert["arts"]["float32"].path
    with pytest.raises(DatasetError, match=r"no array for input 'mask' \(shape \(\?, 16\), int32\).*holds ids, type_ids"):
        evaluate(art, [art], str(path))


# ---------------------------------------------------------------- Keras 3: two inputs, two outputs
def test_keras3_two_inputs_two_outputs_per_output_metrics(two_out):
    import keras

    from tflite_deploy.evaluation.run import evaluate
    from tflite_deploy.tflite.reader import inspect_model

    arts, arrays = two_out["arts"], two_out["arrays"]
    report = inspect_model(arts["float32"].path)
    assert sorted(t.signature_name for t in report.inputs) == ["image", "vec"]
    assert sorted(t.signature_name for t in report.outputs) == ["output_0", "output_1"]
    results = evaluate(two_out["model"], [arts["float32"].path, arts["int8"].path], str(two_out["data"]))
    cls, score = keras.saving.load_model(two_out["model"]).predict([arrays["image"], arrays["vec"]], verbose=0)
    feed = {"image": arrays["image"], "vec": arrays["vec"]}
    assert results[0].settings["task_output"] == "output_0"
    for r, recipe in zip(results[1:], ("float32", "int8")):
        direct = am.direct_outputs(arts[recipe].path, feed)
        per = r.metrics["outputs"]
        assert set(per) == {"output_0", "output_1"}
        for name, ref in (("output_0", cls), ("output_1", score)):
            assert per[name]["max_abs_error"] == pytest.approx(float(np.max(np.abs(direct[name] - ref))),
                                                               rel=1e-4, abs=1e-7)
            assert per[name]["nonfinite"] == 0
        assert per["output_1"]["sqnr_db"] == pytest.approx(_sqnr(score, direct["output_1"]), rel=1e-3)
        assert r.metrics["top1"] == pytest.approx(100 * np.mean(direct["output_0"].argmax(1) == arrays["y"]))
    assert results[2].metrics["outputs"]["output_1"]["sqnr_db"] < results[1].metrics["outputs"]["output_1"]["sqnr_db"]


# -------------------------------------------------------------------------------- regression MLP
def test_regression_mlp_mae_rmse_and_the_paired_change(mlp):
    from tflite_deploy.evaluation.run import evaluate

    results = evaluate(mlp["model"], [mlp["arts"]["float32"].path, mlp["arts"]["int8"].path], str(mlp["data"]))
    import tf_keras as keras

    ref_values = keras.models.load_model(mlp["model"]).predict(mlp["x"], verbose=0)[:, 0]
    ref = results[0].metrics
    assert ref["task"] == "regression" and "top1" not in ref
    assert ref["mae"] == pytest.approx(float(np.mean(np.abs(ref_values - mlp["y"]))), rel=1e-5)
    assert ref["mae"] < 0.8  # better than predicting the mean (MAE ~0.85 on standardised targets)
    for r, recipe in zip(results[1:], ("float32", "int8")):
        direct = next(iter(am.direct_outputs(mlp["arts"][recipe].path, {"features": mlp["x"]}).values()))[:, 0]
        m = r.metrics
        assert m["mae"] == pytest.approx(float(np.mean(np.abs(direct - mlp["y"]))), rel=1e-5)
        assert m["rmse"] == pytest.approx(float(np.sqrt(np.mean((direct - mlp["y"]) ** 2))), rel=1e-5)
        assert m["mae_change"] == pytest.approx(m["mae"] - ref["mae"], abs=1e-6)
        lo, hi = m["mae_change_ci95"]
        assert lo <= m["mae_change"] <= hi
    assert results[1].metrics["mae_change_ci95"][1] - results[1].metrics["mae_change_ci95"][0] < 1e-4


def test_eval_cli_shows_regression_and_per_output_tables(mlp, two_out):
    from typer.testing import CliRunner

    from tflite_deploy.cli import app

    res = CliRunner().invoke(app, ["eval", str(mlp["model"]), str(mlp["arts"]["int8"].path), "--data",
                                   str(mlp["data"]), "--no-store"])
    assert res.exit_code == 0, res.output
    assert "MAE" in res.output and "RMSE" in res.output
    res = CliRunner().invoke(app, ["eval", str(two_out["model"]), str(two_out["arts"]["int8"].path), "--data",
                                   str(two_out["data"]), "--no-store"])
    assert res.exit_code == 0, res.output
    assert "Each output" in res.output and "output_1" in res.output


# ------------------------------------------------------------------------------ the reference once
def test_the_reference_runs_once_then_comes_from_the_cache(mlp, monkeypatch, tmp_path):
    from tflite_deploy.evaluation import reference
    from tflite_deploy.evaluation.run import evaluate

    monkeypatch.setenv("TFLITE_DEPLOY_CACHE", str(tmp_path))
    first = evaluate(mlp["model"], [mlp["arts"]["int8"].path], str(mlp["data"]))
    assert first[0].settings["reference_cached"] is False

    def no_model(*a, **k):
        raise AssertionError("the reference model was run again")

    monkeypatch.setattr(reference, "reference_predictor", no_model)
    second = evaluate(mlp["model"], [mlp["arts"]["float32"].path, mlp["arts"]["int8"].path], str(mlp["data"]))
    assert second[0].settings["reference_cached"] is True
    assert second[2].metrics["mae"] == first[1].metrics["mae"]
    assert second[0].metrics == first[0].metrics
    other = mlp["data"].parent / "fewer.npz"  # other data: another key, the model runs (and here refuses)
    np.savez(other, features=mlp["x"][:10], y=mlp["y"][:10])
    with pytest.raises(AssertionError, match="run again"):
        evaluate(mlp["model"], [mlp["arts"]["int8"].path], str(other))


# ------------------------------------------------------------------------ bench: inputs that work
def test_bench_on_a_phone_feeds_valid_token_ids_through_value_files(lstm, adb_device, benchmark_binary):
    import json
    import subprocess

    from typer.testing import CliRunner

    from tflite_deploy.cli import app
    from tflite_deploy.envelope import items_of

    model = lstm["arts"]["int8"].path
    # the tool's own random int32 inputs (0..99) overrun the 50-row embedding: what users met
    bare = subprocess.run([str(benchmark_binary), f"--graph={model}", "--num_runs=2"], capture_output=True, text=True)
    assert bare.returncode != 0 and "gather index out of bounds" in bare.stderr.lower()
    r = CliRunner().invoke(app, ["bench", str(model), "--device", adb_device.serial, "--runs", "5",
                                 "--benchmark-binary", str(benchmark_binary), "--json", "--no-store"])
    assert r.exit_code == 0, r.output
    (res,) = items_of(json.loads(r.stdout), "bench")
    assert res["status"] == "ok" and res["latency"]["count"] == 5
    pushed = adb_device.sandbox / "data" / "local" / "tmp" / "tflite-deploy" / "models"
    assert list(pushed.rglob("*.tflite")) and not list(pushed.rglob("*.bin"))  # value files removed after


def test_litert_runtime_refuses_token_inputs_it_cannot_be_given_values_for(lstm, digits_variants, adb_device,
                                                                            benchmark_binary):
    """LiteRT's benchmark_model has no input-value flags (litert/tools/benchmark_litert_model.h fills
    inputs with random values of the whole type range): refused before the phone is touched."""
    from typer.testing import CliRunner

    from tflite_deploy.cli import app

    model = lstm["arts"]["int8"].path
    pushed = adb_device.sandbox / "data" / "local" / "tmp" / "tflite-deploy" / "models"
    r = CliRunner().invoke(app, ["bench", str(model), "--device", adb_device.serial, "--runtime", "litert", "--runs",
                                 "5", "--benchmark-binary", str(benchmark_binary), "--no-store"])
    said = " ".join(r.stderr.split())
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert "input 'tokens' (int32, shape [1, 12]) takes 0..49" in said and "--runtime tflite" in said
    assert not list(pushed.rglob("*.tflite"))
    r = CliRunner().invoke(app, ["bench", str(digits_variants["float32"].path), "--device", adb_device.serial,
                                 "--runtime", "litert", "--data", "digits:test", "--benchmark-binary",
                                 str(benchmark_binary), "--no-store"])
    assert r.exit_code != 0 and "cannot take 'digits:test'" in " ".join(r.stderr.split())
    assert "--runtime" in r.stderr


def test_bench_value_flags_name_inputs_in_order_with_escaped_colons(bert):
    from tflite_deploy.benchmark.inputs import input_values

    values = input_values(bert["arts"]["int8"].path)
    flags = values.flags(["/r/0.bin", "/r/1.bin", "/r/2.bin"])
    assert flags[0] == "--input_layer=" + ",".join(values.names)
    assert flags[1] == "--input_layer_shape=1,16:1,16:1,16"
    # benchmark_tflite_model.cc's SplitInputLayerNameAndValueFile: one ':' splits, '::' is a literal colon
    assert all(f"{n.replace(':', '::')}:/r/" in flags[2] for n in values.names)
    assert any(":" in n for n in values.names)  # the case that needs it: serving_default_ids:0
    for name, raw in zip(values.names, values.data):
        a = np.frombuffer(raw, np.int32)
        assert a.size == 16 and a.min() >= 0 and a.max() <= (29 if "ids" in name and "type" not in name else 1)


def test_bench_host_takes_inputs_from_data(lstm, tmp_path):
    from tflite_deploy.benchmark.host import bench_host
    from tflite_deploy.benchmark.options import BenchOptions
    from tflite_deploy.tflite import runtime

    seen = []
    real = runtime.TfliteModel.set_inputs

    def spy(self, batch):
        real(self, batch)
        seen.append(self.interpreter.get_tensor(self.input["index"]).copy())

    import pytest as _pytest

    with _pytest.MonkeyPatch.context() as mp:
        mp.setattr(runtime.TfliteModel, "set_inputs", spy)
        (res,) = bench_host([lstm["arts"]["float32"].path], BenchOptions(runs=3, warmup=0, min_seconds=0.0,
                                                                               data=str(lstm["data"])))
    assert res.ok and res.settings["inputs"].startswith("data ")
    assert np.array_equal(seen[0], lstm["ids"][:1])


# ------------------------------------------------------------------------------------ clear words
def test_clear_errors_for_folders_and_a_keras_reference_with_the_wrong_size(digits_keras, digits_variants, tmp_path):
    from PIL import Image
    from typer.testing import CliRunner

    from tflite_deploy.cli import app
    from tflite_deploy.datasets import open_dataset

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="is empty"):
        open_dataset(str(empty))
    r = CliRunner().invoke(app, ["bench", str(empty)])
    assert r.exit_code != 0 and "is empty" in r.stderr and "does not exist" not in r.stderr

    one = tmp_path / "one" / "cats"
    one.mkdir(parents=True)
    for i in range(4):
        Image.fromarray((np.random.default_rng(i).random((8, 8)) * 255).astype(np.uint8)).save(one / f"{i}.png")
    r = CliRunner().invoke(app, ["eval", str(digits_variants["float32"].path), str(digits_variants["int8"].path),
                                 "--data", str(tmp_path / "one"), "--color", "grayscale", "--no-store"])
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    assert "has a single class ('cats')" in said and "accuracy means nothing" in said

    r = CliRunner().invoke(app, ["eval", str(digits_keras), str(digits_variants["int8"].path), "--data",
                                 str(tmp_path / "one"), "--color", "grayscale", "--size", "16,16", "--no-store"])
    text = " ".join(r.stderr.split())
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert "(16, 16, 1)" in text and "float32" in text and "(?, 8, 8, 1)" in text


# ------------------------------------------------------------------- held-out kinds that broke
@pytest.mark.parametrize("form", ["int64 one-hot", "bool one-hot", "float32 one-hot", "int64 column"])
def test_labels_one_hot_or_in_a_column_are_class_labels(form, digits_variants, tmp_path):
    """y as users store it besides sparse labels: eval reads the same classes (it refused one-hot before)."""
    from tflite_deploy.datasets import open_dataset
    from tflite_deploy.evaluation.run import evaluate

    ds = open_dataset("digits:test")
    x, y = ds.take(), np.asarray(ds.labels)
    shaped = {"int64 one-hot": np.eye(10, dtype=np.int64)[y], "bool one-hot": np.eye(10, dtype=bool)[y],
              "float32 one-hot": np.eye(10, dtype=np.float32)[y],
              "int64 column": y[:, None].astype(np.int64)}[form]
    np.savez(tmp_path / "sparse.npz", x=x, y=y.astype(np.int64))
    np.savez(tmp_path / "shaped.npz", x=x, y=shaped)
    assert np.array_equal(open_dataset(str(tmp_path / "shaped.npz")).labels, y)
    ref, var = digits_variants["float32"].path, digits_variants["int8"].path
    sparse = evaluate(ref, [var], str(tmp_path / "sparse.npz"), cache=False)
    got = evaluate(ref, [var], str(tmp_path / "shaped.npz"), cache=False)
    assert got[1].settings["task"] == "classification"
    assert got[1].metrics["top1"] == sparse[1].metrics["top1"] and got[1].metrics["top1_drop"] == sparse[1].metrics["top1_drop"]
    assert got[1].metrics["top1"] == pytest.approx(100 * np.mean(_argmax_direct(var, x) == y))


def _argmax_direct(path, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    name = next(iter(Interpreter(model_path=str(path)).get_signature_runner().get_input_details()))
    return next(iter(am.direct_outputs(path, {name: x}).values())).argmax(1)


def test_whole_numbers_in_several_columns_are_regression_targets_and_multi_hot_bool_is_refused():
    from tflite_deploy.datasets.base import ArrayDataset

    counts = np.array([[0, 2], [1, 1], [0, 0], [1, 0]])
    ds = ArrayDataset(np.zeros((4, 3), np.float32), counts, name="counts")
    assert ds.labels is None and np.array_equal(ds.targets, counts) and ds.targets.dtype == np.float64
    with pytest.raises(DatasetError, match=r"one-hot \(one 1 per row\).*shape \(4, 3\) and type bool"):
        ArrayDataset(np.zeros((4, 3), np.float32), np.array([[1, 1, 0]] * 4, bool), name="multi-hot")
