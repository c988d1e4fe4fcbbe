"""Host paths against the LiteRT interpreter: inspect's constant reader, the host delegate choice,
uint8/int16 I/O with float ops, eval's top-k, and .h5/SavedModel sources converting like the .keras
file. Each expected value comes from an independent source (the LiteRT interpreter, numpy, the
training callbacks), never from the code under test."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tflite_deploy.cli import app
from tflite_deploy.envelope import items_of

runner = CliRunner()


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


# ------------------------------------------------------------------------------ hole 6: constants
@pytest.mark.parametrize("preset", ["float32", "dynamic", "int8", "int8-io", "float16", "int16x8"])
def test_constant_reader_matches_the_interpreter(digits_variants, preset):
    """Every constant inspect reads from the flatbuffer is what LiteRT itself loaded."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from tflite_deploy.tflite.reader import constant_values

    path = str(digits_variants[preset].path)
    values = constant_values(path)
    assert len(values) >= 8  # the CNN's kernels, biases and shape constants
    it = Interpreter(model_path=path, experimental_preserve_all_tensors=True,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    details = {d["index"]: d for d in it.get_tensor_details()}
    for (subgraph, index), array in values.items():
        assert subgraph == 0
        expected = it.get_tensor(index)
        assert array.dtype == expected.dtype, (details[index]["name"], array.dtype, expected.dtype)
        assert array.shape == expected.shape, details[index]["name"]
        np.testing.assert_array_equal(array, expected, err_msg=details[index]["name"])
    # and the weights are all there: every constant the interpreter has with data is read
    kernels = [d for d in details.values() if len(d["shape"]) == 4 and (0, d["index"]) in values]
    assert len(kernels) == 3, "the three conv kernels are read"


# ------------------------------------------------------------------------------ hole 7: delegates
def test_host_delegate_choice_changes_the_kernels(digits_variants):
    from tflite_deploy.benchmark.options import BenchOptions
    from tflite_deploy.benchmark.host import bench_host

    path = digits_variants["float32"].path
    res = {}
    for d in ("xnnpack", "none", "reference"):
        (res[d],) = bench_host([path], BenchOptions(runs=30, warmup=3, min_seconds=0, delegate=d))
        assert res[d].ok and res[d].delegate == d
    xnn, none, ref = res["xnnpack"], res["none"], res["reference"]
    assert xnn.coverage.applied is True and xnn.coverage.delegate_kernels >= 1
    for r in (none, ref):  # no XNNPACK partition in the graph
        assert r.coverage.applied is False and r.coverage.delegate_kernels == 0
    # reference kernels are TFLite's plain loops: far slower than the optimized builtin ones
    assert ref.latency.min_ms > 2 * none.latency.min_ms, (ref.latency.min_ms, none.latency.min_ms)


def test_delegate_none_through_the_cli(digits_variants):
    r = cli("bench", digits_variants["int8"].path, "--delegate", "none", "--runs", "10", "--min-seconds", "0",
            "--json")
    assert r.exit_code == 0, r.output
    (x,) = items_of(json.loads(r.stdout), "bench")
    assert x["status"] == "ok" and x["delegate"] == "none" and x["latency"]["count"] == 10
    assert x["coverage"]["applied"] is False and x["coverage"]["delegate_kernels"] == 0
    r = cli("bench", digits_variants["int8"].path, "--delegate", "gpu", "--runs", "3")
    assert r.exit_code != 0 and "Unknown host delegate 'gpu'" in r.stderr


# ------------------------------------------------------------------------------ hole 8: I/O types
def _convert(digits_keras, tmp_path, recipes):
    from tflite_deploy.conversion.run import convert

    return {a.recipe: a for a in convert(digits_keras, recipes, "digits:train", tmp_path)}


def test_uint8_and_int16_io_and_float_ops(digits_keras, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from tflite_deploy.evaluation.run import evaluate
    from tflite_deploy.tflite.reader import inspect_model
    from tflite_deploy.recipes import Recipe

    recipes = [Recipe("u8", weights="int8", activations="int8", io="uint8"),
               Recipe("i16", weights="int8", activations="int16", io="int16"),
               Recipe("fcfloat", weights="int8", activations="int8", float_ops=("FULLY_CONNECTED",),
                      allow_float_fallback=True)]
    arts = _convert(digits_keras, tmp_path, recipes)
    for name, dtype in (("u8", np.uint8), ("i16", np.int16)):
        it = Interpreter(model_path=str(arts[name].path))
        assert it.get_input_details()[0]["dtype"] == dtype and it.get_output_details()[0]["dtype"] == dtype
    # the FULLY_CONNECTED ops stay float, the convolution is int8 (as the interpreter sees them)
    it = Interpreter(model_path=str(arts["fcfloat"].path))
    dtypes = {d["index"]: np.dtype(d["dtype"]) for d in it.get_tensor_details()}
    first_in = {}
    for op in it._get_ops_details():
        first_in.setdefault(op["op_name"], set()).add(dtypes[op["inputs"][0]])
    assert first_in["FULLY_CONNECTED"] == {np.dtype(np.float32)}, first_in
    assert first_in["CONV_2D"] == {np.dtype(np.int8)}, first_in
    assert "FULLY_CONNECTED" in inspect_model(arts["fcfloat"].path).quantization.float_ops
    # every one still classifies digits: eval quantizes the uint8/int16 inputs itself
    ev = evaluate(digits_keras, [arts["u8"].path, arts["i16"].path], "digits:test", limit=300, resamples=200)
    for r in ev[1:]:
        assert r.ok and r.metrics["top1"] > 90, (r.artifact, r.metrics)


def test_top_k_against_the_interpreter(digits_variants):
    from ai_edge_litert.interpreter import Interpreter

    from tflite_deploy.datasets import open_dataset
    from tflite_deploy.evaluation.run import evaluate

    path = digits_variants["float32"].path
    ds = open_dataset("digits:test")
    x, y = ds.take(200).astype(np.float32), np.asarray(ds.labels[:200])
    it = Interpreter(model_path=str(path))
    it.resize_tensor_input(0, [len(x), *x.shape[1:]])
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    scores = it.get_tensor(it.get_output_details()[0]["index"])
    ranks = np.argsort(-scores, axis=1)
    expected = {k: 100 * np.mean([y[i] in ranks[i, :k] for i in range(len(y))]) for k in (1, 3)}
    (ref, var) = evaluate(path, [path], "digits:test", limit=200, top_k=3, resamples=100)
    assert var.metrics["top1"] == pytest.approx(expected[1])
    assert var.metrics["top3"] == pytest.approx(expected[3]) and expected[3] > expected[1]
    (_, var10) = evaluate(path, [path], "digits:test", limit=50, top_k=10, resamples=100)
    assert "top10" not in var10.metrics  # 10 classes: top-10 is always 100%, not reported


# ------------------------------------------------------------------------------ hole 8: sources
def test_h5_and_savedmodel_convert_like_the_keras_file(digits_keras, tmp_path):
    import tf_keras

    from tflite_deploy.tflite.runtime import TfliteModel

    model = tf_keras.models.load_model(digits_keras, compile=False)
    model.save(tmp_path / "digits.h5")
    model.save(tmp_path / "digits_savedmodel")  # no extension: tf_keras writes a SavedModel folder
    assert (tmp_path / "digits_savedmodel" / "saved_model.pb").is_file()
    x = np.random.default_rng(0).random((8, *model.input_shape[1:]), dtype=np.float32)
    want = model.predict(x, verbose=0)
    for src in ("digits.h5", "digits_savedmodel"):
        r = cli("convert", tmp_path / src, "--recipe", "float32", "--out", tmp_path / f"out-{src}")
        assert r.exit_code == 0, r.output
        (tfl,) = (tmp_path / f"out-{src}").glob("*.float32.tflite")
        m = TfliteModel(tfl)
        got = np.concatenate([m.predict(x[i:i + 1]) for i in range(len(x))])
        np.testing.assert_allclose(got, want, atol=1e-5, err_msg=src)
