"""Checks on the samples a calibration (or training) run is about to use, before any conversion.

The TFLite converter takes NaN, Inf or signal-free samples without a word: the activation ranges it
calibrates from them are meaningless, and an "int8" file may come out computing in float. So the
samples are looked at first, and bad ones refused with the dataset's name and what is wrong.
"""

from __future__ import annotations

import numpy as np

from tflite_deploy.errors import DatasetError

#: Refuse when at least this fraction of the samples is constant (one value everywhere: no signal).
CONSTANT_FRACTION = 0.5


def check_samples(x: np.ndarray, name: str, role: str = "calibration") -> None:
    """Raise a DatasetError when ``x`` (samples stacked on axis 0) holds NaN/Inf or mostly constant samples."""
    x = np.asarray(x)
    if not len(x):
        raise DatasetError(f"Dataset {name!r} gave no {role} samples.")
    if not np.issubdtype(x.dtype, np.number):
        raise DatasetError(f"Dataset {name!r}: {role} samples are {x.dtype}, not numbers.")
    flat = x.reshape(len(x), -1)
    if np.issubdtype(x.dtype, np.floating):
        bad = ~np.isfinite(flat).all(axis=1)
        if bad.any():
            first = int(np.argmax(bad))
            nans = int(np.isnan(flat).sum())
            infs = int(np.isinf(flat).sum())
            raise DatasetError(
                f"Dataset {name!r}: {int(bad.sum())} of {len(x)} {role} samples hold non-finite values "
                f"({nans} NaN, {infs} Inf; the first is sample {first}). Calibration ranges computed from them "
                "are meaningless and ops may silently stay in float: fix or drop those samples (e.g. "
                "np.nan_to_num, or remove them from the file).")
    constant = flat.min(axis=1) == flat.max(axis=1) if flat.shape[1] else np.ones(len(x), bool)
    if constant.sum() >= max(1, CONSTANT_FRACTION * len(x)):
        first = int(np.argmax(constant))
        raise DatasetError(
            f"Dataset {name!r}: {int(constant.sum())} of {len(x)} {role} samples are constant (one value "
            f"everywhere, e.g. sample {first} is all {flat[first, 0]!r}): they carry no signal to calibrate "
            "activation ranges on. Check the file (blank images, a wrong key, data not yet filled in?).")
