"""Small real models the project builds offline: the digits CNN (trained on real data) and
MobileNet V1 (random weights; size and latency only)."""

from __future__ import annotations

from typing import Any, Optional

from tflite_deploy.datasets import Dataset, open_dataset
from tflite_deploy.sources.tf_loader import tf_keras


def digits_cnn() -> Any:
    """A small CNN for 8x8x1 digits: conv, depthwise conv, pooling and dense layers, like phone models."""
    keras = tf_keras()
    L = keras.layers
    return keras.Sequential([
        L.Input((8, 8, 1), name="image"),
        L.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
        L.DepthwiseConv2D(3, padding="same", activation="relu", name="dwconv"),
        L.Conv2D(32, 1, activation="relu", name="pwconv"),
        L.MaxPooling2D(2, name="pool"),
        L.Flatten(name="flatten"),
        L.Dense(32, activation="relu", name="fc"),
        L.Dense(10, name="logits"),
        L.Softmax(name="probs"),
    ], name="digits_cnn")


def train_digits_cnn(epochs: int = 30, seed: int = 0, train: Optional[Dataset] = None,
                     verbose: int = 0) -> Any:
    """Train :func:`digits_cnn` on ``digits:train`` (about 98% test accuracy, seconds on 2 cores)."""
    keras = tf_keras()
    keras.utils.set_random_seed(seed)
    ds = train or open_dataset("digits:train")
    model = digits_cnn()
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    model.fit(ds.take(), ds.labels, epochs=epochs, batch_size=32, verbose=verbose)
    return model


def mobilenet_v1(size: int = 224, alpha: float = 1.0, seed: int = 0) -> Any:
    """MobileNet V1 with random weights (weights=None: nothing is downloaded)."""
    keras = tf_keras()
    keras.utils.set_random_seed(seed)
    return keras.applications.MobileNet(input_shape=(size, size, 3), alpha=alpha, weights=None,
                                        classes=1000)


def mobilenet_v2(size: int = 224, alpha: float = 1.0, seed: int = 0) -> Any:
    keras = tf_keras()
    keras.utils.set_random_seed(seed)
    return keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=alpha, weights=None,
                                          classes=1000)
