"""Run a .tflite on the host with the LiteRT interpreter (``ai-edge-litert``), float in, float out.

Integer models take and give quantized tensors; :class:`TfliteModel` quantizes inputs and
dequantizes outputs with the tensors' own scale and zero point, so callers always see floats.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

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


def check_host_delegate(delegate: str) -> str:
    if delegate not in HOST_DELEGATES:
        raise UserError(f"Unknown host delegate {delegate!r}: choose one of {', '.join(HOST_DELEGATES)} "
                        "(gpu and nnapi run on Android devices: measure on a device target).")
    return delegate


class TfliteModel:
    """A loaded .tflite with float-facing ``predict``."""

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
        ins, outs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        if len(ins) != 1:
            raise ModelError(f"Model {self.path} has {len(ins)} inputs; tflite-deploy evaluates "
                             "single-input models for now.")
        self.input, self.output = ins[0], outs[0]
        self._batch = int(self.input["shape"][0]) if len(self.input["shape"]) else 1

    @property
    def input_shape(self) -> tuple[int, ...]:
        sig = self.input.get("shape_signature")
        return tuple(int(d) for d in (sig if sig is not None and len(sig) else self.input["shape"]))

    @property
    def input_dtype(self) -> str:
        return np.dtype(self.input["dtype"]).name

    @property
    def output_size(self) -> int:
        return int(np.prod(self.output["shape"][1:]))

    def check_input(self, sample_shape: tuple[int, ...], where: str) -> None:
        want = self.input_shape[1:]
        if len(want) != len(sample_shape) or any(w > 0 and w != g for w, g in zip(want, sample_shape)):
            raise ModelError(f"Model {self.path} takes inputs of shape {tuple(want)} (batch left out), but "
                             f"{where} gives samples of shape {tuple(sample_shape)}.")

    def _resize(self, n: int) -> None:
        if n != self._batch:
            self.interpreter.resize_tensor_input(self.input["index"], [n, *self.input["shape"][1:]])
            self.interpreter.allocate_tensors()
            self.input = self.interpreter.get_input_details()[0]
            self.output = self.interpreter.get_output_details()[0]
            self._batch = n

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        dtype = np.dtype(self.input["dtype"])
        if np.issubdtype(dtype, np.floating):
            return x.astype(dtype)
        scale, zero = self.input["quantization"]
        if not scale:
            raise ModelError(f"Model {self.path} takes {dtype.name} input without quantization parameters; "
                             "tflite-deploy cannot map float data onto it.")
        return quantize(x, Quantization((scale,), (zero,)), dtype.name)

    def dequantize_output(self, y: np.ndarray) -> np.ndarray:
        if np.issubdtype(y.dtype, np.floating):
            return y.astype(np.float32)
        scale, zero = self.output["quantization"]
        return dequantize(y, Quantization((scale,), (zero,))) if scale else y.astype(np.float32)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Float outputs for a float batch; batched when the model allows it, else sample by sample."""
        try:
            self._resize(len(x))
            return self._run(x)
        except (ValueError, RuntimeError):  # a fixed batch size: one sample at a time
            self._resize(1)
            return np.concatenate([self._run(x[i:i + 1]) for i in range(len(x))])

    def _run(self, x: np.ndarray) -> np.ndarray:
        it = self.interpreter
        it.set_tensor(self.input["index"], self.quantize_input(x))
        it.invoke()
        return self.dequantize_output(it.get_tensor(self.output["index"]))

    def fill_random_input(self, seed: int = 0) -> None:
        """Random input in the tensor's range, for latency runs that need no data."""
        rng = np.random.default_rng(seed)
        shape, dtype = self.input["shape"], np.dtype(self.input["dtype"])
        data: Any
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            data = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
        else:
            data = rng.random(size=shape).astype(dtype)
        self.interpreter.set_tensor(self.input["index"], data)

    def delegate_kernels(self) -> int:
        """How many partitions a delegate took (LiteRT lists each as a ``DELEGATE`` node)."""
        return sum(1 for op in self.interpreter._get_ops_details() if op["op_name"] == "DELEGATE")
