"""What ``bench`` measures with: one record from the CLI and the API to the host and device runners.

Host and device runs share most settings (runs, warm-up, minimum seconds, threads, delegate); a
few belong to one side (``max_runs`` to the host loop; the runtime, GPU, NPU and cache settings to
``benchmark_model`` on a device). Where the two sides default differently (threads, runner, how many
delegates), the record leaves the field unset and each runner fills it: :meth:`BenchOptions.for_host`,
:meth:`BenchOptions.for_device`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Sequence, Union

from tflite_deploy.errors import UserError

PathLike = Union[str, Path]

HOST_THREADS = 1     # LiteRT's own default on the host
DEVICE_THREADS = 4   # the big cores of a typical phone
HOST_RUNNER = "auto"  # see benchmark.compiled.resolve_host_runner
DEVICE_RUNNER = "binary"  # benchmark_model over adb shell (or "apk", the benchmark app)


def check_threads(threads: Optional[int]) -> None:
    """A bad thread count is the option's fault: say so before any model is opened."""
    if threads is not None and threads < 1:
        raise UserError(f"threads must be 1 or more, not {threads}: it is how many CPU threads the interpreter "
                        "uses; leave it out for the default.", param="threads")


@dataclass(frozen=True)
class BenchOptions:
    """What ``bench`` measures with. Host runs use threads (default 1) and one host delegate; device
    runs default to 4 threads and may list several delegates."""

    delegate: Union[str, Sequence[str]] = "xnnpack"
    threads: Optional[int] = None          # None: 1 on the host, 4 on a device
    runs: int = 50
    warmup: int = 5
    min_seconds: float = 1.0
    runner: Optional[str] = None           # device: binary (default) or apk; host: auto (default), compiled, interpreter
    tool: Optional[PathLike] = None        # benchmark_model binary, or the APK with runner="apk"
    runtime: str = "auto"                  # device benchmark_model: litert, tflite or auto (see benchmark.flags)
    model_cache: bool = True               # LiteRT on a device: cold and warm init
    npu_dispatch_lib: Optional[PathLike] = None      # delegate npu: the vendor's dispatch library
    npu_compiler_plugin: Optional[PathLike] = None   # delegate npu: the vendor's compiler plugin
    gpu_precision: str = "fp16"            # fp16 (precision loss allowed) or fp32
    nnapi_accelerator: Optional[str] = None
    op_profiling: bool = False
    pin_big_cores: bool = False
    cooldown: float = 0.0                  # seconds of rest between runs on a device
    timeout: Optional[float] = None        # one device run; None: from its bounds (benchmark.flags.run_timeout)
    cleanup: bool = False
    repeat: int = 1                        # independent measurements per file (fresh interpreter / run)
    measure: str = "time"                  # host: "instructions" adds instructions per invoke (callgrind)
    data: Optional[str] = None             # inputs from this dataset's first sample(s); else valid random values
    # runner-specific extras, not CLI flags
    max_runs: int = 100_000                # host: a cap on the interleaved rounds
    max_seconds: Optional[float] = None    # device: benchmark_model's --max_secs per phase; None: max(60, 2 x min)
    gpu_backend: Optional[str] = None      # device, LiteRT: opencl, opengl, webgpu... (its --gpu_backend)
    require_full_delegation: bool = False  # device, LiteRT: fail rather than fall back to the CPU

    def check(self, on_device: bool = True) -> None:
        check_threads(self.threads)
        if self.runs < 1:
            raise UserError(f"runs must be at least 1, not {self.runs}.", param="runs")
        if self.warmup < 0:
            raise UserError(f"warmup must be at least 0, not {self.warmup}.", param="warmup")
        if self.repeat < 1:
            raise UserError(f"repeat is how many independent measurements per file: at least 1, not {self.repeat}.",
                            param="repeat")
        if self.timeout is not None and self.timeout <= 0:
            raise UserError(f"timeout is a positive number of seconds, not {self.timeout:g}.", param="timeout")
        if on_device and self.runner not in (None, "binary", "apk"):
            raise UserError(f"runner on a device is binary or apk, not {self.runner!r}.", param="runner")
        if self.measure not in ("time", "instructions"):
            raise UserError(f"measure is time or instructions, not {self.measure!r}.", param="measure")
        if self.gpu_precision not in ("fp16", "fp32"):
            raise UserError(f"gpu_precision is fp16 or fp32, not {self.gpu_precision!r}.", param="gpu_precision")

    @property
    def delegates(self) -> tuple[str, ...]:
        names = self.delegate.split(",") if isinstance(self.delegate, str) else self.delegate
        return tuple(d.strip() for d in names if d.strip())

    def for_host(self) -> "BenchOptions":
        """The host's defaults filled in; ``delegate`` is one name (a list is refused by the runner)."""
        return replace(self, threads=self.threads or HOST_THREADS, runner=self.runner or HOST_RUNNER,
                       delegate=",".join(self.delegates) or "xnnpack")

    def for_device(self) -> "BenchOptions":
        """A device's defaults filled in (``delegates`` keeps the list)."""
        return replace(self, threads=self.threads or DEVICE_THREADS, runner=self.runner or DEVICE_RUNNER)
