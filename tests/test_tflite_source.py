"""A float .tflite as a source: our recipes through Google's AI Edge Quantizer (no TensorFlow)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tflite_deploy.cli import app
from tflite_deploy.conversion.run import convert
from tflite_deploy.envelope import items_of
from tflite_deploy.errors import ModelError, RecipeError
from tflite_deploy.evaluation.run import evaluate
from tflite_deploy.tflite.reader import inspect_model
from tflite_deploy.recipes import PRESETS, Recipe, from_mapping

runner = CliRunner()


@pytest.fixture(scope="module")
def float_tflite(digits_variants, tmp_path_factory) -> Path:
    """The digits CNN converted to float32 by our Keras path: the source a model zoo would hand out."""
    path = tmp_path_factory.mktemp("zoo") / "digits_cnn.tflite"
    shutil.copyfile(digits_variants["float32"].path, path)  # no sidecar: a file from elsewhere
    return path


@pytest.fixture(scope="module")
def aeq_variants(float_tflite, tmp_path_factory) -> dict:
    recipes = [PRESETS[n] for n in ("float32", "int8", "int8-io", "dynamic", "int16x8")] + [
        Recipe("int4-wo", weights="int4", weight_only=True),
        Recipe("int4-b32", weights="int4", block_size=32),
        Recipe("int8-pt", weights="int8", activations="int8", per_channel=False),
    ]
    arts = convert(float_tflite, recipes, "digits:train", tmp_path_factory.mktemp("aeq"))
    return {a.recipe: a for a in arts}


def test_aeq_int8_matches_the_keras_path_int8_and_holds_int8_weights(float_tflite, aeq_variants, digits_keras,
                                                                     digits_variants):
    keras_ref, keras_int8 = evaluate(digits_keras, [digits_variants["int8"].path], "digits:test")
    ref, aeq_int8 = evaluate(float_tflite, [aeq_variants["int8"].path], "digits:test")
    assert ref.metrics["top1"] == pytest.approx(keras_ref.metrics["top1"], abs=1e-9)  # same network
    assert abs(aeq_int8.metrics["top1"] - keras_int8.metrics["top1"]) <= 0.5
    assert aeq_int8.metrics["sqnr_db"] > 25 and aeq_int8.recipe == "int8"

    report = inspect_model(aeq_variants["int8"].path)
    assert report.kind == "int8"
    assert report.quantization.input_dtypes == ("float32",) and report.quantization.output_dtypes == ("float32",)
    kernels = [w for layer in report.layers for w in layer.weights if w.role == "weight"]
    assert kernels and all(w.dtype == "int8" for w in kernels)
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"} <= set(report.op_histogram)
    # per-channel by default, one scale per tensor when the recipe says so
    assert any(t.num_scales > 1 for t in report.per_channel_tensors)
    assert not inspect_model(aeq_variants["int8-pt"].path).per_channel_tensors


def test_each_recipe_family_maps_to_its_aeq_mode(aeq_variants, float_tflite):
    kinds = {name: inspect_model(a.path) for name, a in aeq_variants.items()}
    assert kinds["float32"].kind == "float32"
    assert aeq_variants["float32"].path.read_bytes() == float_tflite.read_bytes()  # the reference itself
    assert kinds["int8-io"].kind == "int8" and kinds["int8-io"].quantization.input_dtypes == ("int8",)
    assert kinds["int16x8"].kind == "int16x8"
    assert kinds["int16x8"].quantization.input_dtypes == ("float32",)  # io: float32 honoured
    assert kinds["dynamic"].kind == "dynamic"
    assert kinds["int4-wo"].kind == "weight-only" and "int4" in kinds["int4-wo"].tensor_dtypes
    assert aeq_variants["int4-wo"].size_bytes < aeq_variants["dynamic"].size_bytes < aeq_variants["float32"].size_bytes
    # blockwise int4: its float16 per-block scales are quantization parameters, not float16 weights
    b32 = kinds["int4-b32"]
    assert b32.kind == "dynamic" and "int4 weights, blocks of 32" in b32.quantization.label, b32.quantization.label
    assert "float16" not in {w.dtype for w in b32.quantization.weight_dtypes if w.role == "weight"}
    assert b32.quantization_param_bytes > 0 and b32.weight_bytes < b32.constant_bytes
    assert "int4 weights" in kinds["int4-wo"].quantization.label
    assert aeq_variants["int4-b32"].size_bytes < aeq_variants["float32"].size_bytes / 3
    ref, *variants = evaluate(float_tflite, [a.path for a in aeq_variants.values()], "digits:test")
    for r in variants:  # every variant runs in LiteRT and stays close to the float model
        assert r.metrics["label_agreement"] > 0.9, r.recipe
    side = json.loads(aeq_variants["int4-wo"].sidecar.read_text())
    assert side["quantizer"] == "ai-edge-quantizer" and side["source"]["format"] == "tflite"
    assert side["recipe"]["weights"] == "int4" and side["versions"]["ai-edge-quantizer"] == "0.10.0"


def test_float_layers_are_checked_against_the_model_and_kept_float(float_tflite, tmp_path):
    with pytest.raises(RecipeError, match="'no_such_layer' matches no op output tensor"):
        convert(float_tflite, [Recipe("x", weights="int8", activations="int8", float_layers=("no_such_layer",))],
                "digits:train", tmp_path)
    with pytest.raises(RecipeError, match="float op type.*MEAN.*do not occur"):
        convert(float_tflite, [Recipe("x", weights="int8", activations="int8", float_ops=("MEAN",))],
                "digits:train", tmp_path)
    assert not list(tmp_path.iterdir())  # nothing half-written
    recipe = Recipe("int8-head", weights="int8", activations="int8", float_layers=("logits",),
                    float_ops=("SOFTMAX",))
    art, = convert(float_tflite, [recipe], "digits:train", tmp_path)
    report = inspect_model(art.path)
    assert report.kind == "mixed"
    logits = [t for t in report.tensors if "logits" in t.name and not t.is_constant]
    assert logits and all(t.dtype == "float32" for t in logits)
    convs = [t for t in report.tensors if "conv1" in t.name and not t.is_constant]
    assert any(t.dtype == "int8" for t in convs)  # the rest stays integer


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_mode_the_quantizer_applies_to_no_op_is_that_recipes_failed_row(float_tflite, tmp_path, jobs):
    """AEQ's policy has no int8 blockwise kernels for these ops and would return the float model: that
    recipe fails with the reason, and the sweep goes on (in this process, or in worker processes)."""
    bad, good = Recipe("int8-b32", weights="int8", block_size=32), PRESETS["dynamic"]
    failed, made = convert(float_tflite, [bad, good], None, tmp_path, jobs=jobs)
    assert failed.failed and failed.recipe == "int8-b32" and "quantized no op" in failed.reason
    assert not made.failed and made.path.is_file() and inspect_model(made.path).kind == "dynamic"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([made.path.name, made.sidecar.name])


def test_a_quantizer_crash_fails_its_recipe_only(float_tflite, tmp_path, monkeypatch):
    monkeypatch.setenv("TFLITE_DEPLOY_TEST_ABORT_RECIPE", "dynamic")  # the worker quantizing it aborts
    crashed, made = convert(float_tflite, [PRESETS["dynamic"], PRESETS["float16"]], None, tmp_path, jobs=2)
    assert crashed.failed and "worker process died" in crashed.reason
    assert not made.failed and inspect_model(made.path).kind == "float16"


def test_a_quantized_tflite_is_refused_as_a_source(digits_variants, tmp_path):
    with pytest.raises(ModelError, match="already quantized.*float32 model"):
        convert(digits_variants["int8"].path, [PRESETS["int8"]], "digits:train", tmp_path)
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="broken.tflite"):
        convert(bad, [PRESETS["dynamic"]], None, tmp_path)


def test_recipe_vocabulary_grows_int4_and_block_size():
    r = from_mapping("int4-b64", {"weights": "int4", "block_size": 64}, PRESETS, "f.yaml")
    assert r.needs_aeq and r.summary() == "int4 weights, dynamic, blocks of 64"
    assert Recipe.from_dict(r.to_dict()) == r
    for bad, msg in (({"weights": "int4", "activations": "int8"}, "int4 weights go with float32"),
                     ({"weights": "int8", "block_size": 48}, "block_size must be one of"),
                     ({"block_size": 32}, "needs int8 or int4 weights"),
                     ({"weight_only": True}, "weight_only needs")):
        with pytest.raises(RecipeError, match=msg):
            from_mapping("bad", bad, PRESETS, "f.yaml")


def test_tf_converter_path_refuses_aeq_only_recipes(digits_keras, tmp_path):
    # a sweep goes on past a failing recipe (issue 16): the refusal is that recipe's failed row
    (row,) = convert(digits_keras, [Recipe("i4", weights="int4")], None, tmp_path)
    assert row.failed and re.search("needs the AI Edge Quantizer.*float32 .tflite", row.reason), row
    assert not list(tmp_path.glob("*.tflite"))


def test_cli_converts_a_float_tflite(float_tflite, tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(app, ["convert", str(float_tflite), "-r", "float32", "-r", "int8", "-r", "dynamic",
                              "--data", "digits:train", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["recipe"]: r for r in items_of(json.loads(res.stdout), "convert")}
    assert rows["int8"]["ratio"] > 2.5 and rows["float32"]["ratio"] == 1
    assert (out / "digits_cnn.int8.json").is_file()
    res = runner.invoke(app, ["bench", str(out / "digits_cnn.float32.tflite"), str(out / "digits_cnn.int8.tflite"),
                              "--runs", "5", "--min-seconds", "0", "--json"])
    assert res.exit_code == 0, res.output
    assert [r["recipe"] for r in items_of(json.loads(res.stdout), "bench")] == ["float32", "int8"]
    res = runner.invoke(app, ["convert", str(float_tflite), "-r", "int8", "--out", str(out)])
    assert res.exit_code != 0 and "need a representative dataset" in res.output


def test_public_api_reaches_a_float_tflite_source(float_tflite, tmp_path):
    import tflite_deploy
    from tflite_deploy.errors import UserError

    events = []
    arts = tflite_deploy.convert(float_tflite, ["float32", "dynamic"], out=tmp_path, progress=events.append)
    assert [a.recipe for a in arts] == ["float32", "dynamic"]
    assert json.loads(arts[1].sidecar.read_text())["quantizer"] == "ai-edge-quantizer"
    assert [e.done for e in events if e.stage == "convert"] == [0, 1, 2]  # the same events as the TF path
    with pytest.raises(UserError, match="input_shape applies to ONNX models"):
        tflite_deploy.convert(float_tflite, ["float32"], out=tmp_path, input_shape="1,8,8,1")
