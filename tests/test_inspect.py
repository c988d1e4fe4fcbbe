"""The .tflite reader (tflite_deploy.tflite) on real converted models.

A small tf_keras CNN (Conv2D, DepthwiseConv2D, Dense on 8x8x1 digits) is trained once per session
and converted with the TFLite converter to every post-training mode; calibration uses sklearn's
digits scaled to [0, 1]. The reader itself must not need TensorFlow: a subprocess proves it.
"""

from __future__ import annotations

import io
import json
import os
import random
import struct
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # before anything imports TensorFlow
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tflite_deploy.errors import ModelError  # noqa: E402
from tflite_deploy.tflite.analysis import load_op_support  # noqa: E402
from tflite_deploy.tflite.quant import Quantization, dequantize, quantize  # noqa: E402
from tflite_deploy.tflite.reader import inspect_model  # noqa: E402
from tflite_deploy.tflite.records import ModelReport  # noqa: E402
from tflite_deploy.render.verbs import render_report  # noqa: E402

MODES = ("float32", "dynamic", "int8_float_io", "int8_int8_io", "int8_per_tensor", "float16",
         "int16x8")
INT8_MODES = ("int8_float_io", "int8_int8_io", "int8_per_tensor")
PER_CHANNEL_MODES = ("int8_float_io", "int8_int8_io", "int16x8")
EXPECTED_KIND = {"float32": "float32", "dynamic": "dynamic", "int8_float_io": "int8",
                 "int8_int8_io": "int8", "int8_per_tensor": "int8", "float16": "float16",
                 "int16x8": "int16x8", "int8_mixed": "mixed"}
BASE_OPS = {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "MAX_POOL_2D": 1, "RESHAPE": 1,
            "FULLY_CONNECTED": 2, "SOFTMAX": 1}


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """Paths of the converted models plus facts about the Keras model they came from."""
    import tensorflow as tf  # a required dependency: an ImportError must fail, not skip
    import tf_keras as keras
    from sklearn.datasets import load_digits

    out = tmp_path_factory.mktemp("inspect_models")
    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    y = digits.target
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.layers.Input((8, 8, 1)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv"),
        keras.layers.DepthwiseConv2D(3, padding="same", activation="relu", name="dwconv"),
        keras.layers.MaxPooling2D(name="pool"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(16, activation="relu", name="fc"),
        keras.layers.Dense(10, activation="softmax", name="logits"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=64, verbose=0)

    def representative():
        for i in range(200):
            yield [x[i:i + 1]]

    int8_only = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    settings = {
        "float32": {},
        "dynamic": {"optimizations": [tf.lite.Optimize.DEFAULT]},
        "int8_float_io": {"optimizations": [tf.lite.Optimize.DEFAULT], "rep": True,
                          "ops": int8_only},
        "int8_int8_io": {"optimizations": [tf.lite.Optimize.DEFAULT], "rep": True,
                         "ops": int8_only, "inference_input_type": tf.int8,
                         "inference_output_type": tf.int8},
        "int8_per_tensor": {"optimizations": [tf.lite.Optimize.DEFAULT], "rep": True,
                            "ops": int8_only, "_experimental_disable_per_channel": True},
        "float16": {"optimizations": [tf.lite.Optimize.DEFAULT], "types": [tf.float16]},
        "int16x8": {"optimizations": [tf.lite.Optimize.DEFAULT], "rep": True, "ops": [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]},
    }

    def convert(keras_model, name, cfg):
        conv = tf.lite.TFLiteConverter.from_keras_model(keras_model)
        for key, value in cfg.items():
            if key == "rep":
                conv.representative_dataset = representative
            elif key == "ops":
                conv.target_spec.supported_ops = value
            elif key == "types":
                conv.target_spec.supported_types = value
            else:
                setattr(conv, key, value)
        path = out / f"{name}.tflite"
        path.write_bytes(conv.convert())
        return path

    paths = {name: convert(model, name, cfg) for name, cfg in settings.items()}

    # A model with an op that has no int8 kernel (SIN): the converter keeps it in float.
    keras.utils.set_random_seed(1)
    mixed = keras.Sequential([
        keras.layers.Input((8, 8, 1)),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
        keras.layers.Lambda(lambda t: tf.math.sin(t)),
        keras.layers.Flatten(),
        keras.layers.Dense(10),
    ])
    paths["int8_mixed"] = convert(mixed, "int8_mixed",
                                  {"optimizations": [tf.lite.Optimize.DEFAULT], "rep": True})

    h5 = out / "model.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "HDF5 is a legacy format": that is the point here
        model.save(h5)

    kernels = {layer.name: layer.kernel.shape.as_list() if hasattr(layer, "kernel") else
               layer.depthwise_kernel.shape.as_list()
               for layer in model.layers if layer.name in ("conv", "dwconv", "fc", "logits")}
    biases = {layer.name: int(np.prod(layer.bias.shape))
              for layer in model.layers if layer.name in kernels}
    return {"paths": paths, "h5": h5, "kernels": kernels, "biases": biases, "x": x,
            "filters": {"conv": model.get_layer("conv").filters,
                        "dwconv": int(model.get_layer("dwconv").depthwise_kernel.shape[2]
                                      * model.get_layer("dwconv").depth_multiplier)}}


@pytest.fixture(scope="session")
def reports(models) -> dict[str, ModelReport]:
    return {name: inspect_model(path) for name, path in models["paths"].items()}


def _kernel_elems(models) -> dict[str, int]:
    return {k: int(np.prod(v)) for k, v in models["kernels"].items()}


def _raw_buffer_bytes(path: Path) -> int:
    """Sum of the model's buffers that are not metadata, read with the generated schema alone."""
    from ai_edge_litert import schema_py_generated as s

    buf = path.read_bytes()
    m = s.Model.GetRootAs(buf, 0)
    meta = {m.Metadata(i).Buffer() for i in range(m.MetadataLength())}
    return sum(m.Buffers(i).DataLength() for i in range(m.BuffersLength()) if i not in meta)


# ---------------------------------------------------------------------------------------------
# What the report says about each mode
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(EXPECTED_KIND))
def test_kind_is_derived_from_tensors(reports, models, tmp_path, mode):
    report = reports[mode]
    assert report.kind == EXPECTED_KIND[mode], report.quantization.label
    # The file name plays no part: the same bytes under another name give the same kind.
    renamed = tmp_path / "model.bin"
    renamed.write_bytes(models["paths"][mode].read_bytes())
    assert inspect_model(renamed).kind == report.kind


def test_kind_labels(reports):
    assert reports["int8_float_io"].quantization.label == "full-integer int8, float32 I/O"
    assert reports["int8_int8_io"].quantization.label == "full-integer int8, int8 I/O"
    assert reports["int8_int8_io"].quantization.int8_io
    assert not reports["int8_float_io"].quantization.int8_io
    assert reports["int16x8"].quantization.label.startswith("int16x8: int16 activations")
    assert reports["dynamic"].quantization.hybrid_ops  # FULLY_CONNECTED with int8 weights
    assert set(reports["dynamic"].quantization.hybrid_ops) == {"FULLY_CONNECTED"}
    mixed = reports["int8_mixed"].quantization
    assert "SIN" in mixed.float_ops and "SIN" in mixed.label


@pytest.mark.parametrize("mode", MODES)
def test_inputs_and_outputs(reports, mode):
    report = reports[mode]
    (inp,), (out,) = report.inputs, report.outputs
    assert inp.shape == (-1, 8, 8, 1) and inp.static_shape == (1, 8, 8, 1)
    assert out.shape == (-1, 10)
    assert inp.signature_name and out.signature_name
    if mode == "int8_int8_io":
        assert (inp.dtype, out.dtype) == ("int8", "int8")
        # input in [0, 1] over 256 steps; softmax output fixed at 1/256, -128 by the int8 spec
        assert inp.quantization.scale == pytest.approx(1 / 255, rel=1e-6)
        assert inp.quantization.zero_point == -128
        assert out.quantization.scale == pytest.approx(1 / 256)
        assert out.quantization.zero_point == -128
        assert not inp.quantization.per_channel
    else:
        assert (inp.dtype, out.dtype) == ("float32", "float32")
        assert inp.quantization is None and out.quantization is None


def test_op_histograms(reports):
    for mode in ("float32", "dynamic", "int8_int8_io"):
        assert reports[mode].op_histogram == BASE_OPS, mode
    for mode in ("int8_float_io", "int8_per_tensor", "int16x8"):
        assert reports[mode].op_histogram == {**BASE_OPS, "QUANTIZE": 1, "DEQUANTIZE": 1}, mode
    # float16: one DEQUANTIZE per float16 constant (4 kernels, 4 biases)
    assert reports["float16"].op_histogram == {**BASE_OPS, "DEQUANTIZE": 8}
    assert all(not r.custom_ops for r in reports.values())
    assert list(reports["float32"].op_histogram)[0] == "FULLY_CONNECTED"  # most frequent first


def test_tensor_dtype_histograms(reports):
    assert set(reports["float32"].tensor_dtypes) == {"float32", "int32"}
    assert reports["float16"].tensor_dtypes["float16"] == 8
    assert set(reports["int8_int8_io"].tensor_dtypes) == {"int8", "int32"}
    assert reports["int16x8"].tensor_dtypes["int16"] >= 7
    assert reports["int16x8"].tensor_dtypes["int64"] == 4  # int16x8 biases are int64
    for r in reports.values():
        assert sum(r.tensor_dtypes.values()) == r.tensor_count == len(r.tensors)


@pytest.mark.parametrize("mode", INT8_MODES + ("int16x8",))
def test_int8_weights_and_quantized_biases(reports, mode):
    report = reports[mode]
    by_role = {(w.dtype, w.role): w for w in report.quantization.weight_dtypes}
    assert ("int8", "weight") in by_role
    assert by_role[("int8", "weight")].tensors == 4
    bias_dtype = "int64" if mode == "int16x8" else "int32"
    assert by_role[(bias_dtype, "bias")].tensors == 4
    assert not any(d in ("float32", "float16") for d, _ in by_role)
    for layer in report.layers:
        if layer.op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            kernel = next(w for w in layer.weights if w.role == "weight")
            bias = next(w for w in layer.weights if w.role == "bias")
            assert kernel.dtype == "int8" and bias.dtype == bias_dtype
            assert bias.num_scales == kernel.num_scales


def test_bias_scale_is_input_scale_times_weight_scale(reports):
    """The converter quantizes a bias with scale = input scale x weight scale, zero point 0."""
    report = reports["int8_int8_io"]
    conv = next(l for l in report.layers if l.op == "CONV_2D")
    kernel = report.find_tensor(next(w.name for w in conv.weights if w.role == "weight"))
    bias = report.find_tensor(next(w.name for w in conv.weights if w.role == "bias"))
    in_scale = report.inputs[0].quantization.scale  # the conv reads the model input directly
    expected = np.array(kernel.quantization.scales) * in_scale
    np.testing.assert_allclose(bias.quantization.scales, expected, rtol=1e-5)
    assert set(bias.quantization.zero_points) == {0}
    assert set(kernel.quantization.zero_points) == {0}  # symmetric int8 weights


@pytest.mark.parametrize("mode", PER_CHANNEL_MODES)
def test_per_channel_scales_one_per_output_channel(reports, models, mode):
    report = reports[mode]
    pcs = {p.name: p for p in report.per_channel_tensors}
    assert pcs and all(p.one_scale_per_channel for p in pcs.values())
    conv = next(l for l in report.layers if l.op == "CONV_2D")
    dw = next(l for l in report.layers if l.op == "DEPTHWISE_CONV_2D")
    conv_k = pcs[next(w.name for w in conv.weights if w.role == "weight")]
    dw_k = pcs[next(w.name for w in dw.weights if w.role == "weight")]
    # CONV_2D kernels are OHWI: axis 0; DEPTHWISE_CONV_2D kernels are 1HWC: axis 3
    assert (conv_k.num_scales, conv_k.quantized_dimension) == (models["filters"]["conv"], 0)
    assert (dw_k.num_scales, dw_k.quantized_dimension) == (models["filters"]["dwconv"], 3)
    assert conv_k.shape[0] == conv_k.num_scales and dw_k.shape[3] == dw_k.num_scales
    assert conv.name in conv_k.used_by
    assert report.quantization.per_channel


def test_per_tensor_has_no_per_channel_tensors(reports):
    report = reports["int8_per_tensor"]
    assert report.per_channel_tensors == ()
    assert not report.quantization.per_channel
    for layer in report.layers:
        for w in layer.weights:
            if w.role != "constant":
                assert w.num_scales == 1, (layer.name, w.name)


def test_float_models_have_no_quantization(reports):
    for mode in ("float32", "float16"):
        assert reports[mode].per_channel_tensors == ()
        assert reports[mode].quantization_param_bytes == 0


def _expected_weight_bytes(models, mode: str) -> int:
    kernels, biases = _kernel_elems(models), models["biases"]
    k, b = sum(kernels.values()), sum(biases.values())
    if mode == "float32":
        return 4 * (k + b)
    if mode == "float16":
        return 2 * (k + b)
    if mode == "int16x8":
        return k + 8 * b
    if mode == "dynamic":  # only tensors of 1024+ elements get int8
        return sum(n if n >= 1024 else 4 * n for n in kernels.values()) + 4 * b
    return k + 4 * b  # int8: int8 kernels, int32 biases


@pytest.mark.parametrize("mode", MODES)
def test_weight_bytes_add_up(reports, models, mode):
    report = reports[mode]
    path = models["paths"][mode]
    assert report.file_size == path.stat().st_size
    # Real-valued constants: exactly the Keras parameters at the dtype the mode stores them in.
    assert report.weight_bytes == _expected_weight_bytes(models, mode)
    # All constants (plus the RESHAPE shape vector) = every non-metadata buffer in the file.
    assert report.constant_bytes == _raw_buffer_bytes(path)
    assert 0 < report.constant_bytes - report.weight_bytes <= 64
    # No buffer is shared here, so the layers add up to the total.
    assert sum(l.weight_bytes for l in report.layers) == report.constant_bytes
    assert report.constant_bytes < report.file_size
    names = [l.name for l in report.layers]
    assert all(names) and len(set(names)) == len(names)
    fc = max((l for l in report.layers if l.op == "FULLY_CONNECTED"), key=lambda l: l.weight_bytes)
    assert "fc" in fc.name  # named by its output tensor, which carries the Keras layer name


def test_float16_weights_are_counted_for_the_layer_that_uses_them(reports):
    report = reports["float16"]
    assert all(l.op != "DEQUANTIZE" for l in report.layers)
    conv = next(l for l in report.layers if l.op == "CONV_2D")
    assert {(w.dtype, w.via) for w in conv.weights} == {("float16", "DEQUANTIZE")}
    assert {w.dtype for w in report.quantization.weight_dtypes} == {"float16"}


def test_dynamic_range_leaves_small_tensors_float(reports, models):
    report = reports["dynamic"]
    kinds = {(w.dtype, w.role): w for w in report.quantization.weight_dtypes}
    big = [n for n in _kernel_elems(models).values() if n >= 1024]
    assert kinds[("int8", "weight")].tensors == len(big) == 1
    assert kinds[("float32", "weight")].tensors == 3
    assert any("stayed float32" in n for n in report.quantization.notes)


# ---------------------------------------------------------------------------------------------
# Kernel and delegate support
# ---------------------------------------------------------------------------------------------


def test_op_support_data_cites_its_sources():
    data = load_op_support()
    for key in ("int8", "int16x8", "gpu", "xnnpack"):
        entry = data[key]
        assert entry["source"] and entry["commit"] and entry["path"], key
    assert "CONV_2D" in data["int8"]["ops"] and "SIN" not in data["int8"]["ops"]
    assert "SOFTMAX" in data["gpu"]["ops"] and "SOFTMAX" not in data["xnnpack"]["quantized_ops"]


def test_delegate_support(reports):
    for mode, r in reports.items():
        if mode != "int8_mixed":
            assert r.delegate("int8").supported, mode  # every op of the CNN has an int8 kernel
    assert reports["int8_mixed"].delegate("int8").unsupported_ops == ("SIN",)
    for mode in ("float32", "float16", "dynamic") + INT8_MODES:
        assert reports[mode].delegate("gpu").supported, mode
    gpu16 = reports["int16x8"].delegate("gpu")
    assert not gpu16.supported and "CONV_2D" in gpu16.unsupported_ops
    assert all("int16" in u.reason for u in gpu16.unsupported)
    for mode in ("float32", "float16", "dynamic"):
        assert reports[mode].delegate("xnnpack").supported, mode
    for mode in INT8_MODES:
        xnn = reports[mode].delegate("xnnpack")
        assert xnn.unsupported_ops == ("SOFTMAX",), mode  # no quantized SOFTMAX in XNNPACK
        assert xnn.unsupported[0].count == 1 and len(xnn.unsupported[0].layers) == 1
    softmax = reports["int8_int8_io"].delegate("xnnpack").unsupported[0]
    assert softmax.layers == (reports["int8_int8_io"].outputs[0].name,)
    xnn16 = reports["int16x8"].delegate("xnnpack")
    assert xnn16.ops_supported == 0 and xnn16.ops_checked == 9


def _xnnpack_partitions(path: Path) -> int:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    return sum(1 for op in interp._get_ops_details() if op["op_name"] == "DELEGATE")


@pytest.mark.parametrize("mode", MODES)
def test_xnnpack_verdict_matches_the_runtime(reports, models, mode):
    """LiteRT's own XNNPACK delegation agrees with the report (DELEGATE nodes per model)."""
    xnn = reports[mode].delegate("xnnpack")
    partitions = _xnnpack_partitions(models["paths"][mode])
    if xnn.ops_supported == 0:
        assert partitions == 0
    elif xnn.supported:
        assert partitions == 1  # the whole graph in one piece
    else:
        assert partitions >= 1
    if mode == "int8_float_io":
        assert partitions == 2  # SOFTMAX splits QUANTIZE..FC from DEQUANTIZE


# ---------------------------------------------------------------------------------------------
# (De)quantization helpers
# ---------------------------------------------------------------------------------------------


def test_quantize_helpers_match_the_converted_graph(reports, models):
    """Quantizing the input ourselves and dequantizing the int8 output reproduces, bit for bit,
    the float-I/O model whose QUANTIZE/DEQUANTIZE ops do the same inside the graph."""
    from ai_edge_litert.interpreter import Interpreter

    r8 = reports["int8_int8_io"]
    a = Interpreter(model_path=str(models["paths"]["int8_float_io"]))
    b = Interpreter(model_path=str(models["paths"]["int8_int8_io"]))
    a.allocate_tensors()
    b.allocate_tensors()
    x = models["x"][:100]
    for i in range(len(x)):
        a.set_tensor(a.get_input_details()[0]["index"], x[i:i + 1])
        a.invoke()
        qin = r8.inputs[0].quantize(x[i:i + 1])
        assert qin.dtype == np.int8
        b.set_tensor(b.get_input_details()[0]["index"], qin)
        b.invoke()
        y_float = a.get_tensor(a.get_output_details()[0]["index"])
        y_int8 = r8.outputs[0].dequantize(b.get_tensor(b.get_output_details()[0]["index"]))
        np.testing.assert_array_equal(y_float, y_int8)


def test_quantize_rounds_like_the_reference_kernel(reports, models):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    report = reports["int8_float_io"]
    tq = report.find_tensor("tfl.quantize")
    scale = np.float32(tq.quantization.scale)
    x = ((np.arange(64, dtype=np.float32) * 3 + 0.5) * scale).reshape(1, 8, 8, 1)  # exact halves
    interp = Interpreter(model_path=str(models["paths"]["int8_float_io"]),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                         experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    np.testing.assert_array_equal(interp.get_tensor(tq.index), tq.quantize(x))


def test_per_axis_quantize_roundtrip():
    q = Quantization(scales=(0.5, 0.25, 0.1), zero_points=(0, 0, 0), quantized_dimension=1)
    x = np.array([[1.0, 0.5, 0.3], [-1.0, -0.25, 12.8]], dtype=np.float32)
    qx = quantize(x, q, "int8")
    assert qx.tolist() == [[2, 2, 3], [-2, -1, 127]]  # 12.8/0.1 = 128 clips to 127
    np.testing.assert_allclose(dequantize(qx, q), [[1.0, 0.5, 0.3], [-1.0, -0.25, 12.7]],
                               rtol=1e-6)
    assert quantize(np.float32(-0.25), Quantization((0.5,), (0,)), "int8") == -1  # half away
    with pytest.raises(ValueError):
        quantize(x, Quantization((), ()), "int8")


# ---------------------------------------------------------------------------------------------
# JSON and rendering
# ---------------------------------------------------------------------------------------------


def test_to_dict_is_json(reports):
    report = reports["int8_int8_io"]
    d = json.loads(json.dumps(report.to_dict()))
    assert d["schema"] == "tflite-deploy/inspect/1"
    assert d["quantization"]["kind"] == "int8" and d["quantization"]["int8_io"] is True
    assert d["inputs"][0]["quantization"]["zero_points"] == [-128]
    assert d["op_histogram"]["FULLY_CONNECTED"] == 2
    assert "tensors" not in d
    assert {x["target"] for x in d["delegates"]} == {"int8", "int16x8", "gpu", "xnnpack"}
    xnn = next(x for x in d["delegates"] if x["target"] == "xnnpack")
    assert xnn["unsupported_ops"] == ["SOFTMAX"]
    full = json.loads(report.to_json(include_tensors=True))
    assert len(full["tensors"]) == report.tensor_count


def test_render_report(reports):
    from rich.console import Console

    console = Console(file=io.StringIO(), width=160, record=True)
    render_report(reports["int8_float_io"], console, top=3)
    text = console.export_text()
    for needle in ("full-integer int8, float32 I/O", "Inputs and outputs", "FULLY_CONNECTED",
                   "Weights by layer (top 3 of 5)", "Per-channel quantized tensors",
                   "SOFTMAX x1", "XNNPACK"):
        assert needle in text, needle
    console = Console(file=io.StringIO(), width=100, record=True)
    render_report(reports["int8_per_tensor"], console)
    assert "No per-channel quantized tensors" in console.export_text()


# ---------------------------------------------------------------------------------------------
# A hand-built flatbuffer: op codes old and new, custom ops, weights stored after the flatbuffer
# ---------------------------------------------------------------------------------------------


def _synthetic_model(path: Path, *, data_offset_pad: int = 16) -> tuple[int, int]:
    """Write a model built with the schema's object API; return (flatbuffer size, file size)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    def opcode(dep, code, custom=None):
        oc = s.OperatorCodeT()
        oc.deprecatedBuiltinCode, oc.builtinCode, oc.customCode, oc.version = dep, code, custom, 1
        return oc

    def tensor(name, shape, buffer=0, sig=None):
        t = s.TensorT()
        t.name, t.shape, t.type, t.buffer, t.shapeSignature = name, shape, 0, buffer, sig
        return t

    def operator(idx, ins, outs):
        o = s.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = idx, ins, outs
        return o

    def build(bias_offset: int) -> bytes:
        m = s.ModelT()
        m.version = 3
        m.operatorCodes = [
            opcode(127, s.BuiltinOperator.GELU),  # code > 127: deprecated field is a placeholder
            opcode(s.BuiltinOperator.CONV_2D, 0),  # old file: only the deprecated field is set
            opcode(32, 32, b"MyCustomOp"),
            opcode(32, 32, b"FlexAddV2"),
        ]
        weights, bias = s.BufferT(), s.BufferT()
        weights.data = list(np.arange(24, dtype=np.uint8))  # 3x1x1x2 float32
        bias.offset, bias.size = bias_offset, 12  # 3 float32 after the flatbuffer
        m.buffers = [s.BufferT(), weights, bias]
        g = s.SubGraphT()
        g.tensors = [tensor("in", [1, 4, 4, 2], sig=[-1, 4, 4, 2]), tensor("w", [3, 1, 1, 2], 1),
                     tensor("b", [3], 2), tensor("conv_out", [1, 4, 4, 3]),
                     tensor("gelu_out", [1, 4, 4, 3]), tensor("custom_out", [1, 4, 4, 3]),
                     tensor("flex_out", [1, 4, 4, 3])]
        g.inputs, g.outputs = [0], [6]
        g.operators = [operator(1, [0, 1, 2], [3]), operator(0, [3], [4]),
                       operator(2, [4], [5]), operator(3, [5, 5], [6])]
        g2 = s.SubGraphT()
        g2.tensors = [tensor("x5", [1, 2, 2, 2, 2]), tensor("y5", [1, 2, 2, 2, 2])]
        g2.inputs, g2.outputs = [0], [1]
        g2.operators = [operator(0, [0], [1])]
        m.subgraphs = [g, g2]
        b = flatbuffers.Builder(0)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())

    fb = build(2)  # placeholder offset, same encoded size as the real one
    offset = len(fb) + data_offset_pad
    fb = build(offset)
    data = fb + b"\0" * data_offset_pad + np.array([0.5, -1, 2], np.float32).tobytes()
    path.write_bytes(data)
    return len(fb), len(data)


def test_synthetic_model_op_codes_custom_ops_and_external_data(tmp_path):
    path = tmp_path / "synthetic.tflite"
    _, size = _synthetic_model(path)
    r = inspect_model(path)
    assert r.file_size == size and r.subgraphs == 2
    assert r.op_histogram == {"GELU": 2, "CONV_2D": 1, "FlexAddV2": 1, "MyCustomOp": 1}
    assert r.custom_ops == ("FlexAddV2", "MyCustomOp")
    assert r.inputs[0].shape == (-1, 4, 4, 2) and r.outputs[0].name == "flex_out"
    conv = next(l for l in r.layers if l.op == "CONV_2D")
    assert conv.name == "conv_out"
    assert [(w.name, w.role, w.nbytes) for w in conv.weights] == [("w", "weight", 24),
                                                                 ("b", "bias", 12)]
    assert r.constant_bytes == r.weight_bytes == 36
    assert r.kind == "float32"
    assert any("Flex" in n for n in r.notes) and any("2 subgraphs" in n for n in r.notes)
    assert r.delegate("int8").unsupported_ops == ("FlexAddV2", "GELU", "MyCustomOp")
    gpu = r.delegate("gpu")
    assert gpu.unsupported_ops == ("FlexAddV2", "GELU", "MyCustomOp")
    assert any(u.op == "GELU" and "5-D" in u.reason for u in gpu.unsupported)  # subgraph 1
    assert r.delegate("xnnpack").unsupported_ops == ("FlexAddV2", "GELU", "MyCustomOp")


def test_synthetic_model_missing_external_data(tmp_path):
    path = tmp_path / "synthetic.tflite"
    fb_size, size = _synthetic_model(path)
    data = path.read_bytes()
    path.write_bytes(data[:size - 4])  # the flatbuffer is whole, the data after it is not
    _assert_model_error(path, "past the end")


# ---------------------------------------------------------------------------------------------
# Files that are not (whole) models
# ---------------------------------------------------------------------------------------------


def _assert_model_error(path: Path, *words: str) -> ModelError:
    with pytest.raises(ModelError) as info:
        inspect_model(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message  # one paragraph
    for w in words:
        assert w in message, message
    return info.value


def test_missing_file(tmp_path):
    _assert_model_error(tmp_path / "nope.tflite", "no such file")


def test_directory(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"\x08\x01")
    _assert_model_error(tmp_path, "directory", "SavedModel")


def test_empty_and_tiny_files(tmp_path):
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    _assert_model_error(empty, "empty")
    tiny = tmp_path / "tiny.tflite"
    tiny.write_bytes(b"TFL3")
    _assert_model_error(tiny, "too short")


def test_text_file(tmp_path):
    text = tmp_path / "notes.tflite"
    text.write_text("this is not a model\n" * 20)
    _assert_model_error(text, "text file")


def test_keras_h5_file(models):
    _assert_model_error(models["h5"], "HDF5")


def test_identifier_with_garbage(tmp_path):
    rng = random.Random(3)
    bad = tmp_path / "garbage.tflite"
    for _ in range(50):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
        bad.write_bytes(struct.pack("<I", rng.randrange(2 ** 32)) + b"TFL3" + body)
        _assert_model_error(bad, "truncated or corrupt")


def test_every_truncation_is_an_error(models, tmp_path):
    data = models["paths"]["int8_float_io"].read_bytes()
    cut_file = tmp_path / "cut.tflite"
    cuts = list(range(0, 256)) + list(range(256, len(data), 7)) + [len(data) - 1]
    for cut in cuts:
        cut_file.write_bytes(data[:cut])
        with pytest.raises(ModelError) as info:
            inspect_model(cut_file)
        assert str(cut_file) in str(info.value)


def test_corrupted_bytes_never_escape_as_other_errors(models, tmp_path):
    """Random byte and word damage: a clean ModelError or a report, never anything else."""
    rng = random.Random(7)
    data = models["paths"]["int8_float_io"].read_bytes()
    bad = tmp_path / "bad.tflite"
    words = (0, 1, 4, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFC)
    outcomes = {"report": 0, "error": 0}
    for i in range(300):
        b = bytearray(data)
        for _ in range(rng.choice((1, 2, 4))):
            pos = rng.randrange(8, len(b) - 4)
            if i % 2:
                struct.pack_into("<I", b, pos & ~3, rng.choice(words))
            else:
                b[pos] = rng.randrange(256)
        bad.write_bytes(bytes(b))
        try:
            report = inspect_model(bad)
        except ModelError as e:
            assert str(bad) in str(e)
            outcomes["error"] += 1
        else:
            json.dumps(report.to_dict())
            outcomes["report"] += 1
    assert outcomes["error"] > 0 and outcomes["report"] > 0


def test_inspect_needs_no_tensorflow(models):
    """Importing and running the reader pulls in no TensorFlow and starts fast."""
    code = textwrap.dedent(f"""
        import json, sys, time
        t0 = time.perf_counter()
        from tflite_deploy.tflite.reader import inspect_model
        from tflite_deploy.render.verbs import render_report
        t_import = time.perf_counter() - t0
        report = inspect_model({str(models["paths"]["int8_float_io"])!r})
        import io
        from rich.console import Console
        render_report(report, Console(file=io.StringIO()))
        print(json.dumps({{"import_s": t_import, "kind": report.kind,
                          "tf": sorted(m for m in sys.modules
                                       if m == "tensorflow" or m.startswith("tensorflow.")
                                       or m.startswith("tf_keras") or m == "keras")}}))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=env, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["kind"] == "int8"
    assert result["tf"] == []
