"""Run an ``.onnx`` with ONNX Runtime (CPU provider): the float reference for ONNX sources, and a
``bench`` runner beside the TFLite variants.

Layout: ONNX image models are channels-first (NCHW); onnx2tf makes the TFLite model channels-last
(NHWC), and the dataset feeds the TFLite layout. :class:`OnnxRuntimeModel` takes samples in either
layout and transposes explicitly: a sample of shape (H, W, C) for an input declared (C, H, W) is
moved to channels-first, and 4-D outputs are moved back to channels-last, so outputs compare
element by element with the TFLite variants'.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from tflite_deploy.errors import ModelError

RUNNER = "onnxruntime"


class OnnxRuntimeModel:
    """A loaded ``.onnx`` with a float-facing ``predict`` (like :class:`~tflite_deploy.tflite.runtime.TfliteModel`)."""

    runner = RUNNER

    def __init__(self, path: str | Path, threads: Optional[int] = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"Model {self.path} does not exist.")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3  # errors only: its warnings are about graph optimizations
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            text = str(e).strip().splitlines()
            raise ModelError(f"Model {self.path} could not be loaded by ONNX Runtime: "
                             f"{text[0][:400] if text else type(e).__name__}") from None
        self.all_inputs = list(self.session.get_inputs())
        self.input = self.all_inputs[0]
        self.output_name = self.session.get_outputs()[0].name
        self.input_shape = _shape(self.input)
        self.input_dtype = _np_dtype(self.input.type)
        self._feed: Optional[dict[str, np.ndarray]] = None

    # ---------------------------------------------------------------------------------- layout
    def to_model_layout(self, x: np.ndarray, input_shape: Optional[tuple] = None) -> tuple[np.ndarray, bool]:
        """``x`` in the ONNX input's layout (the first input's unless ``input_shape``), and whether it
        was moved from channels-last."""
        want = (input_shape or self.input_shape)[1:]
        got = tuple(x.shape[1:])
        if _fits(want, got):
            return x, False
        if len(got) >= 2:
            channels_first = (got[-1], *got[:-1])  # (H, W, C) -> (C, H, W)
            if _fits(want, channels_first):
                return np.moveaxis(x, -1, 1), True
        shown = "(" + ", ".join("?" if d is None else str(d) for d in want) + ")"
        raise ModelError(f"Model {self.path} takes inputs of shape {shown} (batch left out), but the dataset "
                         f"gives samples of shape {got}, in neither this layout nor its channels-last form.")

    def predict(self, x: Any, dataset: str = "the dataset") -> np.ndarray:
        """Float outputs for a batch (in the ONNX or the channels-last layout): one array, or arrays by
        input name for a model with several inputs (dtypes kept: token ids stay integers)."""
        feed, moved = {}, False
        for inp, a in self._arrays(x, dataset).items():
            laid, was_moved = self.to_model_layout(np.asarray(a), _shape(inp))
            feed[inp.name], moved = laid.astype(_np_dtype(inp.type)), moved or was_moved
        n = len(next(iter(feed.values())))
        if all(_shape(i)[0] is None for i in self.all_inputs):
            y = self._run(feed)
        else:  # a fixed batch size (usually 1): one call per sample
            y = np.concatenate([self._run({k: v[i:i + 1] for k, v in feed.items()}) for i in range(n)])
        if moved and y.ndim >= 3:  # NCHW outputs back to NHWC, as onnx2tf's model gives them
            y = np.moveaxis(y, 1, -1)
        return y.astype(np.float32)

    def _arrays(self, x: Any, dataset: str) -> dict[Any, np.ndarray]:
        """{ONNX input: array}: one array for a single-input model, else matched by input name."""
        if not isinstance(x, Mapping) and len(self.all_inputs) == 1:
            return {self.input: x}
        from tflite_deploy.datasets.inputs import ModelInput, match_arrays

        wanted = [ModelInput(i.name, _shape(i), _np_dtype(i.type).name) for i in self.all_inputs]
        if not isinstance(x, Mapping):
            from tflite_deploy.datasets.inputs import feed

            feed(x, wanted, f"model {self.path}", dataset)  # raises: one array for several inputs
        names = match_arrays(list(x), wanted, f"model {self.path}", dataset)
        return {i: x[names[i.name]] for i in self.all_inputs}

    def _run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(self.session.run([self.output_name], feed)[0])

    # ----------------------------------------------------------------------------- for bench
    def fill_random_input(self, seed: int = 0) -> None:
        """A fixed random batch of one sample per input, for latency runs that need no data."""
        rng = np.random.default_rng(seed)
        self._feed = {i.name: rng.random(size=[1 if d is None else d for d in _shape(i)]).astype(_np_dtype(i.type))
                      for i in self.all_inputs}

    def invoke(self) -> None:
        if self._feed is None:
            self.fill_random_input()
        self.session.run([self.output_name], self._feed)

    def coverage(self) -> Any:
        from tflite_deploy.result import DelegateCoverage

        return DelegateCoverage(requested="cpu", applied=None, delegate_kernels=0,
                                message="ONNX Runtime, CPU execution provider (no TFLite delegate)")

    @property
    def interpreter(self) -> "OnnxRuntimeModel":
        """``bench`` times ``model.interpreter.invoke()``; for ONNX Runtime that is this object."""
        return self


def onnx_reference(path: str | Path, threads: Optional[int] = None) -> Any:
    """A reference predictor for ``evaluate``: the ``.onnx`` run by ONNX Runtime."""
    return OnnxRuntimeModel(path, threads).predict


def _shape(inp: Any) -> tuple[Optional[int], ...]:
    return tuple(d if isinstance(d, int) and d > 0 else None for d in inp.shape)


def _fits(want: tuple, got: tuple) -> bool:
    return len(want) == len(got) and all(w is None or w == g for w, g in zip(want, got))


def _np_dtype(ort_type: str) -> np.dtype:
    names = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
             "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(int32)": "int32", "tensor(int64)": "int64"}
    if ort_type not in names:
        raise ModelError(f"ONNX input type {ort_type} is not supported by tflite-deploy.")
    return np.dtype(names[ort_type])
