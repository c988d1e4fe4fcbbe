"""The Dataset interface and the preprocessing spec (the one record of it, and its parsing)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, Union

import numpy as np

from tflite_deploy.datasets.inputs import sample_count
from tflite_deploy.errors import DatasetError

#: The settings a user gives, as CLI flags (``--size``) and as a farm plan's ``preprocess`` keys.
PREPROCESS_KEYS = ("size", "color", "scale", "mean", "std", "layout")
COLORS = ("rgb", "grayscale")
LAYOUTS = ("NHWC", "NCHW")


def preprocess_value(key: str, value: Any) -> Any:
    """One preprocessing setting, from CLI text (``"224,224"``, ``"0.5,0.5,0.5"``, ``"nchw"``) or a
    plan's value (``224``, ``[224, 224]``, ``[0.5, 0.5, 0.5]``), as :class:`Preprocess` holds it.

    A wrong value raises DatasetError whose message starts with a verb (``takes ...``): the caller
    puts the flag or the plan key in front.
    """
    if key == "size":
        hw = _numbers(value)
        if hw is None or len(hw) not in (1, 2) or not all(v == int(v) and v > 0 for v in hw):
            raise DatasetError(f"takes HEIGHT,WIDTH or one number (positive whole numbers), not {value!r}")
        return int(hw[0]), int(hw[-1])
    if key in ("mean", "std"):
        values = _numbers(value)
        if not values:
            raise DatasetError(f"takes a number or one per channel (separated by commas), not {value!r}")
        if key == "std" and 0 in values:
            raise DatasetError(f"must not contain 0, as {value!r} does")
        return values
    if key == "scale":
        scale = _numbers(value)
        if scale is None or len(scale) != 1 or not scale[0] > 0:
            raise DatasetError(f"takes a positive number, not {value!r}")
        return scale[0]
    if key in ("color", "layout"):
        allowed = COLORS if key == "color" else LAYOUTS
        text = str(value).lower() if key == "color" else str(value).upper()
        if text not in allowed:
            raise DatasetError(f"takes {' or '.join(allowed)}, not {value!r}")
        return text
    raise DatasetError(f"is not a preprocessing setting; the settings are {', '.join(PREPROCESS_KEYS)}")


def _numbers(value: Any) -> Optional[tuple[float, ...]]:
    """``"1,2"``, ``1.5`` or ``[1, 2]`` as floats; None when it is none of those."""
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else [value]
    out = []
    for v in items:
        if isinstance(v, bool):
            return None
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            return None
    return tuple(out)


@dataclass(frozen=True)
class Preprocess:
    """How raw images become model input: ``((pixels * scale) - mean) / std`` after resizing.

    ``size`` is (height, width); ``color`` is ``rgb`` or ``grayscale``; ``layout`` is ``NHWC``
    (TensorFlow's) or ``NCHW``. Mean and std take one value or one per channel.
    """

    size: Optional[tuple[int, int]] = None
    color: str = "rgb"
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    layout: str = "NHWC"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise DatasetError(f"layout must be NHWC or NCHW, not {self.layout!r}")
        if self.color not in COLORS:
            raise DatasetError(f"color must be rgb or grayscale, not {self.color!r}")
        if any(s == 0 for s in self.std):
            raise DatasetError("std must not contain 0")
        channels = 1 if self.color == "grayscale" else 3
        for option, values in (("mean", self.mean), ("std", self.std)):
            if len(values) not in (1, channels):
                shown = ",".join(f"{v:g}" for v in values)
                raise DatasetError(
                    f"{option}={shown} has {len(values)} values, but {self.color} images have {channels} "
                    f"channel(s): give one value for all channels or {channels} (one per channel, e.g. "
                    f"{','.join([f'{values[0]:g}'] * channels)}).", param=option)

    @classmethod
    def from_settings(cls, named: Callable[[str], str] = lambda key: f"--{key}",
                      **settings: Any) -> Optional["Preprocess"]:
        """A Preprocess from the settings given (None values are left at their defaults), each parsed
        by :func:`preprocess_value`; None when none is given. ``named(key)`` is how an error names the
        setting: ``--size`` for the CLI (the default), ``models.x.preprocess.size`` for a plan."""
        fields = {}
        for key, value in settings.items():
            if value is None:
                continue
            try:
                fields[key] = preprocess_value(key, value)
            except DatasetError as e:
                raise DatasetError(f"{named(key)} {e}") from None
        return cls(**fields) if fields else None

    def normalize(self, hwc: np.ndarray) -> np.ndarray:
        """Scale and normalise an HWC array of raw pixel values, then apply the layout."""
        x = hwc.astype(np.float32) * np.float32(self.scale)
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        if self.layout == "NCHW":
            x = np.transpose(x, (2, 0, 1))
        return x.astype(self.dtype)


Samples = Union[np.ndarray, dict[str, np.ndarray]]


def stack(samples: Sequence[Any]) -> Samples:
    """Samples (arrays, or dicts of arrays by input name) stacked on a new first axis."""
    if samples and isinstance(samples[0], Mapping):
        return {k: np.stack([s[k] for s in samples]) for k in samples[0]}
    return np.stack(samples)


class Dataset:
    """Indexable samples with optional targets. Subclasses implement ``__len__`` and ``sample``.

    A sample is one array (a single-input model) or a dict of arrays by input name (``input_names``).
    Targets are ``labels`` (whole numbers: classes) or ``targets`` (floats: regression values).
    """

    name: str = "dataset"
    labels: Optional[np.ndarray] = None
    targets: Optional[np.ndarray] = None  # regression targets (floats), one row per sample
    class_names: Optional[list[str]] = None
    input_names: Optional[tuple[str, ...]] = None  # None: one unnamed array per sample

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def sample(self, i: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def sample_shape(self) -> tuple[int, ...]:
        first = self.sample(0)
        if isinstance(first, Mapping):
            raise DatasetError(f"Dataset {self.name!r} holds several named inputs ({', '.join(first)}); "
                               "this model takes one: give a dataset with one array of samples.")
        return tuple(first.shape)

    @property
    def num_classes(self) -> Optional[int]:
        if self.class_names:
            return len(self.class_names)
        if self.labels is not None and len(self.labels):
            return int(np.max(self.labels)) + 1
        return None

    def take(self, n: Optional[int] = None) -> Samples:
        """The first ``n`` samples (all when None) stacked into one batch."""
        n = len(self) if n is None else min(n, len(self))
        return stack([self.sample(i) for i in range(n)]) if n else np.empty((0,))

    def batches(self, batch_size: int = 32, limit: Optional[int] = None
                ) -> Iterator[tuple[Samples, Optional[np.ndarray]]]:
        """Yield ``(x, y)`` batches in order; ``y`` (labels, else targets) is None when the set has none."""
        n = len(self) if limit is None else min(limit, len(self))
        y_all = self.labels if self.labels is not None else self.targets
        for start in range(0, n, batch_size):
            idx = range(start, min(start + batch_size, n))
            x = stack([self.sample(i) for i in idx])
            y = None if y_all is None else y_all[start:idx.stop]
            yield x, y

    def check_fits(self, input_shape: Sequence[Optional[int]], input_dtype: str, where: str) -> None:
        """Raise a DatasetError when samples do not fit a model input of ``input_shape``.

        ``input_shape`` includes the batch dimension; None or -1 dimensions accept any size.
        """
        want = tuple(None if (d is None or d < 0) else int(d) for d in list(input_shape)[1:])
        got = self.sample_shape
        if len(want) != len(got) or any(w is not None and w != g for w, g in zip(want, got)):
            shown = "(" + ", ".join("?" if w is None else str(w) for w in want) + ")"
            raise DatasetError(
                f"Dataset {self.name!r} gives samples of shape {got}, but {where} takes inputs of "
                f"shape {shown} (batch dimension left out). Resize or re-layout the data ("
                f"its preprocessing: size, layout, color) or pick the matching model.")
        if input_dtype.startswith("float") and not np.issubdtype(self.sample(0).dtype, np.floating):
            raise DatasetError(
                f"Dataset {self.name!r} gives {self.sample(0).dtype} samples, but {where} takes "
                f"{input_dtype}: store floats in the file or use an image folder (scaled with scale=1/255).",
                param="scale")

    def fingerprint(self) -> str:
        """A content hash of the samples and targets (the key of cached reference outputs).

        This default reads every sample; datasets that know their source cheaply override it."""
        import hashlib

        h = hashlib.sha256(f"{type(self).__name__}:{len(self)}".encode())
        for x, y in self.batches(256):
            _hash_into(h, x)
            if y is not None:
                _hash_into(h, y)
        return h.hexdigest()

    def check_inputs(self, inputs: Sequence[Any], where: str) -> None:
        """Raise a DatasetError naming the input when samples do not fit ``inputs`` (ModelInput records)."""
        from tflite_deploy.datasets.inputs import feed

        feed(self.take(1), inputs, where, self.name)

    def check_labels(self, num_classes: int, where: str) -> None:
        """Raise a DatasetError when labels name classes a model with ``num_classes`` outputs lacks."""
        if self.labels is None or not len(self.labels):
            return
        wanted = max(self.num_classes or 0, int(np.max(self.labels)) + 1)
        if wanted > num_classes:
            raise DatasetError(
                f"Dataset {self.name!r} has {wanted} classes (labels up to {int(np.max(self.labels))}), but "
                f"{where} outputs {num_classes} scores: the labels do not match the model's classes (wrong "
                "dataset, or a model trained on other classes?).")

    def subset(self, indices: Sequence[int], name: Optional[str] = None) -> "Dataset":
        return _Subset(self, np.asarray(indices, dtype=np.int64), name or self.name)


def _hash_into(h: Any, x: Any) -> None:
    if isinstance(x, Mapping):
        for k in sorted(x):
            h.update(k.encode())
            _hash_into(h, x[k])
        return
    a = np.ascontiguousarray(x)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())


def _sparse_labels(y: np.ndarray, n: int) -> np.ndarray:
    """Labels stored one-hot ((n, classes) of exact 0/1, one 1 a row: whole numbers, bool, or the floats
    ``keras.utils.to_categorical`` writes) or whole numbers in a column ((n, 1)) as one class index per
    sample; anything else as it is (float columns: regression targets)."""
    if y.ndim != 2 or len(y) != n:
        return y
    whole = np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_
    if y.shape[1] == 1:
        return y[:, 0].astype(np.int64) if whole else y
    if (whole or np.issubdtype(y.dtype, np.floating)) and np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all():
        return y.argmax(axis=1).astype(np.int64)
    return y


class ArrayDataset(Dataset):
    """Samples already in memory (a ``.npz``/``.npy`` file, or a bundled set).

    ``x`` is one array (samples first) or a dict of arrays by model input name, all of one length.
    ``y`` holds whole numbers (class labels) or floats (regression targets); dtypes are kept.
    """

    def __init__(self, x: Samples, y: Optional[np.ndarray] = None, name: str = "arrays",
                 class_names: Optional[list[str]] = None) -> None:
        if isinstance(x, Mapping):
            lengths = {k: len(v) for k, v in x.items()}
            if len(set(lengths.values())) > 1:
                shown = ", ".join(f"{k}: {n}" for k, n in lengths.items())
                raise DatasetError(f"Dataset {name!r}: its input arrays hold different numbers of samples ({shown}).")
            self.input_names = tuple(x)
        n = sample_count(x)
        if n == 0:
            raise DatasetError(f"Dataset {name!r} is empty.")
        self.labels, self.targets = None, None
        if y is not None:
            y = _sparse_labels(np.asarray(y), n)
            if np.issubdtype(y.dtype, np.integer) and y.ndim == 1 and len(y) == n:
                if y.min() < 0:
                    raise DatasetError(f"Dataset {name!r}: labels must not be negative.")
                self.labels = y
            elif np.issubdtype(y.dtype, np.floating) and y.ndim >= 1 and len(y) == n:
                self.targets = y
            elif np.issubdtype(y.dtype, np.integer) and y.ndim >= 2 and len(y) == n:
                self.targets = y.astype(np.float64)  # several whole numbers a sample (counts): regression targets
            else:
                raise DatasetError(
                    f"Dataset {name!r}: y must hold one whole number per sample (class labels), labels one-hot "
                    f"(one 1 per row), or numbers per sample (regression targets): {n} samples, "
                    f"y of shape {y.shape} and type {y.dtype}.")
        self.x, self.name, self.class_names, self._n = x, name, class_names, n

    def __len__(self) -> int:
        return self._n

    def sample(self, i: int) -> Any:
        if isinstance(self.x, Mapping):
            return {k: v[i] for k, v in self.x.items()}
        return self.x[i]

    def fingerprint(self) -> str:
        import hashlib

        h = hashlib.sha256(b"arrays")
        _hash_into(h, self.x)
        for y in (self.labels, self.targets):
            h.update(b"y")
            if y is not None:
                _hash_into(h, y)
        return h.hexdigest()

    def take(self, n: Optional[int] = None) -> Samples:
        stop = len(self) if n is None else n
        if isinstance(self.x, Mapping):
            return {k: v[:stop] for k, v in self.x.items()}
        return self.x[:stop]


class _Subset(Dataset):
    def __init__(self, parent: Dataset, indices: np.ndarray, name: str) -> None:
        self.parent, self.indices, self.name = parent, indices, name
        self.class_names, self.input_names = parent.class_names, parent.input_names
        self.labels = None if parent.labels is None else parent.labels[indices]
        self.targets = None if parent.targets is None else parent.targets[indices]

    def __len__(self) -> int:
        return len(self.indices)

    def sample(self, i: int) -> Any:
        return self.parent.sample(int(self.indices[i]))

    def fingerprint(self) -> str:
        import hashlib

        h = hashlib.sha256(self.parent.fingerprint().encode())
        _hash_into(h, self.indices)
        return h.hexdigest()


def split_indices(n: int, part: str, test_fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """A fixed, seeded train/test split so that every command sees the same samples."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    return np.sort(order[n_test:] if part == "train" else order[:n_test])
