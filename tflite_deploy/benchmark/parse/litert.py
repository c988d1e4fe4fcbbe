"""The results block of LiteRT's own ``benchmark_model`` (litert/tools, on the CompiledModel API).

Its ``BenchmarkLoggingListener::OnBenchmarkEnd`` (litert/tools/benchmark_litert_model.h) prints,
each line through ``LITERT_LOG`` (``INFO: [benchmark_litert_model.h:94] ...`` on stderr, and on
Android also logcat under the tag ``litert``)::

    ========== BENCHMARK RESULTS ==========
    Signature name:       prefill_1024                (only for a chosen signature)
    Model initialization: 5.76 ms
    Warmup (first):       2.12 ms
    Warmup (avg):         0.95 ms (526 runs)
    Inference (avg):      0.95 ms (1054 runs)
    Inference (min):      0.91 ms                     (these three only when runs > 0,
    Inference (max):      1.10 ms                      else "No inference runs were performed.")
    Inference (std):      0.02                        (no unit)
    Throughput:           197.97 MB/s                 (or "No throughput data available ...")
    Memory Usage:                                     (the memory lines only where supported)
    Init footprint:       4.06 MB
    Overall footprint:    7.07 MB
    Peak memory:          35.20 MB                    (or "Peak memory usage not available. ...")
    ======================================

The closing rule after the inference lines is the completeness marker. LiteRT's Python
``litert-benchmark`` prints a similar block (a ``====`` rule, `` BENCHMARK RESULTS``, a rule,
the same labels with wider padding and ``ms`` after std, plus median/p5/p95), read here too.
The classic stats lines the runner also prints (``count=.. first=..``) stay the richer source of
the warm-up and run statistics; this block fills in what they lack.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from tflite_deploy.benchmark.parse.lines import NUM, num
from tflite_deploy.result import LatencyStats

_HEADER = re.compile(r"^(?:=+ )?BENCHMARK RESULTS(?: =+)?$")
_RULE = re.compile(r"^={10,}$")
_MS = rf"(?P<v>{NUM}) ?ms"
_RUNS = r" \((?P<n>\d+) runs?\)"
# label -> (pattern of the value, key in the block's values)
_FIELDS = {
    "Signature name": (r"(?P<v>\S.*)", "signature"),
    "Model initialization": (_MS, "init_ms"),
    "Warmup (first)": (_MS, "first_ms"),
    "First inference": (_MS, "first_ms"),  # the README's wording of the same line
    "Warmup (avg)": (_MS + _RUNS, "warmup_avg_ms"),
    "Inference (avg)": (_MS + _RUNS, "inference_avg_ms"),
    "Inference (min)": (_MS, "min_ms"),
    "Inference (max)": (_MS, "max_ms"),
    "Inference (std)": (rf"(?P<v>{NUM})(?: ?ms)?", "std_ms"),
    "Inference (median)": (_MS, "median_ms"),
    "Inference (p5)": (_MS, "p5_ms"),
    "Inference (p95)": (_MS, "p95_ms"),
    "Throughput": (rf"(?P<v>{NUM}) ?MB/s", "throughput_mb_s"),
    "Init footprint": (rf"(?P<v>{NUM}) ?MB", "init_memory_mb"),
    "Overall footprint": (rf"(?P<v>{NUM}) ?MB", "overall_memory_mb"),
    "Peak memory": (rf"(?P<v>{NUM}) ?MB", "peak_memory_mb"),
    "Fully accelerated": (r"(?P<v>True|False)", "fully_accelerated"),
}
_LABEL = re.compile(r"^(?P<label>[A-Z][A-Za-z0-9 ]*(?: \([a-z0-9]+\))?):[ \t]+(?P<rest>\S.*)$")
_VALUES = {label: re.compile(rf"^{pattern}$") for label, (pattern, _) in _FIELDS.items()}
_NOTES = {
    "No inference runs were performed.": "no_runs",
    "Peak memory usage not available.": "peak_unavailable",
    "No throughput data available": "throughput_unavailable",
}
# LiteRT's runtime, before the block: an accelerator it could not load (NPU without a dispatch library)
# (litert/runtime/accelerators/{npu,gpu,cpu}_registry.cc: the GPU's line gives no reason)
_ACCEL_NOT_LOADED = re.compile(r"\b(?P<name>NPU|GPU|CPU) accelerator could not be loaded and registered")


class LiteRtBlock:
    """Reads LiteRT's results block into ``self.block``; ``self.block_done`` once it closed."""

    errors: list[str]

    def __init__(self) -> None:
        self.block: Optional[dict[str, Any]] = None  # None until the header is seen
        self.block_done = False
        self.accelerator_failures: dict[str, str] = {}

    def _litert_line(self, s: str) -> bool:
        """Take `s` if it belongs to the results block (or names an accelerator that failed)."""
        if _HEADER.match(s):
            self.block = {}
            return True
        m = _ACCEL_NOT_LOADED.search(s)
        if m:
            self.accelerator_failures[m["name"].lower()] = s
            return True
        if self.block is None or self.block_done:
            return False
        if _RULE.match(s):
            # the Python tool opens with a rule too: only a rule after the runs closes the block
            if "inference_avg_ms" in self.block or "no_runs" in self.block:
                self.block_done = True
            return True
        if s == "Memory Usage:":
            return True
        for note, key in _NOTES.items():
            if s.startswith(note):
                self.block[key] = True
                return True
        m = _LABEL.match(s)
        if m and m["label"] in _VALUES:
            value = _VALUES[m["label"]].match(m["rest"].strip())
            if value:
                key = _FIELDS[m["label"]][1]
                if key == "signature":
                    self.block[key] = value["v"]
                elif key == "fully_accelerated":
                    self.block[key] = value["v"] == "True"
                else:
                    self.block[key] = num(value["v"])
                    if value.groupdict().get("n") is not None:
                        self.block[key.replace("_avg_ms", "_count")] = int(value["n"])
                return True
        return False


def block_stats(block: dict[str, Any], kind: str) -> Optional[LatencyStats]:
    """The warm-up (``kind="warmup"``) or run statistics the block holds, None if it has none."""
    if kind == "warmup":
        if "warmup_count" not in block:
            return None
        return LatencyStats(count=block["warmup_count"], mean_ms=block.get("warmup_avg_ms"),
                            first_ms=block.get("first_ms"))
    if block.get("no_runs"):
        return LatencyStats(count=0)
    if "inference_count" not in block:
        return None
    return LatencyStats(count=block["inference_count"], mean_ms=block.get("inference_avg_ms"),
                        std_ms=block.get("std_ms"), min_ms=block.get("min_ms"), max_ms=block.get("max_ms"),
                        p50_ms=block.get("median_ms"))
