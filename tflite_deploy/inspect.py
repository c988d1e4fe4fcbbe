"""Read a ``.tflite`` file without TensorFlow: I/O, ops, weights, quantization, delegate support.

``inspect_model(path)`` parses the flatbuffer with the schema reader that ships inside
``ai-edge-litert`` (``ai_edge_litert.schema_py_generated``, pure Python over ``flatbuffers``), so it
starts in a fraction of a second and never imports TensorFlow. Before walking the model it checks
the ``TFL3`` file identifier and verifies every table, vector and string it is going to read lies
inside the file, so a truncated, corrupt or foreign file is a
:class:`~tflite_deploy.errors.ModelError` naming the file, never a traceback, a hang or a huge
allocation.

Everything in the report is derived from the tensors in the file, never from its name:

* inputs/outputs with shape (``shape_signature``, ``-1`` for a dynamic dimension), dtype and
  quantization (scales, zero points, quantized dimension), and :func:`quantize` /
  :func:`dequantize` helpers that apply them the way the TFLite kernels do;
* the op histogram (builtin names, with ``deprecated_builtin_code`` handled; custom ops by name)
  and the tensor dtype histogram;
* per operator ("layer", named by its output tensor) the constant buffers it reads, with
  float16/int8 weights that reach it through a ``DEQUANTIZE``/``DENSIFY`` of a constant counted
  for the layer that uses them; totals count every buffer once;
* per-channel quantized tensors (more than one scale) and a summary of weight dtypes;
* the quantization kind (float32, float16, dynamic, weight-only, int8, int16x8, mixed, uint8);
* whether every op has int8 / int16x8 builtin kernels and is taken by the GPU and XNNPACK
  delegates, against the published lists in ``tflite_deploy/data/op_support.json`` (sources cited
  there).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import mmap
import struct
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from tflite_deploy.errors import ModelError

SCHEMA = "tflite-deploy/inspect/1"

#: Quantization kinds, as :attr:`QuantizationSummary.kind` names them.
KINDS = ("float32", "float16", "dynamic", "weight-only", "int8", "int16x8", "mixed", "uint8",
         "other")

_FLOAT_DTYPES = frozenset({"float32", "float16", "bfloat16", "float64"})
_NUMPY_DTYPES = {
    "float32": "float32", "float16": "float16", "float64": "float64", "int8": "int8",
    "uint8": "uint8", "int16": "int16", "uint16": "uint16", "int32": "int32", "uint32": "uint32",
    "int64": "int64", "uint64": "uint64", "bool": "bool",
}
# Input slot of the bias for ops that have one.
_BIAS_INPUT = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "CONV_3D": 2,
               "TRANSPOSE_CONV": 3}
# Ops that only turn a constant into another form of the same weights.
_WEIGHT_UNPACK_OPS = frozenset({"DEQUANTIZE", "DENSIFY"})
_CONVERSION_OPS = frozenset({"QUANTIZE", "DEQUANTIZE"})


# --------------------------------------------------------------------------------------------
# Result types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quantization:
    """Affine quantization of a tensor: ``real = (q - zero_point) * scale``.

    One scale means per-tensor; several mean per-axis (per-channel) along ``quantized_dimension``.
    """

    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    quantized_dimension: int = 0

    @property
    def num_scales(self) -> int:
        return len(self.scales)

    @property
    def per_channel(self) -> bool:
        return len(self.scales) > 1

    @property
    def scale(self) -> float:
        """The scale of a per-tensor quantization (raises for per-channel)."""
        if len(self.scales) != 1:
            raise ValueError(f"per-channel quantization has {len(self.scales)} scales, not one")
        return self.scales[0]

    @property
    def zero_point(self) -> int:
        if len(self.scales) != 1:
            raise ValueError(f"per-channel quantization has {len(self.scales)} scales, not one")
        return self.zero_points[0] if self.zero_points else 0


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

    @property
    def quantized(self) -> bool:
        return self.quantization is not None

    def quantize(self, values: Any) -> Any:
        """Float values to this tensor's dtype (identity cast for a float tensor)."""
        if self.dtype in _FLOAT_DTYPES or self.quantization is None:
            if self.dtype not in _FLOAT_DTYPES:
                raise ValueError(f"tensor {self.name!r} is {self.dtype} without quantization "
                                 "parameters: there is nothing to quantize with")
            import numpy as np

            return np.asarray(values, dtype=_NUMPY_DTYPES.get(self.dtype, "float32"))
        return quantize(values, self.quantization, self.dtype)

    def dequantize(self, values: Any) -> Any:
        """This tensor's values to float32 (a float tensor is only cast)."""
        import numpy as np

        if self.dtype in _FLOAT_DTYPES or self.quantization is None:
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


# --------------------------------------------------------------------------------------------
# (De)quantization helpers
# --------------------------------------------------------------------------------------------


def _broadcast_params(quant: Quantization, ndim: int):
    import numpy as np

    scales = np.asarray(quant.scales, dtype=np.float64)
    zps = np.asarray(quant.zero_points or (0,) * len(quant.scales), dtype=np.float64)
    if zps.size == 1 and scales.size > 1:
        zps = np.repeat(zps, scales.size)
    if scales.size > 1:
        axis = quant.quantized_dimension
        if not 0 <= axis < ndim:
            raise ValueError(f"quantized dimension {axis} is out of range for a {ndim}-D array")
        shape = [1] * ndim
        shape[axis] = scales.size
        scales = scales.reshape(shape)
        zps = zps.reshape(shape)
    return scales, zps


def dequantize(values: Any, quant: Quantization) -> Any:
    """Quantized values to float32: ``(q - zero_point) * scale``, per axis when per-channel."""
    import numpy as np

    q = np.asarray(values)
    if not quant.scales:
        raise ValueError("no scales: the tensor is not quantized")
    scales, zps = _broadcast_params(quant, q.ndim)
    return ((q.astype(np.float64) - zps) * scales).astype(np.float32)


def quantize(values: Any, quant: Quantization, dtype: str = "int8") -> Any:
    """Float values to ``dtype`` with ``quant``: ``round(x / scale) + zero_point``, clipped.

    Rounds half away from zero, as TFLite's ``QUANTIZE`` kernel does (``std::round``).
    """
    import numpy as np

    if not quant.scales:
        raise ValueError("no scales: the tensor is not quantized")
    np_dtype = np.dtype(_NUMPY_DTYPES.get(dtype, dtype))
    if np_dtype.kind not in "iu":
        raise ValueError(f"cannot quantize to {dtype}: not an integer dtype")
    x = np.asarray(values, dtype=np.float32)
    scales, zps = _broadcast_params(quant, x.ndim)
    v = (x / scales.astype(np.float32)).astype(np.float64)  # float32 division, as the kernel does
    v = np.sign(v) * np.floor(np.abs(v) + 0.5) + zps
    info = np.iinfo(np_dtype)
    return np.clip(v, info.min, info.max).astype(np_dtype)


# --------------------------------------------------------------------------------------------
# Bounds-checking verifier (run before any generated accessor touches the bytes)
# --------------------------------------------------------------------------------------------


class _Corrupt(Exception):
    """The flatbuffer does not hold together; the message says where."""


# Field specs: field id -> kind. Only the fields this module reads are listed (and verified).
# Kinds: ("scalar", size), ("str",), ("vec", elem_size), ("table", spec-or-None), ("tables", spec)
_QUANT_SPEC = {2: ("vec", 4), 3: ("vec", 8), 6: ("scalar", 4)}
_TENSOR_SPEC = {0: ("vec", 4), 1: ("scalar", 1), 2: ("scalar", 4), 3: ("str",),
                4: ("table", _QUANT_SPEC), 5: ("scalar", 1), 6: ("table", None), 7: ("vec", 4),
                10: ("scalar", 4)}
_OPERATOR_SPEC = {0: ("scalar", 4), 1: ("vec", 4), 2: ("vec", 4)}
_SUBGRAPH_SPEC = {0: ("tables", _TENSOR_SPEC), 1: ("vec", 4), 2: ("vec", 4),
                  3: ("tables", _OPERATOR_SPEC), 4: ("str",)}
_OPCODE_SPEC = {0: ("scalar", 1), 1: ("str",), 2: ("scalar", 4), 3: ("scalar", 4)}
_BUFFER_SPEC = {0: ("vec", 1), 1: ("scalar", 8), 2: ("scalar", 8)}
_METADATA_SPEC = {0: ("str",), 1: ("scalar", 4)}
_TENSORMAP_SPEC = {0: ("str",), 1: ("scalar", 4)}
_SIGDEF_SPEC = {0: ("tables", _TENSORMAP_SPEC), 1: ("tables", _TENSORMAP_SPEC), 2: ("str",),
                4: ("scalar", 4)}
_EXTBUF_SPEC = {0: ("scalar", 4), 1: ("scalar", 4), 2: ("scalar", 8), 3: ("scalar", 8)}
_MODEL_SPEC = {0: ("scalar", 4), 1: ("tables", _OPCODE_SPEC), 2: ("tables", _SUBGRAPH_SPEC),
               3: ("str",), 4: ("tables", _BUFFER_SPEC), 6: ("tables", _METADATA_SPEC),
               7: ("tables", _SIGDEF_SPEC), 9: ("tables", _EXTBUF_SPEC)}
_SPEC_NAMES = {id(_QUANT_SPEC): "quantization", id(_TENSOR_SPEC): "tensor",
               id(_OPERATOR_SPEC): "operator", id(_SUBGRAPH_SPEC): "subgraph",
               id(_OPCODE_SPEC): "operator code", id(_BUFFER_SPEC): "buffer",
               id(_METADATA_SPEC): "metadata", id(_TENSORMAP_SPEC): "signature tensor",
               id(_SIGDEF_SPEC): "signature", id(_EXTBUF_SPEC): "external buffer",
               id(_MODEL_SPEC): "model"}


class _Verifier:
    def __init__(self, buf: Any, size: int) -> None:
        self.buf = buf
        self.size = size
        # Every distinct table takes at least 4 bytes: more visits than that means offsets that
        # point at the same tables over and over (a crafted or scrambled file).
        self.budget = size // 4 + 64

    def _read(self, fmt: str, n: int, pos: int, what: str) -> int:
        if pos < 0 or pos + n > self.size:
            raise _Corrupt(f"{what} at byte {pos} lies outside the file")
        return struct.unpack_from(fmt, self.buf, pos)[0]

    def table(self, pos: int, spec: Optional[dict], what: str) -> None:
        self.budget -= 1
        if self.budget < 0:
            raise _Corrupt("its offsets refer to more tables than the file can hold")
        soff = self._read("<i", 4, pos, what)
        vt = pos - soff
        vt_len = self._read("<H", 2, vt, f"the field table of a {what}")
        obj_len = self._read("<H", 2, vt + 2, f"the field table of a {what}")
        if vt_len < 4 or vt_len % 2 or vt + vt_len > self.size:
            raise _Corrupt(f"the field table of a {what} at byte {vt} is malformed")
        if obj_len < 4 or pos + obj_len > self.size:
            raise _Corrupt(f"a {what} at byte {pos} runs past the end of the file")
        if not spec:
            return
        for fid, kind in spec.items():
            slot = 4 + 2 * fid
            if slot + 2 > vt_len:
                continue
            voff = struct.unpack_from("<H", self.buf, vt + slot)[0]
            if voff == 0:
                continue
            width = kind[1] if kind[0] == "scalar" else 4
            if voff + width > obj_len:
                raise _Corrupt(f"a field of a {what} at byte {pos} lies outside it")
            fpos = pos + voff
            if kind[0] == "scalar":
                continue
            target = fpos + self._read("<I", 4, fpos, f"an offset in a {what}")
            if kind[0] == "table":
                sub = kind[1]
                self.table(target, sub, _SPEC_NAMES.get(id(sub), what + " field"))
                continue
            n = self._read("<I", 4, target, f"a vector length in a {what}")
            start = target + 4
            if kind[0] == "str":
                if n > self.size - start:
                    raise _Corrupt(f"a string in a {what} at byte {target} runs past the end "
                                   f"of the file ({n} bytes)")
            elif kind[0] == "vec":
                if n * kind[1] > self.size - start:
                    raise _Corrupt(f"a vector in a {what} at byte {target} runs past the end of "
                                   f"the file ({n} elements)")
            elif kind[0] == "tables":
                sub = kind[1]
                sub_name = _SPEC_NAMES.get(id(sub), "table")
                if n * 4 > self.size - start:
                    raise _Corrupt(f"the list of {n} {sub_name}s at byte {target} runs past the "
                                   "end of the file")
                for i in range(n):
                    ep = start + 4 * i
                    self.table(ep + struct.unpack_from("<I", self.buf, ep)[0], sub, sub_name)


# --------------------------------------------------------------------------------------------
# Reading the file
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _schema():
    from ai_edge_litert import schema_py_generated as s

    return s


@functools.lru_cache(maxsize=1)
def _enum_names() -> tuple[dict[int, str], dict[int, str]]:
    s = _schema()
    ops = {v: k for k, v in vars(s.BuiltinOperator).items()
           if not k.startswith("_") and isinstance(v, int)}
    types = {v: k.lower() for k, v in vars(s.TensorType).items()
             if not k.startswith("_") and isinstance(v, int)}
    return ops, types


@functools.lru_cache(maxsize=1)
def load_op_support() -> dict[str, Any]:
    """The published op lists (``tflite_deploy/data/op_support.json``)."""
    from importlib import resources

    text = resources.files("tflite_deploy").joinpath("data", "op_support.json").read_text("utf-8")
    return json.loads(text)


def _sniff(head: bytes) -> str:
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return ("it is an HDF5 file (a Keras .h5 model or weights), not a TensorFlow Lite "
                "model: convert it to .tflite first")
    if head.startswith(b"PK\x03\x04"):
        return ("it is a zip archive (a Keras .keras model?), not a TensorFlow Lite model: "
                "convert it to .tflite first")
    if len(head) >= 12 and head[8:12] == b"TFL3":
        return ("it is a size-prefixed flatbuffer; TensorFlow Lite reads plain ones (drop the "
                "first 4 bytes)")
    text_like = sum(32 <= c < 127 or c in (9, 10, 13) for c in head)
    if head and text_like >= 0.95 * len(head):
        preview = head[:24].decode("ascii", "replace").split("\n")[0]
        return (f"it looks like a text file (it starts with {preview!r}), not a TensorFlow Lite "
                "model")
    return (f"it has no 'TFL3' file identifier at byte 4 (found {bytes(head[4:8])!r}), so it is "
            "not a TensorFlow Lite flatbuffer")


class _Source:
    """The file's bytes: memory-mapped, so a large model is not read into memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ModelError(f"{path}: no such file. Give the path of a .tflite model.") from None
        except OSError as e:
            raise ModelError(f"{path}: cannot be read ({e.strerror or e}).") from None
        if path.is_dir():
            hint = (" It looks like a SavedModel directory: convert it to .tflite first."
                    if (path / "saved_model.pb").exists() else "")
            raise ModelError(f"{path} is a directory, not a .tflite model file.{hint}")
        self.size = st.st_size
        self._file = None
        self._map: Optional[mmap.mmap] = None
        try:
            self._file = open(path, "rb")
            head = self._file.read(512)
            if len(head) < 8 or head[4:8] != b"TFL3":
                if len(head) < 8:
                    why = (f"it is only {len(head)} bytes long, too short to be a TensorFlow Lite "
                           "model" if head else "it is empty")
                else:
                    why = _sniff(head)
                raise ModelError(f"{path} is not a TensorFlow Lite model: {why}.")
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as e:
            self.close()
            raise ModelError(f"{path}: cannot be read ({e.strerror or e}).") from None
        except ModelError:
            self.close()
            raise

    @property
    def buf(self) -> mmap.mmap:
        assert self._map is not None
        return self._map

    def close(self) -> None:
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:  # a view is still alive somewhere; the GC will close it
                pass
            self._map = None
        if self._file is not None:
            self._file.close()
            self._file = None


def inspect_model(path: Union[str, Path]) -> ModelReport:
    """Read the ``.tflite`` file at ``path`` and describe it (see the module docstring).

    Raises :class:`~tflite_deploy.errors.ModelError` for a missing, foreign, truncated or corrupt
    file.
    """
    path = Path(path)
    src = _Source(path)
    try:
        buf, size = src.buf, src.size
        try:
            root = struct.unpack_from("<I", buf, 0)[0]
            _Verifier(buf, size).table(root, _MODEL_SPEC, "model")
            return _Reader(path, buf, size).report()
        except _Corrupt as e:
            raise ModelError(_corrupt_message(path, size, str(e))) from None
        except (struct.error, ValueError, IndexError, OverflowError, MemoryError) as e:
            raise ModelError(_corrupt_message(path, size, f"{type(e).__name__}: {e}")) from None
    finally:
        src.close()


def constant_values(path: Union[str, Path]) -> dict[tuple[int, int], Any]:
    """The values of every dense constant tensor, keyed by (subgraph, tensor index).

    The file is verified as :func:`inspect_model` does first. Sparse-encoded and external tensors
    are left out (their bytes are not a dense array). Arrays are copies: the file is closed after.
    """
    import numpy as np

    path = Path(path)
    report = inspect_model(path)
    src = _Source(path)
    try:
        model = _schema().Model.GetRootAs(src.buf, 0)
        out: dict[tuple[int, int], Any] = {}
        for t in report.tensors:
            dtype = _NUMPY_DTYPES.get(t.dtype)
            if not t.is_constant or t.sparse or t.external_buffer or not t.buffer or dtype is None:
                continue
            b = model.Buffers(t.buffer)
            off = int(b.Offset())
            raw = bytes(src.buf[off:off + int(b.Size())]) if off > 1 else b.DataAsNumpy().tobytes()
            shape = t.static_shape or (len(raw) // np.dtype(dtype).itemsize,)
            out[(t.subgraph, t.index)] = np.frombuffer(raw, dtype=dtype)[::-1].reshape(shape)
        return out
    finally:
        src.close()


def _corrupt_message(path: Path, size: int, detail: str) -> str:
    return (f"{path} is not a readable TensorFlow Lite model: it starts like one but is truncated "
            f"or corrupt ({detail}; the file is {size} bytes). Export or copy it again; a "
            "partial download or an interrupted write looks like this.")


# --------------------------------------------------------------------------------------------
# Walking the verified model
# --------------------------------------------------------------------------------------------


@dataclass
class _Op:
    index: int
    subgraph: int
    name: str
    custom: bool
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    label: str = ""


def _text(b: Optional[bytes]) -> str:
    return b.decode("utf-8", "replace") if b else ""


def _ints(obj: Any, length_fn: str, numpy_fn: str) -> tuple[int, ...]:
    if getattr(obj, length_fn)() == 0:
        return ()
    return tuple(int(v) for v in getattr(obj, numpy_fn)())


class _Reader:
    def __init__(self, path: Path, buf: Any, size: int) -> None:
        self.path = path
        self.buf = buf
        self.size = size
        self.s = _schema()
        self.model = self.s.Model.GetRootAs(buf, 0)
        self.notes: list[str] = []

    # -- raw tables ---------------------------------------------------------------------------
    def _buffers(self) -> list[int]:
        """Bytes of data of each buffer (inline, or stored after the flatbuffer)."""
        m = self.model
        out: list[int] = []
        for i in range(m.BuffersLength()):
            b = m.Buffers(i)
            off, sz = int(b.Offset()), int(b.Size())
            if off > 1:  # data stored after the flatbuffer (models over 2 GB)
                if off + sz > self.size:
                    raise _Corrupt(f"buffer {i} points at bytes {off}..{off + sz}, past the end "
                                   "of the file")
                out.append(sz)
            else:
                out.append(int(b.DataLength()))
        return out

    def _opcodes(self) -> list[tuple[str, bool]]:
        op_names, _ = _enum_names()
        custom_code = self.s.BuiltinOperator.CUSTOM
        out = []
        for i in range(self.model.OperatorCodesLength()):
            oc = self.model.OperatorCodes(i)
            code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
            if code == custom_code:
                out.append((_text(oc.CustomCode()) or "CUSTOM", True))
            else:
                out.append((op_names.get(code, f"BUILTIN_{code}"), False))
        return out

    def _signature_names(self) -> tuple[list[str], dict[int, str]]:
        keys: list[str] = []
        names: dict[int, str] = {}
        for i in range(self.model.SignatureDefsLength()):
            sd = self.model.SignatureDefs(i)
            keys.append(_text(sd.SignatureKey()))
            if sd.SubgraphIndex() != 0:
                continue
            for j in range(sd.InputsLength()):
                tm = sd.Inputs(j)
                names.setdefault(int(tm.TensorIndex()), _text(tm.Name()))
            for j in range(sd.OutputsLength()):
                tm = sd.Outputs(j)
                names.setdefault(int(tm.TensorIndex()), _text(tm.Name()))
        return keys, names

    def _tensor(self, t: Any, index: int, subgraph: int, buffers: list[int],
                external: dict[int, int]) -> TensorInfo:
        _, type_names = _enum_names()
        code = int(t.Type())
        dtype = type_names.get(code, f"unknown({code})")
        static_shape = _ints(t, "ShapeLength", "ShapeAsNumpy")
        sig = _ints(t, "ShapeSignatureLength", "ShapeSignatureAsNumpy")
        shape = sig if sig and len(sig) == len(static_shape) else static_shape
        quant = None
        q = t.Quantization()
        if q is not None and q.ScaleLength() > 0:
            scales = tuple(float(v) for v in q.ScaleAsNumpy())
            zps = tuple(int(v) for v in q.ZeroPointAsNumpy()) if q.ZeroPointLength() else ()
            quant = Quantization(scales, zps, int(q.QuantizedDimension()))
        bidx = int(t.Buffer())
        if bidx >= len(buffers):
            raise _Corrupt(f"tensor {index} of subgraph {subgraph} refers to buffer {bidx}, but "
                           f"the model has {len(buffers)}")
        nbytes = buffers[bidx] if bidx else 0
        ext_id = int(t.ExternalBuffer())
        if ext_id and ext_id in external:
            nbytes = external[ext_id]
        return TensorInfo(
            index=index, name=_text(t.Name()), shape=shape, static_shape=static_shape, dtype=dtype,
            quantization=quant, subgraph=subgraph, is_constant=nbytes > 0 or bool(ext_id),
            nbytes=nbytes, is_variable=bool(t.IsVariable()), sparse=t.Sparsity() is not None,
            buffer=bidx, external_buffer=ext_id)

    # -- the report ---------------------------------------------------------------------------
    def report(self) -> ModelReport:
        m = self.model
        buffers = self._buffers()
        opcodes = self._opcodes()
        external: dict[int, int] = {}
        for i in range(m.ExternalBuffersLength()):
            eb = m.ExternalBuffers(i)
            external[int(eb.Id())] = int(eb.Length())
        sig_keys, sig_names = self._signature_names()
        metadata = []
        for i in range(m.MetadataLength()):
            metadata.append(_text(m.Metadata(i).Name()))

        tensors: list[list[TensorInfo]] = []
        ops: list[_Op] = []
        io: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())
        for gi in range(m.SubgraphsLength()):
            g = m.Subgraphs(gi)
            ts = [self._tensor(g.Tensors(i), i, gi, buffers, external)
                  for i in range(g.TensorsLength())]
            tensors.append(ts)
            n_t = len(ts)
            g_in = _ints(g, "InputsLength", "InputsAsNumpy")
            g_out = _ints(g, "OutputsLength", "OutputsAsNumpy")
            for idx in g_in + g_out:
                if not 0 <= idx < n_t:
                    raise _Corrupt(f"subgraph {gi} names tensor {idx} as an input or output, but "
                                   f"it has {n_t} tensors")
            if gi == 0:
                io = (g_in, g_out)
            for oi in range(g.OperatorsLength()):
                o = g.Operators(oi)
                opc = int(o.OpcodeIndex())
                if opc >= len(opcodes):
                    raise _Corrupt(f"operator {oi} of subgraph {gi} uses operator code {opc}, but "
                                   f"the model has {len(opcodes)}")
                ins = _ints(o, "InputsLength", "InputsAsNumpy")
                outs = _ints(o, "OutputsLength", "OutputsAsNumpy")
                for idx in ins + outs:
                    if idx != -1 and not 0 <= idx < n_t:
                        raise _Corrupt(f"operator {oi} of subgraph {gi} refers to tensor {idx}, "
                                       f"but the subgraph has {n_t} tensors")
                name, custom = opcodes[opc]
                ops.append(_Op(oi, gi, name, custom, ins, outs))
        if not tensors:
            raise _Corrupt("it has no subgraph")

        version = int(m.Version())
        if version != 3:
            self.notes.append(f"Schema version {version}: current TFLite writes version 3; "
                              "older files may not load in a current runtime.")
        return _analyse(self.path, self.size, version, _text(m.Description()), tensors, ops, io,
                        sig_keys, sig_names, metadata, self.notes)


# --------------------------------------------------------------------------------------------
# Analysis (pure functions over the parsed tables)
# --------------------------------------------------------------------------------------------


def _is_real(t: TensorInfo) -> bool:
    return t.dtype in _FLOAT_DTYPES or t.quantization is not None


def _act_class(t: TensorInfo) -> str:
    """float | q8 | q16 | q32 | other (non-real: int32 shapes, bools, strings...)."""
    if t.dtype in _FLOAT_DTYPES:
        return "float"
    if t.quantization is not None:
        if t.dtype in ("int8", "uint8", "int4"):
            return "q8"
        if t.dtype == "int16":
            return "q16"
        return "q32"
    return "other"


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} GB"


def _analyse(path: Path, size: int, version: int, description: str,
             tensors: list[list[TensorInfo]], ops: list[_Op],
             io: tuple[tuple[int, ...], tuple[int, ...]], sig_keys: list[str],
             sig_names: dict[int, str], metadata: list[str], notes: list[str]) -> ModelReport:
    def T(gi: int, idx: int) -> TensorInfo:
        return tensors[gi][idx]

    for op in ops:
        outs = [i for i in op.outputs if i >= 0]
        op.label = T(op.subgraph, outs[0]).name if outs else f"{op.name} #{op.index}"

    consumers: dict[tuple[int, int], list[_Op]] = defaultdict(list)
    for op in ops:
        for i in op.inputs:
            if i >= 0:
                consumers[(op.subgraph, i)].append(op)

    # Weight-unpack ops: DEQUANTIZE/DENSIFY of constants (float16 or int8 weights, sparse weights).
    unpack_ops: set[int] = set()
    derived: dict[tuple[int, int], tuple[TensorInfo, str]] = {}
    for k, op in enumerate(ops):
        ins = [i for i in op.inputs if i >= 0]
        if (op.name in _WEIGHT_UNPACK_OPS and not op.custom and ins
                and all(T(op.subgraph, i).is_constant for i in ins)):
            outs = [i for i in op.outputs if i >= 0]
            if outs and all(consumers.get((op.subgraph, o)) for o in outs):
                unpack_ops.add(k)
                src = T(op.subgraph, ins[0])
                for o in outs:
                    derived[(op.subgraph, o)] = (src, op.name)

    def role(t: TensorInfo, op: _Op, slot: int) -> str:
        if not _is_real(t):
            return "constant"
        if _BIAS_INPUT.get(op.name) == slot and len(t.shape) <= 1:
            return "bias"
        return "weight"

    # Per-layer constants.
    layers: list[LayerWeights] = []
    const_roles: dict[tuple[int, int], str] = {}
    for k, op in enumerate(ops):
        if k in unpack_ops:
            continue
        entries: list[WeightTensor] = []
        for slot, i in enumerate(op.inputs):
            if i < 0:
                continue
            t = T(op.subgraph, i)
            via = None
            if (op.subgraph, i) in derived:
                t, via = derived[(op.subgraph, i)]
            elif not t.is_constant:
                continue
            r = role(t, op, slot)
            const_roles.setdefault((op.subgraph, t.index), r)
            q = t.quantization
            entries.append(WeightTensor(
                name=t.name, dtype=t.dtype, shape=t.shape, nbytes=t.nbytes, role=r,
                num_scales=q.num_scales if q else 0,
                quantized_dimension=q.quantized_dimension if q and q.per_channel else None,
                via=via, external=bool(t.external_buffer), tensor_index=t.index))
        layers.append(LayerWeights(index=op.index, subgraph=op.subgraph, op=op.name,
                                   name=op.label, weight_bytes=sum(e.nbytes for e in entries),
                                   weights=tuple(entries)))

    # Totals: every constant tensor, every buffer once (tensors may share a buffer).
    seen_buffers: set[tuple[str, int]] = set()
    constant_bytes = weight_bytes = 0
    dtype_stats: dict[tuple[str, str], list[int]] = {}
    for gi, ts in enumerate(tensors):
        for t in ts:
            if not t.is_constant:
                continue
            r = const_roles.get((gi, t.index)) or ("weight" if _is_real(t) else "constant")
            bkey = ("ext", t.external_buffer) if t.external_buffer else ("buf", t.buffer)
            first = bkey not in seen_buffers
            seen_buffers.add(bkey)
            nbytes = t.nbytes if first else 0
            constant_bytes += nbytes
            if r != "constant":
                weight_bytes += nbytes
                st = dtype_stats.setdefault((t.dtype, r), [0, 0, 0])
                st[0] += 1
                st[1] += nbytes
                st[2] += 1 if t.quantization is not None and t.quantization.per_channel else 0
    weight_dtypes = tuple(
        WeightDtype(dtype=d, role=r, tensors=v[0], bytes=v[1], per_channel_tensors=v[2])
        for (d, r), v in sorted(dtype_stats.items(), key=lambda kv: (-kv[1][1], kv[0])))

    # Per-channel tensors.
    unpack_ids = {id(ops[k]) for k in unpack_ops}
    per_channel: list[PerChannelTensor] = []
    for gi, ts in enumerate(tensors):
        for t in ts:
            q = t.quantization
            if q is None or not q.per_channel:
                continue
            axis = q.quantized_dimension
            channels = t.shape[axis] if 0 <= axis < len(t.shape) else None
            used_by = tuple(op.label for op in consumers.get((gi, t.index), ()))
            used_by_layers = []
            for u in consumers.get((gi, t.index), ()):
                if id(u) in unpack_ids:
                    for o in u.outputs:
                        used_by_layers.extend(c.label for c in consumers.get((gi, o), ()))
                else:
                    used_by_layers.append(u.label)
            r = const_roles.get((gi, t.index)) or ("weight" if t.is_constant else "activation")
            per_channel.append(PerChannelTensor(
                name=t.name, dtype=t.dtype, shape=t.shape, num_scales=q.num_scales,
                quantized_dimension=axis, channels=channels, role=r,
                used_by=tuple(used_by_layers) or used_by))

    qparam_bytes = sum(4 * len(t.quantization.scales) + 8 * len(t.quantization.zero_points)
                       for ts in tensors for t in ts if t.quantization is not None)

    # Histograms.
    op_hist = Counter(op.name for op in ops)
    op_histogram = dict(sorted(op_hist.items(), key=lambda kv: (-kv[1], kv[0])))
    custom_ops = tuple(sorted({op.name for op in ops if op.custom}))
    all_tensors = [t for ts in tensors for t in ts]
    dt_hist = Counter(t.dtype for t in all_tensors)
    tensor_dtypes = dict(sorted(dt_hist.items(), key=lambda kv: (-kv[1], kv[0])))

    # I/O.
    def io_info(idx: int) -> TensorInfo:
        t = T(0, idx)
        return dataclasses.replace(t, signature_name=sig_names.get(idx))

    inputs = tuple(io_info(i) for i in io[0])
    outputs = tuple(io_info(i) for i in io[1])

    quant = _quant_summary(tensors, ops, unpack_ops, derived, inputs, outputs, weight_dtypes,
                           per_channel)
    delegates = _delegate_checks(tensors, ops, unpack_ops, derived)

    flex = sorted({op.name for op in ops if op.custom and op.name.startswith("Flex")})
    if flex:
        notes.append(f"Select TensorFlow ops ({', '.join(flex)}) need the Flex delegate "
                     "(tensorflow-lite-select-tf-ops); no GPU or XNNPACK support.")
    if len(tensors) > 1:
        notes.append(f"{len(tensors)} subgraphs: inputs and outputs are those of subgraph 0; ops "
                     "and weights cover all of them.")
    if any(t.sparse for t in all_tensors):
        notes.append("Some constants are stored sparse (DENSIFY at load).")

    return ModelReport(
        path=str(path), file_size=size, schema_version=version, description=description,
        subgraphs=len(tensors), inputs=inputs, outputs=outputs, op_count=len(ops),
        op_histogram=op_histogram, custom_ops=custom_ops, tensor_count=len(all_tensors),
        tensor_dtypes=tensor_dtypes, layers=tuple(layers), constant_bytes=constant_bytes,
        weight_bytes=weight_bytes, quantization_param_bytes=qparam_bytes,
        per_channel_tensors=tuple(per_channel), quantization=quant,
        delegates=delegates, signatures=tuple(sig_keys), metadata=tuple(metadata),
        notes=tuple(notes), tensors=tuple(all_tensors))


def _runtime(tensors: list[list[TensorInfo]], op: _Op, derived: dict[tuple[int, int], Any]
             ) -> tuple[list[TensorInfo], list[TensorInfo]]:
    """Non-constant input and output tensors of ``op`` (dequantized weights excluded)."""
    ts = tensors[op.subgraph]
    ins = [ts[i] for i in op.inputs
           if i >= 0 and not ts[i].is_constant and (op.subgraph, i) not in derived]
    outs = [ts[i] for i in op.outputs if i >= 0 and not ts[i].is_constant]
    return ins, outs


def _quant_weight_inputs(tensors: list[list[TensorInfo]], op: _Op) -> list[TensorInfo]:
    ts = tensors[op.subgraph]
    return [ts[i] for i in op.inputs if i >= 0 and ts[i].is_constant
            and ts[i].quantization is not None and ts[i].dtype in ("int8", "uint8", "int4")]


def _quant_summary(tensors, ops, unpack_ops, derived, inputs, outputs, weight_dtypes,
                   per_channel) -> QuantizationSummary:
    act_hist: Counter = Counter()
    seen: set[tuple[int, int]] = set()
    float_ops: list[str] = []
    hybrid_ops: list[str] = []
    classes: set[str] = set()
    uint8_act = int8_act = False
    for k, op in enumerate(ops):
        if k in unpack_ops:
            continue
        ins, outs = _runtime(tensors, op, derived)
        for t in ins + outs:
            if (op.subgraph, t.index) not in seen and _is_real(t):
                seen.add((op.subgraph, t.index))
                act_hist[t.dtype] += 1
        if op.name in _CONVERSION_OPS and not op.custom:
            continue
        cls = {_act_class(t) for t in ins + outs} - {"other"}
        classes |= cls
        uint8_act |= any(t.dtype == "uint8" and t.quantization for t in ins + outs)
        int8_act |= any(t.dtype == "int8" and t.quantization for t in ins + outs)
        if "float" in cls:
            float_ops.append(op.name)
            if _quant_weight_inputs(tensors, op):
                hybrid_ops.append(op.name)

    w_dtypes = {w.dtype for w in weight_dtypes if w.role == "weight"}
    via_dequant_int = any(src.dtype in ("int8", "uint8", "int4") for src, _ in derived.values())
    in_d = tuple(t.dtype for t in inputs)
    out_d = tuple(t.dtype for t in outputs)
    io_text = _io_text(in_d, out_d)
    any_pc = any(p.role == "weight" for p in per_channel)
    notes: list[str] = []
    n_float_ops = len(float_ops)

    if "q16" in classes:
        kind = "int16x8"
        label = f"int16x8: int16 activations, int8 weights, {io_text}"
        if "float" in classes:
            label += f"; {n_float_ops} op(s) in float"
        notes.append("int16x8 runs on the reference kernels only: XNNPACK takes none of it and "
                     "the GPU delegate takes no int16 tensors; expect it to be far slower than "
                     "int8 on a CPU.")
    elif "q8" in classes or "q32" in classes:
        if "float" in classes:
            kind = "mixed"
            names = ", ".join(sorted(set(float_ops)))
            label = (f"partly int8: {n_float_ops} of the compute ops run in float ({names}), "
                     f"{io_text}")
            notes.append("Some ops had no int8 kernel and fell back to float: the model "
                         "converts between int8 and float inside the graph.")
        elif uint8_act and not int8_act:
            kind = "uint8"
            label = f"uint8 (legacy TF1 quantization), {io_text}"
        else:
            kind = "int8"
            label = f"full-integer int8, {io_text}"
    elif hybrid_ops:
        kind = "dynamic"
        label = "dynamic-range: int8 weights, float activations (hybrid kernels)"
        f32 = next((w for w in weight_dtypes if w.dtype == "float32" and w.role == "weight"), None)
        if f32 is not None:
            notes.append(f"{f32.tensors} weight tensor(s) ({_human(f32.bytes)}) stayed float32: "
                         "dynamic-range quantization skips small tensors (the converter's default "
                         "is under 1024 elements).")
        notes.append("Hybrid ops quantize their inputs on every call; on some CPUs they are slower "
                     "than float32: measure before choosing.")
    elif via_dequant_int:
        kind = "weight-only"
        label = "weight-only int8: int8 weights dequantized to float, float compute"
    elif "float16" in w_dtypes:
        kind = "float16"
        label = "float16 weights, float32 compute"
        notes.append("XNNPACK and the GPU delegate unpack float16 weights at load: the file is "
                     "smaller, CPU speed is that of float32.")
    elif "float" in classes or w_dtypes & _FLOAT_DTYPES:
        kind = "float32"
        label = "float32 (not quantized)"
    else:
        kind = "other"
        label = f"no float or quantized compute found, {io_text}"

    return QuantizationSummary(
        kind=kind, label=label, input_dtypes=in_d, output_dtypes=out_d,
        weight_dtypes=weight_dtypes,
        activation_dtypes=dict(sorted(act_hist.items(), key=lambda kv: (-kv[1], kv[0]))),
        per_channel=any_pc, hybrid_ops=tuple(hybrid_ops),
        float_ops=tuple(float_ops) if kind in ("mixed", "int16x8") else (),
        notes=tuple(notes))


def _io_text(in_d: Sequence[str], out_d: Sequence[str]) -> str:
    si, so = sorted(set(in_d)), sorted(set(out_d))
    if si == so:
        return f"{'/'.join(si) or 'no'} I/O"
    return f"{'/'.join(si) or 'no'} input, {'/'.join(so) or 'no'} output"


# --------------------------------------------------------------------------------------------
# Delegate / kernel support
# --------------------------------------------------------------------------------------------


def _delegate_checks(tensors, ops, unpack_ops, derived) -> tuple[DelegateSupport, ...]:
    data = load_op_support()
    int8 = data["int8"]
    int8_ops = set(int8["ops"]) | set(int8.get("boundary_ops", ()))
    not16 = set(data["int16x8"]["not_int16"])
    gpu = data["gpu"]
    gpu_ops = set(gpu["ops"]) | set(gpu.get("quant_ops", ()))
    gpu_custom = set(gpu.get("custom_ops", ()))
    gpu_logical = set(gpu.get("logical_ops", ()))
    gpu_rank = int(gpu.get("max_rank", 4))
    gpu_types = set(gpu["runtime_types"]) | set(gpu.get("runtime_types_quant", ()))
    xnn = data["xnnpack"]
    xnn_float, xnn_quant = set(xnn["float_ops"]), set(xnn["quantized_ops"])
    xnn_dynamic = set(xnn.get("dynamic_range_ops", ()))

    def check_int8(op: _Op, k: int) -> Optional[str]:
        if op.custom:
            return "custom op: no builtin int8 kernel"
        if op.name not in int8_ops:
            return "no int8 kernel in the published list"
        return None

    def check_int16(op: _Op, k: int) -> Optional[str]:
        if op.custom:
            return "custom op: no builtin int16 kernel"
        if op.name not in int8_ops:
            return "no integer kernel in the published list"
        if op.name in not16:
            return "has int8 but no int16 kernel"
        return None

    def check_gpu(op: _Op, k: int) -> Optional[str]:
        if op.custom:
            return None if op.name in gpu_custom else "custom op the GPU delegate does not know"
        if op.name not in gpu_ops:
            return "not supported by the GPU delegate"
        ts = tensors[op.subgraph]
        for i in list(op.inputs) + list(op.outputs):
            if i >= 0 and len(ts[i].static_shape) > gpu_rank:
                return (f"{len(ts[i].static_shape)}-D tensor (the GPU delegate takes up to "
                        f"{gpu_rank}-D)")
        ins, outs = _runtime(tensors, op, {})
        allowed_in = gpu_types | set(gpu["extra_input_types"].get(op.name, ()))
        allowed_out = gpu_types | set(gpu["extra_output_types"].get(op.name, ()))
        if op.name in gpu_logical:
            allowed_out = allowed_out | {"bool"}
        for t in ins:
            if t.dtype not in allowed_in:
                return f"{t.dtype} input tensor (the GPU delegate computes in float16/float32)"
        for t in outs:
            if t.dtype not in allowed_out:
                return f"{t.dtype} output tensor (the GPU delegate computes in float16/float32)"
        return None

    def check_xnnpack(op: _Op, k: int) -> Optional[str]:
        if op.custom:
            return "custom op"
        ts = tensors[op.subgraph]
        if k in unpack_ops and op.name == "DEQUANTIZE":
            src = ts[[i for i in op.inputs if i >= 0][0]]
            if src.dtype == "float16":
                return None  # float16 weights are unpacked at load
            return f"DEQUANTIZE of constant {src.dtype} weights is not in the published list"
        ins, outs = _runtime(tensors, op, {})
        cls = {_act_class(t) for t in ins + outs}
        if "q16" in cls:
            return "int16 tensors: XNNPACK has no int16 kernels"
        if "other" in cls:
            bad = next(t for t in ins + outs if _act_class(t) == "other")
            return f"{bad.dtype} runtime tensor"
        if any(t.dtype != "float32" for t in ins + outs if t.dtype in _FLOAT_DTYPES):
            return "non-float32 float tensors"
        if cls == {"float"}:
            if _quant_weight_inputs(tensors, op):
                return (None if op.name in xnn_dynamic
                        else "dynamic-range (hybrid) op that XNNPACK does not take")
            return None if op.name in xnn_float else "not in XNNPACK's float32 list"
        if "q8" in cls:
            if op.name in ("QUANTIZE", "DEQUANTIZE"):
                if any(t.quantization and t.quantization.per_channel for t in ins + outs):
                    return "per-channel quantized activation"
                return None
            if "float" in cls:
                return "mixes float and quantized tensors"
            return None if op.name in xnn_quant else "not in XNNPACK's quantized (int8) list"
        if "q32" in cls:
            return "int32 quantized tensors"
        return None if op.name in xnn_float else "not in XNNPACK's float32 list"

    def run(target: str, entry: dict, fn, skip_unpack: bool) -> DelegateSupport:
        bad: dict[tuple[str, str], list[str]] = {}
        checked = 0
        for k, op in enumerate(ops):
            if skip_unpack and k in unpack_ops:
                continue
            checked += 1
            reason = fn(op, k)
            if reason:
                bad.setdefault((op.name, reason), []).append(op.label)
        unsupported = tuple(UnsupportedOp(op=name, count=len(labels), reason=reason,
                                          layers=tuple(labels))
                            for (name, reason), labels in sorted(bad.items()))
        note = entry.get("note", "")
        return DelegateSupport(target=target, title=entry.get("title", target),
                               supported=not unsupported, ops_checked=checked,
                               unsupported=unsupported, source=entry.get("source", ""), note=note)

    return (
        run("int8", int8, check_int8, skip_unpack=True),
        run("int16x8", data["int16x8"], check_int16, skip_unpack=True),
        run("gpu", gpu, check_gpu, skip_unpack=False),
        run("xnnpack", xnn, check_xnnpack, skip_unpack=False),
    )


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def _quant_text(q: Optional[Quantization]) -> str:
    if q is None:
        return "-"
    if q.per_channel:
        return f"{q.num_scales} scales (axis {q.quantized_dimension})"
    return f"scale {q.scales[0]:.6g}, zero point {q.zero_point}"


def _shape_text(shape: Sequence[int]) -> str:
    return "[" + ", ".join("?" if d < 0 else str(d) for d in shape) + "]"


def _short(name: str, width: int = 60) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def render_report(report: ModelReport, console: Any = None, *, top: int = 10) -> None:
    """Print ``report`` as Rich tables on ``console`` (a new ``rich.console.Console`` if None)."""
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    q = report.quantization
    share = (100.0 * report.constant_bytes / report.file_size) if report.file_size else 0.0
    console.print(f"[bold]{escape(report.path)}[/bold]  {_human(report.file_size)}")
    console.print(f"  [bold]{escape(q.label)}[/bold]")
    qp = (f", quantization parameters {_human(report.quantization_param_bytes)}"
          if report.quantization_param_bytes else "")
    console.print(f"  {report.op_count} ops, {report.tensor_count} tensors, "
                  f"{report.subgraphs} subgraph(s); constants {_human(report.constant_bytes)} "
                  f"({share:.0f}% of the file){qp}; schema v{report.schema_version}")
    if q.weight_dtypes:
        parts = []
        for w in q.weight_dtypes:
            pc = f", {w.per_channel_tensors} per-channel" if w.per_channel_tensors else ""
            roles = "biases" if w.role == "bias" else w.role + "s"
            n = f"{w.tensors} tensor{'s' if w.tensors != 1 else ''}"
            parts.append(f"{w.dtype} {roles} {_human(w.bytes)} ({n}{pc})")
        console.print("  " + escape("; ".join(parts)))

    t = Table(title="Inputs and outputs", box=box.SIMPLE_HEAVY, title_justify="left")
    for col in ("", "tensor", "signature name", "shape", "dtype", "quantization"):
        t.add_column(col)
    for kind, items in (("in", report.inputs), ("out", report.outputs)):
        for ti in items:
            t.add_row(kind, escape(_short(ti.name, 48)), escape(ti.signature_name or "-"),
                      _shape_text(ti.shape), ti.dtype, _quant_text(ti.quantization))
    console.print(t)

    marks: dict[str, dict[str, bool]] = {}
    for d in report.delegates:
        bad = set(d.unsupported_ops)
        marks[d.target] = {name: name not in bad for name in report.op_histogram}
    t = Table(title="Ops", box=box.SIMPLE_HEAVY, title_justify="left")
    t.add_column("op")
    t.add_column("count", justify="right")
    headers = {"int8": "int8 kernel", "int16x8": "int16x8 kernel", "gpu": "GPU",
               "xnnpack": "XNNPACK"}
    for d in report.delegates:
        t.add_column(headers.get(d.target, d.target), justify="center")
    for name, count in report.op_histogram.items():
        t.add_row(escape(name), str(count),
                  *["[green]yes[/green]" if marks[d.target][name] else "[red]no[/red]"
                    for d in report.delegates])
    console.print(t)

    layers = sorted((l for l in report.layers if l.weight_bytes), key=lambda l: -l.weight_bytes)
    if layers:
        total = sum(l.weight_bytes for l in report.layers) or 1
        t = Table(title=f"Weights by layer (top {min(top, len(layers))} of {len(layers)})",
                  box=box.SIMPLE_HEAVY, title_justify="left")
        for col, just in (("op", "left"), ("layer (output tensor)", "left"),
                          ("constants", "left"), ("bytes", "right"), ("share", "right")):
            t.add_column(col, justify=just)
        for l in layers[:top]:
            desc = []
            for w in l.weights:
                s = f"{w.dtype}{_shape_text(w.shape)}"
                if w.num_scales > 1:
                    s += f" ({w.num_scales} scales)"
                if w.via:
                    s += f" via {w.via}"
                desc.append(s)
            t.add_row(l.op, escape(_short(l.name, 48)), escape(", ".join(desc)),
                      _human(l.weight_bytes), f"{100.0 * l.weight_bytes / total:.0f}%")
        console.print(t)

    if report.per_channel_tensors:
        pcs = sorted(report.per_channel_tensors,
                     key=lambda p: (p.one_scale_per_channel, p.role != "weight"))
        t = Table(title=f"Per-channel quantized tensors ({len(pcs)})", box=box.SIMPLE_HEAVY,
                  title_justify="left")
        for col in ("tensor", "role", "dtype", "shape", "scales", "axis", "one per channel"):
            t.add_column(col)
        for p in pcs[:top]:
            t.add_row(escape(_short(p.name, 48)), p.role, p.dtype, _shape_text(p.shape),
                      str(p.num_scales), str(p.quantized_dimension),
                      "yes" if p.one_scale_per_channel else "[red]no[/red]")
        if len(pcs) > top:
            rest = pcs[top:]
            ok = sum(p.one_scale_per_channel for p in rest)
            roles = Counter(p.role for p in rest)
            t.add_row(f"... {len(rest)} more", ", ".join(f"{n} {r}" for r, n in roles.items()),
                      "", "", "", "", f"{ok} of {len(rest)}")
        console.print(t)
    elif q.kind not in ("float32", "float16", "other"):
        console.print("No per-channel quantized tensors (per-tensor quantization).")

    t = Table(title="Kernel and delegate support (published op lists)", box=box.SIMPLE_HEAVY,
              title_justify="left")
    for col in ("backend", "ops taken", "not taken"):
        t.add_column(col)
    for d in report.delegates:
        verdict = ("[green]all[/green]" if d.supported
                   else f"[yellow]{d.ops_supported} of {d.ops_checked}[/yellow]")
        missing = "; ".join(f"{u.op} x{u.count}: {u.reason}" for u in d.unsupported) or "-"
        t.add_row(escape(d.title), verdict, escape(missing))
    console.print(t)

    for n in q.notes + report.notes:
        console.print(f"  [dim]-[/dim] {escape(n)}")
