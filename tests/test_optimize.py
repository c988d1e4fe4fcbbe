"""optimize (issue 3): QAT, pruning, clustering and their collaborative forms, checked in the real files.

Every claim is measured on the .tflite files the code writes (read back with ``verify_tflite``, which
parses the flatbuffer itself), on the digits CNN trained on real handwriting (conftest). Fine-tuning
runs are short (1-2 epochs of 45 steps): each test takes seconds to ~20 s on 2 cores.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tflite_deploy.cli import app
from tflite_deploy.envelope import items_of
from tflite_deploy.errors import RecipeError, UserError
from tflite_deploy.optimization import OptimizeError, recipe_from_name, verify_tflite
from tflite_deploy.recipes import OptimizeStep

runner = CliRunner()
STEP_FIELDS = {f.name for f in dataclasses.fields(OptimizeStep)}


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def runs(digits_keras, tmp_path_factory):
    """optimize() runs shared by the tests of this module, made on first use: {key: report}."""
    from tflite_deploy.optimization import optimize

    cache: dict = {}

    def get(technique: str, **kw):
        key = (technique, tuple(sorted(kw.items())))
        if key not in cache:
            out = tmp_path_factory.mktemp(technique)
            knobs = {k: kw.pop(k) for k in list(kw) if k in STEP_FIELDS}
            cache[key] = optimize(digits_keras, OptimizeStep(technique, **knobs), "digits:train", out, **kw)
        return cache[key]

    return get


def _kernels(path, layers):
    v = verify_tflite(path)
    ks = v.select(layers)
    assert {n for n in layers if any(k.belongs_to(n) for k in ks)} == set(layers), "a layer's kernel is missing"
    return v, ks


# ------------------------------------------------------------------------------------------- QAT
def test_qat_int8_is_as_accurate_as_ptq_int8_within_noise(runs):
    """QAT int8 accuracy >= PTQ int8 accuracy minus noise: the paired 95% interval of (PTQ - QAT)
    from `eval` must not lie wholly above zero."""
    from tflite_deploy.evaluation.run import evaluate

    r = runs("qat", strategy="mirrored")  # also: built and trained under MirroredStrategy
    assert r.strategy == "MirroredStrategy" and r.replicas == 1
    qat, ptq = Path(r.files["optimized-int8"]["path"]), Path(r.files["ptq-int8"]["path"])
    ref, var = evaluate(ptq, [qat], "digits:test")
    lo, hi = var.metrics["top1_drop_ci95"]
    assert lo <= 0.0, f"QAT int8 {var.metrics['top1']:.2f}% is below PTQ int8 {ref.metrics['top1']:.2f}% beyond noise"
    assert var.metrics["top1"] > 90
    # the report says the same thing as eval
    assert r.vs_ptq is not None and r.vs_ptq[1] <= 0.0
    assert abs(r.vs_ptq[0] - var.metrics["top1_drop"]) < 1e-9
    # a real integer model: every kernel int8, conv per-channel, the QAT dense kernels per-tensor
    v = verify_tflite(qat)
    assert {k.dtype for k in v.kernels} == {"int8"}
    assert all(k.per_channel for k in v.kernels if k.op == "CONV_2D")
    assert not any(k.per_channel for k in v.kernels if k.op == "FULLY_CONNECTED")
    side = json.loads(Path(r.files["optimized-int8"]["path"]).with_suffix(".json").read_text())
    assert side["recipe"]["optimize"][0]["technique"] == "qat"
    assert side["optimization"]["strategy"] == "MirroredStrategy"


# ------------------------------------------------------------------------------------------ prune
def test_prune_75_gzips_int8_at_least_2x_smaller_with_measured_sparsity(runs):
    r = runs("prune", sparsity=0.75)
    assert set(r.pruned_layers) == {"conv1", "pwconv", "fc", "logits"}  # DepthwiseConv2D is not prunable
    pruned, plain = r.files["optimized-int8"], r.files["ptq-int8"]
    v, ks = _kernels(pruned["path"], r.pruned_layers)
    base = verify_tflite(plain["path"])
    # sparsity read back from the int8 file: overall and per layer within 2 points of the target
    assert abs(100 * v.sparsity(r.pruned_layers) - 75) <= 2
    for k in ks:
        assert abs(100 * k.sparsity - 75) <= 2, (k.tensor, k.sparsity)
    assert base.sparsity() < 0.05  # the unpruned file has (almost) no zeros
    # same raw size, gzip at least 2x smaller than plain int8
    assert v.size_bytes == base.size_bytes
    assert base.gzip_bytes / v.gzip_bytes >= 2.0, (base.gzip_bytes, v.gzip_bytes)
    assert r.sparsity == pytest.approx(100 * v.sparsity(r.pruned_layers))
    # the float32 file is pruned too, and the report's accuracy rows are there with intervals
    vf = verify_tflite(r.files["optimized-float32"]["path"])
    assert abs(100 * vf.sparsity(r.pruned_layers) - 75) <= 2
    names = [a.name for a in r.accuracy]
    assert names == ["float (before)", "int8 PTQ", "prune75-int8", "prune75-float32"]
    assert all(a.top1 > 85 for a in r.accuracy)


def test_pqat_keeps_the_sparsity_through_qat(runs):
    r = runs("pqat", sparsity=0.75)
    assert [s.kind for s in r.stages] == ["prune", "qat"]
    v, ks = _kernels(r.files["optimized-int8"]["path"], r.pruned_layers)
    assert {k.dtype for k in ks} == {"int8"}
    for k in ks:
        assert abs(100 * k.sparsity - 75) <= 2, (k.tensor, k.sparsity)
    assert abs(r.sparsity - 75) <= 2


# ---------------------------------------------------------------------------------------- cluster
def test_cluster_16_leaves_at_most_16_values_per_kernel_in_the_file(digits_keras, tmp_path):
    """Through the CLI (--json). float32: per kernel; int8 per-channel: per output channel."""
    res = cli("optimize", digits_keras, "--technique", "cluster", "--clusters", "16", "--data", "digits:train",
              "--epochs", "1", "--out", tmp_path, "--json")
    assert res.exit_code == 0, res.output
    (doc,) = items_of(json.loads(res.stdout), "optimize")
    clustered = doc["clustered_layers"]
    assert set(clustered) == {"conv1", "pwconv", "fc", "logits"}  # TF-MOT does not cluster depthwise kernels
    vf, ks_f = _kernels(doc["files"]["optimized-float32"]["path"], clustered)
    for k in ks_f:
        assert k.dtype == "float32" and not k.per_channel
        assert k.unique <= 16, (k.tensor, k.unique)
    assert vf.max_unique(["dwconv"]) > 16  # the check is not vacuous: an unclustered kernel has more
    v8, ks_8 = _kernels(doc["files"]["optimized-int8"]["path"], clustered)
    for k in ks_8:
        assert k.per_channel and k.unique_per_channel_max <= 16, (k.tensor, k.unique_per_channel_max)
    assert max(k.unique for k in ks_8) > 16  # why int8 kernels must be counted per channel
    assert doc["unique_values"] == {n: v8.max_unique([n]) for n in clustered}
    assert Path(doc["report_path"]).is_file() and Path(doc["keras_model"]).is_file()


def test_cqat_keeps_the_clusters_through_qat(runs):
    r = runs("cqat", clusters=16)
    assert [s.kind for s in r.stages] == ["cluster", "qat"]
    v, ks = _kernels(r.files["optimized-int8"]["path"], r.clustered_layers)
    for k in ks:  # conv kernels per channel, QAT's per-tensor dense kernels whole
        assert k.dtype == "int8" and k.unique_values <= 16, (k.tensor, k.unique_values)
    assert any(not k.per_channel for k in ks)
    assert all(n <= 16 for n in r.unique_values.values())


# ------------------------------------------------------------------------------ resume after a stop
def test_interrupted_training_resumes_from_the_checkpoint(digits_keras, tmp_path):
    import tensorflow as tf
    import tf_keras

    from tflite_deploy.optimization import TrainingInterrupted, optimize

    class StopAfterFirstEpoch(tf_keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    kw = dict(baseline=False, eval_data=None)
    step = OptimizeStep("prune", sparsity=0.75, epochs=2)
    with pytest.raises(TrainingInterrupted, match=r"after 1 of 2 epoch.*resume=True"):
        optimize(digits_keras, step, "digits", tmp_path, callbacks=[StopAfterFirstEpoch()], **kw)
    ckpt_dir = tmp_path / "checkpoints" / "1-prune"
    assert tf.train.latest_checkpoint(str(ckpt_dir)).endswith("ckpt-1")
    assert not list(tmp_path.glob("*.tflite"))
    # without --resume an unfinished run is not thrown away silently
    with pytest.raises(OptimizeError, match="unfinished.*resume=True"):
        optimize(digits_keras, step, "digits", tmp_path, **kw)
    # resuming with other options is refused
    with pytest.raises(OptimizeError, match="another run.*options"):
        optimize(digits_keras, dataclasses.replace(step, sparsity=0.5), "digits", tmp_path, resume=True, **kw)

    r = optimize(digits_keras, step, "digits", tmp_path, resume=True, **kw)
    (stage,) = r.stages
    assert stage.resumed_from == 1 and stage.epochs_run == 1  # continued, did not start over
    assert [h["epoch"] for h in stage.history] == [2]
    steps = int(np.ceil(len(__import__("tflite_deploy.datasets", fromlist=["x"]).open_dataset("digits")) / 32))
    latest = tf.train.latest_checkpoint(str(ckpt_dir))
    counters = {n: int(tf.train.load_variable(latest, n)) for n, _ in tf.train.list_variables(latest)
                if "optimizer/_iterations" in n or "pruning_step" in n}
    assert counters and set(counters.values()) == {2 * steps}  # optimizer and schedule counted on from epoch 1
    assert abs(r.sparsity - 75) <= 2  # and the pruning schedule reached its target


# ----------------------------------------------------------------------- models TF-MOT cannot take
def _assert_clean(res, *needles):
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    for n in needles:
        assert n in res.stderr, res.stderr


def test_keras3_model_gets_a_clear_message(tmp_path):
    import keras  # Keras 3

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    model.save(tmp_path / "k3.keras")
    res = cli("optimize", tmp_path / "k3.keras", "-t", "prune", "-d", "digits:train", "-o", tmp_path / "o")
    _assert_clean(res, "k3.keras", "Keras 3", "tf_keras")
    assert not (tmp_path / "o").exists()


def test_subclassed_model_gets_a_clear_message():
    import tf_keras

    from tflite_deploy.optimization import optimize

    class Net(tf_keras.Model):
        def __init__(self):
            super().__init__()
            self.flat, self.out = tf_keras.layers.Flatten(), tf_keras.layers.Dense(10)

        def call(self, x):
            return self.out(self.flat(x))

    net = Net()
    net(np.zeros((1, 8, 8, 1), np.float32))
    with pytest.raises(OptimizeError, match="subclassed.*Functional"):
        optimize(net, OptimizeStep("qat", epochs=1), "digits:train", "unused")


def test_unsupported_layer_is_named_and_can_be_skipped(tmp_path):
    import tf_keras as keras

    @keras.utils.register_keras_serializable("tflite_deploy_tests")
    class Scale(keras.layers.Layer):  # a custom layer with a weight: in no TF-MOT registry
        def build(self, shape):
            self.s = self.add_weight(name="s", shape=(shape[-1],), initializer="ones")

        def call(self, x):
            return x * self.s

    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(inp)
    x = Scale(name="scale")(x)
    x = keras.layers.Flatten(name="flat")(x)
    out = keras.layers.Dense(10, activation="softmax", name="head")(x)
    path = tmp_path / "custom.keras"
    keras.Model(inp, out).save(path)

    res = cli("optimize", path, "-t", "qat", "-d", "digits:train", "-o", tmp_path / "o")
    _assert_clean(res, "Scale (scale): not in TF-MOT's 8-bit", "--skip-unsupported")
    res = cli("optimize", path, "-t", "prune", "-d", "digits:train", "-o", tmp_path / "o")
    _assert_clean(res, "Scale (scale): not in TF-MOT's pruning registry")

    from tflite_deploy.optimization import optimize

    r = optimize(path, OptimizeStep("prune", epochs=1, sparsity=0.5), "digits:train", tmp_path / "p",
                 skip_unsupported=True)
    assert r.skipped_layers == ("scale",) and set(r.pruned_layers) == {"conv", "head"}
    assert abs(r.sparsity - 50) <= 2
    res = cli("optimize", path, "-t", "qat", "-d", "digits:train", "-o", tmp_path / "q", "--epochs", "1",
              "--skip-unsupported")
    assert res.exit_code == 0, res.output
    assert "Left as they are" in res.stdout and "scale" in res.stdout and "Kernels of" in res.stdout


def test_bad_options_and_data_are_user_errors(digits_keras, tmp_path):
    from tflite_deploy.optimization import optimize

    with pytest.raises(OptimizeError, match="needs technique: one of qat, .*got 'quantize'"):
        optimize(digits_keras, OptimizeStep("quantize", epochs=1), "digits:train", tmp_path)
    with pytest.raises(OptimizeError, match="sparsity is a fraction"):
        optimize(digits_keras, OptimizeStep("prune", epochs=1, sparsity=75), "digits:train", tmp_path)
    with pytest.raises(OptimizeError, match="init is one of"):
        optimize(digits_keras, OptimizeStep("cluster", epochs=1, init="kmeans"), "digits:train", tmp_path)
    with pytest.raises(OptimizeError, match="step must be an OptimizeStep"):
        optimize(digits_keras, "prune", "digits:train", tmp_path)
    np.save(tmp_path / "nolabels.npy", np.zeros((10, 8, 8, 1), np.float32))
    with pytest.raises(UserError, match="no labels"):
        optimize(digits_keras, OptimizeStep("qat", epochs=1), str(tmp_path / "nolabels.npy"), tmp_path)
    assert not list(tmp_path.rglob("*.tflite"))


# -------------------------------------------------------------------------------------- recipes
def test_optimization_recipe_names_resolve():
    from tflite_deploy.recipes import resolve

    got = {r.name: r for r in resolve(["prune50-int8", "cluster16-int8", "qat-int8", "cqat16-int8", "pqat50-int8",
                                       "pcqat50c8-int8-io", "prune-float32", "cluster32-float16"])}
    step = {n: r.optimize[0] for n, r in got.items()}
    assert step["prune50-int8"].technique == "prune" and step["prune50-int8"].sparsity == 0.5
    assert step["cluster16-int8"] == OptimizeStep("cluster", clusters=16, epochs=2)
    assert step["qat-int8"].technique == "qat"
    assert step["cqat16-int8"].clusters == 16 and step["pqat50-int8"].sparsity == 0.5
    assert step["pcqat50c8-int8-io"] == OptimizeStep("pcqat", sparsity=0.5, clusters=8, epochs=2)
    assert got["pcqat50c8-int8-io"].io == "int8" and got["prune-float32"].weights == "float32"
    assert step["prune-float32"] == OptimizeStep("prune")  # no number: the default sparsity (75%)
    assert step["prune-float32"].sparsity == 0.75
    assert got["cluster32-float16"].weights == "float16"
    assert recipe_from_name("int8") is None and recipe_from_name("mine") is None
    for bad, why in (("prune50-int4", "not a preset"), ("qat-float32", "int8"), ("prune150-int8", "fraction"),
                     ("cluster2-int8", "clusters"), ("qat8-int8", "no number")):
        with pytest.raises(RecipeError, match=why):
            resolve([bad])
    with pytest.raises(RecipeError, match="Unknown recipe 'int4'.*prune50-int8"):
        resolve(["int4"])


def test_convert_trains_a_recipe_optimize_step_and_records_it(digits_keras, tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("recipes:\n  mine:\n    base: int8\n    optimize:\n      - {technique: prune, sparsity: 0.5, "
                 "epochs: 1}\n")
    typo = tmp_path / "typo.yaml"  # a recipe file is checked whole when it is read, optimize steps too
    typo.write_text("recipes:\n  typo:\n    base: int8\n    optimize: [{technique: prune, sparsty: 0.5}]\n")
    res = cli("convert", digits_keras, "-r", "mine", "-r", "cluster8-float32", "-f", f, "-d", "digits:train",
              "-o", tmp_path / "o", "--json")
    assert res.exit_code == 0, res.output
    side = json.loads((tmp_path / "o" / "digits_cnn.mine.json").read_text())
    assert side["recipe"]["optimize"] == [{"technique": "prune", "sparsity": 0.5, "schedule": "polynomial",
                                           "clusters": 16, "init": "kmeans++", "epochs": 1, "batch_size": 32,
                                           "learning_rate": 1e-3}]
    pruned = side["optimization"]["pruned_layers"]
    assert set(pruned) == {"conv1", "pwconv", "fc", "logits"}
    assert side["source"]["path"] == str(digits_keras)
    assert abs(100 * verify_tflite(tmp_path / "o" / "digits_cnn.mine.tflite").sparsity(pruned) - 50) <= 2
    v = verify_tflite(tmp_path / "o" / "digits_cnn.cluster8-float32.tflite")
    assert v.max_unique(["conv1", "pwconv", "fc", "logits"]) <= 8
    res = cli("convert", digits_keras, "-r", "typo", "-f", typo, "-d", "digits:train", "-o", tmp_path / "o2")
    assert res.exit_code == 2 and "sparsty" in res.stderr and "Traceback" not in res.output
    res = cli("convert", digits_keras, "-r", "prune50-int8", "-o", tmp_path / "o3")
    assert res.exit_code == 2 and "--data" in res.stderr


def test_verify_refuses_a_file_that_is_not_tflite(tmp_path):
    from tflite_deploy.errors import ModelError

    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"\0" * 64)
    with pytest.raises(ModelError, match="x.tflite"):
        verify_tflite(bad)
