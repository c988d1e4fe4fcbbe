"""Store tests run once against SQLite and once against a real PostgreSQL server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# pytest allows pytest_plugins only in the top conftest (others edit it): import the fixture instead
from tests.support.postgres import postgres_server  # noqa: F401  (a session fixture)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty store location: a SQLite file path or a fresh PostgreSQL database URL."""
    if request.param == "sqlite":
        return str(tmp_path / "results.db")
    return request.getfixturevalue("postgres_server").new_database()


def convert_keras(model, path: Path) -> Path:
    """A Keras model written as a float32 .tflite at ``path`` (TF's converter, no sidecar)."""
    import tensorflow as tf

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """conv v1, a v2 of it (same file name, another folder) whose 70x70 input is ~20% more work, and a
    v3 with three times the channels (~9x the work) for the fake device, whose runs share this loaded CPU."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tf_keras as keras

    keras.utils.set_random_seed(0)

    def conv(side: int, width: int = 32):
        return keras.Sequential([keras.Input((side, side, 3)),
                                 keras.layers.Conv2D(width, 3, padding="same", activation="relu"),
                                 keras.layers.Conv2D(2 * width, 3, strides=2, padding="same", activation="relu"),
                                 keras.layers.Conv2D(2 * width, 3, padding="same", activation="relu"),
                                 keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)])

    out = tmp_path_factory.mktemp("versions")
    return {"v1": convert_keras(conv(64), out / "v1" / "conv.float32.tflite"),
            "v2": convert_keras(conv(70), out / "v2" / "conv.float32.tflite"),
            "v3": convert_keras(conv(64, 96), out / "v3" / "conv.float32.tflite")}  # ~9x the work of v1
