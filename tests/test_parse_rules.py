"""benchmark_model parsing through the public API, field by field: the whole Result of real captures
(every number below is read off the capture file named), and one hand-written line per delegate
message the tool and the runtime print (their wording is the tool's, see parse's regexes' comments)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tflite_deploy.benchmark.parse import parse_benchmark_log, to_result

LOGS = Path(__file__).parent / "data" / "benchmark_logs"
GPU_FULL = "Explicitly applied GPU delegate, and the model graph will be completely executed by the delegate."


def result(text: str, delegate: str = "cpu", **kw):
    return to_result(parse_benchmark_log(text), artifact="m.tflite", target="adb:S", delegate=delegate, **kw)


def capture(name: str) -> str:
    return (LOGS / name).read_text(encoding="utf-8")


def test_whole_result_of_a_gpu_capture():
    r = result(capture("tf2_gpu_full_delegation.txt"), "gpu", runner="apk", settings={"runs": 50},
               device={"model": "P"})
    d = r.to_dict()
    assert d["raw_log"] == capture("tf2_gpu_full_delegation.txt")
    for key in ("raw_log", "created_at", "tool_version", "schema"):
        d.pop(key)
    stats = dict(p50_ms=None, p90_ms=None, p99_ms=None, samples_ms=[])
    assert d == {
        "kind": "bench", "artifact": "m.tflite", "target": "adb:S", "runner": "apk", "delegate": "gpu",
        "status": "ok", "error": None, "fault": None, "settings": {"runs": 50, "runtime": "tflite"}, "artifact_sha256": None, "recipe": None,
        "init_ms": 870.557, "first_ms": 130.565,  # Init: 870557, First inference: 130565 (us)
        "warmup": dict(count=4, mean_ms=122.373, std_ms=4.93, min_ms=117.37, max_ms=130.565, first_ms=130.565,
                       **stats),
        "latency": dict(count=50, mean_ms=119.375, std_ms=1.948, min_ms=113.737, max_ms=124.776, first_ms=119.212,
                        **stats),
        "init_memory_mb": None, "peak_memory_mb": None,
        "coverage": {"requested": "gpu", "applied": True, "fully": True, "delegate_kernels": 1, "message": GPU_FULL},
        "device": {"model": "P"},
        "metrics": {
            "tool": "tflite", "inference_avg_ms": 119.375, "warmup_avg_ms": 122.373, "model_size_mb": 7.07479,
            "delegates": [{"delegate": "GPU", "applied": True, "fully": True, "delegate_kernels": 1,
                           "message": GPU_FULL}],
            "tool_params": {"Log parameter values verbosely": "0", "Min num runs": "50", "Num threads": "4",
                            "Min warmup runs": "1", "Graph": "/data/local/tmp/tflite/denoising_32bit.tflite",
                            "Enable op profiling": "1", "#threads used for CPU inference": "4", "Use gpu": "1"}},
        "warnings": [],
    }
    plain = result(capture("tf2_gpu_full_delegation.txt"), "gpu")
    assert plain.runner == "benchmark_model" and plain.settings == {"runtime": "tflite"} and plain.device == {}


def test_memory_lines_become_result_fields_and_metrics():
    # "Memory footprint delta ... init=2.4375 overall=20.543", "... via periodic monitoring: 25.0508"
    r = result(capture("tf2_memory_tail_periodic_peak.txt"))
    assert r.init_memory_mb == 2.4375 and r.peak_memory_mb == 25.0508
    assert r.metrics == {"model_size_mb": 0.007588, "memory_overall_mb": 20.543,
                         "memory_peak_periodic_mb": 25.0508, "peak_memory_source": "periodic"}
    # no periodic figure: the overall footprint is the peak, and metrics say so
    r = result(capture("tf215_nnapi_full_accelerators.txt"), "nnapi")
    assert r.peak_memory_mb == 7.83203 and r.init_memory_mb == 7.40234
    assert r.metrics["memory_overall_mb"] == 7.83203 and r.metrics["peak_memory_source"] == "overall"
    assert "memory_peak_periodic_mb" not in r.metrics


def test_nnapi_capture_accelerators_and_the_verdict_with_the_runtime_line():
    r = result(capture("tf215_nnapi_full_accelerators.txt"), "nnapi")
    assert r.metrics["nnapi_accelerators"] == ["synap-npu", "nnapi-reference"]
    message = ("Explicitly applied NNAPI delegate, and the model graph will be completely executed by the "
               "delegate. (Replacing 31 out of 31 node(s) with delegate (TfLiteNnapiDelegate) node, yielding 1 "
               "partitions for the whole graph.)")
    assert r.metrics["delegates"] == [{"delegate": "NNAPI", "applied": True, "fully": True, "delegate_kernels": 1,
                                       "message": message}]
    assert r.init_ms == 66.002 and r.metrics["warmup_avg_ms"] == 637.079 and r.metrics["inference_avg_ms"] == 1.88574


def run_log(*delegate_lines: str) -> str:
    """A complete run of the current tool with ``delegate_lines`` where it prints them."""
    return "\n".join([
        "STARTING!", "Num threads: [2]", *delegate_lines,
        "The input model file size (MB): 0.5", "Initialized session in 10.5ms.",
        "Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.",
        "count=2 first=2000 curr=1000 min=1000 max=2000 avg=1500 std=500",
        "Running benchmark for at least 5 iterations and at least 1 seconds but terminate if exceeding 150 seconds.",
        "count=5 first=1000 curr=1000 min=900 max=1100 avg=1000 std=50",
        "Inference timings in us: Init: 10500, First inference: 2000, Warmup (avg): 1500, Inference (avg): 1000",
    ]) + "\n"


def coverage(delegate, applied, fully, kernels, message):
    return {"delegate": delegate, "applied": applied, "fully": fully, "delegate_kernels": kernels, "message": message}


PARTIAL = ("Explicitly applied GPU delegate, and the model graph will be partially executed by the delegate w/ 3 "
           "delegate kernels.")
THOUGH = "Though NNAPI delegate is explicitly applied, the model graph will not be executed by the delegate."
REPLACING = "Replacing 58 out of 60 node(s) with delegate (TfLiteXNNPackDelegate) node, yielding 2 partitions."


def test_partial_delegation_line():
    r = result(run_log("INFO: " + PARTIAL), "gpu")
    assert r.status == "ok" and r.metrics["delegates"] == [coverage("GPU", True, False, 3, PARTIAL)]
    assert r.warnings == ("the gpu delegate took only part of the graph (3 delegate kernels): the rest ran on the CPU",)


def test_not_executed_line():
    r = result(run_log(THOUGH), "nnapi")
    assert r.metrics["delegates"] == [coverage("NNAPI", False, False, 0, THOUGH)]
    assert r.warnings == ("the nnapi delegate ran no part of the graph: these numbers are the CPU's",)


def test_failed_to_apply_line():
    line = "Failed to apply XNNPACK delegate."
    r = result(run_log("ERROR: " + line), "xnnpack")
    assert r.metrics["delegates"] == [coverage("XNNPACK", False, None, None, line)]
    assert r.metrics["tool_errors"] == [line]


@pytest.mark.parametrize("line,expected", [
    (REPLACING, coverage("XNNPACK", True, False, 2, REPLACING)),
    ("Replacing 60 out of 60 node(s) with delegate (TfLiteGpuDelegateV2) node, yielding 1 partitions.",
     coverage("GPU", True, True, 1, "Replacing 60 out of 60 node(s) with delegate (TfLiteGpuDelegateV2) node, "
                                    "yielding 1 partitions.")),
    ("Replacing 60 out of 60 node(s) with delegate (TfLiteGpuDelegate) node, yielding 2 partitions.",
     coverage("GPU", True, False, 2, "Replacing 60 out of 60 node(s) with delegate (TfLiteGpuDelegate) node, "
                                     "yielding 2 partitions.")),
    ("Replacing 7 node(s) with delegate (TfLiteNnapiDelegate) node, yielding 1 partitions.",  # before 2020
     coverage("NNAPI", True, None, 1, "Replacing 7 node(s) with delegate (TfLiteNnapiDelegate) node, yielding 1 "
                                      "partitions.")),
    ("Replacing 1 out of 9 node(s) with delegate (TfLiteXNNPackDelegate) node, yielding 1 partitions.",
     coverage("XNNPACK", True, False, 1, "Replacing 1 out of 9 node(s) with delegate (TfLiteXNNPackDelegate) node, "
                                         "yielding 1 partitions.")),
    ("Replacing 0 out of 9 node(s) with delegate (VendorDelegate) node, yielding 0 partitions.",
     coverage("VendorDelegate", False, False, 0, "Replacing 0 out of 9 node(s) with delegate (VendorDelegate) "
                                                 "node, yielding 0 partitions.")),
])
def test_runtime_replacing_lines(line, expected):
    assert result(run_log("INFO: " + line)).metrics["delegates"] == [expected]


def test_the_tools_verdict_wins_over_the_runtime_line_and_keeps_it():
    before = result(run_log("INFO: " + REPLACING, "INFO: " + PARTIAL.replace("GPU", "XNNPACK")), "xnnpack")
    verdict = PARTIAL.replace("GPU", "XNNPACK")
    assert before.metrics["delegates"] == [coverage("XNNPACK", True, False, 3, f"{verdict} ({REPLACING})")]
    after = result(run_log("INFO: " + verdict, "INFO: " + REPLACING), "xnnpack")
    assert after.metrics["delegates"] == [coverage("XNNPACK", True, False, 3, verdict)]
    assert after.coverage.delegate_kernels == 3


@pytest.mark.parametrize("line,expected", [
    ("INFO: 30 operations will run on the GPU, and the remaining 2 operations will run on the CPU.",
     (True, False)),
    ("INFO: 32 operations will run on the GPU, and the remaining 0 operations will run on the CPU.", (True, True)),
    ("INFO: 0 operations will run on the GPU, and the remaining 32 operations will run on the CPU.",
     (False, False)),
])
def test_gpu_split_lines(line, expected):
    (c,) = result(run_log(line), "gpu").metrics["delegates"]
    assert (c["delegate"], c["applied"], c["fully"], c["delegate_kernels"]) == ("GPU", *expected, None)
    assert c["message"] == line.removeprefix("INFO: ")


def test_unsupported_platform_and_accelerator_list():
    line = "NNAPI acceleration is unsupported on this platform."
    r = result(run_log("ERROR: " + line, "INFO: NNAPI accelerators available: [qti-dsp,nnapi-reference]"), "nnapi")
    assert r.metrics["delegates"] == [coverage("NNAPI", False, None, None, line)]
    assert r.metrics["tool_errors"] == [line]
    assert r.metrics["nnapi_accelerators"] == ["qti-dsp", "nnapi-reference"]
    assert r.metrics["tool_params"]["NNAPI accelerators available"] == "qti-dsp,nnapi-reference"


def test_gpu_unsupported_ops_list():
    r = result(run_log("INFO: Created TensorFlow Lite delegate for GPU.",
                       "ERROR: Following operations are not supported by GPU delegate:",
                       "UNPACK: Operation is not supported.", "SPLIT_V: Operation is not supported.",
                       "INFO: 30 operations will run on the GPU, and the remaining 2 operations will run on the CPU."),
               "gpu")
    assert r.metrics["gpu_unsupported_ops"] == ["UNPACK: Operation is not supported.",
                                                "SPLIT_V: Operation is not supported."]
    assert r.coverage.applied is True and r.coverage.fully is False


# ------------------------------------------------------------------------------ op-profiling tables
def test_op_profile_tables_as_the_capture_prints_them():
    # tf2_op_profiling_tabs.txt, lines 27-43: the initialization section's three tables
    r = result(capture("tf2_op_profiling_tabs.txt"))
    section = "Profiling Info for Benchmark Initialization"
    cols = ["node_type", "first", "avg_ms", "pct", "cdf_pct", "mem_kb", "times_called", "name"]
    rows = [{"node_type": "ModifyGraphWithDelegate", "first": 14.842, "avg_ms": 14.842, "pct": 99.317,
             "cdf_pct": 99.317, "mem_kb": 3428.0, "times_called": 1, "name": "ModifyGraphWithDelegate/0"},
            {"node_type": "AllocateTensors", "first": 0.102, "avg_ms": 0.102, "pct": 0.683, "cdf_pct": 100.0,
             "mem_kb": 0.0, "times_called": 1, "name": "AllocateTensors/0"}]
    summary = [{"node_type": "ModifyGraphWithDelegate", "count": 1, "avg_ms": 14.842, "avg_pct": 99.317,
                "cdf_pct": 99.317, "mem_kb": 3428.0, "times_called": 1},
               {"node_type": "AllocateTensors", "count": 1, "avg_ms": 0.102, "avg_pct": 0.683, "cdf_pct": 100.0,
                "mem_kb": 0.0, "times_called": 1}]
    assert r.metrics["op_profile"][:3] == [
        {"section": section, "graph": "", "title": "Run Order", "columns": cols, "rows": rows},
        {"section": section, "graph": "", "title": "Top by Computation Time", "columns": cols, "rows": rows},
        {"section": section, "graph": "", "title": "Summary by node type",
         "columns": ["node_type", "count", "avg_ms", "avg_pct", "cdf_pct", "mem_kb", "times_called"],
         "rows": summary}]
    assert r.warnings == ()


HEADER = "\t[node type]\t[first]\t[avg ms]\t[%]\t[cdf%]\t[mem KB]\t[times called]\t[Name]"


def profile_log(*lines: str) -> str:
    return run_log() + "\n".join(["Profiling Info for Benchmark Initialization:",
                                  "============================== Run Order ==============================",
                                  *lines]) + "\n"


def test_a_row_cut_short_is_reported_and_ends_the_table():
    row = "\tCONV_2D\t1.5\t1.25\t50%\t50%\t0.000\t1\tconv/0"
    cut = "\tCONV_2D\t1.5\t1.25"
    r = result(profile_log(HEADER, row, cut, row))
    (table,) = r.metrics["op_profile"]
    assert table["rows"] == [{"node_type": "CONV_2D", "first": 1.5, "avg_ms": 1.25, "pct": 50.0, "cdf_pct": 50.0,
                              "mem_kb": 0.0, "times_called": 1, "name": "conv/0"}]
    assert r.warnings == (f"profile row of 'Run Order' has 3 cells for 8 columns: {cut.strip()}",)


@pytest.mark.parametrize("after", ["Number of nodes executed: 2", "Timings (microseconds): count=1 curr=5",
                                   "Memory (bytes): count=0", "\tA\tB", "",
                                   "Operator-wise Profiling Info for Regular Benchmark Runs:",
                                   "============================== Top by Computation Time =============================="])
def test_the_profilers_own_lines_end_a_table_quietly(after):
    row = "\tADD\t0.5\t0.25\t100%\t100%\t0\t2\tadd"
    r = result(profile_log(HEADER, row, after))
    assert r.metrics["op_profile"][0]["rows"][0]["times_called"] == 2 and r.warnings == ()


def test_a_title_without_a_header_is_not_a_table():
    r = result(profile_log("some text"))
    assert "op_profile" not in r.metrics


# ------------------------------------------------------------------------------ which coverage a run gets
@pytest.mark.parametrize("delegate", ["cpu", "none", "", "CPU"])
def test_no_coverage_for_the_cpu(delegate):
    assert result(run_log("INFO: " + PARTIAL), delegate).coverage is None


def test_coverage_of_a_delegate_the_log_never_reports_on():
    err = "ERROR: GPU delegate: could not create the OpenCL context"
    r = result(run_log(err, "ERROR: something else"), "gpu")
    assert r.coverage is not None and r.coverage.requested == "gpu" and r.coverage.applied is None
    assert r.coverage.message == err.removeprefix("ERROR: ")
    r = result(run_log("ERROR: something else"), "nnapi")
    assert r.coverage.message == "" and r.coverage.applied is None and r.coverage.fully is None


def test_a_created_delegate_without_a_verdict():
    r = result(run_log("INFO: Created TensorFlow Lite XNNPACK delegate for CPU."), "xnnpack")
    assert r.metrics["delegates"] == [coverage("XNNPACK", None, None, None,
                                               "XNNPACK delegate created; no coverage printed")]


# ------------------------------------------------------------------------------ the parser's bookkeeping
@pytest.mark.parametrize("before", [
    run_log(),  # STARTING! and a whole run
    run_log().split("\n", 1)[1],  # no STARTING!, but its "Running benchmark" markers
    "Inference timings in us: Init: 10500, First inference: 2000, Warmup (avg): 1500, Inference (avg): 1000\n",
])
def test_a_second_run_is_named_by_its_line(before):
    text = before + "junk\nSTARTING!\n" + run_log().replace("count=5 ", "count=7 ")
    log = parse_benchmark_log(text)
    line = before.count("\n") + 2
    assert f"a second benchmark run starts at line {line}; only the first one is parsed" in log.warnings
    assert log.runs is None or log.runs.count == 5


def test_unrecognised_text_counts_its_lines():
    log = parse_benchmark_log("hello\nworld\n\nbye\n")
    assert log.error == "no benchmark_model output recognised in 4 line(s): is this the tool's output?"


def test_an_unfinished_run_without_errors_says_so_and_no_more():
    log = parse_benchmark_log(run_log().rsplit("Inference timings", 1)[0])
    assert log.error == ("incomplete benchmark_model output: its final 'Inference timings in us' line (TFLite) or "
                         "'BENCHMARK RESULTS' block (LiteRT) is missing, so the run did not finish (device "
                         "disconnected, tool killed or crashed?)")


def test_gpu_op_list_ends_at_a_blank_or_other_line():
    r = result(run_log("UNPACK: before the list is not in it.",
                       "ERROR: Following operations are not supported by GPU delegate:",
                       "UNPACK: Operation is not supported.", "", "SPLIT: after a blank line is not in it."), "gpu")
    assert r.metrics["gpu_unsupported_ops"] == ["UNPACK: Operation is not supported."]
    r = result(run_log("ERROR: Following operations are not supported by GPU delegate:",
                       "UNPACK: Operation is not supported.", "Some other line.",
                       "SPLIT: after another line is not in it."), "gpu")
    assert r.metrics["gpu_unsupported_ops"] == ["UNPACK: Operation is not supported."]


def test_the_last_verdict_wins_and_runtime_lines_replace_each_other():
    full = GPU_FULL
    though = THOUGH.replace("NNAPI", "GPU")
    (c,) = result(run_log(though, full), "gpu").metrics["delegates"]
    assert (c["applied"], c["fully"], c["message"]) == (True, True, full)
    second = REPLACING.replace("58 out of", "59 out of")
    (c,) = result(run_log(REPLACING, second), "xnnpack").metrics["delegates"]
    assert c["message"] == second


def test_tables_know_their_section_and_graph():
    row = "\tADD\t0.5\t0.25\t100%\t100%\t0\t2\tadd"
    title = "============================== Run Order =============================="
    text = run_log() + "\n".join([
        title, HEADER, row, "",  # before any section
        "Operator-wise Profiling Info for Regular Benchmark Runs:", "Subgraph (index: 1) profile:",
        title, HEADER, row, "",
        "Primary graph profile:", title, HEADER, row, "",
        "Profiling Info for Benchmark Initialization:", title, HEADER, row]) + "\n"
    tables = result(text).metrics["op_profile"]
    regular = "Operator-wise Profiling Info for Regular Benchmark Runs"
    assert [(t["section"], t["graph"]) for t in tables] == [
        ("", ""), (regular, "Subgraph (index: 1) profile"), (regular, "Primary graph profile"),
        ("Profiling Info for Benchmark Initialization", "")]


def test_cells_keep_text_and_integers_apart():
    row = "\tADD\t1\tn/a\t7%\t100%\t0\t2\t12"
    (t,) = result(profile_log(HEADER, row)).metrics["op_profile"]
    (cells,) = t["rows"]
    assert cells == {"node_type": "ADD", "first": 1, "avg_ms": "n/a", "pct": 7, "cdf_pct": 100, "mem_kb": 0,
                     "times_called": 2, "name": "12"}
    assert [type(cells[k]) for k in ("first", "pct", "times_called", "name")] == [int, int, int, str]


# ------------------------------------------------------------------------------ LiteRT's results block
LITERT = "INFO: [benchmark_litert_model.h:94] "
NO_STATS = dict(std_ms=None, min_ms=None, max_ms=None, p50_ms=None, p90_ms=None, p99_ms=None, samples_ms=[])


def litert(*lines: str) -> str:
    return "\n".join(LITERT + line for line in lines) + "\n"


def test_litert_block_as_its_header_documents_it():
    r = result(litert("========== BENCHMARK RESULTS ==========", "Signature name:       prefill_1024",
                      "Model initialization: 5.76 ms", "Warmup (first):       2.12 ms",
                      "Warmup (avg):         0.95 ms (526 runs)", "Inference (avg):      0.93 ms (1054 runs)",
                      "Inference (min):      0.91 ms", "Inference (max):      1.10 ms", "Inference (std):      0.02",
                      "Throughput:           197.97 MB/s", "Memory Usage:", "Init footprint:       4.06 MB",
                      "Overall footprint:    7.07 MB", "Peak memory:          35.20 MB",
                      "======================================"))
    d = r.to_dict()
    assert (d["status"], d["error"], d["settings"], d["init_ms"], d["first_ms"]) == \
        ("ok", None, {"runtime": "litert"}, 5.76, 2.12)
    assert d["warmup"] == {**NO_STATS, "count": 526, "mean_ms": 0.95, "first_ms": 2.12}
    assert d["latency"] == {**NO_STATS, "count": 1054, "mean_ms": 0.93, "std_ms": 0.02, "min_ms": 0.91,
                            "max_ms": 1.1, "first_ms": None}
    assert (d["init_memory_mb"], d["peak_memory_mb"], d["coverage"], d["warnings"]) == (4.06, 35.2, None, [])
    assert d["metrics"] == {"tool": "litert", "inference_avg_ms": 0.93, "warmup_avg_ms": 0.95,
                            "memory_overall_mb": 7.07, "memory_peak_periodic_mb": 35.2,
                            "peak_memory_source": "periodic", "throughput_mb_s": 197.97,
                            "tool_params": {"Signature name": "prefill_1024"}}


def test_litert_python_tool_block_with_percentiles():
    rule = "=" * 40
    text = "\n".join([rule, " BENCHMARK RESULTS", rule, "Model initialization:   5.00 ms",
                      "First inference:        3.00 ms", "Warmup (avg):           2.00 ms (10 runs)",
                      "Inference (avg):        1.50 ms (100 runs)", "Inference (min):        1.00 ms",
                      "Inference (max):        2.50 ms", "Inference (std):        0.25 ms",
                      "Inference (median):     1.40 ms", "Inference (p5):         1.10 ms",
                      "Inference (p95):        2.20 ms", rule]) + "\n"
    d = result(text).to_dict()
    assert d["status"] == "ok" and d["init_ms"] == 5.0 and d["first_ms"] == 3.0
    assert d["warmup"] == {**NO_STATS, "count": 10, "mean_ms": 2.0, "first_ms": 3.0}
    assert d["latency"] == {**NO_STATS, "count": 100, "mean_ms": 1.5, "std_ms": 0.25, "min_ms": 1.0, "max_ms": 2.5,
                            "p50_ms": 1.4, "first_ms": None}
    assert d["metrics"] == {"tool": "litert", "inference_avg_ms": 1.5, "warmup_avg_ms": 2.0,
                            "percentiles_ms": {"runs": {"p5": 1.1, "p95": 2.2}}}


def test_litert_block_without_runs_or_peak():
    r = result(litert("========== BENCHMARK RESULTS ==========", "Model initialization: 5.76 ms",
                      "Warmup (first):       2.12 ms", "Warmup (avg):         0.95 ms (1 run)",
                      "No inference runs were performed.", "No throughput data available for this run.",
                      "Peak memory usage not available. (requires ...)", "Overall footprint:    7.07 MB",
                      "======================================"))
    assert r.status == "ok" and r.latency.count == 0 and r.latency.mean_ms is None
    assert r.warmup.count == 1 and r.peak_memory_mb == 7.07 and r.metrics["peak_memory_source"] == "overall"
    assert "throughput_mb_s" not in r.metrics and "memory_peak_periodic_mb" not in r.metrics
    assert r.metrics["tool_params"] == {"Peak memory": "not available"}


def test_litert_accelerator_that_did_not_load():
    line = "NPU accelerator could not be loaded and registered: no dispatch library"
    r = result(litert(line, "========== BENCHMARK RESULTS ==========", "Inference (avg):      0.93 ms (3 runs)",
                      "======================================"), "npu")
    assert r.status == "ok" and r.latency.count == 3 and r.latency.mean_ms == 0.93
    assert r.metrics["accelerator_failures"] == {"npu": line} and "tool_params" not in r.metrics
    assert (r.coverage.applied, r.coverage.fully, r.coverage.delegate_kernels, r.coverage.message) == \
        (False, False, 0, line)
    assert r.warnings == ("the npu delegate ran no part of the graph: these numbers are the CPU's",)


def test_litert_block_cut_before_its_closing_rule_is_incomplete():
    r = result(litert("========== BENCHMARK RESULTS ==========", "Model initialization: 5.76 ms",
                      "Inference (avg):      0.93 ms (3 runs)"))
    assert r.status == "failed" and r.error.startswith("incomplete benchmark_model output")
    assert r.init_ms == 5.76 and r.latency.count == 3 and r.settings == {"runtime": "litert"}


# ------------------------------------------------------------------------------ line prefixes
from tflite_deploy.benchmark.parse.lines import delegate_key, ms, names, num, split_prefix  # noqa: E402


@pytest.mark.parametrize("line,expected", [
    ("  count=5 first=1  \r", (None, "  count=5 first=1", False)),  # only the right end is stripped
    ("INFO: Loaded model m", ("I", "Loaded model m", False)),
    ("  WARNING:  text", ("W", " text", False)),
    ("ERROR: bad", ("E", "bad", False)),
    ("INFO: [benchmark_litert_model.h:94] Inference (avg): 1 ms", ("I", "Inference (avg): 1 ms", True)),
    ("[./litert/tools/benchmark_litert_model.h:73] text", (None, "text", True)),
    ("I0000 00:00:1758455104.504065   62590 accelerator_registry.cc:51] RegisterAccelerator: NPU",
     ("I", "RegisterAccelerator: NPU", True)),
    ("  W0000 00:00:1758455104.504065 62590 registry.cc:9] warn", ("W", "warn", True)),
    ("05-31 10:38:42.607 22206 22206 E tflite  : ERROR: failed", ("E", "failed", False)),
    ("05-31 10:38:42.607 22206 22206 I tflite  : ERROR: failed", ("E", "failed", False)),
    ("05-31 10:38:42.607 22206 22206 F tflite  : INFO: fatal", ("F", "fatal", False)),
    ("05-31 10:38:42.607 22206 22206 I litert  : INFO: [file.h:1] x", ("I", "x", True)),
    ("05-31 10:38:42.607 22206 22206 I litert  : plain", ("I", "plain", True)),
    ("05-31 10:38:42.607 22206 22206 W native  : I0000 00:00:1.5 1 a.cc:2] y", ("I", "y", True)),
    ("05-31 10:38:42.607 22206 22206 E native  : I0000 00:00:1.5 1 a.cc:2] y", ("E", "y", True)),
    ("05-31 10:38:42.607 22206 22206 F native  : I0000 00:00:1.5 1 a.cc:2] y", ("F", "y", True)),
    ("05-31 10:38:42.607 22206 22206 I ViewRootImpl: draw", None),
    ("2019-06-02 13:59:36.044 6836-6836/com.example I/tflite: text", ("I", "text", False)),
    ("2019-06-02 13:59:36.044 6836-6836/com.example I/litert: text", ("I", "text", True)),
    ("I/tflite  ( 1234): text", ("I", "text", False)),
    ("D/GpuDriver( 1234): text", None),
])
def test_split_prefix(line, expected):
    assert split_prefix(line) == expected


def test_numbers_names_and_keys():
    assert num("1.78988e+06") == 1789880.0 and num("-nan") is None and num("inf") is None and num("x") is None
    assert ms(34825.1) == 34.8251 and ms(None) is None and ms(1) == 0.001
    assert names(" a, b ,,c ") == ["a", "b", "c"] and names("") == []
    assert delegate_key("Hexagon-DSP v2") == "hexagondspv2"


def test_absl_lines_of_a_real_capture_lose_their_prefix():
    # litert_build_docs_cpu_blazeface.txt: absl before its initialisation prints the epoch seconds ("00:00:1758455104.504065")
    lines = [l for l in capture("litert_build_docs_cpu_blazeface.txt").splitlines() if l.startswith("I0000 ")]
    assert lines and all(split_prefix(l)[0] == "I" and split_prefix(l)[2] is True for l in lines)
    assert split_prefix(lines[0])[1].startswith("RegisterAccelerator: ptr=")


def test_classic_stats_lines_stay_the_richer_source_next_to_the_block():
    stats = litert("count=3 first=3000 curr=2000 min=1000 max=3000 avg=2000 std=800",
                   "count=10 first=1500 curr=1000 min=900 max=1500 avg=1100 std=100 p5=950 median=1000 p95=1400")
    block = litert("========== BENCHMARK RESULTS ==========", "Warmup (first):       3.00 ms",
                   "Warmup (avg):         2.00 ms (3 runs)", "Inference (avg):      1.10 ms (10 runs)",
                   "Inference (p5):       0.90 ms", "Inference (p95):      1.50 ms", "Fully accelerated: True",
                   "======================================")
    r = result(stats + block)
    assert r.warmup.count == 3 and r.warmup.std_ms == 0.8 and r.latency.count == 10 and r.latency.min_ms == 0.9
    assert r.latency.p50_ms == 1.0 and r.metrics["percentiles_ms"]["runs"] == {"p5": 0.95, "p95": 1.4}
    assert r.metrics["tool_params"] == {"Fully accelerated": "True"}
