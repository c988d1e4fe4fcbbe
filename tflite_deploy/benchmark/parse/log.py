"""One capture of either ``benchmark_model`` into a :class:`BenchmarkLog`: the line-by-line parser.

Two tools print these logs: TFLite's classic ``benchmark_model`` (:mod:`.classic`) and LiteRT's own
(:mod:`.litert`), which is built on the same runner and so prints most classic lines as well, then
its own results block instead of the classic ``Inference timings in us`` line. A run is complete
when either tool's final line or block is there. Anything unknown is kept in ``raw`` and ignored;
nothing here raises on odd input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Union

from tflite_deploy.benchmark.parse.classic import (
    _FAILURE_TEXT,
    _GPU_SPLIT_START,
    _GPU_UNSUPPORTED_OP,
    _NNAPI_OLD,
    _APK_ARGS,
    _PARAM,
    _STARTING,
    _VERDICTS,
    ClassicLines,
    _last_error,
)
from tflite_deploy.benchmark.parse.lines import delegate_key, names, split_prefix
from tflite_deploy.benchmark.parse.litert import LiteRtBlock, block_stats
from tflite_deploy.benchmark.parse.profiling import ProfileTable, TableReader
from tflite_deploy.result import DelegateCoverage, LatencyStats

_FINAL_LINES = "its final 'Inference timings in us' line (TFLite) or 'BENCHMARK RESULTS' block (LiteRT)"


@dataclass(frozen=True)
class BenchmarkLog:
    """Everything :func:`parse_benchmark_log` found in one ``benchmark_model`` capture.

    Times are milliseconds and memory megabytes (the tool prints microseconds and MB). A value
    the log does not hold is ``None``. ``complete`` is True only when the tool's last line of a
    finished run is there; ``error`` says why a capture is not a usable measurement. ``tool`` says
    which tool printed it: ``"litert"`` (LiteRT's benchmark_model or litert-benchmark),
    ``"tflite"`` (TFLite's classic one), or None when the capture does not tell.
    """

    complete: bool
    error: Optional[str]
    tool: Optional[str] = None
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
    peak_memory_mb: Optional[float] = None  # the tool's periodic peak, when it measured one
    throughput_mb_s: Optional[float] = None  # LiteRT: input bytes processed per second
    # one per delegate the tool reported on, in order; `requested` holds the tool's own name
    delegates: tuple[DelegateCoverage, ...] = ()
    gpu_unsupported_ops: tuple[str, ...] = ()
    nnapi_accelerators: tuple[str, ...] = ()
    # LiteRT accelerators the runtime could not load, by name ("npu"), with its line
    accelerator_failures: dict[str, str] = field(default_factory=dict)
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
        key = delegate_key(name)
        for cov in self.delegates:
            if delegate_key(cov.requested) == key:
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


class _Parser(ClassicLines, LiteRtBlock, TableReader):
    """Line-by-line state: which run we are in, which profiling table or results block is open."""

    def __init__(self) -> None:
        LiteRtBlock.__init__(self)
        TableReader.__init__(self)
        self.v: dict[str, Any] = {}  # scalar fields of BenchmarkLog
        self.stats_lines = 0
        self.markers = 0
        self.started = False
        self.stopped = False  # a second run began: the rest is not this measurement
        self.recognised = False
        self.litert_seen = False  # a LiteRT-only prefix or line: the tool is LiteRT's
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
        self.lines = 0

    # one line -----------------------------------------------------------------------------
    def feed(self, line: str) -> None:
        self.lines += 1
        if self.stopped:
            return
        split = split_prefix(line)
        if split is None:  # another logcat tag (the app's UI, the GPU driver): not the tool's
            return
        level, text, litert = split
        self.litert_seen = self.litert_seen or litert
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
            if self.started or self.markers or "complete" in self.v or self.block_done:
                self.warnings.append(
                    f"a second benchmark run starts at line {self.lines}; only the first one is parsed"
                )
                self.stopped = True
                return
            self.started = self.recognised = True
            return
        # LiteRT's block before the profiling tables: its "=== BENCHMARK RESULTS ===" looks like a title
        if self._litert_line(s):
            self.recognised = self.litert_seen = True
            if level in ("E", "F"):
                self.errors.append(s)
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
                self.accelerators = names(m["names"])
            self.recognised = True
        # old builds print failures with no level prefix; a WARN "Failed to get..." is no error
        if level in ("E", "F") or (level is None and _FAILURE_TEXT.search(s)):
            self.errors.append(s)

    # the end ------------------------------------------------------------------------------
    def finish(self, text: str) -> BenchmarkLog:
        self._close_table()
        complete = bool(self.v.pop("complete", False)) or self.block_done
        tool = self.v.pop("tool", None)
        if self.block is not None or (tool is None and self.litert_seen):
            tool = "litert"
        self._take_block()
        delegates = dict(self.delegates)
        for name in self.created:  # created but never reported on: the tool did not say
            delegates.setdefault(
                delegate_key(name),
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
                f"incomplete benchmark_model output: {_FINAL_LINES} is missing, "
                "so the run did not finish (device disconnected, tool killed or crashed?)"
                + _last_error(self.errors)
            )
        else:
            error = None
        return BenchmarkLog(
            complete=complete,
            error=error,
            tool=tool,
            percentiles_ms=self.percentiles,
            delegates=tuple(delegates.values()),
            gpu_unsupported_ops=tuple(self.gpu_ops),
            nnapi_accelerators=tuple(self.accelerators),
            accelerator_failures=dict(self.accelerator_failures),
            params=self.params,
            op_profile=tuple(self.tables),
            errors=tuple(self.errors),
            warnings=tuple(self.warnings),
            raw=text,
            **self.v,
        )

    def _take_block(self) -> None:
        """Fill the fields from LiteRT's results block; its stats lines, when printed, stay the richer source."""
        b = self.block
        if not b:
            return
        for key in ("init_ms", "first_ms", "warmup_avg_ms", "inference_avg_ms", "init_memory_mb",
                    "overall_memory_mb", "peak_memory_mb", "throughput_mb_s"):
            if b.get(key) is not None:
                self.v[key] = b[key]
        for kind in ("warmup", "runs"):
            if self.v.get(kind) is None:
                stats = block_stats(b, kind)
                if stats is not None:
                    self.v[kind] = stats
        pct = {k: b[f"{k}_ms"] for k in ("p5", "p95") if b.get(f"{k}_ms") is not None}
        if pct and "runs" not in self.percentiles:
            self.percentiles["runs"] = pct
        if b.get("signature"):
            self.params["Signature name"] = b["signature"]
        if b.get("peak_unavailable"):
            self.params["Peak memory"] = "not available"
        if "fully_accelerated" in b:
            self.params["Fully accelerated"] = str(b["fully_accelerated"])
