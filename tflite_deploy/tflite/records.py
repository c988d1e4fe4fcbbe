"""What the ``.tflite`` reader reports: frozen records (JSON through :meth:`ModelReport.to_dict`).

:class:`ModelReport` is the whole answer of :func:`~tflite_deploy.tflite.reader.inspect_model`;
the other records are its parts. :class:`~tflite_deploy.tflite.quant.Quantization` lives beside
the quantize math and is re-exported here.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Optional

from tflite_deploy.tflite.quant import (FLOAT_DTYPES, NUMPY_DTYPES, Quantization, dequantize,
                                        quantize)

__all__ = ["SCHEMA", "KINDS", "Quantization", "TensorInfo", "WeightTensor", "LayerWeights",
           "PerChannelTensor", "WeightDtype", "QuantizationSummary", "UnsupportedOp",
           "DelegateSupport", "ModelReport"]

SCHEMA = "tflite-deploy/inspect/1"

#: Quantization kinds, as :attr:`QuantizationSummary.kind` names them.
KINDS = ("float32", "float16", "dynamic", "weight-only", "int8", "int16x8", "mixed", "uint8",
         "other")


@dataclass(frozen=True)
class TensorInfo:
    """A tensor as the file declares it.

    ``shape`` is the ``shape_signature`` when the file has one (``-1`` marks a dynamic dimension,
    usually the batch); ``static_shape`` is the shape the interpreter allocates by default.
    """

    index: int
    name: str
    shape: tuple[int, ...]
    static_shape: tuple[int, ...]
    dtype: str
    quantization: Optional[Quantization] = None
    signature_name: Optional[str] = None
    subgraph: int = 0
    is_constant: bool = False
    nbytes: int = 0  # bytes of its constant buffer (0 for runtime tensors)
    is_variable: bool = False
    sparse: bool = False
    buffer: int = 0  # index into the model's buffers (0: none)
    external_buffer: int = 0  # id of an external buffer holding its data (0: none)
    block_size: int = 0  # blockwise quantization (AI Edge Quantizer int4/int8): values per block; 0: none
    block_scales: int = -1  # blockwise: index of the tensor holding the per-block scales (float16)

    @property
    def quantized(self) -> bool:
        return self.quantization is not None

    def quantize(self, values: Any) -> Any:
        """Float values to this tensor's dtype (identity cast for a float tensor)."""
        if self.dtype in FLOAT_DTYPES or self.quantization is None:
            if self.dtype not in FLOAT_DTYPES:
                raise ValueError(f"tensor {self.name!r} is {self.dtype} without quantization "
                                 "parameters: there is nothing to quantize with")
            import numpy as np

            return np.asarray(values, dtype=NUMPY_DTYPES.get(self.dtype, "float32"))
        return quantize(values, self.quantization, self.dtype)

    def dequantize(self, values: Any) -> Any:
        """This tensor's values to float32 (a float tensor is only cast)."""
        import numpy as np

        if self.dtype in FLOAT_DTYPES or self.quantization is None:
            return np.asarray(values, dtype=np.float32)
        return dequantize(values, self.quantization)


@dataclass(frozen=True)
class WeightTensor:
    """A constant an operator reads: a weight, a bias or another constant (shape, axis...)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    role: str  # "weight" | "bias" | "constant"
    num_scales: int = 0
    quantized_dimension: Optional[int] = None
    via: Optional[str] = None  # "DEQUANTIZE" when the layer gets it through a dequantize op
    external: bool = False  # bytes live outside the .tflite (external buffer)
    tensor_index: int = -1  # the constant's index in its subgraph (see constant_values)


@dataclass(frozen=True)
class LayerWeights:
    """One operator and the constant bytes it reads; named by its (first) output tensor."""

    index: int
    subgraph: int
    op: str
    name: str
    weight_bytes: int
    weights: tuple[WeightTensor, ...] = ()


@dataclass(frozen=True)
class PerChannelTensor:
    """A tensor quantized per axis (more than one scale)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    num_scales: int
    quantized_dimension: int
    channels: Optional[int]  # shape[quantized_dimension], None if out of range
    role: str
    used_by: tuple[str, ...] = ()

    @property
    def one_scale_per_channel(self) -> bool:
        return self.channels == self.num_scales


@dataclass(frozen=True)
class WeightDtype:
    """Constant tensors of one dtype and role: how many, and their bytes (shared buffers once)."""

    dtype: str
    role: str
    tensors: int
    bytes: int
    per_channel_tensors: int = 0


@dataclass(frozen=True)
class QuantizationSummary:
    """What the tensors say about how the model was quantized."""

    kind: str  # one of KINDS
    label: str
    input_dtypes: tuple[str, ...]
    output_dtypes: tuple[str, ...]
    weight_dtypes: tuple[WeightDtype, ...]
    activation_dtypes: dict[str, int]
    per_channel: bool
    hybrid_ops: tuple[str, ...] = ()
    float_ops: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def int8_io(self) -> bool:
        io = set(self.input_dtypes) | set(self.output_dtypes)
        return bool(self.input_dtypes) and io <= {"int8"}


@dataclass(frozen=True)
class UnsupportedOp:
    op: str
    count: int
    reason: str
    layers: tuple[str, ...] = ()


@dataclass(frozen=True)
class DelegateSupport:
    """Whether a backend can run every op of the model, by its published op list."""

    target: str  # "int8" | "int16x8" | "gpu" | "xnnpack"
    title: str
    supported: bool
    ops_checked: int
    unsupported: tuple[UnsupportedOp, ...]
    source: str
    note: str = ""

    @property
    def unsupported_ops(self) -> tuple[str, ...]:
        return tuple(sorted({u.op for u in self.unsupported}))

    @property
    def ops_supported(self) -> int:
        return self.ops_checked - sum(u.count for u in self.unsupported)


@dataclass(frozen=True)
class ModelReport:
    """Everything :func:`inspect_model` read from one ``.tflite`` file."""

    path: str
    file_size: int
    schema_version: int
    description: str
    subgraphs: int
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    op_count: int
    op_histogram: dict[str, int]
    custom_ops: tuple[str, ...]
    tensor_count: int
    tensor_dtypes: dict[str, int]
    layers: tuple[LayerWeights, ...]
    constant_bytes: int  # every constant buffer, counted once
    weight_bytes: int  # constants holding real values (weights and biases), counted once
    quantization_param_bytes: int  # scales (float32) and zero points (int64) of every tensor
    per_channel_tensors: tuple[PerChannelTensor, ...]
    quantization: QuantizationSummary
    delegates: tuple[DelegateSupport, ...]
    signatures: tuple[str, ...] = ()
    metadata: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    #: Every tensor of every subgraph, with its full quantization (left out of ``to_dict()``
    #: unless asked for: per-channel scales make it long).
    tensors: tuple[TensorInfo, ...] = field(default=(), repr=False, compare=False)

    @property
    def kind(self) -> str:
        return self.quantization.kind

    def find_tensor(self, name: str, subgraph: int = 0) -> TensorInfo:
        """The tensor called ``name`` (in ``subgraph``); KeyError if there is none."""
        for t in self.tensors:
            if t.name == name and t.subgraph == subgraph:
                return t
        raise KeyError(name)

    def delegate(self, target: str) -> DelegateSupport:
        for d in self.delegates:
            if d.target == target:
                return d
        raise KeyError(target)

    def to_dict(self, include_tensors: bool = False) -> dict[str, Any]:
        """A JSON-ready dict (``json.dumps`` works on it as it is)."""
        d = _plain(dataclasses.asdict(dataclasses.replace(self, tensors=())))
        d = {"schema": SCHEMA, **d}
        if include_tensors:
            d["tensors"] = _plain([dataclasses.asdict(t) for t in self.tensors])
        else:
            del d["tensors"]
        d["quantization"]["int8_io"] = self.quantization.int8_io
        for dd, obj in zip(d["delegates"], self.delegates):
            dd["unsupported_ops"] = list(obj.unsupported_ops)
        return d

    def to_json(self, include_tensors: bool = False, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(include_tensors), **kwargs)


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return str(obj)
    return obj
