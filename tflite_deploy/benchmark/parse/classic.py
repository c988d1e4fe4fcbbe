"""The lines of TFLite's classic ``benchmark_model`` (tensorflow/lite/tools/benchmark), all versions.

- ``Running benchmark for at least N iterations ...`` (2018: ``Running benchmark for N
  iterations``) opens a run; the first is the warm-up, the second the measured runs.
- one stats line closes each run. Its form depends on the stats class of the build:
  ``count=50 first=.. curr=.. min=.. max=.. avg=.. std=..``, ``count=N curr=X(all same)``,
  ``count=0``, the oldest ``curr=.. count=.. min=.. max=.. avg=.. std=..`` (no ``first``), and
  the newest which appends `` p5=.. median=.. p95=..``. Times are microseconds; ``avg`` is a
  double printed with 6 significant digits, so a slow model prints ``avg=1.78988e+06``.
  (LiteRT's own benchmark_model is built on the same runner and prints these too.)
- the last line of a finished run (the completeness marker): ``Inference timings in us: Init:
  .., First inference: .., Warmup (avg): .., Inference (avg): ..``; before 2020 ``Average
  inference timings in us: Warmup: .., Init: .., Inference: ..`` (2018: ``.., no stats: ..``).
- memory: ``Peak memory footprint (MB): init=.. overall=..`` (old name), ``Memory footprint
  delta from the start of the tool (MB): init=.. overall=..`` (new name) and, with
  ``--report_peak_memory_footprint``, ``Overall peak memory footprint (MB) via periodic
  monitoring: ..``.
- delegation: ``Explicitly applied GPU delegate, and the model graph will be completely|partially
  executed by the delegate [w/ N delegate kernels].``, ``Though NNAPI delegate is explicitly
  applied, the model graph will not be executed by the delegate.``, ``Failed to apply GPU
  delegate.``, the runtime's ``Replacing N out of M node(s) with delegate (...) node, yielding K
  partitions``, the GPU delegate's list of unsupported ops, and the NNAPI accelerators.
- the echoed parameters, ``Num threads: [4]``.

:class:`ClassicLines` is mixed into the parser in :mod:`tflite_deploy.benchmark.parse.log`.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from tflite_deploy.benchmark.parse.lines import NUM as _NUM
from tflite_deploy.benchmark.parse.lines import delegate_key as _delegate_key
from tflite_deploy.benchmark.parse.lines import ms as _ms
from tflite_deploy.benchmark.parse.lines import names as _names
from tflite_deploy.benchmark.parse.lines import num as _num
from tflite_deploy.benchmark.parse.lines import us_to_ms as _us_to_ms
from tflite_deploy.result import DelegateCoverage, LatencyStats

# --- runs and timings -----------------------------------------------------------------------
_STARTING = re.compile(r"^STARTING!$")
_RUN_MARKER = re.compile(r"^Running benchmark for (?:at least )?(?P<n>\d+) iterations")
_STATS_KEYS = ("count", "first", "curr", "min", "max", "avg", "std", "p5", "median", "p95")
_STATS_TOKEN = re.compile(rf"(?P<key>{'|'.join(_STATS_KEYS)})=(?P<value>{_NUM})")
# the whole line must be tokens: "Timings (microseconds): count=.." (op profiling) is not a run
_STATS_LINE = re.compile(rf"^(?=count=|curr=)(?:(?:{'|'.join(_STATS_KEYS)})={_NUM}(?:\(all same\))?\s*)+$")
_INIT = re.compile(rf"^Initialized session in (?P<ms>{_NUM})\s*ms\.?$")
_TIMINGS = re.compile(
    rf"Inference timings in us: Init: (?P<init>{_NUM}), First inference: (?P<first>{_NUM}), "
    rf"Warmup \(avg\): (?P<warmup>{_NUM}), Inference \(avg\): (?P<inference>{_NUM})"
)
_TIMINGS_OLD = re.compile(  # 2018-2020; the 2018 build calls the inference average "no stats"
    rf"Average inference timings in us: Warmup: (?P<warmup>{_NUM}), Init: (?P<init>{_NUM}), "
    rf"(?:Inference|no stats): (?P<inference>{_NUM})"
)
_BENCHMARK_FAILED = re.compile(r"Benchmarking failed")

# --- memory and model -----------------------------------------------------------------------
# search, not match: a pasted copy may have lost the start of the line ("FO: Memory ...")
_MEM_OLD = re.compile(rf"Peak memory footprint \(MB\): init=(?P<init>{_NUM}) overall=(?P<overall>{_NUM})")
_MEM_DELTA = re.compile(
    rf"Memory footprint delta from the start of the tool \(MB\): init=(?P<init>{_NUM}) overall=(?P<overall>{_NUM})"
)
_MEM_PEAK = re.compile(rf"Overall peak memory footprint \(MB\) via periodic monitoring: (?P<peak>{_NUM})")
_MODEL_SIZE = re.compile(rf"The input model file size \(MB\): (?P<mb>{_NUM})")

# --- delegates ------------------------------------------------------------------------------
_FULLY = re.compile(
    r"Explicitly applied (?P<name>\S+) delegate, and the model graph will be completely executed by the delegate"
)
_PARTIALLY = re.compile(
    r"Explicitly applied (?P<name>\S+) delegate, and the model graph will be partially executed by the "
    r"delegate w/ (?P<kernels>\d+) delegate kernels"
)
_NOT_EXECUTED = re.compile(
    r"Though (?P<name>\S+) delegate is explicitly applied, the model graph will not be executed by the delegate"
)
_FAILED_APPLY = re.compile(r"Failed to apply (?P<name>\S+) delegate")
_CREATED = re.compile(
    r"Created TensorFlow Lite (?:(?P<name>\w+) )?delegate for (?P<target>\w+)|^(?P<provider>[A-Za-z]+) delegate created"
)
_REPLACING = re.compile(  # the runtime's own line; "out of M" arrived in 2020
    r"Replacing (?P<n>\d+)(?: out of (?P<total>\d+))? node\(s\) with delegate \((?P<kernel>[^)]+)\) node, "
    r"yielding (?P<parts>\d+) partitions"
)
_KERNEL_DELEGATE = {  # delegate kernel name -> the name the tool prints for its delegate
    "TfLiteXNNPackDelegate": "XNNPACK",
    "TfLiteGpuDelegateV2": "GPU",
    "TfLiteGpuDelegate": "GPU",
    "TfLiteNnapiDelegate": "NNAPI",
    "TfLiteHexagonDelegate": "Hexagon",
    "TfLiteCoreMlDelegate": "CoreML",
}
_VERDICTS = ("Explicitly applied", "Though", "Failed to apply")
_UNSUPPORTED_PLATFORM = re.compile(r"\b(?P<name>\w+) acceleration is unsupported on this platform")
_GPU_UNSUPPORTED_HEAD = re.compile(r"^(?:Following|Next) operations are not supported by GPU delegate:")
_GPU_UNSUPPORTED_OP = re.compile(r"^[A-Z][A-Z0-9_]*:")  # "UNPACK: Operation is not supported."
_GPU_SPLIT_START = re.compile(r"^(?:First )?\d+ operations will run")
_GPU_SPLIT = re.compile(r"\b(?P<gpu>\d+) operations will run on the GPU, and the remaining (?P<cpu>\d+)")
_NNAPI_AVAILABLE = re.compile(r"NNAPI accelerators available: \[(?P<names>[^\]]*)\]")
_NNAPI_OLD = re.compile(  # 2020 provider: "nnapi accelerator name: [x] (Available: a,b)"
    r"^nnapi accelerator name: \[(?P<name>[^\]]*)\](?: \(Available: (?P<names>[^)]*)\))?"
)
# printed without an ERROR prefix by older builds, yet they mean something failed
_FAILURE_TEXT = re.compile(
    r"Benchmarking failed|Failed to (?!get the input model file size)|failed to prepare|Disallowed CPU fallback"
    r"|unable to open library|is unsupported on this platform|Restored original execution plan",
    re.IGNORECASE,
)

_APK_ARGS = re.compile(r"^Running TensorFlow Lite benchmark with args: (?P<args>.*)$")  # the APK's activity
_PARAM = re.compile(r"^(?P<key>[#A-Za-z][^\[\]=:]*):\s*\[(?P<value>[^\]]*)\]$")  # key is stripped later


class ClassicLines:
    """Reads the classic tool's measurement, memory and delegation lines into its host's state."""

    v: dict[str, Any]
    markers: int
    stats_lines: int
    failed: bool
    percentiles: dict[str, dict[str, float]]
    delegates: dict[str, DelegateCoverage]
    created: list[str]
    in_gpu_ops: bool
    accelerators: list[str]
    params: dict[str, str]
    errors: list[str]
    warnings: list[str]

    def _measurement(self, s: str) -> bool:
        m = _RUN_MARKER.match(s)
        if m:
            self.markers += 1
            return True
        if _STATS_LINE.match(s):
            # the tool prints one stats line after each "Running benchmark" line: warm-up first
            slot = self.markers - 1 if self.markers else self.stats_lines
            self.stats_lines += 1
            key = {0: "warmup", 1: "runs"}.get(slot)
            if key is None or key in self.v:
                self.warnings.append(f"stats line outside the warm-up and measured runs ignored: {s}")
            else:
                self.v[key], pct = _latency_stats(s)
                if pct:
                    self.percentiles[key] = pct
            return True
        m = _INIT.match(s)
        if m:
            self.v["init_ms"] = _num(m["ms"])
            return True
        m = _TIMINGS.search(s) or _TIMINGS_OLD.search(s)  # the old line has no first inference
        if m:
            self.v.update(complete=True, tool="tflite", init_ms=_us_to_ms(m["init"]),
                          warmup_avg_ms=_us_to_ms(m["warmup"]), inference_avg_ms=_us_to_ms(m["inference"]))
            if m.groupdict().get("first"):
                self.v["first_ms"] = _us_to_ms(m["first"])
            return True
        if _BENCHMARK_FAILED.search(s):
            self.failed = True
            self.errors.append(s)
            return True
        return False

    def _memory(self, s: str) -> bool:
        m = _MEM_DELTA.search(s) or _MEM_OLD.search(s)
        if m:
            self.v["init_memory_mb"] = _num(m["init"])
            self.v["overall_memory_mb"] = _num(m["overall"])
            return True
        m = _MEM_PEAK.search(s)
        if m:
            self.v["peak_memory_mb"] = _num(m["peak"])
            return True
        m = _MODEL_SIZE.search(s)
        if m:
            self.v["model_size_mb"] = _num(m["mb"])
            return True
        return False

    def _delegation(self, s: str) -> bool:
        # The tool's own verdict (Explicitly applied / Though / Failed) wins over the runtime's
        # "Replacing" line, which it follows.
        m = _PARTIALLY.search(s)
        if m:
            self._cover(m["name"], s, applied=True, fully=False, kernels=int(m["kernels"]))
            return True
        m = _FULLY.search(s)
        if m:
            self._cover(m["name"], s, applied=True, fully=True, kernels=1)
            return True
        m = _NOT_EXECUTED.search(s)
        if m:
            self._cover(m["name"], s, applied=False, fully=False, kernels=0)
            return True
        m = _FAILED_APPLY.search(s)
        if m:
            self._cover(m["name"], s, applied=False)
            self.errors.append(s)
            return True
        m = _REPLACING.search(s)
        if m:
            name = _KERNEL_DELEGATE.get(m["kernel"], m["kernel"])
            n, parts = int(m["n"]), int(m["parts"])
            fully = (n == int(m["total"]) and parts == 1) if m["total"] else None
            self._cover(name, s, applied=n > 0, fully=fully, kernels=parts, verdict=False)
            return True
        m = _CREATED.search(s)
        if m:
            self.created.append(m["name"] or m["target"] or m["provider"])
            return True
        m = _UNSUPPORTED_PLATFORM.search(s)
        if m:
            self._cover(m["name"], s, applied=False)
            self.errors.append(s)
            return True
        if _GPU_UNSUPPORTED_HEAD.match(s):  # the ops it lists land in gpu_unsupported_ops
            self.in_gpu_ops = True
            return True
        m = _GPU_SPLIT.search(s)
        if m:
            self._cover("GPU", s, applied=int(m["gpu"]) > 0, fully=int(m["cpu"]) == 0, verdict=False)
            return True
        m = _NNAPI_AVAILABLE.search(s)
        if m:
            self.accelerators = _names(m["names"])
            self.params["NNAPI accelerators available"] = m["names"]
            return True
        return False

    def _cover(
        self,
        name: str,
        message: str,
        *,
        applied: Optional[bool],
        fully: Optional[bool] = None,
        kernels: Optional[int] = None,
        verdict: bool = True,  # the tool's own words, not a runtime detail
    ) -> None:
        key = _delegate_key(name)
        old = self.delegates.get(key)
        if old is not None:
            if not verdict and old.message.startswith(_VERDICTS):
                return  # a runtime detail never overrides the tool's verdict
            if verdict and not old.message.startswith(_VERDICTS):
                message = f"{message} ({old.message})"  # keep "Replacing 58 out of 60 node(s)..."
        self.delegates[key] = DelegateCoverage(
            requested=name.strip(), applied=applied, fully=fully, delegate_kernels=kernels, message=message
        )


def _latency_stats(line: str) -> tuple[LatencyStats, dict[str, float]]:
    """One stats line (microseconds) as LatencyStats in ms, plus p5/p95 when printed."""
    v = {m["key"]: _num(m["value"]) for m in _STATS_TOKEN.finditer(line)}
    count = int(v.get("count") or 0)
    if count == 0:  # "count=0": nothing ran (dry run, or no time left); any p5/median is noise
        return LatencyStats(count=0), {}
    ms = {k: _ms(x) for k, x in v.items()}
    pct = {k: ms[k] for k in ("p5", "p95") if ms.get(k) is not None}
    if "min" not in v:
        # "count=N curr=X(all same)" or "count=1 curr=X": every sample was X
        x = ms.get("curr")
        return LatencyStats(count=count, mean_ms=x, std_ms=0.0, min_ms=x, max_ms=x, p50_ms=x, first_ms=x), pct
    return (
        LatencyStats(
            count=count,
            mean_ms=ms.get("avg"),
            std_ms=ms.get("std"),
            min_ms=ms.get("min"),
            max_ms=ms.get("max"),
            p50_ms=ms.get("median"),
            first_ms=ms.get("first"),  # the oldest format has no "first"
        ),
        pct,
    )


def _last_error(errors: list[str]) -> str:
    if not errors:
        return ""
    # a delegate failure explains more than the "Benchmarking failed." that follows it
    best = next((e for e in errors if _FAILED_APPLY.search(e)), None) or next(
        (e for e in reversed(errors) if not _BENCHMARK_FAILED.search(e)), errors[-1])
    return f". Last error printed: {best}"
