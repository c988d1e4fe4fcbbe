"""ONNX as a source: onnx2tf to a SavedModel, our recipes, ONNX Runtime as the float reference.

The main model is the trained digits CNN written out as ONNX with ``onnx.helper`` (NCHW, three
colour channels: the digits repeated on R, G and B), so its accuracy is real and its input is the
4-D 3-channel kind for which onnx2tf would download sample images: the conversion runs with every
proxy pointing at a closed port, so a download attempt would fail it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tflite_deploy.cli import app
from tflite_deploy.conversion.run import convert
from tflite_deploy.envelope import items_of
from tflite_deploy.errors import ModelError
from tflite_deploy.evaluation.run import evaluate
from tflite_deploy.recipes import PRESETS
from tflite_deploy.sources.onnx_runtime import OnnxRuntimeModel

onnx = pytest.importorskip("onnx")  # installed by tools/setup.sh (requirements.lock)
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

runner = CliRunner()
OPSET = 17


def _const(name: str, value: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name)


def digits_cnn_onnx(keras_path: Path, out: Path) -> Path:
    """The trained tf_keras digits CNN (tflite_deploy.sources.zoo.digits_cnn) as an NCHW, 3-channel ONNX graph."""
    from tflite_deploy.sources.tf_loader import tf_keras

    m = tf_keras().models.load_model(keras_path, compile=False)
    w = {layer.name: layer.get_weights() for layer in m.layers}
    k1, b1 = w["conv1"]  # (3, 3, 1, 16) HWIO
    conv1 = np.repeat(k1.transpose(3, 2, 0, 1) / 3.0, 3, axis=1)  # grey = mean of R, G, B
    kd, bd = w["dwconv"]  # (3, 3, 16, 1)
    dw = kd[:, :, :, 0].transpose(2, 0, 1)[:, None]
    kp, bp = w["pwconv"]  # (1, 1, 16, 32)
    kf, bf = w["fc"]  # (4*4*32, 32), rows in Keras' (h, w, c) flatten order
    fc = kf.reshape(4, 4, 32, 32).transpose(2, 0, 1, 3).reshape(512, 32)  # ONNX flattens (c, h, w)
    kl, bl = w["logits"]
    nodes = [
        helper.make_node("Conv", ["image", "W1", "B1"], ["c1"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "WD", "BD"], ["c2"], pads=[1, 1, 1, 1], kernel_shape=[3, 3], group=16),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("Conv", ["r2", "WP", "BP"], ["c3"], kernel_shape=[1, 1]),
        helper.make_node("Relu", ["c3"], ["r3"]),
        helper.make_node("MaxPool", ["r3"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "WF", "BF"], ["g"]),
        helper.make_node("Relu", ["g"], ["r4"]),
        helper.make_node("Gemm", ["r4", "WL", "BL"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    inits = [_const("W1", conv1), _const("B1", b1), _const("WD", dw), _const("BD", bd),
             _const("WP", kp[0, 0].T[:, :, None, None]), _const("BP", bp), _const("WF", fc), _const("BF", bf),
             _const("WL", kl), _const("BL", bl)]
    graph = helper.make_graph(nodes, "digits_cnn", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                                                 ["N", 3, 8, 8])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model)
    onnx.save(model, out)
    return out


@pytest.fixture(scope="module")
def rgb_digits(tmp_path_factory) -> Path:
    """digits as 8x8x3 channels-last images (grey repeated), with labels: the TFLite layout."""
    from tflite_deploy.datasets import open_dataset

    ds = open_dataset("digits")
    path = tmp_path_factory.mktemp("data") / "digits_rgb.npz"
    np.savez(path, x=np.repeat(ds.take(), 3, axis=-1).astype(np.float32), y=ds.labels)
    return path


@pytest.fixture(scope="module")
def onnx_digits(digits_keras, tmp_path_factory) -> Path:
    return digits_cnn_onnx(digits_keras, tmp_path_factory.mktemp("onnx") / "digits_cnn.onnx")


@pytest.fixture(scope="module")
def onnx_variants(onnx_digits, rgb_digits, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("onnx_out")
    res = runner.invoke(app, ["convert", str(onnx_digits), "-r", "float32", "-r", "int8",
                              "--data", f"{rgb_digits}:train", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    return {r["recipe"]: r for r in items_of(json.loads(res.stdout), "convert")}


def test_the_onnx_model_is_the_trained_network(onnx_digits, rgb_digits, digits_keras):
    """ONNX Runtime on NCHW input gives the Keras model's outputs on real digits."""
    from tflite_deploy.sources.tf_loader import tf_keras

    data = np.load(rgb_digits)
    x = data["x"][:300]
    keras_out = tf_keras().models.load_model(digits_keras, compile=False).predict(x[..., :1], verbose=0)
    ort = OnnxRuntimeModel(onnx_digits)
    nchw = ort.predict(np.moveaxis(x, -1, 1))
    np.testing.assert_allclose(nchw, keras_out, atol=1e-5)
    np.testing.assert_allclose(ort.predict(x), nchw, atol=0)  # channels-last input is transposed explicitly
    assert (nchw.argmax(1) == data["y"][:300]).mean() > 0.95


def test_onnx_converts_evaluates_against_onnxruntime_and_benches_beside_it(onnx_digits, onnx_variants,
                                                                          rgb_digits):
    f32, i8 = Path(onnx_variants["float32"]["path"]), Path(onnx_variants["int8"]["path"])
    side = json.loads(f32.with_suffix(".json").read_text())
    assert side["source"]["format"] == "onnx" and side["source"]["path"] == str(onnx_digits)
    assert side["source"]["input_shape"][1:] == [8, 8, 3]  # onnx2tf made it channels-last
    assert onnx_variants["int8"]["ratio"] > 2.5

    ref, r32, r8 = evaluate(onnx_digits, [f32, i8], f"{rgb_digits}:test")
    assert ref.runner == "onnxruntime" and ref.metrics["top1"] > 95
    assert r32.metrics["max_abs_error"] < 1e-4 and r32.metrics["top1_drop"] == 0
    assert r8.metrics["top1_drop"] < 1.5 and r8.metrics["label_agreement"] > 0.97

    res = runner.invoke(app, ["bench", str(onnx_digits), str(f32), str(i8), "--runs", "10", "--min-seconds", "0",
                              "--json"])
    assert res.exit_code == 0, res.output
    results = items_of(json.loads(res.stdout), "bench")
    assert [r["runner"] for r in results] == ["onnxruntime", "litert-python", "litert-python"]
    assert all(r["latency"]["p50_ms"] > 0 for r in results)

    res = runner.invoke(app, ["eval", str(onnx_digits), str(i8), "--data", f"{rgb_digits}:test", "--json"])
    assert res.exit_code == 0, res.output
    assert items_of(json.loads(res.stdout), "eval")[0]["runner"] == "onnxruntime"


def _conv_only(path: Path, dims: list, opset: int = OPSET, op: str = "Conv") -> Path:
    """A 3-channel conv layer with a 4-D NCHW output (fixed random weights)."""
    rng = np.random.default_rng(0)
    node = helper.make_node(op, ["x", "W"], ["y"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]) if op == "Conv" \
        else helper.make_node(op, ["x", "x"], ["y"])
    inits = [_const("W", rng.normal(size=(4, 3, 3, 3)))] if op == "Conv" else []
    out_dims = [dims[0], 4, *dims[2:]] if op == "Conv" else dims
    graph = helper.make_graph([node], "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_dims)], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), path)
    return path


def test_nchw_outputs_are_compared_channels_last(tmp_path):
    """A 4-D output: ONNX gives NCHW, the TFLite model NHWC; eval lines them up explicitly. The
    model's height and width are dynamic, fixed by ``input_shape`` (the CLI's --input-shape)."""
    from tflite_deploy.datasets import open_dataset

    model = _conv_only(tmp_path / "conv.onnx", [1, 3, "h", "w"])  # dynamic: needs --input-shape
    photos = open_dataset("photos")  # real photographs, 224x224x3
    x = photos.take(8)[:, ::14, ::14, :].astype(np.float32)  # 16x16 crops of them
    np.save(tmp_path / "photos16.npy", x)
    art, int8 = convert(model, [PRESETS["float32"], PRESETS["int8"]], str(tmp_path / "photos16.npy"),
                        tmp_path / "out", input_shape=(1, 3, 16, 16))
    side = json.loads(art.sidecar.read_text())["source"]
    assert side["input_shape"] == [1, 16, 16, 3] and side["onnx_input_shape"] == [1, 3, 16, 16]
    # the sidecar's --input-shape lets --per-layer reconvert the dynamic-shape source by itself
    from tflite_deploy.evaluation.layer_errors import per_layer_errors

    layers = per_layer_errors(int8.path, str(tmp_path / "photos16.npy"), samples=4)
    assert layers and all(np.isfinite(e.rmse) for e in layers)
    ref, var = evaluate(model, [art.path], str(tmp_path / "photos16.npy"))
    assert var.metrics["max_abs_error"] < 1e-4 and var.metrics["cosine"] > 0.9999
    y = OnnxRuntimeModel(model).predict(x)
    assert y.shape == (8, 16, 16, 4)  # moved back to channels-last


def test_onnx_errors_are_one_clear_paragraph(tmp_path):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage-not-a-protobuf" * 10)
    with pytest.raises(ModelError, match="corrupt.onnx"):
        convert(corrupt, [PRESETS["float32"]], None, tmp_path / "o")

    too_new = _conv_only(tmp_path / "new.onnx", [1, 3, 8, 8], opset=99)
    with pytest.raises(ModelError, match="opset 99, newer than"):
        convert(too_new, [PRESETS["float32"]], None, tmp_path / "o")

    dynamic = _conv_only(tmp_path / "dyn.onnx", [1, 3, "h", "w"])
    with pytest.raises(ModelError, match=r"dynamic input dimensions.*input_shape=1,3,1,1"):
        convert(dynamic, [PRESETS["float32"]], None, tmp_path / "o")
    with pytest.raises(ModelError, match="contradicts"):
        convert(dynamic, [PRESETS["float32"]], None, tmp_path / "o", input_shape=(1, 4, 8, 8))

    unsupported = _conv_only(tmp_path / "unsup.onnx", [1, 3, 8, 8], op="CastLike")
    from tflite_deploy.sources.onnx import read_onnx, unsupported_ops

    if not unsupported_ops(read_onnx(unsupported)):
        pytest.fail("pick an op onnx2tf lacks for this test")
    with pytest.raises(ModelError, match="onnx2tf cannot convert"):
        convert(unsupported, [PRESETS["float32"]], None, tmp_path / "o")
    assert not (tmp_path / "o").exists()  # nothing written

    res = runner.invoke(app, ["convert", str(dynamic), "-r", "float32", "--out", str(tmp_path / "o")])
    assert res.exit_code != 0 and "--input-shape" in res.output and "Traceback" not in res.output


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch: "legacy TorchScript-based ONNX export"
def test_pytorch_model_through_torch_onnx_export(rgb_digits, tmp_path):
    """The documented PyTorch path: train a tiny CNN on digits, torch.onnx.export, convert, evaluate.

    torch 2.13's default exporter (dynamo=True) needs onnxscript, which is not installed: the
    TorchScript exporter (dynamo=False) needs nothing more.
    """
    torch = pytest.importorskip("torch", reason="PyTorch is installed by tools/setup.sh --tests only where its "
                                                "CPU wheel is available")
    from torch import nn

    torch.manual_seed(0)
    data = np.load(rgb_digits)
    x = torch.from_numpy(np.moveaxis(data["x"], -1, 1).copy())  # PyTorch is channels-first
    y = torch.from_numpy(data["y"])
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1),
                        nn.ReLU(), nn.Flatten(), nn.Linear(32 * 4 * 4, 10))
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    for _ in range(15):
        for i in range(0, len(x), 64):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[i:i + 64]), y[i:i + 64]).backward()
            opt.step()
    net.eval()
    model = tmp_path / "torch_digits.onnx"
    torch.onnx.export(net, torch.zeros(1, 3, 8, 8), str(model), dynamo=False, input_names=["image"],
                      output_names=["logits"], dynamic_axes={"image": {0: "N"}, "logits": {0: "N"}},
                      opset_version=17)
    out = tmp_path / "out"
    arts = convert(model, [PRESETS["float32"], PRESETS["int8"]], f"{rgb_digits}:train", out)
    ref, r32, r8 = evaluate(model, [a.path for a in arts], f"{rgb_digits}:test")
    with torch.no_grad():
        torch_out = net(x[:50]).numpy()
    np.testing.assert_allclose(OnnxRuntimeModel(model).predict(data["x"][:50]), torch_out, atol=1e-4)
    assert ref.metrics["top1"] > 90
    assert r32.metrics["max_abs_error"] < 1e-3 and r32.metrics["top1_drop"] == 0
    assert r8.metrics["label_agreement"] > 0.95


def test_bench_refuses_an_onnx_on_a_device(tmp_path):
    model = _conv_only(tmp_path / "conv.onnx", [1, 3, 8, 8])
    res = runner.invoke(app, ["bench", str(model), "--device", "R58M123"])
    assert res.exit_code != 0 and "ONNX Runtime" in res.output and "Traceback" not in res.output


def test_public_api_refuses_onnx_on_a_device_and_reads_shape_text(tmp_path):
    import tflite_deploy
    from tflite_deploy.errors import UserError
    from tflite_deploy.sources import parse_input_shape

    model = _conv_only(tmp_path / "conv.onnx", [1, 3, 8, 8])
    with pytest.raises(UserError, match="ONNX Runtime"):
        tflite_deploy.bench([model], ["adb:R58M123"])
    assert parse_input_shape("1,3,224,224") == (1, 3, 224, 224)
    with pytest.raises(UserError, match="whole numbers"):
        parse_input_shape("1x3x224x224")
    res = runner.invoke(app, ["convert", str(model), "-r", "float32", "--input-shape", "1,3,a,8", "--json"])
    assert res.exit_code != 0 and "whole numbers" in res.output and "Traceback" not in res.output
