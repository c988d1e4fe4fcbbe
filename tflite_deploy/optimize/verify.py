"""Check what an optimization left in the ``.tflite`` file itself, not in the Keras model.

For every kernel (the constant weights of CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED,
TRANSPOSE_CONV, CONV_3D; float16 weights reached through a DEQUANTIZE are followed) it counts zeros
(sparsity) and unique values. An int8 kernel with one scale per output channel is counted per
channel: each channel has its own scale, so 16 clusters become up to 16 values *per channel* but
many more across the kernel; a per-tensor or float kernel is counted whole. Zeros of an int8 kernel
are its zero point.

The file is read with the flatbuffer schema that ships inside ``ai-edge-litert``
(``ai_edge_litert.schema_py_generated``): no TensorFlow, no interpreter.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from tflite_deploy.errors import ModelError

_KERNEL_INPUT = {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1, "TRANSPOSE_CONV": 1, "CONV_3D": 1}
_NP = {"FLOAT32": np.float32, "FLOAT16": np.float16, "INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16,
       "INT32": np.int32, "FLOAT64": np.float64, "INT64": np.int64}


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
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ModelError(f"Model {p} cannot be read: {e.strerror or e}") from None
    try:
        kernels = tuple(_kernels(data))
    except ModelError as e:
        raise ModelError(f"Model {p}: {e}") from None
    except Exception as e:  # a corrupt flatbuffer raises anything from struct/IndexError
        raise ModelError(f"Model {p} is not a readable .tflite file ({type(e).__name__}: {e}).") from None
    return Verification(str(p), len(data), len(gzip.compress(data, compresslevel=9, mtime=0)), kernels)


def _enum(cls: Any) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


def _kernels(data: bytes) -> Iterable[KernelStats]:
    from ai_edge_litert import schema_py_generated as s

    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelError("not a .tflite file (no TFL3 identifier)")
    model = s.Model.GetRootAsModel(data, 0)
    opnames, types = _enum(s.BuiltinOperator), _enum(s.TensorType)
    codes = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        codes.append(opnames.get(max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()), "CUSTOM"))
    for g_i in range(model.SubgraphsLength()):
        g = model.Subgraphs(g_i)
        producer = {}
        for i in range(g.OperatorsLength()):
            op = g.Operators(i)
            for j in range(op.OutputsLength()):
                producer[op.Outputs(j)] = op
        for i in range(g.OperatorsLength()):
            op = g.Operators(i)
            code = codes[op.OpcodeIndex()]
            slot = _KERNEL_INPUT.get(code)
            if slot is None or op.InputsLength() <= slot or op.Inputs(slot) < 0:
                continue
            t_index = op.Inputs(slot)
            values = _constant(model, g, t_index, types)
            if values is None and t_index in producer:  # float16 / sparse weights: DEQUANTIZE(const)
                src = producer[t_index]
                if codes[src.OpcodeIndex()] in ("DEQUANTIZE", "DENSIFY") and src.InputsLength():
                    t_index = src.Inputs(0)
                    values = _constant(model, g, t_index, types)
            if values is None:
                continue
            t = g.Tensors(t_index)
            out_name = g.Tensors(op.Outputs(0)).Name().decode(errors="replace") if op.OutputsLength() else ""
            yield _stats(code, out_name, t.Name().decode(errors="replace"), values, t.Quantization(),
                         types.get(t.Type(), "?"))


def _constant(model: Any, g: Any, t_index: int, types: dict[int, str]) -> Optional[np.ndarray]:
    t = g.Tensors(t_index)
    if t.Sparsity() is not None:
        return None  # sparse-encoded storage: not a dense kernel to count
    buf = model.Buffers(t.Buffer())
    raw: Optional[bytes] = None
    if buf is not None and buf.DataLength():
        raw = buf.DataAsNumpy().tobytes()
    elif buf is not None and buf.Offset() > 1:  # large models keep buffers after the flatbuffer
        raw = bytes(model._tab.Bytes[buf.Offset():buf.Offset() + buf.Size()])
    if not raw:
        return None
    dtype = _NP.get(types.get(t.Type(), ""))
    if dtype is None:
        return None
    shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else (len(raw) // np.dtype(dtype).itemsize,)
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def _stats(op: str, op_name: str, tensor: str, w: np.ndarray, q: Any, dtype: str) -> KernelStats:
    scales = q.ScaleLength() if q is not None else 0
    zps = q.ZeroPointAsNumpy() if q is not None and q.ZeroPointLength() else None
    axis = int(q.QuantizedDimension()) if q is not None and scales > 1 else None
    if zps is None or not len(zps):
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
