"""A tf_keras ``.keras`` file loads through its weights copied out of the zip (tf_keras' own reading
through zipfile re-reads the member on every backward seek: 105 s for a trained ResNet50): the same
model, weights and outputs as ``tf_keras.models.load_model``, also for files ``fit`` left with the
optimizer's state, shared layers and a Lambda refused as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tflite_deploy.errors import ModelError
from tflite_deploy.sources.keras import load_model


def _trained_cnn(path: Path) -> Path:
    import tf_keras as k

    x = k.Input((8, 8, 1))
    h = k.layers.Conv2D(4, 3, padding="same")(x)
    h = k.layers.BatchNormalization()(h)
    h = k.layers.ReLU()(h)
    shared = k.layers.Dense(6, name="shared")  # one layer used twice: its weights must be loaded once
    flat = k.layers.Flatten()(h)
    y = k.layers.Add()([shared(flat), shared(k.layers.Dropout(0.0)(flat))])
    model = k.Model(x, k.layers.Dense(3, activation="softmax")(y))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")  # fit() leaves Adam's slots in the file
    rng = np.random.default_rng(0)
    model.fit(rng.random((16, 8, 8, 1), np.float32), rng.integers(0, 3, 16), epochs=2, verbose=0)
    model.save(path)
    return path


def test_a_trained_tf_keras_file_loads_the_same_weights_and_outputs(tmp_path: Path, monkeypatch) -> None:
    import tf_keras

    path = _trained_cnn(tmp_path / "cnn.keras")
    expected = tf_keras.models.load_model(path, compile=False)

    def refuse(*a, **k):  # the zip's weights are read from disk, not through tf_keras' zipfile path
        raise AssertionError("tf_keras.models.load_model called for a plain tf_keras .keras file")

    monkeypatch.setattr(tf_keras.models, "load_model", refuse)
    source = load_model(path)
    got = source.keras_model
    assert source.framework == "tf_keras"
    assert [w.name for w in got.weights] == [w.name for w in expected.weights]
    for a, b in zip(got.get_weights(), expected.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(1).random((4, 8, 8, 1), np.float32)
    np.testing.assert_array_equal(got(x, training=False).numpy(), expected(x, training=False).numpy())
    assert got.optimizer is None  # compile=False, as before: the optimizer's slots are not read


def test_h5_files_and_lambda_layers_take_the_usual_path(tmp_path: Path) -> None:
    import tf_keras as k

    x = k.Input((4,))
    model = k.Model(x, k.layers.Lambda(lambda t: t * 2.0)(k.layers.Dense(2)(x)))
    model.save(tmp_path / "lam.keras")
    with pytest.raises(ModelError, match="Lambda"):
        load_model(tmp_path / "lam.keras")
    assert load_model(tmp_path / "lam.keras", unsafe_deserialization=True).keras_model is not None
    plain = k.Model(x, k.layers.Dense(2)(x))
    plain.save(tmp_path / "plain.h5")
    loaded = load_model(tmp_path / "plain.h5").keras_model
    for a, b in zip(loaded.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
