"""Check what an optimization left in the ``.tflite`` file itself, not in the Keras model.

For every kernel (the constant weights of CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED,
TRANSPOSE_CONV, CONV_3D; float16 weights reached through a DEQUANTIZE are followed) it counts zeros
(sparsity) and unique values. An int8 kernel with one scale per output channel is counted per
channel: each channel has its own scale, so 16 clusters become up to 16 values *per channel* but
many more across the kernel; a per-tensor or float kernel is counted whole. Zeros of an int8 kernel
are its zero point.

The file is read by :mod:`tflite_deploy.tflite.reader` (verified flatbuffer, no TensorFlow, no
interpreter), which also says which constant is each layer's kernel.

Which Keras layer made a kernel is read from the name the converter gives the weight tensor,
``<model>/<layer>/<TF op>`` (``model/quant_<layer>/Conv2D`` after QAT). The op's own name is no
guide: when BatchNorm and an activation are folded into a conv, it lists the ReLU and the BN
first; and a layer name may itself contain ``/`` (``expanded_conv_3/squeeze_excite/Conv`` in
MobileNetV3), so a kernel is matched to the whole layer name, never to one component of it.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from tflite_deploy.tflite.quant import Quantization

KERNEL_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "CONV_3D"})
#: TF ops that read a Keras layer's kernel: the last part of a weight tensor's name (``model/conv/Conv2D``).
_KERNEL_TF_OPS = frozenset({"Conv1D", "Conv2D", "Conv3D", "depthwise", "MatMul", "BiasAdd", "convolution",
                            "conv2d_transpose", "conv1d_transpose", "conv3d_transpose", "Conv2DBackpropInput"})
#: Scopes a layer's call opens under its own name before the kernel op (Dense on 3-D input).
_INNER_SCOPES = frozenset({"Tensordot", "conv1d", "Conv1D"})
_QAT_PREFIX = "quant_"


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

    @property
    def layers(self) -> tuple[str, ...]:
        """The Keras layer(s) whose kernel op reads this weight, from the tensor names (see module docs).

        Usually one; more only when the converter shared one constant between layers.
        """
        out: list[str] = []
        for name in (self.tensor, self.op_name):  # the weight's own name first; the op's as a fallback
            for scope in _kernel_scopes(name):
                if scope not in out:
                    out.append(scope)
            if out:
                break
        return tuple(out)

    @property
    def layer(self) -> str:
        """The Keras layer that made this kernel, or the op's name when the converter kept none."""
        return self.layers[0] if self.layers else self.op_name.split(";")[0]

    def belongs_to(self, layer: str) -> bool:
        """Whether the Keras layer ``layer`` (its whole name) made this kernel (``quant_<layer>`` after QAT)."""
        return layer in self.layers or _QAT_PREFIX + layer in self.layers

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "op_name": self.op_name, "tensor": self.tensor, "layer": self.layer,
                "shape": list(self.shape), "dtype": self.dtype, "size": self.size, "zeros": self.zeros, "sparsity": self.sparsity,
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


def _kernel_scopes(name: str) -> list[str]:
    """Layer names in a tensor name: ``m/a/b/Conv2D;m/a/b_bn/FusedBatchNormV3`` -> ``["a/b"]``.

    A part names a layer when it ends in a kernel op; the first component is the model's scope.
    QAT layers keep their ``quant_`` prefix here (:meth:`KernelStats.belongs_to` accepts both).
    """
    out = []
    for part in name.split(";"):
        comps = part.split("/")
        if len(comps) < 3 or re.sub(r"\d+$", "", comps[-1]) not in _KERNEL_TF_OPS:
            continue
        comps = comps[1:-1]
        while len(comps) > 1 and comps[-1] in _INNER_SCOPES:
            comps = comps[:-1]
        out.append("/".join(comps))
    return out


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
        rows.append({**k.to_dict(), "layer": owner or k.layer})
    return rows
