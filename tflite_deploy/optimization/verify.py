"""Check what an optimization left in the ``.tflite`` file itself, not in the Keras model.

For every kernel (the constant weights of CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED,
TRANSPOSE_CONV, CONV_3D; float16 weights reached through a DEQUANTIZE are followed) it counts zeros
(sparsity) and unique values. An int8 kernel with one scale per output channel is counted per
channel: each channel has its own scale, so 16 clusters become up to 16 values *per channel* but
many more across the kernel; a per-tensor or float kernel is counted whole. Zeros of an int8 kernel
are its zero point.

The file is read by :mod:`tflite_deploy.tflite.reader` (verified flatbuffer, no TensorFlow, no
interpreter), which also says which constant is each layer's kernel.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from tflite_deploy.tflite.quant import Quantization

KERNEL_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "CONV_3D"})


@dataclass(frozen=True)
class KernelStats:
    """One kernel in the file."""

    op: str                     # CONV_2D, FULLY_CONNECTED, ...
    op_name: str                # the op's output tensor name (the converter puts the Keras layer in it)
    tensor: str                 # the weight tensor's name
    shape: tuple[int, ...]
    dtype: str
    size: int
    zeros: int
    unique: int                 # over the whole kernel
    channel_axis: Optional[int]  # set for per-channel quantized kernels
    unique_per_channel_max: Optional[int]

    @property
    def sparsity(self) -> float:
        return self.zeros / self.size if self.size else 0.0

    @property
    def unique_values(self) -> int:
        """Per output channel (max over channels) for per-channel int8 kernels, per kernel otherwise."""
        return self.unique_per_channel_max if self.unique_per_channel_max is not None else self.unique

    @property
    def per_channel(self) -> bool:
        return self.channel_axis is not None

    def belongs_to(self, layer: str) -> bool:
        """Whether the Keras layer ``layer`` made this kernel (QAT layers are named ``quant_<layer>``)."""
        parts = {c for name in (self.tensor, self.op_name) for p in name.split(";") for c in p.split("/")}
        return layer in parts or f"quant_{layer}" in parts

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "op_name": self.op_name, "tensor": self.tensor, "shape": list(self.shape),
                "dtype": self.dtype, "size": self.size, "zeros": self.zeros, "sparsity": self.sparsity,
                "unique": self.unique, "per_channel": self.per_channel,
                "unique_per_channel_max": self.unique_per_channel_max, "unique_values": self.unique_values}


@dataclass(frozen=True)
class Verification:
    """Weights of one ``.tflite`` file, and its raw and gzipped size."""

    path: str
    size_bytes: int
    gzip_bytes: int
    kernels: tuple[KernelStats, ...]

    def select(self, layers: Optional[Iterable[str]] = None) -> list[KernelStats]:
        """Kernels made by the given Keras layers (all kernels when None)."""
        if layers is None:
            return list(self.kernels)
        names = list(layers)
        return [k for k in self.kernels if any(k.belongs_to(n) for n in names)]

    def sparsity(self, layers: Optional[Iterable[str]] = None) -> Optional[float]:
        """Zeros over weights, pooled over the selected kernels; None when none is selected."""
        ks = self.select(layers)
        size = sum(k.size for k in ks)
        return sum(k.zeros for k in ks) / size if size else None

    def max_unique(self, layers: Optional[Iterable[str]] = None) -> Optional[int]:
        """The largest unique-value count (per channel where per-channel) over the selected kernels."""
        ks = self.select(layers)
        return max((k.unique_values for k in ks), default=None)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size_bytes": self.size_bytes, "gzip_bytes": self.gzip_bytes,
                "sparsity": self.sparsity(), "kernels": [k.to_dict() for k in self.kernels]}


def verify_tflite(path: str | Path) -> Verification:
    """Read the kernels of a ``.tflite`` file and measure them (see the module docs)."""
    from tflite_deploy.tflite.reader import constant_values, inspect_model

    p = Path(path)
    report = inspect_model(p)  # verifies the flatbuffer; a bad file is a ModelError naming it
    values = constant_values(p)
    tensors = {(t.subgraph, t.index): t for t in report.tensors}
    kernels = []
    for layer in report.layers:
        if layer.op not in KERNEL_OPS:
            continue
        # the kernel is the layer's first weight (followed through DEQUANTIZE for float16 files)
        w = next((w for w in layer.weights if w.role == "weight"), None)
        arr = None if w is None else values.get((layer.subgraph, w.tensor_index))
        if arr is None:  # sparse-encoded or external storage: not a dense kernel to count
            continue
        t = tensors[(layer.subgraph, w.tensor_index)]
        kernels.append(_stats(layer.op, layer.name, t.name, arr, t.quantization, t.dtype))
    data = p.read_bytes()
    return Verification(str(p), len(data), len(gzip.compress(data, compresslevel=9, mtime=0)), tuple(kernels))


def _stats(op: str, op_name: str, tensor: str, w: np.ndarray, q: Optional[Quantization], dtype: str
           ) -> KernelStats:
    axis = q.quantized_dimension if q is not None and q.per_channel else None
    zps = q.zero_points if q is not None else ()
    if not zps:
        zero = np.zeros((), w.dtype)
    elif axis is not None and len(zps) == w.shape[axis]:
        shape = [1] * w.ndim
        shape[axis] = -1
        zero = np.asarray(zps).reshape(shape).astype(w.dtype)
    else:
        zero = np.asarray(zps[0]).astype(w.dtype)
    zeros = int(np.count_nonzero(w == zero))
    per_channel = None
    if axis is not None:
        moved = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
        per_channel = max(len(np.unique(row)) for row in moved)
    return KernelStats(op, op_name, tensor, tuple(w.shape), dtype, int(w.size), zeros, int(len(np.unique(w))),
                       axis, per_channel)


def layer_rows(v: Verification, layers: Optional[Sequence[str]] = None) -> list[dict[str, Any]]:
    """Rows for a per-layer table: Keras layer (when known), op, sparsity, unique values."""
    rows = []
    for k in v.kernels:
        owner = next((n for n in (layers or ()) if k.belongs_to(n)), None)
        rows.append({"layer": owner or k.op_name.split(";")[0], **k.to_dict()})
    return rows
