"""A host runner on LiteRT's CompiledModel API (``ai_edge_litert.compiled_model``), beside the Interpreter.

``CompiledModel`` is what LiteRT's own ``litert-benchmark`` and ``benchmark_model`` measure: the
model is compiled once for the chosen accelerators (on the host, the CPU accelerator: XNNPACK) and
run on tensor buffers made for it. Here the buffers are created once, filled with seeded random
data (as the Interpreter runner does) and each timed call is one ``run_by_index``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from tflite_deploy.errors import ModelError, UserError
from tflite_deploy.tflite.native_output import captured_native_stderr, drop_at_exit
from tflite_deploy.result import DelegateCoverage

RUNNERS = ("auto", "compiled", "interpreter")
# The CompiledModel's CPU accelerator is XNNPACK: the classic "none"/"reference" kernels are the Interpreter's.
COMPILED_DELEGATES = ("xnnpack",)
# what LiteRT's static tensor-buffer environment prints when the C++ runtime destroys it at exit
_TEARDOWN_LINE = r"^INFO: \[accelerator_registry\.cc:[0-9]+\] DestroyAccelerator: "


def resolve_host_runner(runner: str, delegate: str) -> str:
    """``auto`` is the Interpreter for now; ``compiled`` is asked for by name.

    Measured here (tools/bench_host_runners.py, MobileNetV2 224, 1 thread, invokes alternated in one
    process): compiled / interpreter p50 0.999x on float32 and 0.966x on int8; measured again on
    2026-11-30 (load 10 on 2 cores) 1.003x and 0.998x; on the tiny digits CNN the compiled runner is
    slower (p50 5.5 us against 3.6 us: its per-call overhead). Faster nowhere reliably, so ``auto``
    stays the Interpreter. LiteRT's INFO lines on stderr no longer stand in the way (creation and
    buffer writes run captured, the static environment's teardown at exit is filtered:
    :func:`~tflite_deploy.tflite.native_output.drop_at_exit`).
    """
    if runner not in RUNNERS:
        raise UserError(f"Unknown host runner {runner!r}: choose {', '.join(RUNNERS)}.")
    if runner == "auto":
        return "interpreter"
    if runner == "compiled" and delegate not in COMPILED_DELEGATES:
        raise UserError(f"The compiled runner (LiteRT's CompiledModel) runs on its CPU accelerator, XNNPACK; the "
                        f"{delegate!r} kernels are the Interpreter's: use runner=interpreter with delegate="
                        f"{delegate}.", param="runner")
    return runner


class CompiledRunner:
    """One .tflite compiled for the CPU accelerator, with its input and output buffers ready."""

    def __init__(self, path: str | Path, threads: int = 1, seed: int = 0) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"Model {self.path} does not exist.")
        drop_at_exit(_TEARDOWN_LINE)
        try:
            # LiteRT's logger keeps the stderr it found when its library loaded: load it while captured,
            # so its INFO chatter (accelerator registration, and teardown at exit) stays off the terminal
            with captured_native_stderr():
                from ai_edge_litert.compiled_model import CompiledModel
                from ai_edge_litert.hardware_accelerator import HardwareAccelerator
                from ai_edge_litert.options import CpuOptions, Options

                self.model = CompiledModel.from_file(
                    str(self.path), options=Options(hardware_accelerators=HardwareAccelerator.CPU,
                                                    cpu_options=CpuOptions(num_threads=threads)))
                signature = self.model.get_signature_by_index(0)["key"]
                self.signature_index = self.model.get_signature_index(signature)
                self.inputs = self.model.create_input_buffers(self.signature_index)
                self.outputs = self.model.create_output_buffers(self.signature_index)
                # writing a buffer makes LiteRT set up another environment, with its chatter: captured too
                rng = np.random.default_rng(seed)
                details = self.model.get_input_tensor_details(signature)
                for buf, detail in zip(self.inputs, details.values()):
                    buf.write(_random(rng, detail))
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"Model {self.path} could not be compiled by LiteRT's CompiledModel: "
                             f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}.") from None

    @property
    def invoke(self) -> Callable[[], None]:
        """One inference on the prepared buffers (the call the timing loop makes)."""
        run, index, inputs, outputs = self.model.run_by_index, self.signature_index, self.inputs, self.outputs
        return lambda: run(index, inputs, outputs)

    def close(self) -> None:
        """Release the model, its buffers and its environment now, their native log lines kept off the terminal."""
        with captured_native_stderr():  # "INFO: [accelerator_registry.cc:43] DestroyAccelerator: ..."
            env = self.model.environment
            self.inputs.clear()  # in place: the timing loop's closure holds these very lists
            self.outputs.clear()
            self.model.close()
            self.model = None  # type: ignore[assignment]  # it holds the environment too
            env.close()
            del env
            import gc

            gc.collect()

    def coverage(self) -> DelegateCoverage:
        if self.model.is_fully_accelerated():
            return DelegateCoverage(requested="xnnpack", applied=True, fully=True, delegate_kernels=1,
                                    message="CompiledModel on LiteRT's CPU accelerator (XNNPACK): every op")
        from tflite_deploy.tflite.runtime import TfliteModel  # how much XNNPACK takes, counted by the Interpreter

        n = TfliteModel(self.path).delegate_kernels()
        return DelegateCoverage(requested="xnnpack", applied=n > 0, fully=False, delegate_kernels=n,
                                message=f"CompiledModel: XNNPACK took {n} partition(s); the rest runs on the "
                                        "fallback kernels")


def _random(rng: np.random.Generator, detail: dict) -> np.ndarray:
    dtype = np.dtype(detail.get("dtype", "float32"))
    shape = [int(d) for d in detail.get("shape", [1])]
    if np.issubdtype(dtype, np.floating):
        return rng.uniform(-1.0, 1.0, shape).astype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -128), min(info.max, 127) + 1, shape).astype(dtype)
    return np.zeros(shape, dtype=dtype)
