"""Run a .tflite on the host with the LiteRT interpreter (``ai-edge-litert``), inputs and outputs by name.

Integer models take and give quantized tensors; :class:`TfliteModel` quantizes float inputs and
dequantizes outputs with the tensors' own scale and zero point, so callers see floats. Inputs that
are integers of their own (token ids, masks) are fed as they are. Inputs and outputs are named as
the model's signature names them (``tokens``, ``output_0``), else by tensor name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from tflite_deploy.datasets.inputs import Batch, ModelInput, check_value_ranges, feed
from tflite_deploy.errors import ModelError, UserError
from tflite_deploy.tflite.quant import Quantization, dequantize, quantize
from tflite_deploy.tflite.native_output import captured_native_stderr
from tflite_deploy.vocabulary import HOST_DELEGATES

# Host delegates (tflite_deploy.vocabulary.HOST_DELEGATES) as LiteRT op resolver types.
_OP_RESOLVERS = {
    "xnnpack": "AUTO",  # builtin kernels with the XNNPACK delegate applied (LiteRT's default)
    "none": "BUILTIN_WITHOUT_DEFAULT_DELEGATES",  # builtin optimized kernels, no XNNPACK
    "reference": "BUILTIN_REF",  # TFLite's reference kernels: slow, the numerical ground truth
}
#: Ops that keep their state in variable tensors between invokes: TFLite carries an LSTM's state over
#: from one call to the next, so a sample would start from the previous sample's state.
_STATEFUL_OPS = {"UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM", "UNIDIRECTIONAL_SEQUENCE_RNN",
                 "BIDIRECTIONAL_SEQUENCE_RNN", "LSTM", "RNN", "SVDF"}
#: Ops whose input tensor passes integers on unchanged (followed when looking for the embedding).
_PASS_THROUGH = {"CAST", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "IDENTITY"}


def check_host_delegate(delegate: str) -> str:
    if delegate not in HOST_DELEGATES:
        raise UserError(f"Unknown host delegate {delegate!r}: choose one of {', '.join(HOST_DELEGATES)} "
                        "(gpu and nnapi run on Android devices: measure on a device target).")
    return delegate


class TfliteModel:
    """A loaded .tflite with float-facing ``predict`` (first output) and ``predict_named`` (all outputs)."""

    def __init__(self, path: str | Path, threads: Optional[int] = None, delegate: str = "xnnpack") -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"Model {self.path} does not exist.")
        check_host_delegate(delegate)
        try:
            with captured_native_stderr():  # "INFO: Created TensorFlow Lite XNNPACK delegate"
                self.interpreter = Interpreter(
                    model_path=str(self.path), num_threads=threads,
                    experimental_op_resolver_type=getattr(OpResolverType, _OP_RESOLVERS[delegate]))
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"Model {self.path} could not be loaded by the LiteRT interpreter: "
                             f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}. "
                             "Is it a complete .tflite file?") from None
        self._names = _signature_names(self.interpreter)
        self.stateful = any(op["op_name"] in _STATEFUL_OPS for op in self.interpreter._get_ops_details())
        self._refresh()
        self._batch = int(self.input["shape"][0]) if len(self.input["shape"]) else 1
        self._rows: Optional[dict[str, int]] = None

    def _refresh(self) -> None:
        it = self.interpreter
        self.inputs = list(it.get_input_details())
        # outputs in the signature's order of names (output_0, output_1, ...), the same in every variant
        self.outputs = sorted(it.get_output_details(), key=lambda d: self._names.get(d["index"], d["name"]))
        self.input, self.output = self.inputs[0], self.outputs[0]

    # -- what the model takes and gives ----------------------------------------------------------
    def name_of(self, detail: Mapping[str, Any]) -> str:
        return self._names.get(int(detail["index"]), str(detail["name"]))

    @property
    def model_inputs(self) -> list[ModelInput]:
        return [ModelInput(self.name_of(d), _shape(d), np.dtype(d["dtype"]).name, str(d["name"]),
                           quantized=bool(d["quantization"][0]) and not np.issubdtype(np.dtype(d["dtype"]), np.floating))
                for d in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [self.name_of(d) for d in self.outputs]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return _shape(self.input)

    @property
    def input_dtype(self) -> str:
        return np.dtype(self.input["dtype"]).name

    @property
    def output_size(self) -> int:
        return int(np.prod(self.output["shape"][1:]))

    @property
    def fixed_batch(self) -> Optional[int]:
        """The batch size the model is built for (e.g. 1 for an LSTM converted with a static batch), else None."""
        batch = _shape(self.input)[0] if len(_shape(self.input)) else 1
        return None if batch < 0 else int(batch)

    def check_input(self, sample_shape: tuple[int, ...], where: str) -> None:
        want = self.input_shape[1:]
        if len(want) != len(sample_shape) or any(w > 0 and w != g for w, g in zip(want, sample_shape)):
            raise ModelError(f"Model {self.path} takes inputs of shape {tuple(want)} (batch left out), but "
                             f"{where} gives samples of shape {tuple(sample_shape)}.")

    def value_ranges(self) -> dict[str, tuple[int, int]]:
        """Valid values of each whole-number input, by name: ``0..rows-1`` for one that indexes an
        embedding (a GATHER's indices, read from the table's first dimension), ``0..1`` for the others
        (masks, flags). Float and quantized inputs are left out."""
        rows = self.embedding_rows()
        return {name: (0, rows[name] - 1) if name in rows else (0, 1) for name in self._integer_inputs()}

    def embedding_rows(self) -> dict[str, int]:
        """Rows of the embedding table each token-id input indexes (only inputs that feed a GATHER)."""
        if self._rows is None:
            self._rows = _embedding_rows_by_input(self.interpreter, self.inputs, self.name_of)
        return self._rows

    def _integer_inputs(self) -> list[str]:
        return [self.name_of(d) for d in self.inputs
                if (np.issubdtype(np.dtype(d["dtype"]), np.integer) or np.dtype(d["dtype"]) == np.bool_)
                and not d["quantization"][0]]

    # -- running ---------------------------------------------------------------------------------
    def _resize(self, n: int) -> None:
        if n != self._batch:
            for d in self.inputs:
                self.interpreter.resize_tensor_input(d["index"], [n, *d["shape"][1:]])
            self.interpreter.allocate_tensors()
            self._refresh()
            self._batch = n

    def quantize_input(self, x: np.ndarray, detail: Optional[Mapping[str, Any]] = None) -> np.ndarray:
        detail = self.input if detail is None else detail
        dtype = np.dtype(detail["dtype"])
        if np.issubdtype(dtype, np.floating):
            return x.astype(dtype)
        scale, zero = detail["quantization"]
        if not scale:
            if np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_:
                return x.astype(dtype)  # token ids, masks: integers of their own
            raise ModelError(f"Model {self.path} takes {dtype.name} input {self.name_of(detail)!r} without quantization "
                             "parameters (token ids, masks?); tflite-deploy cannot map float data onto it.")
        return quantize(x, Quantization((scale,), (zero,)), dtype.name)

    def dequantize_output(self, y: np.ndarray, detail: Optional[Mapping[str, Any]] = None) -> np.ndarray:
        detail = self.output if detail is None else detail
        if np.issubdtype(y.dtype, np.floating):
            return y.astype(np.float32)
        scale, zero = detail["quantization"]
        return dequantize(y, Quantization((scale,), (zero,))) if scale else y.astype(np.float32)

    def feed(self, batch: Batch, dataset: str = "the dataset") -> dict[str, np.ndarray]:
        """A dataset batch matched onto the inputs by name, checked (shapes, dtypes, token ids within
        the embedding's rows)."""
        arrays = feed(batch, self.model_inputs, f"model {self.path}", dataset)
        ranges = {name: (0, rows - 1) for name, rows in self.embedding_rows().items()}
        check_value_ranges(arrays, self.model_inputs, ranges, f"model {self.path}", dataset)
        return arrays

    def predict_named(self, batch: Batch, dataset: str = "the dataset") -> dict[str, np.ndarray]:
        """Float outputs by name for a batch (an array, or arrays by input name), checked first
        (:meth:`feed`); batched when the model allows it, else sample by sample."""
        arrays = self.feed(batch, dataset)
        n = len(next(iter(arrays.values())))
        fixed = self.fixed_batch
        if fixed is None or fixed == n:
            try:
                self._resize(n)
                return self._run(arrays)
            except (ValueError, RuntimeError):  # a batch the model cannot take: one sample at a time
                pass
        self._resize(1 if fixed is None else fixed)
        step = self._batch
        parts = [self._run_padded({k: v[i:i + step] for k, v in arrays.items()}, step) for i in range(0, n, step)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def _run_padded(self, arrays: Mapping[str, np.ndarray], step: int) -> dict[str, np.ndarray]:
        """A chunk short of a fixed batch (the last one) is padded with its last sample; the padding's
        outputs are dropped (every sample's outputs are its own: no op mixes samples)."""
        m = len(next(iter(arrays.values())))
        if m == step:
            return self._run(arrays)
        padded = {k: np.concatenate([v, np.repeat(v[-1:], step - m, axis=0)]) for k, v in arrays.items()}
        return {k: v[:m] for k, v in self._run(padded).items()}

    def predict(self, x: Batch) -> np.ndarray:
        """The first output (in signature name order) for a batch."""
        return next(iter(self.predict_named(x).values()))

    def _run(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        it = self.interpreter
        for d in self.inputs:
            it.set_tensor(d["index"], self.quantize_input(np.asarray(arrays[self.name_of(d)]), d))
        if self.stateful:  # every batch starts from a zero state, as the Keras model's does
            it.reset_all_variables()
        it.invoke()
        return {self.name_of(d): self.dequantize_output(it.get_tensor(d["index"]), d) for d in self.outputs}

    def fill_random_input(self, seed: int = 0) -> None:
        """Random input of valid values, for latency runs that need no data: floats in [0, 1), whole-number
        inputs within :meth:`value_ranges` (token ids below the vocabulary size, 0/1 masks), quantized
        inputs over their whole range."""
        rng = np.random.default_rng(seed)
        ranges = self.value_ranges()
        for d in self.inputs:
            shape, dtype = d["shape"], np.dtype(d["dtype"])
            data: Any
            name = self.name_of(d)
            if dtype == np.bool_:
                data = rng.integers(0, 1, size=shape, endpoint=True).astype(bool)
            elif np.issubdtype(dtype, np.integer):
                info = np.iinfo(dtype)
                lo, hi = ranges.get(name, (info.min, info.max))
                data = rng.integers(lo, hi, size=shape, endpoint=True, dtype=dtype)
            else:
                data = rng.random(size=shape).astype(dtype)
            self.interpreter.set_tensor(d["index"], data)

    def set_inputs(self, batch: Batch) -> None:
        """Set the inputs from real data (the first sample(s) of a dataset), for latency runs."""
        arrays = self.feed(batch)
        n = 1 if self.fixed_batch is None else self.fixed_batch
        self._resize(n)
        for d in self.inputs:
            a = arrays[self.name_of(d)][:n]
            if len(a) < n:
                raise ModelError(f"Model {self.path} takes a batch of {n}; the data gives {len(a)} sample(s).")
            self.interpreter.set_tensor(d["index"], self.quantize_input(a, d))

    def delegate_kernels(self) -> int:
        """How many partitions a delegate took (LiteRT lists each as a ``DELEGATE`` node)."""
        return sum(1 for op in self.interpreter._get_ops_details() if op["op_name"] == "DELEGATE")


def _shape(detail: Mapping[str, Any]) -> tuple[int, ...]:
    sig = detail.get("shape_signature")
    return tuple(int(d) for d in (sig if sig is not None and len(sig) else detail["shape"]))


def _signature_names(interp: Any) -> dict[int, str]:
    """Tensor index -> the name the model's (first) signature gives it."""
    try:
        keys = list(interp.get_signature_list())
        if not keys:
            return {}
        runner = interp.get_signature_runner(keys[0])
        names = {int(d["index"]): n for n, d in runner.get_input_details().items()}
        names.update({int(d["index"]): n for n, d in runner.get_output_details().items()})
        return names
    except (ValueError, RuntimeError, KeyError):
        return {}


def _embedding_rows_by_input(interp: Any, inputs: list, name_of: Any) -> dict[str, int]:
    ops = interp._get_ops_details()
    tensors = {int(t["index"]): t for t in interp.get_tensor_details()}
    out = {}
    for d in inputs:
        dtype = np.dtype(d["dtype"])
        if not np.issubdtype(dtype, np.integer) or d["quantization"][0]:
            continue
        rows = _embedding_rows(int(d["index"]), ops, tensors)
        if rows:
            out[name_of(d)] = rows
    return out


def _embedding_rows(index: int, ops: list, tensors: dict) -> Optional[int]:
    """Rows of the smallest table a GATHER (or EMBEDDING_LOOKUP) indexes with this tensor (through casts)."""
    frontier, seen, rows = [index], set(), []
    while frontier:
        t = frontier.pop()
        if t in seen:
            continue
        seen.add(t)
        for op in ops:
            ins = [int(i) for i in op["inputs"]]
            if t not in ins:
                continue
            if op["op_name"] == "GATHER" and len(ins) > 1 and ins[1] == t and ins[0] in tensors:
                rows.append(int(tensors[ins[0]]["shape"][0]))
            elif op["op_name"] == "EMBEDDING_LOOKUP" and ins[0] == t and len(ins) > 1:
                rows.append(int(tensors[ins[1]]["shape"][0]))
            elif op["op_name"] in _PASS_THROUGH and ins[0] == t:
                frontier += [int(o) for o in op["outputs"]]
    return min(rows) if rows else None
