"""benchmark_model output parsing, on real captured outputs of several tool versions.

Every file under tests/data/benchmark_logs/ is a verbatim copy of a published capture; its
``# source:`` header (and that folder's README) says where from. A few formats have no public
capture we could find (LiteRT's p5/median/p95, ``count=0``, the oldest ``curr=.. count=..``, the
``Failed to apply`` line, a finished run whose delegate took part or none of the graph): those
tests build the lines from the tool's own source and say so.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from tflite_deploy.benchmark.parse import BenchmarkLog, parse_benchmark_log, to_result
from tflite_deploy.result import Result

LOGS = Path(__file__).parent / "data" / "benchmark_logs"
ALL_LOGS = sorted(LOGS.glob("*.txt"))


def load(name: str) -> BenchmarkLog:
    return parse_benchmark_log((LOGS / name).read_text(encoding="utf-8"))


def approx(x: float):
    return pytest.approx(x, abs=1e-9)


def result_of(log: BenchmarkLog, delegate: str = "cpu") -> Result:
    return to_result(log, artifact="m.tflite", target="adb:SERIAL", delegate=delegate)


# --- every capture -------------------------------------------------------------------------


def test_there_are_captures_and_each_cites_its_source():
    assert len(ALL_LOGS) >= 15
    for path in ALL_LOGS:
        assert path.read_text(encoding="utf-8").startswith("# source: "), path.name


@pytest.mark.parametrize("path", ALL_LOGS, ids=lambda p: p.name)
def test_every_capture_parses_and_round_trips_as_json(path):
    log = parse_benchmark_log(path.read_text(encoding="utf-8"))
    assert log.raw.startswith("# source: ")
    result = result_of(log, delegate="gpu")
    back = Result.from_dict(json.loads(result.to_json()))
    assert back.status == result.status and back.latency == result.latency and back.warmup == result.warmup
    assert (result.status == "ok") == (log.complete and log.error is None)


@pytest.mark.parametrize("path", ALL_LOGS, ids=lambda p: p.name)
def test_every_cut_of_every_capture_parses(path):
    # A device that dies mid-run leaves a prefix of the output: each one must parse, and only a
    # prefix that holds the final timings line may count as complete.
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    for n in range(len(lines) + 1):
        text = "".join(lines[:n])
        log = parse_benchmark_log(text)
        finished = any("nference timings in us" in line or _litert_rule_after_runs(lines[:i + 1])
                       for i, line in enumerate(lines[:n]))
        assert log.complete == finished, (path.name, n)
        if not finished:
            assert log.error


def _litert_rule_after_runs(lines: list[str]) -> bool:
    """LiteRT's final marker: its results block's closing rule, after the 'Inference (avg)' line."""
    last = lines[-1].rstrip()
    return last.endswith("=" * 20) and "=" * 20 + " " not in last and any("Inference (avg)" in x for x in lines)


# --- old formats ---------------------------------------------------------------------------


def test_2018_format_no_stats_line_and_second_run():
    log = load("tf1x_no_stats_two_runs.txt")
    assert log.complete and log.error is None
    assert log.init_ms == approx(9.933)
    assert log.warmup_avg_ms == approx(76.6059)
    assert log.inference_avg_ms == approx(66.7676)
    assert log.first_ms is None  # this format printed no "First inference"
    w, r = log.warmup, log.runs
    assert (w.count, w.first_ms, w.min_ms, w.max_ms, w.mean_ms, w.std_ms) == (
        7, approx(127.425), approx(66.709), approx(127.425), approx(76.6059), approx(20.944))
    assert (r.count, r.first_ms, r.min_ms, r.max_ms, r.mean_ms, r.std_ms) == (
        15, approx(66.753), approx(66.699), approx(66.838), approx(66.7676), approx(0.039))
    assert r.p50_ms is None and r.p90_ms is None and r.p99_ms is None
    # the second run (cut mid-number) is not mixed into the first
    assert any("second benchmark run" in w for w in log.warnings)
    assert "Num threads" not in log.params and not log.errors
    result = result_of(log)
    assert result.status == "ok" and result.first_ms == approx(127.425)  # warm-up's first run
    assert result.latency.mean_ms == approx(66.7676)


def test_oldest_markers_with_exponent_avg_cut_in_final_line():
    log = load("tf1x_truncated_oldest_markers.txt")
    assert not log.complete
    assert "incomplete" in log.error and "Inference timings" in log.error
    assert log.init_ms == approx(5.257)
    # "count=1 curr=1887383": one warm-up run, every statistic is that run
    w = log.warmup
    assert (w.count, w.mean_ms, w.min_ms, w.max_ms, w.std_ms, w.first_ms, w.p50_ms) == (
        1, approx(1887.383), approx(1887.383), approx(1887.383), 0.0, approx(1887.383), approx(1887.383))
    r = log.runs
    assert r.count == 50 and r.mean_ms == approx(1789.88)  # printed "avg=1.78988e+06"
    assert (r.first_ms, r.min_ms, r.max_ms, r.std_ms) == (
        approx(1791.325), approx(1787.146), approx(1792.665), approx(1.173))
    assert log.params["Num runs"] == "50" and log.params["Use nnapi"] == "0"
    assert log.params["Input shapes"] == "1,16,19,26:1:1,2048:1,2048"
    result = result_of(log)
    assert result.status == "failed" and result.error == log.error
    assert result.latency == r  # what was parsed is kept


def test_2020_old_memory_name_and_cut_profile():
    log = load("tf2_old_peak_memory_name.txt")
    assert log.complete and log.error is None
    assert (log.init_ms, log.first_ms, log.warmup_avg_ms, log.inference_avg_ms) == (
        approx(0.855), approx(49.06), approx(34.8251), approx(33.2094))
    assert log.runs.count == 50 and log.runs.std_ms == approx(0.45)
    assert log.model_size_mb == approx(0.004448)
    assert log.init_memory_mb == 0.0 and log.overall_memory_mb == approx(12.8672)
    assert log.peak_memory_mb is None
    assert log.params["#threads used for CPU inference"] == "4"
    table = log.table("Run Order", "Profiling Info for Benchmark Initialization")
    assert table.columns[:3] == ("node_type", "start", "first") and table.rows == ()  # row cut off
    result = result_of(log)
    assert result.init_memory_mb == 0.0 and result.peak_memory_mb == approx(12.8672)
    assert result.metrics["peak_memory_source"] == "overall"


# --- newer formats -------------------------------------------------------------------------


def test_tf2_info_prefix_and_memory_delta():
    log = load("tf2_cpu_memory_delta.txt")
    assert log.complete and log.error is None
    assert (log.init_ms, log.first_ms, log.warmup_avg_ms, log.inference_avg_ms) == (
        approx(16.599), approx(8.539), approx(7.18107), approx(6.4795))
    assert log.warmup.count == 70 and log.warmup.std_ms == approx(0.656)
    r = log.runs
    assert (r.count, r.first_ms, r.min_ms, r.max_ms, r.mean_ms, r.std_ms) == (
        2, approx(6.449), approx(6.449), approx(6.51), approx(6.4795), approx(0.03))
    assert (log.model_size_mb, log.init_memory_mb, log.overall_memory_mb) == (
        approx(1.86664), approx(8.45312), approx(10.5898))
    assert log.params == {
        "Log parameter values verbosely": "0",
        "Min num runs": "1",
        "Min runs duration (seconds)": "0.01",
        "Num threads": "4",
        "Graph": "mobile_object_localizer_v1.tflite",
        "#threads used for CPU inference": "4",
    }
    xnnpack = log.delegate("xnnpack")
    assert xnnpack is not None and xnnpack.applied is None  # created by default; no coverage printed
    result = result_of(log, delegate="xnnpack")
    assert result.status == "ok" and result.coverage.requested == "xnnpack"
    assert result.metrics["tool_params"]["Num threads"] == "4"


def test_rpi_start_line_glued_to_prompt():
    log = load("tf2_rpi_memory_delta.txt")
    assert log.complete
    assert (log.init_ms, log.first_ms, log.inference_avg_ms) == (approx(18.777), approx(64.791), approx(55.0432))
    assert log.warmup.count == 9 and log.warmup.mean_ms == approx(57.7582)
    assert log.runs.count == 50 and log.runs.max_ms == approx(60.727)
    assert (log.init_memory_mb, log.overall_memory_mb) == (approx(8.97656), approx(18.7227))


def test_periodic_peak_memory_and_a_mangled_prefix():
    log = load("tf2_memory_tail_periodic_peak.txt")
    assert not log.complete  # only the tail of a run was quoted
    assert log.overall_memory_mb == approx(20.543)  # from "FO: Memory footprint delta ..."
    assert log.init_memory_mb == approx(2.4375)
    assert log.peak_memory_mb == approx(25.0508)
    assert log.model_size_mb == approx(0.007588)
    result = result_of(log)
    assert result.peak_memory_mb == approx(25.0508) and result.init_memory_mb == approx(2.4375)
    assert result.metrics["peak_memory_source"] == "periodic"
    assert result.metrics["memory_overall_mb"] == approx(20.543)


def test_nnapi_fully_delegated_with_accelerators_and_single_warmup():
    log = load("tf215_nnapi_full_accelerators.txt")
    assert log.complete and log.error is None
    assert (log.init_ms, log.first_ms, log.warmup_avg_ms, log.inference_avg_ms) == (
        approx(66.002), approx(637.079), approx(637.079), approx(1.88574))
    w = log.warmup
    assert (w.count, w.mean_ms, w.std_ms, w.p50_ms) == (1, approx(637.079), 0.0, approx(637.079))
    r = log.runs
    assert (r.count, r.first_ms, r.min_ms, r.max_ms, r.mean_ms, r.std_ms) == (
        520, approx(2.531), approx(1.171), approx(9.925), approx(1.88574), approx(0.87))
    assert (log.init_memory_mb, log.overall_memory_mb) == (approx(7.40234), approx(7.83203))
    assert log.nnapi_accelerators == ("synap-npu", "nnapi-reference")
    assert log.params["NNAPI accelerator name"] == "synap-npu"
    nnapi = log.delegate("nnapi")
    assert (nnapi.applied, nnapi.fully, nnapi.delegate_kernels) == (True, True, 1)
    assert "Replacing 31 out of 31 node(s)" in nnapi.message  # the runtime's detail is kept
    result = result_of(log, delegate="nnapi")
    assert result.coverage.requested == "nnapi" and result.coverage.fully is True
    assert result.metrics["nnapi_accelerators"] == ["synap-npu", "nnapi-reference"]
    assert not result.warnings


def test_external_delegate_with_a_stray_line_mid_warmup():
    log = load("tf215_external_delegate_vx.txt")
    assert log.complete and log.error is None
    assert log.warmup.count == 277 and log.warmup.max_ms == approx(201.009)  # "type 54 str ..." ignored
    assert log.runs.count == 876 and log.runs.mean_ms == approx(1.09648)
    assert (log.init_memory_mb, log.overall_memory_mb) == (approx(15.4688), approx(43.2852))
    ext = log.delegate("external")
    assert (ext.applied, ext.fully, ext.delegate_kernels) == (True, True, 1)
    assert log.params["External delegate path"] == "/vendor/lib64/libvx_delegate.so"


def test_completion_line_without_stats_lines():
    log = load("tf215_nnapi_cache_snippet.txt")
    assert log.complete and log.error is None
    assert log.warmup_avg_ms == approx(1599.06)  # printed "Warmup (avg): 1.59906e+06"
    assert (log.init_ms, log.first_ms, log.inference_avg_ms) == (approx(34.075), approx(1599.062), approx(1.38086))
    assert log.runs is None and log.warmup is None
    assert log.errors and "couldn't be opened" in log.errors[0]  # a non-fatal ERROR line
    nnapi = log.delegate("NNAPI")  # the 2019 "Replacing N node(s)" wording: no total given
    assert (nnapi.applied, nnapi.fully, nnapi.delegate_kernels) == (True, None, 1)
    result = result_of(log, delegate="nnapi")
    assert result.status == "ok" and result.latency is None
    assert result.metrics["inference_avg_ms"] == approx(1.38086)
    assert any("only their average is known" in w for w in result.warnings)


# --- delegates -----------------------------------------------------------------------------


def test_gpu_fully_delegated():
    log = load("tf2_gpu_full_delegation.txt")
    assert log.complete and log.error is None
    assert (log.init_ms, log.first_ms, log.warmup_avg_ms, log.inference_avg_ms) == (
        approx(870.557), approx(130.565), approx(122.373), approx(119.375))
    w, r = log.warmup, log.runs
    assert (w.count, w.first_ms, w.min_ms, w.max_ms, w.mean_ms, w.std_ms) == (
        4, approx(130.565), approx(117.37), approx(130.565), approx(122.373), approx(4.93))
    assert (r.count, r.first_ms, r.min_ms, r.max_ms, r.mean_ms, r.std_ms) == (
        50, approx(119.212), approx(113.737), approx(124.776), approx(119.375), approx(1.948))
    assert log.model_size_mb == approx(7.07479)
    assert log.init_memory_mb is None and log.overall_memory_mb is None  # cut before the memory line
    result = result_of(log, delegate="gpu")
    assert result.status == "ok"
    cov = result.coverage
    assert (cov.requested, cov.applied, cov.fully, cov.delegate_kernels) == ("gpu", True, True, 1)
    assert cov.message.startswith("Explicitly applied GPU delegate")
    assert result.peak_memory_mb is None and result.init_memory_mb is None
    assert not result.warnings


def test_partially_delegated():
    log = load("tf215_nnapi_partial_snippet.txt")
    nnapi = log.delegate("nnapi")
    assert (nnapi.applied, nnapi.fully, nnapi.delegate_kernels) == (True, False, 2)
    assert not log.complete  # the documentation's excerpt has no timings


def test_partial_delegation_shows_in_the_profile_too():
    log = load("tf2_op_profiling_start_column.txt")
    rows = log.table("Run Order").rows
    assert [r["node_type"] for r in rows].count("TfLiteNnapiDelegate") == 3
    assert {r["node_type"] for r in rows} - {"TfLiteNnapiDelegate"} == {"AVERAGE_POOL_2D", "RESIZE_BILINEAR", "ARG_MAX"}


def test_partially_delegated_complete_run_warns():
    # Format from benchmark_tflite_model.cc (no complete public capture found): a finished run
    # whose GPU delegate took part of the graph.
    text = (
        "Explicitly applied GPU delegate, and the model graph will be partially executed by the delegate "
        "w/ 3 delegate kernels.\n"
        "Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.\n"
        "count=2 first=1200 curr=1000 min=1000 max=1200 avg=1100 std=100\n"
        "Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.\n"
        "count=50 first=1000 curr=1000 min=900 max=1100 avg=1000 std=20\n"
        "Inference timings in us: Init: 5000, First inference: 1200, Warmup (avg): 1100, Inference (avg): 1000\n"
    )
    result = result_of(parse_benchmark_log(text), delegate="gpu")
    assert result.status == "ok" and result.coverage.delegate_kernels == 3 and result.coverage.fully is False
    assert any("only part of the graph (3 delegate kernels)" in w for w in result.warnings)


def test_logcat_nnapi_not_executed():
    log = load("logcat_apk_nnapi_not_executed.txt")
    nnapi = log.delegate("nnapi")
    assert (nnapi.applied, nnapi.fully, nnapi.delegate_kernels) == (False, False, 0)
    assert log.nnapi_accelerators == ("ipuadaptor", "nnapi-reference")
    assert log.params["Use NNAPI"] == "1" and log.params["Use xnnpack"] == "0"
    assert log.params["args"].endswith("--use_xnnpack=false --use_nnapi=true")  # the APK's activity line
    assert not log.complete


def test_not_executed_delegate_on_a_finished_run_is_flagged():
    # Format from benchmark_tflite_model.cc: the run finishes, but on the CPU.
    text = (
        "INFO: Though NNAPI delegate is explicitly applied, the model graph will not be executed by the delegate.\n"
        "INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.\n"
        "INFO: count=1 curr=2000\n"
        "INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.\n"
        "INFO: count=50 curr=1500(all same)\n"
        "INFO: Inference timings in us: Init: 100, First inference: 2000, Warmup (avg): 2000, Inference (avg): 1500\n"
    )
    log = parse_benchmark_log(text)
    assert log.runs.count == 50 and log.runs.std_ms == 0.0 and log.runs.min_ms == approx(1.5)
    result = result_of(log, delegate="nnapi")
    assert result.status == "ok" and result.coverage.applied is False
    assert any("ran no part of the graph" in w for w in result.warnings)


def test_logcat_gpu_unsupported_ops_cut_before_timing():
    log = load("logcat_apk_gpu_partial_truncated.txt")
    assert not log.complete and "incomplete" in log.error
    assert log.gpu_unsupported_ops == ("UNPACK: Operation is not supported.",)
    gpu = log.delegate("gpu")
    assert gpu.fully is False and "UNPACK" in gpu.message
    assert log.params["Use gpu"] == "1" and log.params["Min num runs"] == "50"
    result = result_of(log, delegate="gpu")
    assert result.status == "failed" and result.coverage.fully is False
    assert result.metrics["gpu_unsupported_ops"] == ["UNPACK: Operation is not supported."]


def test_gpu_delegate_failure_on_stderr():
    log = load("gpu_delegate_opencl_failure.txt")
    assert not log.complete
    assert log.errors == (
        "Failed to build program executable - Build program failure(97:0) : error : conversion between "
        "different vector types not allowed",
    )
    assert "Failed to build program executable" in log.error
    result = result_of(log, delegate="gpu")
    assert result.status == "failed" and "Failed to build program executable" in result.error
    assert result.coverage.applied is None  # the GPU delegate was created; the tool never said more


def test_failed_to_apply_delegate_line():
    # Format from benchmark_tflite_model.cc / benchmark_main.cc (no public capture found): the
    # delegate cannot take the graph, the tool stops.
    text = (
        "INFO: Created TensorFlow Lite delegate for GPU.\n"
        "ERROR: TfLiteGpuDelegate Init: ADD: Node 0 has no inputs.\n"
        "ERROR: Restored original execution plan after delegate application failure.\n"
        "ERROR: Failed to apply GPU delegate.\n"
        "ERROR: Benchmarking failed.\n"
    )
    log = parse_benchmark_log(text)
    gpu = log.delegate("gpu")
    assert gpu.applied is False and gpu.message == "Failed to apply GPU delegate."
    assert "Benchmarking failed" in log.error and "Failed to apply GPU delegate." in log.error
    result = result_of(log, delegate="gpu")
    assert result.status == "failed" and result.coverage.applied is False


def test_logcat_cut_mid_run_keeps_the_warmup():
    log = load("logcat_apk_cpu_cut_mid_run.txt")
    assert not log.complete
    assert log.init_ms == approx(9.34) and log.model_size_mb == approx(137.514)
    w = log.warmup
    assert (w.count, w.mean_ms, w.first_ms) == (1, approx(1381.51), approx(1381.51))
    assert log.runs is None
    result = result_of(log)
    assert result.status == "failed" and result.warmup == w and result.latency is None
    assert "did not finish" in result.error


# --- op profiling --------------------------------------------------------------------------

RUN_ORDER_NEW = ("node_type", "first", "avg_ms", "pct", "cdf_pct", "mem_kb", "times_called", "name")
SUMMARY = ("node_type", "count", "avg_ms", "avg_pct", "cdf_pct", "mem_kb", "times_called")


def test_op_profile_2021_layout_tabs():
    log = load("tf2_op_profiling_tabs.txt")
    assert log.complete
    assert (log.init_ms, log.inference_avg_ms) == (approx(16.772), approx(7.45497))
    assert [(t.section, t.title, len(t.rows)) for t in log.op_profile] == [
        ("Profiling Info for Benchmark Initialization", "Run Order", 2),
        ("Profiling Info for Benchmark Initialization", "Top by Computation Time", 2),
        ("Profiling Info for Benchmark Initialization", "Summary by node type", 2),
        ("Operator-wise Profiling Info for Regular Benchmark Runs", "Run Order", 115),
        ("Operator-wise Profiling Info for Regular Benchmark Runs", "Top by Computation Time", 10),
        ("Operator-wise Profiling Info for Regular Benchmark Runs", "Summary by node type", 8),
    ]
    runs = "Operator-wise Profiling Info for Regular Benchmark Runs"
    order = log.table("Run Order", runs)
    assert order.columns == RUN_ORDER_NEW
    assert order.rows[0] == {
        "node_type": "Convolution (NHWC, QU8) IGEMM", "first": 0.267, "avg_ms": 0.278, "pct": 3.783,
        "cdf_pct": 3.783, "mem_kb": 0.0, "times_called": 1, "name": "Delegate/Convolution (NHWC, QU8) IGEMM:0",
    }
    summary = log.table("Summary by node type", runs)
    assert summary.columns == SUMMARY
    assert summary.rows[0] == {
        "node_type": "Convolution (NHWC, QU8) GEMM", "count": 54, "avg_ms": 3.34, "avg_pct": 45.622,
        "cdf_pct": 45.622, "mem_kb": 0.0, "times_called": 54,
    }
    assert summary.rows[-1]["node_type"] == "Copy (NC, X8)" and summary.rows[-1]["count"] == 13
    init = log.table("Run Order", "Profiling Info for Benchmark Initialization")
    assert init.rows[0]["node_type"] == "ModifyGraphWithDelegate" and init.rows[0]["mem_kb"] == 3428.0
    # "Timings (microseconds): count=67 ..." after the tables is the profiler's, not a run
    assert log.runs.first_ms == approx(7.176) and not log.warnings
    dumped = result_of(log).metrics["op_profile"]
    assert len(dumped) == 6 and dumped[3]["rows"][0]["name"] == "Delegate/Convolution (NHWC, QU8) IGEMM:0"


def test_op_profile_2020_layout_with_start_column():
    log = load("tf2_op_profiling_start_column.txt")
    (table,) = log.op_profile
    assert table.section == "Operator-wise Profiling Info for Regular Benchmark Runs"
    assert table.columns == ("node_type", "start") + RUN_ORDER_NEW[1:]
    assert len(table.rows) == 8
    assert table.rows[0]["name"] == "[MobilenetV2/expanded_conv_16/project/add_fold, aspp0/Relu]:71"
    assert table.rows[6] == {
        "node_type": "RESIZE_BILINEAR", "start": 14.37, "first": 22.826, "avg_ms": 22.369, "pct": 42.965,
        "cdf_pct": 70.562, "mem_kb": 0.0, "times_called": 1, "name": "[ResizeBilinear_2]:69",
    }
    assert table.rows[7]["cdf_pct"] == 100.0


def test_op_profile_start_layout_gpu_and_summary():
    log = load("tf2_gpu_profile_start_column.txt")
    assert [t.title for t in log.op_profile] == ["Run Order", "Top by Computation Time", "Summary by node type"]
    (row,) = log.table("Run Order").rows
    assert (row["node_type"], row["start"], row["avg_ms"], row["pct"]) == ("TfLiteGpuDelegateV2", 0.008, 5.061, 100.0)
    assert log.table("Summary by node type").rows == (
        {"node_type": "TfLiteGpuDelegateV2", "count": 1, "avg_ms": 5.061, "avg_pct": 100.0, "cdf_pct": 100.0,
         "mem_kb": 0.0, "times_called": 1},
    )


def test_op_profile_pasted_with_spaces_instead_of_tabs():
    log = load("tf215_op_profiling_spaces.txt")
    (table,) = log.op_profile
    assert table.columns == RUN_ORDER_NEW
    assert [r["name"] for r in table.rows] == ["[]:64", "[]:38", "[]:65"]
    assert table.rows[1] == {
        "node_type": "RESIZE_NEAREST_NEIGHBOR", "first": 0.052, "avg_ms": 0.058, "pct": 0.899,
        "cdf_pct": 62.936, "mem_kb": 0.0, "times_called": 1, "name": "[]:38",
    }


# --- formats with no public capture, built from the tool's source -------------------------


def test_litert_percentile_stats_line():
    # LiteRT's StatWithPercentiles::OutputToStream appends " p5=.. median=.. p95=.." to the line.
    text = (
        "INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.\n"
        "INFO: count=1 curr=9000 p5=9000 median=9000 p95=9000\n"
        "INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.\n"
        "INFO: count=60 first=5100 curr=4900 min=4800 max=6100 avg=5012.5 std=210 p5=4850 median=4990 p95=5400\n"
        "INFO: Inference timings in us: Init: 3000, First inference: 9000, Warmup (avg): 9000, Inference (avg): 5012.5\n"
    )
    log = parse_benchmark_log(text)
    r = log.runs
    assert (r.count, r.mean_ms, r.p50_ms, r.p90_ms, r.p99_ms) == (60, approx(5.0125), approx(4.99), None, None)
    assert log.percentiles_ms == {"warmup": {"p5": 9.0, "p95": 9.0}, "runs": {"p5": 4.85, "p95": 5.4}}
    assert log.warmup.p50_ms == approx(9.0)
    assert result_of(log).metrics["percentiles_ms"]["runs"] == {"p5": 4.85, "p95": 5.4}


def test_dry_run_count_zero_and_nan_averages():
    # --dry_run=true: both runs are empty ("count=0"); an empty Stat's avg prints as nan.
    text = (
        "Running benchmark for at least 0 iterations and at least -1 seconds but terminate if exceeding 150 seconds.\n"
        "count=0 p5=0 median=0 p95=0\n"
        "Running benchmark for at least 0 iterations and at least -1 seconds but terminate if exceeding 150 seconds.\n"
        "count=0\n"
        "Inference timings in us: Init: 1234, First inference: 0, Warmup (avg): -nan, Inference (avg): nan\n"
    )
    log = parse_benchmark_log(text)
    assert log.complete and log.warmup.count == 0 and log.warmup.mean_ms is None and log.runs.count == 0
    assert log.warmup_avg_ms is None and log.inference_avg_ms is None and log.init_ms == approx(1.234)
    assert log.percentiles_ms == {}


def test_tf1_stats_class_curr_first_form():
    # tensorflow/core/util/stats_calculator.h of 2017-2018: "curr=.. count=.." and no "first".
    text = (
        "Running benchmark for 1 iterations \n"
        "curr=20000 count=1\n"
        "Running benchmark for 50 iterations \n"
        "curr=15000 count=50 min=14000 max=21000 avg=15500.5 std=700\n"
        "Average inference timings in us: Warmup: 20000, Init: 4000, no stats: 15500.5\n"
    )
    log = parse_benchmark_log(text)
    assert log.complete and log.warmup.count == 1 and log.warmup.mean_ms == approx(20.0)
    r = log.runs
    assert (r.count, r.mean_ms, r.min_ms, r.max_ms, r.std_ms, r.first_ms) == (
        50, approx(15.5005), approx(14.0), approx(21.0), approx(0.7), None)


def test_logcat_formats_prefixes_crlf_and_foreign_tags():
    lines = [
        "11-25 10:00:00.000  1234  1234 I tflite  : Running benchmark for at least 1 iterations and at least 0.5 seconds",
        "11-25 10:00:00.100  1234  1234 I tflite  : count=3 first=1000 curr=900 min=900 max=1000 avg=950 std=40",
        "11-25 10:00:00.100  1234  1234 I Adreno  : count=99 first=1 curr=1 min=1 max=1 avg=1 std=0",  # not the tool's
        "I/tflite  ( 1234): Running benchmark for at least 50 iterations and at least 1 seconds",
        "2019-06-02 13:59:36.044 6836-6836/org.tensorflow.lite.benchmark I/tflite: count=50 first=800 curr=700 min=650 max=900 avg=720 std=30",
        "11-25 10:00:01.000  1234  1234 I tflite  : Inference timings in us: Init: 870557, First inference: 130565, "
        "Warmup (avg): 122373, Inference (avg): 119375",
        "11-25 10:00:01.000  1234  1234 E libEGL  : Failed to apply something unrelated",
    ]
    log = parse_benchmark_log("\r\n".join(lines) + "\r\n")
    assert log.complete and log.error is None and not log.errors
    assert log.warmup.count == 3 and log.runs.count == 50 and log.runs.mean_ms == approx(0.72)
    assert (log.init_ms, log.inference_avg_ms) == (approx(870.557), approx(119.375))


# --- garbage -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   \n\n\t  \n"])
def test_empty_input(text):
    log = parse_benchmark_log(text)
    assert not log.complete and log.error.startswith("empty benchmark_model output")
    result = result_of(log)
    assert result.status == "failed" and result.latency is None and result.error == log.error


def test_binary_and_garbage_input():
    blob = random.Random(1234).randbytes(64 * 1024) + b"\x00\xff\xfe" * 100
    for data in (blob, blob.decode("latin-1"), "not a benchmark\x00\x01\x02 count= curr=\n" * 50):
        log = parse_benchmark_log(data)
        assert not log.complete
        assert log.error.startswith("no benchmark_model output recognised")
        assert result_of(log).status == "failed"


def test_pathological_lines_parse_in_linear_time():
    # Regexes that backtrack quadratically would take minutes on these; a garbled capture can hold them.
    n = 50_000
    lines = [
        "count=" + "1" * n + "x", "x" * n, "a" + " " * n + "x", "I/tflite" + " " * n + "x",
        "01-01 00:00:00.000 1 1 I tflite" + " " * n, "= " * n + "x", "Explicitly applied " * (n // 20),
        "\t".join(["1.0"] * (n // 4)), "7 " * n,
    ]
    text = "\n".join(lines) + "\n============ T ============\n" + "[a" * n + "\n"
    started = time.perf_counter()
    log = parse_benchmark_log(text)
    assert time.perf_counter() - started < 5.0
    assert not log.complete


def test_unknown_lines_are_kept_and_ignored():
    path = LOGS / "tf2_gpu_full_delegation.txt"
    text = path.read_text(encoding="utf-8")
    noisy = "\n".join(f"{line}\nsome vendor chatter = [x] ===\x07" for line in text.splitlines())
    log = parse_benchmark_log(noisy)
    assert log.raw == noisy
    assert log.complete and log.runs == load(path.name).runs
