"""A digits model that plain int8 PTQ honestly ruins, for the autotune tests.

A CNN trained on digits:train, then one training artefact made on purpose: a hidden unit of the
``fc`` layer that never fires (a dead ReLU: bias -1000) carries outgoing weights of +-500 into the
``logits`` layer. The float model is unchanged by them (the unit is always 0), but the int8 scale of
every logits channel is set by its largest weight, so every live weight rounds to zero: int8 (either
granularity), int16x8 and dynamic range all lose ~90 points on real data, float16 loses nothing, and
keeping ``logits`` (1,290 of ~68k weights) in float repairs it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def outlier_digits_model(path: Path, epochs: int = 20) -> Path:
    from tflite_deploy.datasets import open_dataset
    from tflite_deploy.sources.tf_loader import tf_keras

    keras = tf_keras()
    keras.utils.set_random_seed(0)
    L = keras.layers
    model = keras.Sequential([
        L.Input((8, 8, 1), name="image"),
        L.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
        L.Conv2D(32, 1, activation="relu", name="pwconv"),
        L.MaxPooling2D(2, name="pool"),
        L.Flatten(name="flatten"),
        L.Dense(128, activation="relu", name="fc"),   # logits below has 1,280 weights: dynamic range quantizes it
        L.Dense(10, name="logits"),
    ], name="outlier_cnn")
    train = open_dataset("digits:train")
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(train.take(), train.labels, epochs=epochs, batch_size=32, verbose=0)
    fc, logits = model.get_layer("fc"), model.get_layer("logits")
    w, b = fc.get_weights()
    w[:, 0], b[0] = 0.0, -1000.0                      # unit 0 never fires
    fc.set_weights([w, b])
    lw, lb = logits.get_weights()
    lw[0, :] = np.where(np.arange(10) % 2, 500.0, -500.0)  # ... and carries huge weights
    logits.set_weights([lw, lb])
    model.save(path)
    return path
