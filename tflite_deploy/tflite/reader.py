"""Read a ``.tflite`` file without TensorFlow: :func:`inspect_model` and :func:`constant_values`.

The flatbuffer is parsed with the schema reader that ships inside ``ai-edge-litert``
(``ai_edge_litert.schema_py_generated``, pure Python over ``flatbuffers``), so it starts in a
fraction of a second and never imports TensorFlow. Before walking the model it checks the ``TFL3``
file identifier and verifies every table, vector and string it is going to read lies inside the
file (:mod:`tflite_deploy.tflite.verifier`), so a truncated, corrupt or foreign file is a
:class:`~tflite_deploy.errors.ModelError` naming the file, never a traceback, a hang or a huge
allocation.

Everything in the report is derived from the tensors in the file, never from its name
(:mod:`tflite_deploy.tflite.analysis` says what they mean):

* inputs/outputs with shape (``shape_signature``, ``-1`` for a dynamic dimension), dtype and
  quantization (scales, zero points, quantized dimension), and :func:`quantize` /
  :func:`dequantize` helpers (:mod:`tflite_deploy.tflite.quant`) that apply them the way the
  TFLite kernels do;
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

import functools
import mmap
import struct
from pathlib import Path
from typing import Any, Optional, Union

from tflite_deploy.errors import ModelError
from tflite_deploy.tflite.analysis import Op, ParsedModel, analyse
from tflite_deploy.tflite.quant import NUMPY_DTYPES
from tflite_deploy.tflite.records import ModelReport, Quantization, TensorInfo
from tflite_deploy.tflite.verifier import MODEL_SPEC, Corrupt, Verifier


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
            Verifier(buf, size).table(root, MODEL_SPEC, "model")
            return _Reader(path, buf, size).report()
        except Corrupt as e:
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
            dtype = NUMPY_DTYPES.get(t.dtype)
            if not t.is_constant or t.sparse or t.external_buffer or not t.buffer or dtype is None:
                continue
            b = model.Buffers(t.buffer)
            off = int(b.Offset())
            raw = bytes(src.buf[off:off + int(b.Size())]) if off > 1 else b.DataAsNumpy().tobytes()
            shape = t.static_shape or (len(raw) // np.dtype(dtype).itemsize,)
            out[(t.subgraph, t.index)] = np.frombuffer(raw, dtype=dtype).reshape(shape)
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
                    raise Corrupt(f"buffer {i} points at bytes {off}..{off + sz}, past the end "
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
        block_size, block_scales = self._blockwise(q)
        bidx = int(t.Buffer())
        if bidx >= len(buffers):
            raise Corrupt(f"tensor {index} of subgraph {subgraph} refers to buffer {bidx}, but "
                           f"the model has {len(buffers)}")
        nbytes = buffers[bidx] if bidx else 0
        ext_id = int(t.ExternalBuffer())
        if ext_id and ext_id in external:
            nbytes = external[ext_id]
        return TensorInfo(
            index=index, name=_text(t.Name()), shape=shape, static_shape=static_shape, dtype=dtype,
            quantization=quant, subgraph=subgraph, is_constant=nbytes > 0 or bool(ext_id),
            nbytes=nbytes, is_variable=bool(t.IsVariable()), sparse=t.Sparsity() is not None,
            buffer=bidx, external_buffer=ext_id, block_size=block_size, block_scales=block_scales)

    def _blockwise(self, q: Any) -> tuple[int, int]:
        """Block size and scales tensor of a blockwise-quantized tensor (its scales live in another
        tensor, not in the scale vector), or ``(0, -1)``."""
        if q is None or int(q.DetailsType()) != self.s.QuantizationDetails.BlockwiseQuantization:
            return 0, -1
        details = q.Details()
        if details is None:
            return 0, -1
        bq = self.s.BlockwiseQuantization()
        bq.Init(details.Bytes, details.Pos)
        return int(bq.BlockSize()), int(bq.Scales())

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
        ops: list[Op] = []
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
                    raise Corrupt(f"subgraph {gi} names tensor {idx} as an input or output, but "
                                   f"it has {n_t} tensors")
            if gi == 0:
                io = (g_in, g_out)
            for oi in range(g.OperatorsLength()):
                o = g.Operators(oi)
                opc = int(o.OpcodeIndex())
                if opc >= len(opcodes):
                    raise Corrupt(f"operator {oi} of subgraph {gi} uses operator code {opc}, but "
                                   f"the model has {len(opcodes)}")
                ins = _ints(o, "InputsLength", "InputsAsNumpy")
                outs = _ints(o, "OutputsLength", "OutputsAsNumpy")
                for idx in ins + outs:
                    if idx != -1 and not 0 <= idx < n_t:
                        raise Corrupt(f"operator {oi} of subgraph {gi} refers to tensor {idx}, "
                                       f"but the subgraph has {n_t} tensors")
                name, custom = opcodes[opc]
                ops.append(Op(oi, gi, name, custom, ins, outs))
        if not tensors:
            raise Corrupt("it has no subgraph")

        version = int(m.Version())
        if version != 3:
            self.notes.append(f"Schema version {version}: current TFLite writes version 3; "
                              "older files may not load in a current runtime.")
        return analyse(ParsedModel(self.path, self.size, version, _text(m.Description()), tensors, ops, io,
                                   sig_keys, sig_names, metadata, self.notes))
