"""Read what TFLite's ``benchmark_model`` prints, of every version, into numbers.

Pure functions over text: no adb, no TensorFlow. :func:`parse_benchmark_log` takes a whole
capture (stdout and stderr together, a copy with ``INFO:`` prefixes, or a logcat dump of the
benchmark APK) and returns a :class:`BenchmarkLog`; :func:`to_result` turns that into the
:class:`~tflite_deploy.result.Result` that every measuring command writes.

The lines, as the tool's own source prints them (tensorflow/lite/tools/benchmark and LiteRT's
tflite/tools/benchmark, all versions since 2018):

- ``Running benchmark for at least N iterations ...`` (2018: ``Running benchmark for N
  iterations``) opens a run; the first is the warm-up, the second the measured runs.
- one stats line closes each run. Its form depends on the stats class of the build:
  ``count=50 first=.. curr=.. min=.. max=.. avg=.. std=..``, ``count=N curr=X(all same)``,
  ``count=0``, the oldest ``curr=.. count=.. min=.. max=.. avg=.. std=..`` (no ``first``), and
  LiteRT's newest which appends `` p5=.. median=.. p95=..``. Times are microseconds; ``avg``
  is a double printed with 6 significant digits, so a slow model prints ``avg=1.78988e+06``.
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
- ``--enable_op_profiling`` tables: a ``==== Title ====`` line, a header row of bracketed names
  (``[start]`` was dropped in 2021) and tab-separated rows; read by header name.
- the echoed parameters, ``Num threads: [4]``.

Anything else is kept in ``raw`` and ignored; nothing here raises on odd input.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Union

from tflite_deploy.result import DelegateCoverage, LatencyStats, Result

__all__ = ["BenchmarkLog", "ProfileTable", "parse_benchmark_log", "to_result"]

# A number as C++ iostreams print int64 and double: "119375", "34825.1", "1.78988e+06", "nan".
# (Written so that a run of digits splits only one way: no quadratic backtracking on garbage.)
_NUM = r"(?:[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|-?nan|-?inf)"

# --- line prefixes -------------------------------------------------------------------------
# `adb logcat` (threadtime, the default): "05-31 10:38:42.607 22206 22206 E tflite  : text"
_LOGCAT_THREADTIME = re.compile(
    r"^\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+\s+\d+\s+\d+\s+(?P<level>[VDIWEF])\s+(?P<tag>[^:\s]+)\s*:\s?(?P<msg>.*)$"
)
# Android Studio's logcat copy: "2019-06-02 13:59:36.044 6836-6836/com.example I/tflite: text"
_LOGCAT_STUDIO = re.compile(
    r"^\d{4}-\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+\s+\d+-\d+/\S*\s+(?P<level>[VDIWEF])/(?P<tag>[^:\s]+)\s*:\s?(?P<msg>.*)$"
)
# `adb logcat -v brief`: "I/tflite  ( 1234): text"
_LOGCAT_BRIEF = re.compile(r"^(?P<level>[VDIWEF])/(?P<tag>[^(:\s]+)\s*(?:\(\s*\d+\)\s*)?:\s?(?P<msg>.*)$")
# TFLite's own logger (TFLITE_LOG and the runtime's minimal logging): "INFO: text"
_TFLITE_LEVEL = re.compile(r"^(?P<level>INFO|WARNING|WARN|ERROR|VERBOSE|DEBUG|FATAL):\s?(?P<msg>.*)$")

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

# --- echoed parameters and op profiling -----------------------------------------------------
_APK_ARGS = re.compile(r"^Running TensorFlow Lite benchmark with args: (?P<args>.*)$")  # the APK's activity
_PARAM = re.compile(r"^(?P<key>[#A-Za-z][^\[\]=:]*):\s*\[(?P<value>[^\]]*)\]$")  # key is stripped later
_TABLE_TITLE = re.compile(r"^=+ (?P<title>.+?) =+$")
_SECTION = re.compile(
    r"^(?P<label>(?:Operator-wise )?Profiling Info for [^:]+|Delegate internal|Primary graph \w+"
    r"|Subgraph \(index: \d+\) \w+):\s*$"
)
_HEADER_CELL = re.compile(r"\[([^\[\]]*)\]")
_INT = re.compile(r"^-?\d+$")
_FLOAT = re.compile(r"^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?%?$")
_TEXT_COLUMNS = ("node_type", "name")


@dataclass(frozen=True)
class ProfileTable:
    """One ``--enable_op_profiling`` table, its columns named from its own header row.

    Column names are the header's, normalised: ``[node type]`` -> ``node_type``, ``[avg ms]``
    -> ``avg_ms``, ``[%]`` -> ``pct``, ``[cdf%]`` and ``[cdf %]`` -> ``cdf_pct``, ``[mem KB]`` ->
    ``mem_kb``, ``[times called]`` -> ``times_called``, ``[Name]`` -> ``name``; old builds add
    ``start``. Numbers become int or float (a percentage loses its ``%``); names stay text.
    """

    section: str  # "Operator-wise Profiling Info for Regular Benchmark Runs", "" if not printed
    title: str  # "Run Order", "Top by Computation Time", "Summary by node type", ...
    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]
    graph: str = ""  # "Subgraph (index: 1) profile" when the model has several subgraphs

    def to_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "graph": self.graph,
            "title": self.title,
            "columns": list(self.columns),
            "rows": [dict(r) for r in self.rows],
        }


@dataclass(frozen=True)
class BenchmarkLog:
    """Everything :func:`parse_benchmark_log` found in one ``benchmark_model`` capture.

    Times are milliseconds and memory megabytes (the tool prints microseconds and MB). A value
    the log does not hold is ``None``. ``complete`` is True only when the tool's last line of a
    finished run is there; ``error`` says why a capture is not a usable measurement.
    """

    complete: bool
    error: Optional[str]
    init_ms: Optional[float] = None
    first_ms: Optional[float] = None
    warmup_avg_ms: Optional[float] = None
    inference_avg_ms: Optional[float] = None
    warmup: Optional[LatencyStats] = None
    runs: Optional[LatencyStats] = None
    # p5/p95 of the newest builds, which LatencyStats has no field for: {"runs": {"p5": ..}}
    percentiles_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    model_size_mb: Optional[float] = None
    init_memory_mb: Optional[float] = None
    overall_memory_mb: Optional[float] = None
    peak_memory_mb: Optional[float] = None  # only from --report_peak_memory_footprint
    # one per delegate the tool reported on, in order; `requested` holds the tool's own name
    delegates: tuple[DelegateCoverage, ...] = ()
    gpu_unsupported_ops: tuple[str, ...] = ()
    nnapi_accelerators: tuple[str, ...] = ()
    params: dict[str, str] = field(default_factory=dict)
    op_profile: tuple[ProfileTable, ...] = ()
    errors: tuple[str, ...] = ()  # error lines the tool printed, in order
    warnings: tuple[str, ...] = ()  # things the parser noticed about the capture itself
    raw: str = ""

    @property
    def ok(self) -> bool:
        return self.complete and self.error is None

    def delegate(self, name: str) -> Optional[DelegateCoverage]:
        """What the log says about one delegate (``gpu``, ``NNAPI``...), any spelling."""
        key = _delegate_key(name)
        for cov in self.delegates:
            if _delegate_key(cov.requested) == key:
                return cov
        return None

    def table(self, title: str, section: Optional[str] = None) -> Optional[ProfileTable]:
        """The first profiling table with this title (in this section, if given)."""
        for t in self.op_profile:
            if t.title == title and (section is None or t.section == section):
                return t
        return None


def parse_benchmark_log(text: Union[str, bytes]) -> BenchmarkLog:
    """Parse one ``benchmark_model`` capture. Never raises on odd input; see ``error``."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", errors="replace")
    if not text.strip():
        return BenchmarkLog(complete=False, error="empty benchmark_model output: nothing to parse", raw=text)
    p = _Parser()
    for line in text.splitlines():
        p.feed(line)
    return p.finish(text)


def to_result(
    log: BenchmarkLog,
    *,
    artifact: str,
    target: str,
    delegate: str,
    runner: str = "benchmark_model",
    settings: Optional[Mapping[str, Any]] = None,
    device: Optional[Mapping[str, Any]] = None,
) -> Result:
    """The :class:`Result` for one parsed capture of ``artifact`` run on ``target``.

    ``status`` is "ok" only for a complete log without a tool failure. ``peak_memory_mb`` is the
    periodic peak when the tool measured one, else its ``overall`` footprint (``metrics`` says
    which). What Result has no field for (averages, p5/p95, NNAPI accelerators, echoed
    parameters, op profile, tool errors) goes into ``metrics``.
    """
    warnings = list(log.warnings)
    coverage = _coverage_for(log, delegate)
    if coverage is not None and log.complete:
        if coverage.applied is False:
            warnings.append(
                f"the {delegate} delegate ran no part of the graph: these numbers are the CPU's"
            )
        elif coverage.fully is False:
            kernels = f" ({coverage.delegate_kernels} delegate kernels)" if coverage.delegate_kernels else ""
            warnings.append(f"the {delegate} delegate took only part of the graph{kernels}: the rest ran on the CPU")
    if log.runs is None and log.inference_avg_ms is not None:
        warnings.append("the tool printed no statistics line for the measured runs: only their average is known")

    metrics: dict[str, Any] = {}
    _put(metrics, "inference_avg_ms", log.inference_avg_ms)
    _put(metrics, "warmup_avg_ms", log.warmup_avg_ms)
    _put(metrics, "percentiles_ms", log.percentiles_ms)
    _put(metrics, "model_size_mb", log.model_size_mb)
    _put(metrics, "memory_overall_mb", log.overall_memory_mb)
    _put(metrics, "memory_peak_periodic_mb", log.peak_memory_mb)
    if log.peak_memory_mb is not None:
        metrics["peak_memory_source"] = "periodic"
    elif log.overall_memory_mb is not None:
        metrics["peak_memory_source"] = "overall"
    _put(metrics, "nnapi_accelerators", list(log.nnapi_accelerators))
    _put(metrics, "gpu_unsupported_ops", list(log.gpu_unsupported_ops))
    _put(metrics, "delegates", [_coverage_dict(c) for c in log.delegates])
    _put(metrics, "tool_params", dict(log.params))
    _put(metrics, "tool_errors", list(log.errors))
    _put(metrics, "op_profile", [t.to_dict() for t in log.op_profile])

    first_ms = log.first_ms
    if first_ms is None and log.warmup is not None:
        first_ms = log.warmup.first_ms
    return Result(
        kind="bench",
        artifact=artifact,
        target=target,
        runner=runner,
        delegate=delegate,
        status="ok" if log.ok else "failed",
        error=log.error,
        settings=dict(settings or {}),
        init_ms=log.init_ms,
        first_ms=first_ms,
        warmup=log.warmup,
        latency=log.runs,
        init_memory_mb=log.init_memory_mb,
        peak_memory_mb=log.peak_memory_mb if log.peak_memory_mb is not None else log.overall_memory_mb,
        coverage=coverage,
        device=dict(device or {}),
        metrics=metrics,
        warnings=tuple(warnings),
        raw_log=log.raw,
    )


# --- internals ------------------------------------------------------------------------------


class _Parser:
    """Line-by-line state: which run we are in, which profiling table is open."""

    def __init__(self) -> None:
        self.v: dict[str, Any] = {}  # scalar fields of BenchmarkLog
        self.stats_lines = 0
        self.markers = 0
        self.started = False
        self.stopped = False  # a second run began: the rest is not this measurement
        self.recognised = False
        self.failed = False
        self.delegates: dict[str, DelegateCoverage] = {}
        self.created: list[str] = []
        self.gpu_ops: list[str] = []
        self.in_gpu_ops = False
        self.accelerators: list[str] = []
        self.params: dict[str, str] = {}
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.percentiles: dict[str, dict[str, float]] = {}
        self.tables: list[ProfileTable] = []
        self.section = ""
        self.graph = ""
        self.table: Optional[dict[str, Any]] = None  # open table: title, columns, rows
        self.lines = 0

    # one line -----------------------------------------------------------------------------
    def feed(self, line: str) -> None:
        self.lines += 1
        if self.stopped:
            return
        split = _split_prefix(line)
        if split is None:  # another logcat tag (the app's UI, the GPU driver): not the tool's
            return
        level, text = split
        s = text.strip()
        if self.table is not None and self._table_row(s):
            return
        if not s:
            self._close_table()
            self.in_gpu_ops = False
            return
        if self.in_gpu_ops:  # the GPU delegate's list of ops it cannot run, then its summary
            if _GPU_UNSUPPORTED_OP.match(s):
                self.gpu_ops.append(s)
                return
            self.in_gpu_ops = False
            if _GPU_SPLIT_START.match(s):  # "N operations will run on the GPU..." (maybe cut)
                self._delegation(s)
                self.recognised = True
                return
        if _STARTING.match(s):
            if self.started or self.markers or "complete" in self.v:
                self.warnings.append(
                    f"a second benchmark run starts at line {self.lines}; only the first one is parsed"
                )
                self.stopped = True
                return
            self.started = self.recognised = True
            return
        if self._measurement(s) or self._memory(s) or self._delegation(s) or self._profiling(s):
            self.recognised = True
            return
        m = _PARAM.match(s)
        if m:
            self.params[m["key"].strip()] = m["value"]
            self.recognised = True
        m = _APK_ARGS.match(s)
        if m:
            self.params["args"] = m["args"]
            self.recognised = True
        m = _NNAPI_OLD.match(s)
        if m:  # old NNAPI provider: "nnapi accelerator name: [x] (Available: a,b)"
            self.params["nnapi accelerator name"] = m["name"]
            if m["names"]:
                self.accelerators = _names(m["names"])
            self.recognised = True
        # old builds print failures with no level prefix; a WARN "Failed to get..." is no error
        if level in ("E", "F") or (level is None and _FAILURE_TEXT.search(s)):
            self.errors.append(s)

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
            self.v.update(complete=True, init_ms=_us_to_ms(m["init"]), warmup_avg_ms=_us_to_ms(m["warmup"]),
                          inference_avg_ms=_us_to_ms(m["inference"]))
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

    def _profiling(self, s: str) -> bool:
        m = _SECTION.match(s)
        if m:
            self._close_table()
            label = m["label"]
            if label.startswith(("Primary graph", "Subgraph")):
                self.graph = label
            else:
                self.section, self.graph = label, ""
            return True
        m = _TABLE_TITLE.match(s)
        if m:
            self._close_table()
            self.table = {"title": m["title"], "columns": None, "rows": []}
            return True
        return False

    def _table_row(self, s: str) -> bool:
        """Take `s` into the open table if it is its header or one of its rows."""
        t = self.table
        assert t is not None
        if t["columns"] is None:
            if s.startswith("["):
                t["columns"] = tuple(_column_key(c) for c in _HEADER_CELL.findall(s))
                return True
            self._close_table()  # a title with no header: not a table after all
            return False
        cells = [c.strip() for c in s.split("\t")] if "\t" in s else re.split(r"\s{2,}", s)
        if s and len(cells) == len(t["columns"]):
            t["rows"].append({k: _cell(k, c) for k, c in zip(t["columns"], cells, strict=True)})
            return True
        if s and len(cells) > 2 and len(self.warnings) < 20:  # a row cut short, not a summary line
            if not _known_line(s):
                self.warnings.append(
                    f"profile row of '{t['title']}' has {len(cells)} cells for {len(t['columns'])} columns: {s[:80]}"
                )
        self._close_table()
        return False

    def _close_table(self) -> None:
        t, self.table = self.table, None
        if t is not None and t["columns"]:
            self.tables.append(
                ProfileTable(self.section, t["title"], t["columns"], tuple(t["rows"]), graph=self.graph)
            )

    # the end ------------------------------------------------------------------------------
    def finish(self, text: str) -> BenchmarkLog:
        self._close_table()
        complete = bool(self.v.pop("complete", False))
        delegates = dict(self.delegates)
        for name in self.created:  # created but never reported on: the tool did not say
            delegates.setdefault(
                _delegate_key(name),
                DelegateCoverage(requested=name, message=f"{name} delegate created; no coverage printed"),
            )
        gpu = delegates.get("gpu")
        if self.gpu_ops and (gpu is None or not gpu.message.startswith(_VERDICTS)):
            # ops the GPU delegate rejected run on the CPU: whatever else happened, not fully
            delegates["gpu"] = DelegateCoverage(
                requested="GPU",
                applied=gpu.applied if gpu else None,
                fully=False,
                delegate_kernels=gpu.delegate_kernels if gpu else None,
                message="GPU delegate cannot run: " + "; ".join(self.gpu_ops),
            )
        if not self.recognised:
            error = f"no benchmark_model output recognised in {self.lines} line(s): is this the tool's output?"
        elif self.failed:
            error = "benchmark_model reported 'Benchmarking failed.'" + _last_error(self.errors)
        elif not complete:
            error = (
                "incomplete benchmark_model output: its final 'Inference timings in us' line is missing, "
                "so the run did not finish (device disconnected, tool killed or crashed?)"
                + _last_error(self.errors)
            )
        else:
            error = None
        return BenchmarkLog(
            complete=complete,
            error=error,
            percentiles_ms=self.percentiles,
            delegates=tuple(delegates.values()),
            gpu_unsupported_ops=tuple(self.gpu_ops),
            nnapi_accelerators=tuple(self.accelerators),
            params=self.params,
            op_profile=tuple(self.tables),
            errors=tuple(self.errors),
            warnings=tuple(self.warnings),
            raw=text,
            **self.v,
        )


def _split_prefix(line: str) -> Optional[tuple[Optional[str], str]]:
    """(level letter or None, text without logcat/TFLite prefixes); None for a foreign line."""
    line = line.rstrip()
    level = None
    for pattern in (_LOGCAT_THREADTIME, _LOGCAT_STUDIO, _LOGCAT_BRIEF):
        m = pattern.match(line)
        if m:
            if not m["tag"].startswith("tflite"):
                return None
            level, line = m["level"], m["msg"]
            break
    m = _TFLITE_LEVEL.match(line.lstrip())
    if m:
        level = level if level in ("E", "F") else m["level"][0]
        line = m["msg"]
    return level, line


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


def _num(text: str) -> Optional[float]:
    """A printed number; NaN and infinities (an empty Stat's avg) become None."""
    try:
        x = float(text)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _us_to_ms(text: str) -> Optional[float]:
    return _ms(_num(text))


def _ms(us: Optional[float]) -> Optional[float]:
    # the tool prints at most 6 significant digits: rounding drops float noise, not information
    return round(us / 1000.0, 9) if us is not None else None


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _delegate_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _column_key(header: str) -> str:
    key = header.strip().lower().replace("%", " pct")
    return re.sub(r"[^a-z0-9]+", "_", key).strip("_")


def _cell(column: str, text: str) -> Any:
    if column in _TEXT_COLUMNS or not _FLOAT.match(text):
        return text
    text = text.rstrip("%")
    return int(text) if _INT.match(text) else float(text)


def _known_line(s: str) -> bool:
    """The profiler's own lines between tables, which end a table without being a cut row."""
    summary = s.startswith(("Number of nodes", "Timings (", "Memory ("))
    return bool(summary or _SECTION.match(s) or _TABLE_TITLE.match(s))


def _last_error(errors: list[str]) -> str:
    if not errors:
        return ""
    # a delegate failure explains more than the "Benchmarking failed." that follows it
    best = next((e for e in errors if _FAILED_APPLY.search(e)), errors[-1])
    return f". Last error printed: {best}"


def _coverage_for(log: BenchmarkLog, delegate: str) -> Optional[DelegateCoverage]:
    if _delegate_key(delegate) in ("", "cpu", "none"):
        return None
    found = log.delegate(delegate)
    if found is None:
        related = [e for e in log.errors if _delegate_key(delegate) in _delegate_key(e)]
        return DelegateCoverage(requested=delegate, message=related[-1] if related else "")
    return DelegateCoverage(
        requested=delegate,
        applied=found.applied,
        fully=found.fully,
        delegate_kernels=found.delegate_kernels,
        message=found.message,
    )


def _coverage_dict(c: DelegateCoverage) -> dict[str, Any]:
    return {
        "delegate": c.requested,
        "applied": c.applied,
        "fully": c.fully,
        "delegate_kernels": c.delegate_kernels,
        "message": c.message,
    }


def _put(d: dict[str, Any], key: str, value: Any) -> None:
    if value not in (None, [], {}):
        d[key] = value
