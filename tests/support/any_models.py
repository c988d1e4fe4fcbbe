"""Small models of the kinds users ship besides image classifiers, built and trained in seconds.

Each builder returns a saved model file; the data they are judged on is real where the machine has
it (scikit-learn's diabetes set for the regression MLP) and seeded synthetic token data otherwise
(the token models learn a rule of their tokens, so accuracy means something).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

VOCAB = 50
SEQ = 12


def token_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """int32 token ids and a class per row: which third of the vocabulary its ids mostly fall in."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centre = (y * VOCAB // 3 + VOCAB // 6)
    ids = np.clip(centre[:, None] + rng.integers(-8, 9, (n, SEQ)), 0, VOCAB - 1).astype(np.int32)
    return ids, y.astype(np.int64)


def token_npz(root: Path, n: int = 60, seed: int = 2) -> tuple[np.ndarray, np.ndarray, Path]:
    """Held-out token ids and labels, and the ``.npz`` (``tokens``, ``y``) the recurrent classifiers read."""
    ids, y = token_data(n, seed=seed)
    data = root / "tokens.npz"
    np.savez(data, tokens=ids, y=y)
    return ids, y, data


def lstm_classifier(path: Path) -> Path:
    """tf_keras Embedding + LSTM with a dynamic batch (None), trained a few epochs."""
    return _recurrent_classifier(path, "LSTM")


def gru_classifier(path: Path) -> Path:
    """tf_keras Embedding + GRU with a dynamic batch (None), trained a few epochs (the LSTM's twin)."""
    return _recurrent_classifier(path, "GRU")


def _recurrent_classifier(path: Path, layer: str) -> Path:
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((SEQ,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(VOCAB, 8)(inp)
    x = getattr(keras.layers, layer)(8)(x)
    out = keras.layers.Dense(3, activation="softmax")(x)
    model = keras.Model(inp, out)
    model.compile("adam", "sparse_categorical_crossentropy")
    ids, y = token_data(300, seed=1)
    model.fit(ids, y, epochs=8, batch_size=32, verbose=0)
    model.save(path)
    return path


def bert_like(path: Path, vocab: int = 30, seq: int = 16) -> Path:
    """Three int32 inputs (ids, mask, type_ids), token + type embeddings, one attention block."""
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    ids = keras.Input((seq,), dtype="int32", name="ids")
    mask = keras.Input((seq,), dtype="int32", name="mask")
    types = keras.Input((seq,), dtype="int32", name="type_ids")
    h = keras.layers.Embedding(vocab, 16)(ids) + keras.layers.Embedding(2, 16)(types)
    a = keras.layers.MultiHeadAttention(num_heads=2, key_dim=8)(h, h, attention_mask=_pair_mask(keras, mask))
    h = keras.layers.LayerNormalization()(h + a)
    pooled = keras.layers.GlobalAveragePooling1D()(h)
    out = keras.layers.Dense(2, activation="softmax")(pooled)
    model = keras.Model([ids, mask, types], out)
    model.save(path)
    return path


def _pair_mask(keras, mask):
    """(batch, seq) 0/1 mask -> (batch, seq, seq) attention mask, without a Lambda layer."""
    m = keras.layers.Reshape((1, -1))(mask)
    m = keras.layers.Concatenate(axis=1)([m] * mask.shape[1])
    return m


def bert_data(n: int, vocab: int = 30, seq: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, seq + 1, n)
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int32)
    ids = (rng.integers(1, vocab, (n, seq)) * mask).astype(np.int32)
    types = ((np.arange(seq)[None, :] >= lengths[:, None] // 2) & (mask == 1)).astype(np.int32)
    return {"ids": ids, "mask": mask, "type_ids": types, "y": rng.integers(0, 2, n)}


def two_in_two_out(path: Path) -> Path:
    """A Keras 3 functional model: an 8x8 image and a 4-vector in; a class (3 scores) and a scalar out."""
    import keras

    keras.utils.set_random_seed(0)
    image = keras.Input((8, 8, 1), name="image")
    vec = keras.Input((4,), name="vec")
    x = keras.layers.Conv2D(4, 3, activation="relu")(image)
    x = keras.layers.Flatten()(x)
    h = keras.layers.Dense(16, activation="relu")(keras.layers.Concatenate()([x, vec]))
    cls = keras.layers.Dense(3, activation="softmax", name="cls")(h)
    score = keras.layers.Dense(1, name="score")(h)
    model = keras.Model([image, vec], [cls, score])
    model.save(path)
    return path


def two_in_data(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"image": rng.random((n, 8, 8, 1)).astype(np.float32), "vec": rng.random((n, 4)).astype(np.float32),
            "y": rng.integers(0, 3, n)}


def regression_mlp(path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """A tf_keras MLP trained on scikit-learn's diabetes set (real data, offline); returns the test split."""
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = diabetes_split()
    model = keras.Sequential([keras.Input((10,), name="features"), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.01), "mse")
    model.fit(x_train, y_train, epochs=40, batch_size=32, verbose=0)
    model.save(path)
    return path, x_test, y_test


def diabetes_split() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """scikit-learn's diabetes set standardised, (train, test) as the regression MLP was trained and tested."""
    from sklearn.datasets import load_diabetes

    d = load_diabetes()
    x = ((d.data - d.data.mean(0)) / d.data.std(0)).astype(np.float32)
    y = ((d.target - d.target.mean()) / d.target.std()).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:350], order[350:]
    return (x[train], y[train]), (x[test], y[test])


def direct_outputs(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The plain LiteRT loop the figures are checked against: the signature runner, one sample at a time,
    inputs quantized and outputs dequantized by hand from their own parameters. TFLite's LSTM keeps its
    state in variable tensors between invokes, so each sample starts from a reset (zero) state."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    runner = it.get_signature_runner()
    ins, outs = runner.get_input_details(), runner.get_output_details()
    n = len(next(iter(arrays.values())))
    got: dict[str, list] = {k: [] for k in outs}
    for i in range(n):
        feed = {}
        for name, d in ins.items():
            x = arrays[name][i:i + 1]
            scale, zero = d["quantization"]
            if scale and not np.issubdtype(x.dtype, np.integer):
                x = np.clip(np.round(x / scale) + zero, -128, 127)
            feed[name] = x.astype(d["dtype"])
        it.reset_all_variables()
        res = runner(**feed)
        for name, d in outs.items():
            y = res[name]
            scale, zero = d["quantization"]
            got[name].append((y.astype(np.float32) - zero) * scale if scale else y.astype(np.float32))
    return {k: np.concatenate(v) for k, v in got.items()}
