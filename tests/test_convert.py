"""convert: every preset on the real digits CNN, checked against TFLite's converter called directly."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tflite_deploy.datasets import open_dataset


def _reference_bytes(keras_path: Path, preset: str) -> bytes:
    """The same conversion written out by hand with the TFLite converter (no tflite-deploy code)."""
    import tensorflow as tf
    import tf_keras

    model = tf_keras.models.load_model(keras_path, compile=False)
    x = open_dataset("digits:train").take(200).astype(np.float32)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)

    def rep():
        for i in range(len(x)):
            yield [x[i:i + 1]]

    if preset != "float32":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if preset == "float16":
        conv.target_spec.supported_types = [tf.float16]
    if preset in ("int8", "int8-io"):
        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if preset == "int8-io":
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    if preset == "int16x8":
        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    return conv.convert()


@pytest.mark.parametrize("preset", ["float32", "dynamic", "int8", "int8-io", "float16", "int16x8"])
def test_every_preset_matches_the_converter_called_directly(digits_keras, digits_variants, preset):
    art = digits_variants[preset]
    reference = _reference_bytes(digits_keras, preset)
    assert art.path.stat().st_size == art.size_bytes
    # the converter is deterministic: any other mode or I/O type gives other bytes (sizes can be 1% apart)
    assert art.path.read_bytes() == reference, (art.size_bytes, len(reference))


def test_sidecar_records_recipe_source_sizes_and_versions(digits_keras, digits_variants):
    art = digits_variants["int8"]
    doc = json.loads(art.sidecar.read_text())
    assert doc["recipe"]["activations"] == "int8" and doc["recipe"]["weights"] == "int8"
    assert doc["source"]["sha256"] == __import__("hashlib").sha256(digits_keras.read_bytes()).hexdigest()
    assert doc["tflite"]["size_bytes"] == art.path.stat().st_size
    assert 0 < doc["tflite"]["gzip_bytes"] < doc["tflite"]["size_bytes"]
    assert doc["versions"]["tensorflow"].startswith("2.")
    assert doc["calibration"]["dataset"] == "digits:train"


def _io_dtypes(path: Path) -> tuple[str, str]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(str(path))
    return it.get_input_details()[0]["dtype"].__name__, it.get_output_details()[0]["dtype"].__name__


def test_io_types_follow_the_recipe(digits_variants):
    assert _io_dtypes(digits_variants["int8"].path) == ("float32", "float32")
    assert _io_dtypes(digits_variants["int8-io"].path) == ("int8", "int8")
    assert _io_dtypes(digits_variants["float16"].path) == ("float32", "float32")


def test_quantized_variants_still_classify_digits(digits_variants):
    """A conversion that silently broke the model would still have the right size: check outputs."""
    from ai_edge_litert.interpreter import Interpreter

    test = open_dataset("digits:test")
    x = test.take(100).astype(np.float32)
    for name in ("float32", "dynamic", "int8", "float16", "int16x8"):
        it = Interpreter(str(digits_variants[name].path))
        it.allocate_tensors()
        inp, outp = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
        preds = []
        for i in range(len(x)):
            it.set_tensor(inp, x[i:i + 1])
            it.invoke()
            preds.append(int(it.get_tensor(outp).argmax()))
        assert np.mean(np.array(preds) == test.labels[:100]) > 0.9, name


def test_selective_quantization_keeps_the_named_layer_float(digits_keras, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from tflite_deploy.conversion.run import convert
    from tflite_deploy.recipes import Recipe

    recipe = Recipe("int8-float-head", weights="int8", activations="int8", float_layers=("logits",))
    (art,) = convert(digits_keras, [recipe], "digits:train", tmp_path)
    it = Interpreter(str(art.path))
    tensors = it.get_tensor_details()
    kinds = {}
    for op in it._get_ops_details():
        name = tensors[op["outputs"][0]]["name"]
        kinds[name] = (op["op_name"], tensors[op["inputs"][0]]["dtype"].__name__)
    logits = [v for k, v in kinds.items() if "/logits/" in k]
    fc = [v for k, v in kinds.items() if "/fc/" in k]
    assert logits == [("FULLY_CONNECTED", "float32")]
    assert fc == [("FULLY_CONNECTED", "int8")]


def test_unknown_float_layer_is_named(digits_keras, tmp_path):
    from tflite_deploy.conversion.run import convert
    from tflite_deploy.recipes import Recipe

    recipe = Recipe("sel", weights="int8", activations="int8", float_layers=("no_such_layer",))
    [failed] = convert(digits_keras, [recipe], "digits:train", tmp_path)  # a failed recipe is a row
    assert failed.failed and "no_such_layer" in failed.reason
    assert not list(tmp_path.glob("*.tflite"))


def test_keras3_model_is_converted(tmp_path):
    """A model saved by Keras 3 (not tf_keras) still converts, through a SavedModel export."""
    import keras  # Keras 3

    from tflite_deploy.conversion.run import convert
    from tflite_deploy.sources.keras import load_model
    from tflite_deploy.recipes import PRESETS

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(),
                              keras.layers.Dense(10)])
    path = tmp_path / "k3.keras"
    model.save(path)
    source = load_model(path)
    (art,) = convert(source, [PRESETS["float32"]], None, tmp_path)
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(str(art.path))
    it.allocate_tensors()
    x = open_dataset("digits").take(1).astype(np.float32)
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    np.testing.assert_allclose(it.get_tensor(it.get_output_details()[0]["index"]), model(x).numpy(),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_mobilenet_v1_size_ratios(tmp_path):
    """MobileNet V1 224 (random weights): int8 >= 3.7x, per-tensor >= 3.9x, float16 >= 1.95x smaller."""
    from tflite_deploy.sources import zoo
    from tflite_deploy.conversion.run import convert
    from tflite_deploy.sources.keras import from_keras_model
    from tflite_deploy.recipes import PRESETS, Recipe

    source = from_keras_model(zoo.mobilenet_v1(), "mobilenet_v1")
    recipes = [PRESETS["float32"], Recipe("int8", weights="int8", activations="int8", calibration_samples=8),
               Recipe("int8-pt", weights="int8", activations="int8", per_channel=False, calibration_samples=8),
               PRESETS["float16"]]
    arts = {a.recipe: a for a in convert(source, recipes, "photos", tmp_path)}
    f32 = arts["float32"].size_bytes
    assert 16.0e6 < f32 < 17.5e6
    assert f32 / arts["int8"].size_bytes >= 3.7
    assert f32 / arts["int8-pt"].size_bytes >= 3.9
    assert f32 / arts["float16"].size_bytes >= 1.95


def test_unsupported_op_is_named(tmp_path):
    import tensorflow as tf
    import tf_keras as keras

    from tflite_deploy.conversion.run import convert
    from tflite_deploy.sources.keras import from_keras_model
    from tflite_deploy.recipes import PRESETS

    inp = keras.Input((4, 4))
    model = keras.Model(inp, keras.layers.Lambda(lambda t: tf.linalg.svd(t, compute_uv=False))(inp))
    [failed] = convert(from_keras_model(model, "svd"), [PRESETS["float32"]], None, tmp_path)
    assert failed.failed and re.search(r"op\(s\) Svd are not TFLite builtins", failed.reason)
    assert not list(tmp_path.iterdir())
