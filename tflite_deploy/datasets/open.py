"""Open a dataset from a spec string: a bundled name, an image folder, or a .npz/.npy file.

Specs:
- ``digits`` — scikit-learn's 1,797 handwritten digits (8x8x1, scaled to [0, 1], 10 classes).
  Shipped with scikit-learn: no download.
- ``photos`` — 224x224 RGB crops of scikit-learn's two sample photographs; unlabelled, for
  calibrating ImageNet-size models offline.
- ``PATH/`` — an image folder: one sub-folder per class (labels by sorted folder name), or images
  directly inside (no labels).
- ``PATH.npz`` — arrays ``x`` (or ``images``/``inputs``) and optionally ``y`` (or ``labels``); or, for a
  model with several inputs, one array per input named after it (``ids``, ``mask``, ...) and the
  targets under ``y``. Dtypes are kept (int32 token ids, 0/1 masks); ``y`` holds whole numbers
  (class labels) or floats (regression targets).
- ``PATH.npy`` — one array of samples, no labels.

Append ``:train`` or ``:test`` to any spec for a fixed, seeded 80/20 split, so calibration and
evaluation never share samples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from tflite_deploy.datasets.base import ArrayDataset, Dataset, Preprocess, split_indices
from tflite_deploy.datasets.folder import ImageFolderDataset
from tflite_deploy.errors import DatasetError

SPLITS = ("train", "test")
_X_KEYS = ("x", "images", "inputs", "data")
_Y_KEYS = ("y", "labels", "targets")


def open_dataset(spec: str, preprocess: Optional[Preprocess] = None) -> Dataset:
    """Open ``spec`` (see module docs). ``preprocess`` applies to image folders and photos."""
    base, _, part = spec.rpartition(":")
    if part not in SPLITS:
        base, part = spec, ""
    ds = _open_whole(base, preprocess)
    if part:
        ds = ds.subset(split_indices(len(ds), part), name=spec)
    return ds


def _open_whole(spec: str, preprocess: Optional[Preprocess]) -> Dataset:
    if spec == "digits":
        return digits()
    if spec == "photos":
        return photos(preprocess or Preprocess(size=(224, 224)))
    p = Path(spec)
    if p.is_dir():
        return ImageFolderDataset(p, preprocess or Preprocess())
    if not p.exists():
        raise DatasetError(f"Dataset {spec!r} not found: give an image folder, a .npz/.npy file, "
                           "or a bundled set (digits, photos).")
    if p.suffix.lower() in (".npz", ".npy"):
        return _open_arrays(p)
    raise DatasetError(f"Dataset {p}: unsupported file type {p.suffix!r}; use an image folder "
                       "or a .npz/.npy file.")


def _open_arrays(p: Path) -> Dataset:
    try:
        loaded = np.load(p, allow_pickle=False)
    except Exception as e:
        raise DatasetError(f"Dataset {p} could not be read as a NumPy file: {e}") from None
    if isinstance(loaded, np.ndarray):
        return ArrayDataset(_samples(loaded, p, "the array"), None, name=str(p))
    with loaded:
        keys = list(loaded.files)
        yk = next((k for k in _Y_KEYS if k in keys), None)
        xk = next((k for k in _X_KEYS if k in keys), None)
        if xk is None and len([k for k in keys if k != yk]) == 1:
            xk = next(k for k in keys if k != yk)  # one array besides the labels: the samples
        if xk is None and len([k for k in keys if k != yk]) > 1:  # several inputs, by name
            try:
                named = {k: _samples(loaded[k], p, f"array {k!r}", 1) for k in keys if k != yk}
                y = loaded[yk] if yk else None
            except DatasetError:
                raise
            except Exception as e:
                raise DatasetError(f"Dataset {p}: its arrays could not be read ({e}).") from None
            return ArrayDataset(named, y, name=str(p))
        if xk is None:
            found = ", ".join(keys) if keys else "none"
            raise DatasetError(f"Dataset {p} has no samples array: it holds {found}. Name the samples one of "
                               f"{', '.join(_X_KEYS)} (and the labels one of {', '.join(_Y_KEYS)}), e.g. "
                               "np.savez(path, x=samples, y=labels).")
        try:
            x = loaded[xk]
            y = loaded[yk] if yk else None
        except Exception as e:  # object arrays (pickles) are refused: they could run code
            raise DatasetError(f"Dataset {p}: array {xk!r} or {yk!r} could not be read ({e}).") from None
    return ArrayDataset(_samples(x, p, f"array {xk!r}"), y, name=str(p))


def _samples(x: np.ndarray, p: Path, what: str, min_ndim: int = 2) -> np.ndarray:
    if x.ndim < min_ndim or not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise DatasetError(f"Dataset {p}: {what} is {x.dtype} of shape {x.shape}; samples are a numeric array "
                           "with the sample index first (N, ...).")
    return x


def digits() -> ArrayDataset:
    """scikit-learn's digits: real handwriting, 8x8 grey levels 0..16, scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[..., np.newaxis]
    return ArrayDataset(x, d.target.astype(np.int64), name="digits",
                        class_names=[str(i) for i in range(10)])


def photos(preprocess: Preprocess, crops_per_photo: int = 16) -> ArrayDataset:
    """Crops of scikit-learn's sample photos (china.jpg, flower.jpg), resized to ``preprocess.size``."""
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for img in _sample_photos():  # 427x640x3 uint8 each
        h, w = img.shape[:2]
        for _ in range(crops_per_photo):
            side = int(rng.integers(min(h, w) // 2, min(h, w)))
            top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            crop = Image.fromarray(img[top:top + side, left:left + side])
            if preprocess.color == "grayscale":
                crop = crop.convert("L")
            if preprocess.size:
                crop = crop.resize(preprocess.size[::-1], Image.BILINEAR)
            a = np.asarray(crop)
            out.append(preprocess.normalize(a[..., None] if a.ndim == 2 else a))
    return ArrayDataset(np.stack(out), None, name="photos")


def _sample_photos() -> list[np.ndarray]:
    """The pixels ``sklearn.datasets.load_sample_images`` gives, read from its package folder without
    importing scikit-learn (its import costs ~1.5 s, more than decoding the two photos)."""
    from importlib.util import find_spec

    from PIL import Image

    spec = find_spec("sklearn")
    folders = [Path(p) / "datasets" / "images" for p in (spec.submodule_search_locations or [])] if spec else []
    jpgs = sorted(f for d in folders if d.is_dir() for f in d.iterdir() if f.is_file() and f.match("*.jpg"))
    if not jpgs:
        raise DatasetError("The bundled photos come with scikit-learn (its sample images), which is not "
                           "installed here: install scikit-learn or give an image folder.")
    out = []
    for path in jpgs:
        with Image.open(path) as im:
            out.append(np.asarray(im))
    return out
