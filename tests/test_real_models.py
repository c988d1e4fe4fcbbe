"""Real models, honest outputs (issue 16): models of the kinds users bring, built here.

A CNN with BatchNorm after Conv and DepthwiseConv, a residual Add, squeeze-excite (Multiply), swish
and a Concatenate of two branches; weightless layers (Rescaling, TFOpLambda, Reshape); a stock
``tf_keras.applications`` net with ``weights=None`` at 32x32. Trained briefly on the bundled digits.
"""

from __future__ import annotations

import collections
import json
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from tflite_deploy.cli import app
from tflite_deploy.errors import DatasetError, ModelError
from tflite_deploy.optimization import OptimizeError
from tflite_deploy.recipes import OptimizeStep

runner = CliRunner()


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def _clean_error(res, *needles):
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    text = " ".join(res.stderr.split())  # the console wraps long lines
    for n in needles:
        assert n in text, text


# ------------------------------------------------------------------------------------------ models
def bn_cnn(classes: int = 10):
    """Conv->BN->ReLU, DW->BN->ReLU6, residual Add, squeeze-excite, swish and ReLU branches concatenated."""
    from tflite_deploy.sources.tf_loader import tf_keras

    keras = tf_keras()
    L = keras.layers
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1), name="image")
    x = L.Conv2D(16, 3, padding="same", use_bias=False, name="stem")(inp)
    x = L.ReLU(name="stem_relu")(L.BatchNormalization(momentum=0.9, name="stem_bn")(x))
    y = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(x)
    y = L.ReLU(6.0, name="dw_relu")(L.BatchNormalization(momentum=0.9, name="dw_bn")(y))
    y = L.BatchNormalization(momentum=0.9, name="pw_bn")(L.Conv2D(16, 1, use_bias=False, name="pw")(y))
    x = L.Add(name="res")([x, y])
    s = L.GlobalAveragePooling2D(keepdims=True, name="se_pool")(x)
    s = L.Conv2D(4, 1, activation="relu", name="se_reduce")(s)
    s = L.Conv2D(16, 1, activation="sigmoid", name="se_expand")(s)
    x = L.Multiply(name="se_scale")([x, s])
    a = L.BatchNormalization(momentum=0.9, name="branch_a_bn")(L.Conv2D(8, 1, use_bias=False, name="branch_a")(x))
    a = L.Activation("swish", name="branch_a_swish")(a)
    b = L.Conv2D(8, 3, padding="same", use_bias=False, name="branch_b")(x)
    b = L.ReLU(name="branch_b_relu")(L.BatchNormalization(momentum=0.9, name="branch_b_bn")(b))
    x = L.GlobalAveragePooling2D(name="gap")(L.Concatenate(name="cat")([a, b]))
    out = L.Dense(classes, activation="softmax", name="head")(x)
    return keras.Model(inp, out, name="bn_cnn")


KERNEL_LAYERS = ("stem", "dw", "pw", "se_reduce", "se_expand", "branch_a", "branch_b", "head")


@pytest.fixture(scope="module")
def trained_bn_cnn(tmp_path_factory):
    from tflite_deploy.datasets import open_dataset

    ds = open_dataset("digits:train")
    m = bn_cnn()
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    m.fit(ds.take(), ds.labels, epochs=4, batch_size=32, verbose=0)
    path = tmp_path_factory.mktemp("bn") / "bn_cnn.keras"
    m.save(path)
    return path


def _small_train():
    from tflite_deploy.datasets import open_dataset

    return open_dataset("digits:train").subset(range(256), name="digits:train[:256]")


def _ops(path) -> list[str]:
    from tflite_deploy.tflite.reader import inspect_model

    return [layer.op for layer in inspect_model(path).layers]


# ------------------------------------------------------------------------------- 1. QAT with BN
def test_qat_folds_batchnorm_so_the_int8_file_has_ptq_int8_ops(trained_bn_cnn, tmp_path):
    """QAT of a BN CNN: no layer refused, BN folded into its conv: the same ops as post-training int8."""
    from tflite_deploy.optimization import optimize
    from tflite_deploy.optimization.techniques import TECHNIQUES, unsupported_layers
    from tflite_deploy.sources.tf_loader import tf_keras

    model = tf_keras().models.load_model(trained_bn_cnn, compile=False)
    for name in ("qat", "pqat", "cqat"):
        assert unsupported_layers(model, TECHNIQUES[name]) == [], name
    r = optimize(trained_bn_cnn, OptimizeStep("qat", epochs=1, batch_size=64), _small_train(), tmp_path)
    qat, ptq = _ops(r.files["optimized-int8"]["path"]), _ops(r.files["ptq-int8"]["path"])
    assert len(qat) == len(ptq) and collections.Counter(qat) == collections.Counter(ptq), (qat, ptq)
    # BN left unfolded would show as MUL+ADD: only se_scale and swish's x*sigmoid(x) multiply, only the
    # residual adds, and the one LOGISTIC besides swish's is the squeeze-excite gate
    assert qat.count("MUL") == 2 and qat.count("ADD") == 1 and qat.count("LOGISTIC") == 2
    # every kernel is owned by its conv layer, per-channel int8, BN folded in
    v = r.verification["optimized-int8"]
    assert sorted(k.layer.removeprefix("quant_") for k in v.kernels) == sorted(KERNEL_LAYERS)
    assert all(k.dtype == "int8" for k in v.kernels)


@pytest.mark.slow
def test_pqat_and_cqat_keep_bn_folded_and_their_structure(trained_bn_cnn, tmp_path):
    from tflite_deploy.optimization import optimize

    p = optimize(trained_bn_cnn, OptimizeStep("pqat", epochs=1, batch_size=32, sparsity=0.5), _small_train(),
                 tmp_path / "p")
    assert collections.Counter(_ops(p.files["optimized-int8"]["path"])) == \
        collections.Counter(_ops(p.files["ptq-int8"]["path"]))
    assert {"stem", "pw", "branch_a", "head"} <= set(p.pruned_layers)
    assert abs(p.sparsity - 50) <= 3  # zeros survive BN folding (a per-channel scale keeps a zero zero)
    c = optimize(trained_bn_cnn, OptimizeStep("cqat", epochs=1, batch_size=32, clusters=8), _small_train(),
                 tmp_path / "c")
    assert collections.Counter(_ops(c.files["optimized-int8"]["path"])) == \
        collections.Counter(_ops(c.files["ptq-int8"]["path"]))
    assert {"stem", "pw", "branch_b", "head"} <= set(c.unique_values)
    assert max(c.unique_values.values()) <= 8  # per output channel, BN's per-channel factor folded in


def test_qat_names_a_batchnorm_it_cannot_fold_once(tmp_path):
    """A BN after an Add has no conv to fold into: named (with why), and nothing else is."""
    from tflite_deploy.optimization.techniques import TECHNIQUES, unsupported_layers, unsupported_message
    from tflite_deploy.sources.tf_loader import tf_keras

    keras = tf_keras()
    L = keras.layers
    inp = keras.Input((8, 8, 1))
    x = L.BatchNormalization(name="bn_c")(L.Conv2D(8, 3, padding="same", use_bias=False, name="c")(inp))
    x = L.Add(name="sum")([x, L.Conv2D(8, 1, name="side")(inp)])
    x = L.BatchNormalization(name="bn_after_add")(x)
    out = L.Dense(10)(L.Flatten()(x))
    model = keras.Model(inp, out)
    bad = unsupported_layers(model, TECHNIQUES["qat"])
    assert [u.name for u in bad] == ["bn_after_add"]
    msg = unsupported_message("Model m.keras", TECHNIQUES["qat"], bad)
    assert "BatchNormalization (bn_after_add): not in TF-MOT's 8-bit" in msg and "folded only right after" in msg
    assert unsupported_layers(model, TECHNIQUES["prune"]) == []  # BN has no kernel to prune


# ------------------------------------------------------------------------- 2. weightless layers
def _weightless_model():
    """Rescaling, TFOpLambda add/multiply (hard-swish as MobileNetV3 writes it), Reshape, pooling."""
    from tflite_deploy.sources.tf_loader import tf_keras

    keras = tf_keras()
    L = keras.layers
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    x = L.Rescaling(2.0, offset=-1.0, name="rescale")(inp)
    x = L.BatchNormalization(name="bn")(L.Conv2D(8, 3, padding="same", use_bias=False, name="conv")(x))
    x = x * L.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)  # TFOpLambda layers
    s = L.Reshape((1, 1, 8))(L.GlobalAveragePooling2D()(x))
    x = L.Multiply()([x, L.Conv2D(8, 1, activation="sigmoid", name="gate")(s)])
    x = L.MaxPooling2D()(x)
    out = L.Dense(10, activation="softmax", name="head")(L.Flatten()(x))
    return keras.Model(inp, out)


def test_prune_and_cluster_leave_weightless_layers_alone(tmp_path):
    from tflite_deploy.optimization.training import train
    from tflite_deploy.optimization.techniques import TECHNIQUES, unsupported_layers

    model = _weightless_model()
    assert {type(layer).__name__ for layer in model.layers} >= {"Rescaling", "TFOpLambda", "Reshape", "Multiply"}
    ds = _small_train()
    for name, attr in (("prune", "pruned_layers"), ("cluster", "clustered_layers")):
        assert unsupported_layers(model, TECHNIQUES[name]) == [], name
        r = train(model, OptimizeStep(name, epochs=1, batch_size=64, clusters=8), ds, tmp_path / name)
        assert set(getattr(r, attr)) == {"conv", "gate", "head"}, name
        assert r.skipped_layers == ()


def test_layers_with_weights_that_cannot_be_wrapped_are_named_once_in_one_paragraph(tmp_path):
    from tflite_deploy.sources.tf_loader import tf_keras

    keras = tf_keras()

    @keras.utils.register_keras_serializable("tflite_deploy_tests_h16")
    class Gain(keras.layers.Layer):  # has a weight, in no TF-MOT registry
        def build(self, shape):
            self.g = self.add_weight(name="g", shape=(shape[-1],), initializer="ones")

        def call(self, x):
            return x * self.g

    L = keras.layers
    inp = keras.Input((8, 8, 1))
    x = L.Rescaling(1.0 / 255)(L.Conv2D(4, 3, name="conv")(inp))
    for i in range(8):
        x = Gain(name=f"gain{i}")(x + 1.0)
    path = tmp_path / "gains.keras"
    keras.Model(inp, L.Dense(10)(L.Flatten()(x))).save(path)
    res = cli("optimize", path, "-t", "prune", "-d", "digits:train", "-o", tmp_path / "o")
    _clean_error(res, "8 layer(s) cannot be wrapped for prune",
                 "Gain (gain0, gain1, gain2, gain3, gain4, gain5 and 2 more): not in TF-MOT's pruning registry")
    text = " ".join(res.stderr.split())
    assert text.count("pruning registry") == 1 and "Rescaling" not in text and "TFOpLambda" not in text


@pytest.mark.slow
def test_stock_mobilenet_v3_prunes_and_clusters_without_skip_unsupported(tmp_path):
    """MobileNetV3Small (Rescaling, TFOpLambda hard-swish, squeeze-excite), weights=None, at 32x32."""
    from tflite_deploy.datasets import open_dataset
    from tflite_deploy.optimization.training import train
    from tflite_deploy.sources.tf_loader import tf_keras

    keras = tf_keras()
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV3Small(input_shape=(32, 32, 3), weights=None, classes=10)
    path = tmp_path / "mnv3.keras"
    model.save(path)
    digits = open_dataset("digits")
    x = np.repeat(np.kron(digits.take(64), np.ones((1, 4, 4, 1), np.float32)), 3, axis=-1) * 255
    np.savez(tmp_path / "rgb.npz", x=x, y=digits.labels[:64])

    res = cli("optimize", path, "-t", "prune", "-d", tmp_path / "rgb.npz", "-e", "1", "-o", tmp_path / "p")
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "p" / "mnv3.prune75.optimize.json").read_text())
    pruned = report["pruned_layers"]
    assert "expanded_conv/squeeze_excite/Conv" in pruned and "expanded_conv/project" in pruned
    assert abs(report["sparsity"] - 75) <= 2
    # kernel table: squeeze-excite convs by their whole names; BN-folded convs marked pruned
    table = res.stdout[res.stdout.index("Kernels of"):]
    assert "expanded_conv/squeeze_excite/Conv " in table and "expanded_conv/project " in table
    for line in table.splitlines():
        if "75.0%" in line:
            assert "pruned" in line, line

    r = train(model, OptimizeStep("cluster", epochs=1, batch_size=64), open_dataset(str(tmp_path / "rgb.npz")),
              tmp_path / "c")
    assert "expanded_conv/squeeze_excite/Conv_1" in r.clustered_layers and r.skipped_layers == ()


# -------------------------------------------------------------------------------- 6. kernel names
def test_kernels_are_mapped_to_whole_layer_names_from_the_weight_tensor():
    from tflite_deploy.optimization.verify import KernelStats, layer_rows, Verification

    def k(tensor, op_name):
        return KernelStats("CONV_2D", op_name, tensor, (8, 1, 1, 8), "INT8", 64, 48, 10, 0, 4)

    se = k("M/expanded_conv_3/squeeze_excite/Conv/Conv2D",
           "M/expanded_conv_3/squeeze_excite/Relu/Relu;M/expanded_conv_3/squeeze_excite/Conv/BiasAdd")
    stem = k("M/Conv/Conv2D", "M/Conv/BatchNorm/FusedBatchNormV3;M/Conv/Conv2D1")
    folded = k("M/expanded_conv/project/Conv2D",
               "M/re_lu_3/Relu;M/expanded_conv/project/BatchNorm/FusedBatchNormV3;M/expanded_conv/project/Conv2D1")
    dw = k("M/dw_bn/FusedBatchNormV3;M/dw/depthwise", "M/dw_relu/Relu6;M/dw_bn/FusedBatchNormV3;M/dw/depthwise1")
    qat = k("model/quant_pw/Conv2D;model/quant_pw/LastValueQuant/FakeQuantWithMinMaxVarsPerChannel",
            "model/quant_pw_bn/FusedBatchNormV3;model/quant_pw/Conv2D1")
    assert se.layer == "expanded_conv_3/squeeze_excite/Conv" and not se.belongs_to("Conv")
    assert stem.belongs_to("Conv") and not stem.belongs_to("Conv/BatchNorm")
    assert folded.belongs_to("expanded_conv/project") and not folded.belongs_to("re_lu_3")
    assert dw.layer == "dw" and not dw.belongs_to("dw_bn")
    assert qat.belongs_to("pw") and not qat.belongs_to("pw_bn")
    v = Verification("f.tflite", 1, 1, (se, stem, folded))
    rows = layer_rows(v, ["Conv", "expanded_conv/project", "expanded_conv_3/squeeze_excite/Conv"])
    assert [r["layer"] for r in rows] == ["expanded_conv_3/squeeze_excite/Conv", "Conv", "expanded_conv/project"]
    assert v.sparsity(["Conv"]) == 48 / 64 and len(v.select(["Conv"])) == 1


# ------------------------------------------------------------------------------------- 6. umask
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_honour_the_umask(tmp_path, umask, mode):
    from tflite_deploy.artifact import save_artifact

    old = os.umask(umask)
    try:
        art = save_artifact(tmp_path, "m", "int8", b"TFL3" + bytes(60), {}, 0.1)
    finally:
        os.umask(old)
    assert (art.path.stat().st_mode & 0o777) == mode and (art.sidecar.stat().st_mode & 0o777) == mode


# ------------------------------------------------------------------------ 3. calibration data
def _tiny_rgb_model(path=None, classes: int = 10):
    from tflite_deploy.sources.tf_loader import tf_keras

    keras = tf_keras()
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    out = keras.layers.Dense(classes, activation="softmax")(keras.layers.Flatten()(
        keras.layers.Conv2D(4, 3, activation="relu")(inp)))
    m = keras.Model(inp, out)
    if path:
        m.save(path)
    return m


def test_bad_calibration_data_is_refused_before_conversion(tmp_path):
    from tflite_deploy.conversion.run import convert
    from tflite_deploy.datasets import check_samples, open_dataset
    from tflite_deploy.sources.keras import from_keras_model
    from tflite_deploy.recipes import PRESETS

    source = from_keras_model(_tiny_rgb_model(), "tiny")
    rng = np.random.default_rng(0)
    x = rng.random((40, 8, 8, 3), dtype=np.float32)
    x[[3, 7], 2, 2, 0] = np.nan
    x[9, 0, 0, 0] = np.inf
    np.savez(tmp_path / "nan.npz", x=x)
    with pytest.raises(DatasetError, match=r"nan\.npz.*3 of 40 calibration samples hold non-finite.*2 NaN, 1 Inf"):
        convert(source, [PRESETS["int8"]], str(tmp_path / "nan.npz"), tmp_path / "out")
    np.savez(tmp_path / "blank.npz", x=np.zeros((40, 8, 8, 3), np.float32))
    with pytest.raises(DatasetError, match=r"blank\.npz.*40 of 40 calibration samples are constant"):
        convert(source, [PRESETS["int8"]], str(tmp_path / "blank.npz"), tmp_path / "out")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    # float32 needs no calibration: the same data is not in the way
    assert convert(source, [PRESETS["float32"]], str(tmp_path / "blank.npz"), tmp_path / "f")
    # a few blank samples among real ones are fine
    y = x.copy()
    y[~np.isfinite(y)] = 0
    y[:5] = 0
    check_samples(y, "mostly-real")
    np.savez(tmp_path / "nokey.npz", images_train=x, images_val=x, y=np.zeros(40, np.int64))
    # several named arrays are inputs by name: none of them is the model's input, so it is refused naming it
    with pytest.raises(DatasetError, match=r"nokey\.npz' has no array for input 'input_\d+' \(shape \(\?, 8, 8, 3\), "
                                           r"float32\).*it holds images_train, images_val"):
        convert(source, [PRESETS["int8"]], str(tmp_path / "nokey.npz"), tmp_path / "out")
    np.savez(tmp_path / "labels_only.npz", labels=np.zeros(40, np.int64))
    with pytest.raises(DatasetError, match=r"labels_only\.npz has no samples array"):
        open_dataset(str(tmp_path / "labels_only.npz"))


def test_convert_cli_refuses_nan_calibration_without_a_traceback(tmp_path):
    _tiny_rgb_model(tmp_path / "m.keras")
    x = np.random.default_rng(0).random((20, 8, 8, 3), dtype=np.float32)
    x[0, 0, 0, 0] = np.nan
    np.savez(tmp_path / "d.npz", x=x)
    res = cli("convert", tmp_path / "m.keras", "-r", "int8", "-d", tmp_path / "d.npz", "-o", tmp_path / "o")
    _clean_error(res, "d.npz", "1 of 20 calibration samples hold non-finite values")
    assert not list((tmp_path).glob("o/*.tflite"))


# ----------------------------------------------------------------------------------- 4. tracebacks
def test_mean_with_the_wrong_number_of_channels_is_a_clear_error(tmp_path):
    from PIL import Image

    _tiny_rgb_model(tmp_path / "m.keras")
    (tmp_path / "imgs").mkdir()
    Image.fromarray(np.full((10, 10, 3), 100, np.uint8)).save(tmp_path / "imgs" / "a.png")
    res = cli("convert", tmp_path / "m.keras", "-r", "int8", "-d", tmp_path / "imgs", "--size", "8,8",
              "--mean", "0.5,0.5", "-o", tmp_path / "o")
    _clean_error(res, "--mean 0.5,0.5 has 2 values, but rgb images have 3 channel(s)")
    res = cli("convert", tmp_path / "m.keras", "-r", "int8", "-d", tmp_path / "imgs", "--color", "grayscale",
              "--std", "0.2,0.2,0.2", "-o", tmp_path / "o")
    _clean_error(res, "--std 0.2,0.2,0.2 has 3 values, but grayscale images have 1 channel(s)")


def test_optimize_refuses_labels_outside_the_models_classes_before_training(tmp_path):
    from tflite_deploy.sources.tf_loader import tf_keras

    keras = tf_keras()
    inp = keras.Input((8, 8, 1))
    keras.Model(inp, keras.layers.Dense(5, activation="softmax")(keras.layers.Flatten()(inp))).save(
        tmp_path / "five.keras")
    res = cli("optimize", tmp_path / "five.keras", "-t", "prune", "-d", "digits:train", "-o", tmp_path / "o")
    _clean_error(res, "Dataset 'digits:train' has 10 classes (labels up to 9)", "outputs 5 scores")
    assert not (tmp_path / "o" / "checkpoints").exists()


def test_a_failed_run_is_replaced_or_resumed_not_a_dead_end(tmp_path):
    from tflite_deploy.optimization import optimize
    from tflite_deploy.sources.tf_loader import tf_keras

    keras = tf_keras()

    class FailAt(keras.callbacks.Callback):
        def __init__(self, epoch):
            super().__init__()
            self.epoch = epoch

        def on_epoch_begin(self, epoch, logs=None):
            if epoch == self.epoch:
                raise RuntimeError("out of memory (simulated)")

    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    model = keras.Model(inp, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inp)))
    path = tmp_path / "lin.keras"
    model.save(path)
    ds, out = _small_train(), tmp_path / "o"
    with pytest.raises(RuntimeError, match="simulated"):
        optimize(path, OptimizeStep("prune", epochs=2), ds, out, callbacks=[FailAt(0)], baseline=False)
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert state["complete"] is False and state["failed"] == "RuntimeError"
    # nothing was saved, so the next run of the same job replaces it (this one fails after saving epoch 1)
    with pytest.raises(RuntimeError):
        optimize(path, OptimizeStep("prune", epochs=2), ds, out, callbacks=[FailAt(1)], baseline=False)
    # this one saved epoch 1 before failing: a plain run is refused with the way out, --resume continues
    with pytest.raises(OptimizeError, match=r"failed \(RuntimeError\) after saving .*Pass resume=True"):
        optimize(path, OptimizeStep("prune", epochs=2), ds, out, baseline=False)
    r = optimize(path, OptimizeStep("prune", epochs=2), ds, out, resume=True, baseline=False)
    assert r.stages[0].resumed_from == 1 and r.stages[0].epochs_run == 1
    # a different job replaces the unfinished state of another, with a note
    with pytest.raises(RuntimeError):
        optimize(path, OptimizeStep("cluster", epochs=2), ds, out, callbacks=[FailAt(1)], baseline=False)
    r = optimize(path, OptimizeStep("prune", epochs=1, sparsity=0.5), ds, out, baseline=False)
    assert any("Replaced the unfinished cluster run" in n and "another model, technique" in n for n in r.notes)


# ------------------------------------------------------------------------------------ 5. Lambda
def test_lambda_layer_needs_an_explicit_opt_in_and_the_message_is_whole(tmp_path):
    from tflite_deploy.sources.keras import UNSAFE_WHY, load_model
    from tflite_deploy.sources.tf_loader import tf_keras

    keras = tf_keras()
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0 - 1.0, name="to_pm1")(inp)
    out = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
    path = tmp_path / "lam.keras"
    keras.Model(inp, out).save(path)
    with pytest.raises(ModelError) as e:
        load_model(path)
    msg = str(e.value)
    assert str(path) in msg and UNSAFE_WHY in msg and msg.endswith("registered custom layer.")
    assert "unsafe_deserialization=True" in msg
    sm = load_model(path, unsafe_deserialization=True)
    assert any(type(layer).__name__ == "Lambda" for layer in sm.keras_model.layers)
    res = cli("convert", path, "-r", "float32", "-o", tmp_path / "o")
    _clean_error(res, "contains a Lambda layer", "--unsafe-deserialization", "registered custom layer.")
    res = cli("convert", path, "-r", "float32", "-o", tmp_path / "o", "--unsafe-deserialization")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "lam.float32.tflite").is_file()


def test_a_full_integer_recipe_whose_file_computes_in_float_is_an_error(tmp_path):
    from tflite_deploy.conversion.tf_converter import convert_bytes
    from tflite_deploy.tflite.checks import check_full_integer
    from tflite_deploy.sources.keras import from_keras_model
    from tflite_deploy.recipes import PRESETS

    source = from_keras_model(_tiny_rgb_model(), "tiny")
    x = np.random.default_rng(0).random((20, 8, 8, 3), dtype=np.float32)
    int8 = convert_bytes(source, PRESETS["int8"], x)  # a real full-integer file passes the check
    check_full_integer(int8, PRESETS["int8-io"], source.path)
    as_float = convert_bytes(source, PRESETS["float32"], None)
    with pytest.raises(ModelError, match=r"tiny converted with recipe 'int8' is not full-integer: the result is "
                                         r"float32.*allow_float_fallback"):
        check_full_integer(as_float, PRESETS["int8"], source.path)
    check_full_integer(as_float, PRESETS["dynamic"], source.path)  # not a full-integer recipe: no check
