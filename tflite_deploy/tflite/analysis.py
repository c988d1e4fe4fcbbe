"""What the parsed tables of a ``.tflite`` mean: weights per layer, quantization kind, support.

Pure functions over the tensors and operators the reader parsed (:class:`Op`, ``TensorInfo``):
:func:`analyse` builds the :class:`~tflite_deploy.tflite.records.ModelReport` (per-layer
constants, totals, per-channel tensors, op and dtype histograms), names the quantization kind
from the tensors (never from the file's name) and checks every op against the published int8 /
int16x8 kernel lists and the GPU and XNNPACK delegates (``tflite_deploy/data/op_support.json``,
sources cited there).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from tflite_deploy.tflite.quant import FLOAT_DTYPES
from tflite_deploy.tflite.records import (
    DelegateSupport,
    LayerWeights,
    ModelReport,
    PerChannelTensor,
    QuantizationSummary,
    TensorInfo,
    UnsupportedOp,
    WeightDtype,
    WeightTensor,
)

# Input slot of the bias for ops that have one.
_BIAS_INPUT = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "CONV_3D": 2,
               "TRANSPOSE_CONV": 3}
# Ops that only turn a constant into another form of the same weights.
_WEIGHT_UNPACK_OPS = frozenset({"DEQUANTIZE", "DENSIFY"})
_CONVERSION_OPS = frozenset({"QUANTIZE", "DEQUANTIZE"})


@dataclass
class Op:
    """One operator as the reader found it; ``label`` is its first output tensor's name."""

    index: int
    subgraph: int
    name: str
    custom: bool
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    label: str = ""


@functools.lru_cache(maxsize=1)
def load_op_support() -> dict[str, Any]:
    """The published op lists (``tflite_deploy/data/op_support.json``)."""
    from importlib import resources

    text = resources.files("tflite_deploy").joinpath("data", "op_support.json").read_text("utf-8")
    return json.loads(text)


# --------------------------------------------------------------------------------------------
# Analysis (pure functions over the parsed tables)
# --------------------------------------------------------------------------------------------


def _is_real(t: TensorInfo) -> bool:
    return t.dtype in FLOAT_DTYPES or t.quantization is not None or t.block_size > 0


def _act_class(t: TensorInfo) -> str:
    """float | q8 | q16 | q32 | other (non-real: int32 shapes, bools, strings...)."""
    if t.dtype in FLOAT_DTYPES:
        return "float"
    if t.quantization is not None:
        if t.dtype in ("int8", "uint8", "int4"):
            return "q8"
        if t.dtype == "int16":
            return "q16"
        return "q32"
    return "other"


def human_bytes(n: float) -> str:
    """Bytes in decimal units with one decimal (``4.5 MB``), as the inspect report prints them."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} GB"


@dataclass(frozen=True)
class ParsedModel:
    """What the reader found in a file (``tensors[subgraph][index]``, ``ops``), before any meaning."""

    path: Path
    size: int
    version: int
    description: str
    tensors: list[list[TensorInfo]]
    ops: list[Op]
    io: tuple[tuple[int, ...], tuple[int, ...]]  # subgraph 0's input and output tensor indices
    signature_keys: list[str]
    signature_names: dict[int, str]  # tensor index -> its name in the signature
    metadata: list[str]
    notes: list[str]


#: A tensor's key across subgraphs: (subgraph, index).
Key = tuple[int, int]


@dataclass(frozen=True)
class GraphIndex:
    """The model's graph and what every check asks of it, computed once.

    - ``consumers``: tensor -> the ops that read it;
    - ``unpack_ops``: positions (in ``ops``) of DEQUANTIZE/DENSIFY ops that only unpack constant
      weights (float16 or int8 weights, sparse weights);
    - ``derived``: a tensor such an op writes -> (the constant it came from, the op's name);
    - ``runtime``: per op, its non-constant inputs (unpacked weights left out) and outputs;
    - ``tensors_in_out``: per op, the same with unpacked weights counted as inputs;
    - ``quantized_weights``: per op, whether it reads quantized constant weights (int8/uint8/int4).
    """

    tensors: list[list[TensorInfo]]
    ops: list[Op]
    consumers: dict[Key, list[Op]]
    unpack_ops: frozenset[int]
    derived: dict[Key, tuple[TensorInfo, str]]
    runtime: tuple[tuple[list[TensorInfo], list[TensorInfo]], ...]
    tensors_in_out: tuple[tuple[list[TensorInfo], list[TensorInfo]], ...]
    quantized_weights: tuple[bool, ...]

    @classmethod
    def build(cls, tensors: list[list[TensorInfo]], ops: list[Op]) -> "GraphIndex":
        """Index the graph; also names every op by its first output tensor (``op.label``)."""
        for op in ops:
            outs = [i for i in op.outputs if i >= 0]
            op.label = tensors[op.subgraph][outs[0]].name if outs else f"{op.name} #{op.index}"
        consumers: dict[Key, list[Op]] = defaultdict(list)
        for op in ops:
            for i in op.inputs:
                if i >= 0:
                    consumers[(op.subgraph, i)].append(op)
        unpack_ops: set[int] = set()
        derived: dict[Key, tuple[TensorInfo, str]] = {}
        for k, op in enumerate(ops):
            ts = tensors[op.subgraph]
            ins = [i for i in op.inputs if i >= 0]
            if op.name in _WEIGHT_UNPACK_OPS and not op.custom and ins and all(ts[i].is_constant for i in ins):
                outs = [i for i in op.outputs if i >= 0]
                if outs and all(consumers.get((op.subgraph, o)) for o in outs):
                    unpack_ops.add(k)
                    for o in outs:
                        derived[(op.subgraph, o)] = (ts[ins[0]], op.name)
        return cls(tensors, ops, consumers, frozenset(unpack_ops), derived,
                   tuple(_runtime(tensors, op, derived) for op in ops),
                   tuple(_runtime(tensors, op, {}) for op in ops),
                   tuple(bool(_quant_weight_inputs(tensors, op)) for op in ops))

    def tensor(self, key: Key) -> TensorInfo:
        return self.tensors[key[0]][key[1]]

    def compute_ops(self) -> list[tuple[int, Op]]:
        """The ops that compute (weight-unpack ops left out), with their positions."""
        return [(k, op) for k, op in enumerate(self.ops) if k not in self.unpack_ops]

    def all_tensors(self) -> list[TensorInfo]:
        return [t for ts in self.tensors for t in ts]


def analyse(model: ParsedModel) -> ModelReport:
    """The report of one model from its parsed tables."""
    g = GraphIndex.build(model.tensors, model.ops)
    layers, const_roles = _layer_weights(g)
    constant_bytes, weight_bytes, block_scale_bytes, weight_dtypes = _constant_totals(g, const_roles)
    per_channel = _per_channel_tensors(g, const_roles)
    qparam_bytes = block_scale_bytes + sum(4 * len(t.quantization.scales) + 8 * len(t.quantization.zero_points)
                                           for t in g.all_tensors() if t.quantization is not None)

    def io_tensor(i: int) -> TensorInfo:  # inputs and outputs are subgraph 0's, with their signature names
        return dataclasses.replace(g.tensor((0, i)), signature_name=model.signature_names.get(i))

    inputs, outputs = tuple(map(io_tensor, model.io[0])), tuple(map(io_tensor, model.io[1]))
    all_tensors = g.all_tensors()
    return ModelReport(
        path=str(model.path), file_size=model.size, schema_version=model.version,
        description=model.description, subgraphs=len(g.tensors), inputs=inputs, outputs=outputs,
        op_count=len(g.ops), op_histogram=_by_count(op.name for op in g.ops),
        custom_ops=tuple(sorted({op.name for op in g.ops if op.custom})), tensor_count=len(all_tensors),
        tensor_dtypes=_by_count(t.dtype for t in all_tensors), layers=tuple(layers),
        constant_bytes=constant_bytes, weight_bytes=weight_bytes, quantization_param_bytes=qparam_bytes,
        per_channel_tensors=tuple(per_channel),
        quantization=_quant_summary(g, inputs, outputs, weight_dtypes, per_channel),
        delegates=_delegate_checks(g), signatures=tuple(model.signature_keys), metadata=tuple(model.metadata),
        notes=tuple(model.notes + _graph_notes(g)), tensors=tuple(all_tensors))


def _by_count(names: Any) -> dict[str, int]:
    """A histogram, most frequent first (ties by name)."""
    return dict(sorted(Counter(names).items(), key=lambda kv: (-kv[1], kv[0])))


def _role(t: TensorInfo, op: Op, slot: int) -> str:
    """What a constant input is to its op: its weight, its bias, or a plain constant (a shape...)."""
    if not _is_real(t):
        return "constant"
    if _BIAS_INPUT.get(op.name) == slot and len(t.shape) <= 1:
        return "bias"
    return "weight"


def _layer_weights(g: GraphIndex) -> tuple[list[LayerWeights], dict[Key, str]]:
    """The constants each computing op reads (unpacked weights by their source), and each constant's role."""
    layers: list[LayerWeights] = []
    const_roles: dict[Key, str] = {}
    for _, op in g.compute_ops():
        entries: list[WeightTensor] = []
        for slot, i in enumerate(op.inputs):
            if i < 0:
                continue
            t, via = g.tensor((op.subgraph, i)), None
            if (op.subgraph, i) in g.derived:
                t, via = g.derived[(op.subgraph, i)]
            elif not t.is_constant:
                continue
            r = _role(t, op, slot)
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
    return layers, const_roles


def _constant_totals(g: GraphIndex, const_roles: dict[Key, str]
                     ) -> tuple[int, int, int, tuple[WeightDtype, ...]]:
    """Bytes of every constant, of the weights, of blockwise scales, and the weights by dtype and role.

    Every buffer counts once (tensors may share one). The float16 per-block scales of blockwise-
    quantized weights are quantization parameters, not float16 weights (counting them as weights
    made int4 models look "float16").
    """
    block_scales = {(gi, t.block_scales) for gi, ts in enumerate(g.tensors) for t in ts if t.block_size}
    seen_buffers: set[tuple[str, int]] = set()
    constant_bytes = weight_bytes = block_scale_bytes = 0
    dtype_stats: dict[tuple[str, str], list[int]] = {}
    for gi, ts in enumerate(g.tensors):
        for t in ts:
            if not t.is_constant:
                continue
            r = const_roles.get((gi, t.index)) or ("weight" if _is_real(t) else "constant")
            bkey = ("ext", t.external_buffer) if t.external_buffer else ("buf", t.buffer)
            nbytes = 0 if bkey in seen_buffers else t.nbytes
            seen_buffers.add(bkey)
            constant_bytes += nbytes
            if (gi, t.index) in block_scales:
                block_scale_bytes += nbytes
            elif r != "constant":
                weight_bytes += nbytes
                st = dtype_stats.setdefault((t.dtype, r), [0, 0, 0])
                st[0] += 1
                st[1] += nbytes
                st[2] += 1 if t.quantization is not None and t.quantization.per_channel else 0
    weight_dtypes = tuple(
        WeightDtype(dtype=d, role=r, tensors=v[0], bytes=v[1], per_channel_tensors=v[2])
        for (d, r), v in sorted(dtype_stats.items(), key=lambda kv: (-kv[1][1], kv[0])))
    return constant_bytes, weight_bytes, block_scale_bytes, weight_dtypes


def _per_channel_tensors(g: GraphIndex, const_roles: dict[Key, str]) -> list[PerChannelTensor]:
    """Tensors with one scale per channel, and the layers that use them (through an unpack op too)."""
    unpack_ids = {id(g.ops[k]) for k in g.unpack_ops}
    out: list[PerChannelTensor] = []
    for gi, ts in enumerate(g.tensors):
        for t in ts:
            q = t.quantization
            if q is None or not q.per_channel:
                continue
            axis = q.quantized_dimension
            users = g.consumers.get((gi, t.index), ())
            used_by_layers = []
            for u in users:
                if id(u) in unpack_ids:
                    for o in u.outputs:
                        used_by_layers.extend(c.label for c in g.consumers.get((gi, o), ()))
                else:
                    used_by_layers.append(u.label)
            out.append(PerChannelTensor(
                name=t.name, dtype=t.dtype, shape=t.shape, num_scales=q.num_scales, quantized_dimension=axis,
                channels=t.shape[axis] if 0 <= axis < len(t.shape) else None,
                role=const_roles.get((gi, t.index)) or ("weight" if t.is_constant else "activation"),
                used_by=tuple(used_by_layers) or tuple(op.label for op in users)))
    return out


def _graph_notes(g: GraphIndex) -> list[str]:
    notes = []
    flex = sorted({op.name for op in g.ops if op.custom and op.name.startswith("Flex")})
    if flex:
        notes.append(f"Select TensorFlow ops ({', '.join(flex)}) need the Flex delegate "
                     "(tensorflow-lite-select-tf-ops); no GPU or XNNPACK support.")
    if len(g.tensors) > 1:
        notes.append(f"{len(g.tensors)} subgraphs: inputs and outputs are those of subgraph 0; ops "
                     "and weights cover all of them.")
    if any(t.sparse for t in g.all_tensors()):
        notes.append("Some constants are stored sparse (DENSIFY at load).")
    return notes


def _runtime(tensors: list[list[TensorInfo]], op: Op, derived: dict[Key, Any]
             ) -> tuple[list[TensorInfo], list[TensorInfo]]:
    """Non-constant input and output tensors of ``op`` (``derived`` tensors, unpacked weights, excluded)."""
    ts = tensors[op.subgraph]
    ins = [ts[i] for i in op.inputs
           if i >= 0 and not ts[i].is_constant and (op.subgraph, i) not in derived]
    outs = [ts[i] for i in op.outputs if i >= 0 and not ts[i].is_constant]
    return ins, outs


def _quant_weight_inputs(tensors: list[list[TensorInfo]], op: Op) -> list[TensorInfo]:
    ts = tensors[op.subgraph]
    return [ts[i] for i in op.inputs if i >= 0 and ts[i].is_constant
            and (ts[i].quantization is not None or ts[i].block_size)
            and ts[i].dtype in ("int8", "uint8", "int4")]


def _quant_summary(g: GraphIndex, inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo],
                   weight_dtypes: Sequence[WeightDtype], per_channel: Sequence[PerChannelTensor]
                   ) -> QuantizationSummary:
    """The quantization kind, named from the tensors the computing ops read and write."""
    act_hist: Counter = Counter()
    seen: set[Key] = set()
    float_ops: list[str] = []
    hybrid_ops: list[str] = []
    classes: set[str] = set()
    uint8_act = int8_act = False
    for k, op in g.compute_ops():
        ins, outs = g.runtime[k]
        for t in ins + outs:
            if (op.subgraph, t.index) not in seen and _is_real(t):
                seen.add((op.subgraph, t.index))
                act_hist[t.dtype] += 1
        if op.name in _CONVERSION_OPS and not op.custom:
            continue
        if op.name == "CAST" and ins and all(_act_class(t) == "other" for t in ins):
            continue  # whole numbers (a 0/1 mask, token ids) entering the graph, like a QUANTIZE: no compute
        cls = {_act_class(t) for t in ins + outs} - {"other"}
        classes |= cls
        uint8_act |= any(t.dtype == "uint8" and t.quantization for t in ins + outs)
        int8_act |= any(t.dtype == "int8" and t.quantization for t in ins + outs)
        if "float" in cls:
            float_ops.append(op.name)
            if g.quantized_weights[k]:
                hybrid_ops.append(op.name)

    tensors, derived = g.tensors, g.derived
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
        label = f"dynamic-range: {_quant_weights_text(tensors)}, float activations (hybrid kernels)"
        f32 = next((w for w in weight_dtypes if w.dtype == "float32" and w.role == "weight"), None)
        if f32 is not None:
            notes.append(f"{f32.tensors} weight tensor(s) ({human_bytes(f32.bytes)}) stayed "
                         "float32: dynamic-range quantization skips small tensors (the "
                         "converter's default is under 1024 elements).")
        notes.append("Hybrid ops quantize their inputs on every call; on some CPUs they are slower "
                     "than float32: measure before choosing.")
    elif via_dequant_int:
        kind = "weight-only"
        wq = "/".join(sorted({src.dtype for src, _ in derived.values() if src.dtype in ("int8", "uint8", "int4")}))
        label = f"weight-only {wq}: {_quant_weights_text(tensors)} dequantized to float, float compute"
    elif "float16" in w_dtypes:
        kind = "float16"
        label = "float16 weights, float32 compute"
        notes.append("XNNPACK and the GPU delegate unpack float16 weights at load: the file is "
                     "smaller, CPU speed is that of float32.")
    elif "float" in classes or w_dtypes & FLOAT_DTYPES:
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


def _quant_weights_text(tensors: list[list[TensorInfo]]) -> str:
    """``int8 weights``, ``int4 weights, blocks of 32`` ...: what the quantized constants are."""
    quantized = [t for ts in tensors for t in ts if t.is_constant and t.dtype in ("int8", "uint8", "int4")
                 and (t.quantization is not None or t.block_size)]
    dtypes = "/".join(sorted({t.dtype for t in quantized})) or "int8"
    blocks = sorted({t.block_size for t in quantized if t.block_size})
    return f"{dtypes} weights" + (f", blocks of {'/'.join(map(str, blocks))}" if blocks else "")


def _io_text(in_d: Sequence[str], out_d: Sequence[str]) -> str:
    si, so = sorted(set(in_d)), sorted(set(out_d))
    if si == so:
        return f"{'/'.join(si) or 'no'} I/O"
    return f"{'/'.join(si) or 'no'} input, {'/'.join(so) or 'no'} output"


# --------------------------------------------------------------------------------------------
# Delegate / kernel support
# --------------------------------------------------------------------------------------------


def _delegate_checks(g: GraphIndex) -> tuple[DelegateSupport, ...]:
    """Every op against the published int8 and int16x8 kernel lists and the GPU and XNNPACK delegates."""
    tensors, ops, unpack_ops = g.tensors, g.ops, g.unpack_ops
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

    def check_int8(op: Op, k: int) -> Optional[str]:
        if op.custom:
            return "custom op: no builtin int8 kernel"
        if op.name not in int8_ops:
            return "no int8 kernel in the published list"
        return None

    def check_int16(op: Op, k: int) -> Optional[str]:
        if op.custom:
            return "custom op: no builtin int16 kernel"
        if op.name not in int8_ops:
            return "no integer kernel in the published list"
        if op.name in not16:
            return "has int8 but no int16 kernel"
        return None

    def check_gpu(op: Op, k: int) -> Optional[str]:
        if op.custom:
            return None if op.name in gpu_custom else "custom op the GPU delegate does not know"
        if op.name not in gpu_ops:
            return "not supported by the GPU delegate"
        ts = tensors[op.subgraph]
        for i in list(op.inputs) + list(op.outputs):
            if i >= 0 and len(ts[i].static_shape) > gpu_rank:
                return (f"{len(ts[i].static_shape)}-D tensor (the GPU delegate takes up to "
                        f"{gpu_rank}-D)")
        ins, outs = g.tensors_in_out[k]
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

    def check_xnnpack(op: Op, k: int) -> Optional[str]:
        if op.custom:
            return "custom op"
        ts = tensors[op.subgraph]
        if k in unpack_ops and op.name == "DEQUANTIZE":
            src = ts[[i for i in op.inputs if i >= 0][0]]
            if src.dtype == "float16":
                return None  # float16 weights are unpacked at load
            return f"DEQUANTIZE of constant {src.dtype} weights is not in the published list"
        ins, outs = g.tensors_in_out[k]
        cls = {_act_class(t) for t in ins + outs}
        if "q16" in cls:
            return "int16 tensors: XNNPACK has no int16 kernels"
        if "other" in cls:
            bad = next(t for t in ins + outs if _act_class(t) == "other")
            return f"{bad.dtype} runtime tensor"
        if any(t.dtype != "float32" for t in ins + outs if t.dtype in FLOAT_DTYPES):
            return "non-float32 float tensors"
        if cls == {"float"}:
            if g.quantized_weights[k]:
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
