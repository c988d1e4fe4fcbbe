"""LiteRT's own benchmark_model output: its BENCHMARK RESULTS block, LITERT_LOG and absl prefixes, logcat.

Captures (tests/data/benchmark_logs/, sources in their headers and the folder's README):
``litert_build_docs_cpu_blazeface.txt`` is a real run quoted in LiteRT's build documentation,
``litert_gpu_signature_cut_before_rule.txt`` a real GPU run from an issue thread whose stored copy
is cut before the closing rule, ``litert_logcat_cpu_derived.txt`` the first one re-printed in
logcat form (derived, labelled so). Lines no capture holds (a ``Peak memory: .. MB`` line, "No
inference runs were performed.") are built below from the format strings of
litert/tools/benchmark_litert_model.h at LiteRT f67457790c9c2ab67347d6fe53270e8d3df20868.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tflite_deploy.benchmark.parse import BenchmarkLog, parse_benchmark_log, to_result

LOGS = Path(__file__).parent / "data" / "benchmark_logs"


def load(name: str) -> BenchmarkLog:
    return parse_benchmark_log((LOGS / name).read_text(encoding="utf-8"))


def approx(x: float):
    return pytest.approx(x, abs=1e-9)


# the block as benchmark_litert_model.h (f674577) formats it, on a build whose peak memory is known
BLOCK_WITH_PEAK = """INFO: [benchmark_litert_model.h:89] 
========== BENCHMARK RESULTS ==========
INFO: [benchmark_litert_model.h:94] Model initialization: 45.32 ms
INFO: [benchmark_litert_model.h:95] Warmup (first):       120.45 ms
INFO: [benchmark_litert_model.h:97] Warmup (avg):         98.76 ms (1 runs)
INFO: [benchmark_litert_model.h:99] Inference (avg):      85.23 ms (50 runs)
INFO: [benchmark_litert_model.h:103] Inference (min):      82.10 ms
INFO: [benchmark_litert_model.h:105] Inference (max):      92.45 ms
INFO: [benchmark_litert_model.h:107] Inference (std):      3.21
INFO: [benchmark_litert_model.h:115] Throughput:           12.45 MB/s
INFO: [benchmark_litert_model.h:124] 
Memory Usage:
INFO: [benchmark_litert_model.h:125] Init footprint:       25.60 MB
INFO: [benchmark_litert_model.h:127] Overall footprint:    32.40 MB
INFO: [benchmark_litert_model.h:132] Peak memory:          35.20 MB
INFO: [benchmark_litert_model.h:138] ======================================

"""


def test_build_docs_run_is_complete_with_every_number_under_its_key():
    log = load("litert_build_docs_cpu_blazeface.txt")
    assert log.complete and log.error is None and log.tool == "litert"
    assert log.init_ms == approx(5.76)  # the block's "Model initialization"
    assert log.first_ms == approx(2.12)
    # the classic stats lines LiteRT's runner also prints are the richer source of the statistics
    assert log.warmup.count == 526 and log.warmup.mean_ms == approx(0.949861) and log.warmup.first_ms == approx(2.125)
    runs = log.runs
    assert runs.count == 1054 and runs.mean_ms == approx(0.947132) and runs.std_ms == approx(0.023)
    assert runs.min_ms == approx(0.91) and runs.max_ms == approx(1.102) and runs.p50_ms == approx(0.942)
    assert log.percentiles_ms["runs"] == {"p5": approx(0.915), "p95": approx(0.991)}
    assert log.warmup_avg_ms == approx(0.95) and log.inference_avg_ms == approx(0.95)
    assert log.init_memory_mb == approx(4.06) and log.overall_memory_mb == approx(7.07)
    assert log.peak_memory_mb is None and log.params["Peak memory"] == "not available"
    assert log.throughput_mb_s == approx(197.97) and log.model_size_mb == approx(0.229746)
    assert log.params["Num threads"] == "4"
    # a WARNING (the NPU accelerator was not loaded on this host) is not an error of the run
    assert not log.errors and "npu" in log.accelerator_failures

    r = to_result(log, artifact="m.tflite", target="host", delegate="cpu")
    assert r.status == "ok" and r.settings["runtime"] == "litert" and r.metrics["tool"] == "litert"
    assert r.latency == runs and r.warmup == log.warmup and r.init_ms == approx(5.76)
    assert r.init_memory_mb == approx(4.06) and r.peak_memory_mb == approx(7.07)
    assert r.metrics["peak_memory_source"] == "overall" and r.metrics["throughput_mb_s"] == approx(197.97)


def test_logcat_form_gives_the_same_numbers_as_the_stderr_form():
    stderr_form = load("litert_build_docs_cpu_blazeface.txt")
    logcat = load("litert_logcat_cpu_derived.txt")
    assert logcat.complete and logcat.error is None and logcat.tool == "litert"
    for key in ("init_ms", "first_ms", "warmup", "runs", "init_memory_mb", "overall_memory_mb", "throughput_mb_s",
                "percentiles_ms", "model_size_mb"):
        assert getattr(logcat, key) == getattr(stderr_form, key), key
    assert "AdrenoGLES" not in str(logcat.params) and not logcat.errors  # another tag's line is not the tool's


def test_gpu_run_cut_before_the_closing_rule_is_incomplete_but_keeps_the_block():
    log = load("litert_gpu_signature_cut_before_rule.txt")
    assert not log.complete and "incomplete" in log.error and "BENCHMARK RESULTS" in log.error
    assert log.tool == "litert" and log.params["Signature name"] == "prefill_1024"
    assert log.init_ms == approx(23744.73) and log.first_ms == approx(7441.04)
    assert log.warmup.count == 1 and log.warmup.mean_ms == approx(7441.04)
    runs = log.runs  # no classic stats lines in this excerpt: the block's own numbers
    assert runs.count == 10 and runs.mean_ms == approx(7430.20) and runs.std_ms == approx(9.92)
    assert runs.min_ms == approx(7416.40) and runs.max_ms == approx(7448.86)
    assert log.init_memory_mb == approx(6391.74) and log.overall_memory_mb == approx(6391.74)
    r = to_result(log, artifact="m.tflite", target="adb:X", delegate="gpu")
    assert r.status == "failed" and r.latency == runs and r.settings["runtime"] == "litert"


def test_block_alone_with_peak_memory():
    log = parse_benchmark_log("INFO: STARTING!\n" + BLOCK_WITH_PEAK)
    assert log.complete and log.error is None and log.tool == "litert"
    assert log.runs.count == 50 and log.runs.mean_ms == approx(85.23) and log.runs.std_ms == approx(3.21)
    assert log.runs.min_ms == approx(82.10) and log.runs.max_ms == approx(92.45)
    assert log.warmup.count == 1 and log.warmup.first_ms == approx(120.45)
    assert log.peak_memory_mb == approx(35.20) and log.init_memory_mb == approx(25.60)
    r = to_result(log, artifact="m.tflite", target="adb:X", delegate="gpu")
    assert r.peak_memory_mb == approx(35.20) and r.metrics["peak_memory_source"] == "periodic"


def test_block_with_no_runs_and_cut_blocks_are_not_complete():
    no_runs = BLOCK_WITH_PEAK.replace("(50 runs)", "(0 runs)")
    no_runs = "\n".join(line for line in no_runs.splitlines() if "Inference (m" not in line and "(std)" not in line)
    no_runs = no_runs.replace("Throughput:", "No inference runs were performed.\nINFO: Throughput:")
    log = parse_benchmark_log(no_runs)
    assert log.complete and log.runs.count == 0
    lines = BLOCK_WITH_PEAK.splitlines(keepends=True)
    for n in range(len(lines) - 2):  # everything before the closing rule
        assert not parse_benchmark_log("".join(lines[:n + 1])).complete


def test_python_litert_benchmark_block_is_read_too():
    # litert/python/tools/benchmark_litert_model.py (f674577) prints its block with print(): a rule,
    # " BENCHMARK RESULTS", a rule, wider labels, "ms" after std, median/p5/p95, a closing rule.
    text = "\n".join([
        "", "=" * 40, " BENCHMARK RESULTS", "=" * 40,
        "Model initialization:  12.34 ms", "Warmup (first):        3.00 ms", "Warmup (avg):          2.50 ms (5 runs)",
        "Inference (avg):       2.00 ms (40 runs)", "Inference (min):       1.90 ms", "Inference (max):       2.40 ms",
        "Inference (median):    1.98 ms", "Inference (std):       0.10 ms", "Inference (p5):        1.91 ms",
        "Inference (p95):       2.30 ms", "Fully accelerated:     True", "=" * 40, ""])
    log = parse_benchmark_log(text)
    assert log.complete and log.tool == "litert"
    assert log.runs.count == 40 and log.runs.p50_ms == approx(1.98) and log.runs.std_ms == approx(0.10)
    assert log.percentiles_ms["runs"] == {"p5": approx(1.91), "p95": approx(2.30)}
    assert log.params["Fully accelerated"] == "True"
    # its opening rules alone do not complete a run
    assert not parse_benchmark_log("\n".join(text.splitlines()[:6])).complete


def test_classic_runs_say_tflite_and_npu_failure_is_named():
    classic = load("tf2_cpu_memory_delta.txt")
    assert classic.tool == "tflite"
    assert to_result(classic, artifact="m", target="t", delegate="cpu").settings["runtime"] == "tflite"
    log = load("litert_build_docs_cpu_blazeface.txt")
    cov = to_result(log, artifact="m", target="t", delegate="npu").coverage
    assert cov.applied is False and "NPU accelerator could not be loaded" in cov.message


def test_new_patterns_parse_pathological_lines_in_linear_time():
    n = 50_000
    lines = [
        "Inference (avg):" + " " * n + "x", "A" * n + ":", "[" + "a" * n + ":1", "I0000 00:00:" + "1" * n,
        "I0000 00:00:1.5 " + " " * n + "x", "Model initialization: " + "1" * n + " m", "= " * n + "BENCHMARK RESULTS",
        "Warmup (avg): 1 ms (" + "1" * n, "01-01 00:00:00.000 1 1 I litert" + " " * n, "NPU accelerator " * (n // 16),
    ]
    text = "========== BENCHMARK RESULTS ==========\n" + "\n".join(lines) + "\n"
    started = time.perf_counter()
    log = parse_benchmark_log(text)
    assert time.perf_counter() - started < 5.0
    assert not log.complete
