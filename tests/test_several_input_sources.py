"""Sources with several inputs beside Keras (issue 27): a float ``.tflite`` and an ONNX model with two
named inputs convert (calibrated by input name) and evaluate, every figure checked against a direct
run; and the ONNX path keeps TensorFlow's C++ log lines off the terminal."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")  # installed by tools/setup.sh (requirements.lock)
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

pytestmark = pytest.mark.slow

#: TensorFlow's C++ start-up and absl lines: "I0000 00:00:17... port.cc:153] oneDNN ...", "WARNING: All log messages
#: before absl::InitializeLog() ...", the CUDA probe and the CPU feature notice.
TF_LOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d|absl::InitializeLog|oneDNN|cuda|cpu_feature_guard|"
                    r"rebuild TensorFlow", re.M | re.I)


def _gemm_onnx(path: Path, inputs: dict[str, int], outputs: int = 2, seed: int = 0) -> Path:
    """Float inputs ``{name: features}`` (dynamic batch N) concatenated, Gemm, Relu, Gemm."""
    rng = np.random.default_rng(seed)
    width = sum(inputs.values())
    w1, b1 = rng.normal(0, 0.5, (width, 8)).astype(np.float32), rng.normal(0, 0.1, 8).astype(np.float32)
    w2, b2 = rng.normal(0, 0.5, (8, outputs)).astype(np.float32), np.zeros(outputs, np.float32)
    names = list(inputs)
    nodes = ([helper.make_node("Concat", names, ["x"], axis=1)] if len(names) > 1 else
             [helper.make_node("Identity", names, ["x"])])
    nodes += [helper.make_node("Gemm", ["x", "W1", "B1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
              helper.make_node("Gemm", ["r", "W2", "B2"], ["out"])]
    graph = helper.make_graph(
        nodes, "gemm", [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", k]) for n, k in inputs.items()],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", outputs])],
        [numpy_helper.from_array(a, n) for a, n in ((w1, "W1"), (b1, "B1"), (w2, "W2"), (b2, "B2"))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_convert_of_an_onnx_model_prints_no_tensorflow_log_lines(tmp_path):
    model = _gemm_onnx(tmp_path / "one.onnx", {"features": 4})
    np.save(tmp_path / "x.npy", np.random.default_rng(1).random((64, 4)).astype(np.float32))
    exe = Path(sys.executable).parent / "tflite-deploy"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "tflite_deploy.cli"]
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TFLITE_DEPLOY_DEBUG")}
    p = subprocess.run([*cmd, "convert", str(model), "-r", "float32", "-r", "int8", "--data", str(tmp_path / "x.npy"),
                        "--out", str(tmp_path / "out"), "--no-store"], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert (tmp_path / "out" / "one.int8.tflite").is_file()
    assert not TF_LOG.search(p.stderr), p.stderr
    assert not TF_LOG.search(p.stdout), p.stdout
    # a real error still reaches the terminal, as one clear line
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 10)
    p = subprocess.run([*cmd, "convert", str(bad), "-r", "float32", "--out", str(tmp_path / "o2"), "--no-store"],
                       capture_output=True, text=True, env=env)
    assert p.returncode != 0 and "bad.onnx" in p.stdout + p.stderr and "Traceback" not in p.stdout + p.stderr


# ---------------------------------------------------------------------- a float .tflite with two inputs
def test_a_two_input_float_tflite_quantizes_by_input_name_and_evaluates(tmp_path):
    """Keras 3 two-in two-out model -> float32 .tflite (our convert) -> that .tflite as the source of
    dynamic and int8 (the AI Edge Quantizer, calibrated by input name) -> eval against the float .tflite."""
    from tests.support import any_models as am
    from tflite_deploy.conversion.run import convert
    from tflite_deploy.evaluation.run import evaluate
    from tflite_deploy.recipes import PRESETS
    from tflite_deploy.sources.tflite import load_tflite_source
    from tflite_deploy.tflite.reader import inspect_model

    arrays = am.two_in_data(48, seed=3)
    data = tmp_path / "two.npz"
    np.savez(data, **arrays)
    (f32,) = convert(am.two_in_two_out(tmp_path / "two.keras"), [PRESETS["float32"]], None, tmp_path / "float")
    assert not f32.failed, f32.reason
    source = load_tflite_source(f32.path)
    assert [i.name for i in source.inputs] == ["image", "vec"]
    assert [i.shape[1:] for i in source.inputs] == [(8, 8, 1), (4,)]
    arts = {a.recipe: a for a in convert(f32.path, [PRESETS["dynamic"], PRESETS["int8"]], str(data), tmp_path / "q")}
    assert not any(a.failed for a in arts.values()), [a.reason for a in arts.values() if a.failed]
    assert [i["name"] for i in arts["int8"].meta["source"]["inputs"]] == ["image", "vec"]
    assert inspect_model(arts["int8"].path).quantization.activation_dtypes.get("int8", 0) > 0

    feed = {"image": arrays["image"], "vec": arrays["vec"]}
    ref = am.direct_outputs(f32.path, feed)
    results = evaluate(f32.path, [arts["dynamic"].path, arts["int8"].path], str(data), cache=False)
    for r, recipe in zip(results[1:], ("dynamic", "int8")):
        direct = am.direct_outputs(arts[recipe].path, feed)
        per = r.metrics["outputs"]
        for name in ("output_0", "output_1"):
            assert per[name]["max_abs_error"] == pytest.approx(float(np.max(np.abs(direct[name] - ref[name]))),
                                                               rel=1e-4, abs=1e-7)
        assert r.metrics["top1"] == pytest.approx(100 * np.mean(direct["output_0"].argmax(1) == arrays["y"]))
    assert results[2].metrics["outputs"]["output_1"]["sqnr_db"] > 15  # int8 stays close to the float model

    # calibration is by name: a .npz whose arrays are not the model's inputs is refused, naming them
    np.savez(tmp_path / "wrong.npz", pixels=arrays["image"], vec=arrays["vec"])
    from tflite_deploy.errors import DatasetError

    with pytest.raises(DatasetError, match="no array for.*image"):
        convert(f32.path, [PRESETS["int8"]], str(tmp_path / "wrong.npz"), tmp_path / "w")


# --------------------------------------------------------------------------- an ONNX model with two inputs
def test_a_two_input_onnx_model_converts_and_evaluates_against_onnx_runtime(tmp_path):
    import onnxruntime as ort

    from tests.support import any_models as am
    from tflite_deploy.conversion.run import convert
    from tflite_deploy.errors import ModelError
    from tflite_deploy.evaluation.run import evaluate
    from tflite_deploy.recipes import PRESETS
    from tflite_deploy.tflite.reader import inspect_model

    model = _gemm_onnx(tmp_path / "two.onnx", {"a": 4, "b": 3})
    rng = np.random.default_rng(5)
    arrays = {"a": rng.random((64, 4)).astype(np.float32), "b": rng.random((64, 3)).astype(np.float32)}
    data = tmp_path / "two.npz"
    np.savez(data, **arrays)
    arts = {a.recipe: a for a in convert(model, [PRESETS["float32"], PRESETS["int8"]], str(data), tmp_path / "out")}
    assert not any(a.failed for a in arts.values()), [a.reason for a in arts.values() if a.failed]
    assert [i["name"] for i in arts["int8"].meta["source"]["inputs"]] == ["a", "b"]
    report = inspect_model(arts["int8"].path)
    assert sorted(t.signature_name for t in report.inputs) == ["a", "b"]
    assert report.quantization.kind == "int8" and not report.quantization.float_ops

    onnx_out = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, arrays)[0]
    results = evaluate(model, [arts["float32"].path, arts["int8"].path], str(data), cache=False)
    assert results[0].runner == "onnxruntime"
    for r, recipe in zip(results[1:], ("float32", "int8")):
        direct = next(iter(am.direct_outputs(arts[recipe].path, arrays).values()))
        assert r.metrics["max_abs_error"] == pytest.approx(float(np.max(np.abs(direct - onnx_out))), rel=1e-4,
                                                           abs=1e-7)
    assert results[1].metrics["max_abs_error"] < 1e-4  # onnx2tf's float model is the ONNX model
    assert 15 < results[2].metrics["sqnr_db"] < results[1].metrics["sqnr_db"]

    from tflite_deploy.benchmark.host import bench_host
    from tflite_deploy.benchmark.options import BenchOptions

    benched = bench_host([model, arts["int8"].path], BenchOptions(runs=5, warmup=1, min_seconds=0.0))
    assert [r.runner for r in benched][0] == "onnxruntime" and all(r.ok and r.latency.count >= 5 for r in benched)

    # several inputs: only the batch may be dynamic, and input_shape (one input's) is refused by name
    with pytest.raises(ModelError, match="input_shape fixes the one input") as e:
        convert(model, [PRESETS["float32"]], None, tmp_path / "o", input_shape=(1, 4))
    assert e.value.param == "input_shape"


# --------------------------------------------------------------- a float .tflite taking token ids
def test_a_token_model_float_tflite_calibrates_on_integer_ids(tmp_path):
    """One int32 input: the AI Edge Quantizer is fed the ids as int32 (it used to get them as float32 and
    refuse), and the int32 input is no recipe's business (its I/O check ignored it wrongly)."""
    import tf_keras as keras

    from tests.support import any_models as am
    from tflite_deploy.conversion.run import convert
    from tflite_deploy.evaluation.run import evaluate
    from tflite_deploy.recipes import PRESETS
    from tflite_deploy.tflite.reader import inspect_model

    keras.utils.set_random_seed(0)
    inp = keras.Input((am.SEQ,), dtype="int32", name="tokens")
    x = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(am.VOCAB, 16)(inp))
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(keras.layers.Dense(16, activation="relu")(x)))
    model.compile("adam", "sparse_categorical_crossentropy")
    ids, y = am.token_data(300, seed=1)
    model.fit(ids, y, epochs=10, batch_size=32, verbose=0)
    model.save(tmp_path / "bag.keras")
    test_ids, test_y = am.token_data(60, seed=2)
    data = tmp_path / "tokens.npz"
    np.savez(data, tokens=test_ids, y=test_y)
    (f32,) = convert(tmp_path / "bag.keras", [PRESETS["float32"]], None, tmp_path / "float")
    arts = {a.recipe: a for a in convert(f32.path, [PRESETS["dynamic"], PRESETS["int8"]], str(data), tmp_path / "q")}
    assert not any(a.failed for a in arts.values()), [a.reason for a in arts.values() if a.failed]
    int8 = inspect_model(arts["int8"].path)
    assert int8.inputs[0].dtype == "int32" and int8.quantization.activation_dtypes.get("int8", 0) > 0
    results = evaluate(f32.path, [arts["int8"].path], str(data), cache=False)
    ref = next(iter(am.direct_outputs(f32.path, {"tokens": test_ids}).values()))
    direct = next(iter(am.direct_outputs(arts["int8"].path, {"tokens": test_ids}).values()))
    assert results[0].metrics["top1"] == pytest.approx(100 * np.mean(ref.argmax(1) == test_y)) and \
        results[0].metrics["top1"] > 60
    assert results[1].metrics["top1"] == pytest.approx(100 * np.mean(direct.argmax(1) == test_y))
    assert results[1].metrics["max_abs_error"] == pytest.approx(float(np.max(np.abs(direct - ref))), rel=1e-4, abs=1e-7)


def test_an_onnx_reference_with_two_inputs_names_the_missing_array(tmp_path):
    from tflite_deploy.errors import DatasetError
    from tflite_deploy.evaluation.reference import reference_predictor

    model = _gemm_onnx(tmp_path / "two.onnx", {"a": 4, "b": 3})
    predict = reference_predictor(model, dataset="two.npz")
    x = {"a": np.ones((2, 4), np.float32), "b": np.ones((2, 3), np.float32)}
    assert predict(x)["output_0"].shape == (2, 2)
    with pytest.raises(DatasetError, match=r"'two.npz' has no array for .*'b'.*it holds a"):
        predict({"a": x["a"]})
    with pytest.raises(DatasetError, match="one array of samples, but .* takes 2 inputs"):
        predict(x["a"])
