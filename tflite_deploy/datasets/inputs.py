"""A model's inputs by name, and the one rule that turns a dataset batch into what each input takes.

A model input is a :class:`ModelInput` (name as the signature calls it, tensor name, shape with -1 or
None for dynamic dimensions, dtype, quantized or not). :func:`feed` matches a batch (one array for a
single-input model, or arrays by name) onto the inputs: by signature name, tensor name, or the
tensor name without the converter's ``serving_default_`` prefix and ``:0`` suffix. Dtypes are kept:
token ids stay integers, masks stay 0/1; float data goes to float (or quantized) inputs only. Errors
name the input, its shape and dtype. No TensorFlow, no LiteRT here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Union

import numpy as np

from tflite_deploy.errors import DatasetError

Batch = Union[np.ndarray, Mapping[str, np.ndarray]]


def sample_count(x: Batch) -> int:
    """Samples in a batch: one array, or one array per input name (all of the same length)."""
    return len(next(iter(x.values()))) if isinstance(x, Mapping) else len(x)


@dataclass(frozen=True)
class ModelInput:
    """One input of a model: ``shape`` includes the batch dimension (None or -1 where dynamic)."""

    name: str
    shape: tuple[Optional[int], ...]
    dtype: str
    tensor_name: str = ""
    quantized: bool = False  # an int8/uint8 input standing for floats (scale and zero point)

    @property
    def shown(self) -> str:
        dims = ", ".join("?" if d is None or d < 0 else str(d) for d in self.shape)
        return f"input {self.name!r} (shape ({dims}), {self.dtype})"

    @property
    def takes_floats(self) -> bool:
        return self.dtype.startswith("float") or self.quantized

    def aliases(self) -> tuple[str, ...]:
        names = [self.name]
        for n in (self.tensor_name, _bare(self.tensor_name), _bare(self.name)):
            if n and n not in names:
                names.append(n)
        return tuple(names)


def _bare(name: str) -> str:
    """``serving_default_tokens:0`` -> ``tokens`` (how the TF converter names signature inputs)."""
    if not name:
        return ""
    base = name.split(":")[0]
    return base[len("serving_default_"):] if base.startswith("serving_default_") else base


def match_arrays(keys: Sequence[str], inputs: Sequence[ModelInput], where: str, dataset: str) -> dict[str, str]:
    """{model input name: dataset array name}; a DatasetError names the first input left without data."""
    out = {}
    for inp in inputs:
        key = next((a for a in inp.aliases() if a in keys), None)
        if key is None:
            raise DatasetError(
                f"Dataset {dataset!r} has no array for {inp.shown} of {where}: it holds "
                f"{', '.join(keys) or 'nothing'}. Name each array after the model's input "
                f"({', '.join(i.name for i in inputs)}), e.g. np.savez(path, {inputs[0].name}=..., y=targets).")
        out[inp.name] = key
    return out


def feed(batch: Batch, inputs: Sequence[ModelInput], where: str, dataset: str = "the dataset"
         ) -> dict[str, np.ndarray]:
    """The batch as {model input name: array}, shapes and dtypes checked, dtypes kept (floats cast to float32)."""
    if isinstance(batch, Mapping):
        names = match_arrays(list(batch), inputs, where, dataset)
        arrays = {n: np.asarray(batch[k]) for n, k in names.items()}
    else:
        if len(inputs) != 1:
            raise DatasetError(
                f"Dataset {dataset!r} gives one array of samples, but {where} takes {len(inputs)} inputs "
                f"({', '.join(i.shown for i in inputs)}): use a .npz with one array per input, named after it, "
                "and the targets under y.")
        arrays = {inputs[0].name: np.asarray(batch)}
    return {inp.name: _checked(arrays[inp.name], inp, where, dataset) for inp in inputs}


def _checked(x: np.ndarray, inp: ModelInput, where: str, dataset: str) -> np.ndarray:
    want = tuple(None if (d is None or d < 0) else int(d) for d in list(inp.shape)[1:])
    got = tuple(x.shape[1:])
    if len(want) != len(got) or any(w is not None and w != g for w, g in zip(want, got)):
        shown = "(" + ", ".join("?" if w is None else str(w) for w in want) + ")"
        raise DatasetError(
            f"Dataset {dataset!r} gives samples of shape {got} for {inp.shown} of {where}, which takes "
            f"{shown} per sample (batch dimension left out). Resize or re-layout the data (e.g. --size H,W, "
            "--layout, --color) or pick the matching model.")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise DatasetError(f"Dataset {dataset!r} gives {x.dtype} data for {inp.shown} of {where}: numbers only.")
    if inp.takes_floats:
        if inp.dtype.startswith("float") and not np.issubdtype(x.dtype, np.floating):
            raise DatasetError(
                f"Dataset {dataset!r} gives {x.dtype} data for {inp.shown} of {where}: store floats in the "
                "file (or use an image folder with --scale).")
        return x.astype(np.float32) if x.dtype != np.float32 else x
    # integer or bool input: token ids, masks. Whole numbers only, kept as they are.
    if np.issubdtype(x.dtype, np.floating):
        raise DatasetError(
            f"Dataset {dataset!r} gives {x.dtype} data for {inp.shown} of {where}, which takes whole numbers "
            f"(token ids, masks): store the array as {inp.dtype} (e.g. x.astype(np.{inp.dtype})).")
    return x.astype(inp.dtype) if x.dtype != np.dtype(inp.dtype) else x


def check_value_ranges(arrays: Mapping[str, np.ndarray], inputs: Sequence[ModelInput],
                       ranges: Mapping[str, tuple[int, int]], where: str, dataset: str) -> None:
    """Token ids beyond an embedding's rows (``ranges``: input name -> (low, high) inclusive) are refused."""
    for inp in inputs:
        if inp.name not in ranges or inp.name not in arrays or not arrays[inp.name].size:
            continue
        lo, hi = ranges[inp.name]
        a = arrays[inp.name]
        amin, amax = int(a.min()), int(a.max())
        if amin < lo or amax > hi:
            raise DatasetError(
                f"Dataset {dataset!r} gives values {amin}..{amax} for {inp.shown} of {where}, which takes "
                f"{lo}..{hi} (it indexes an embedding of {hi + 1} rows): token ids beyond the vocabulary "
                "(wrong tokenizer, or a model trained on a smaller vocabulary?).")
