"""benchmark_model parsing: the rules mutation testing found untested (issue 14), mostly on real
captures changed the way real pastes and cut captures change them (blank lines lost, a line cut
short, a header lost), else on test_parse_rules' run_log with lines in the tool's own wording.
Every expected value is read off the log text or off the parse of the unchanged capture, which
tests/test_parse.py checks number by number."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_parse_rules import run_log
from tflite_deploy.benchmark.parse import parse_benchmark_log
from tflite_deploy.benchmark.parse.lines import names, split_prefix

LOGS = Path(__file__).parent / "data" / "benchmark_logs"
PROFILE = "tf2_op_profiling_tabs.txt"  # 2021+ layout: six tables in two sections, blank lines between them


def capture(name: str) -> str:
    return (LOGS / name).read_text(encoding="utf-8")


def without_blank_lines(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if line.strip()) + "\n"


def is_title(line: str) -> bool:
    return line.strip().startswith("=====") and line.strip().endswith("=====")


def first_table_lines(text: str) -> list[str]:
    """The capture's first profiling table: its title, header and rows, up to the blank line after them."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if is_title(line))
    end = next(i for i in range(start, len(lines)) if not lines[i].strip())
    return lines[start:end]


# ------------------------------------------------------------------------------ op-profiling tables
def test_tables_without_the_blank_lines_between_them():
    # a paste that lost its blank lines: a table ends at the next title, which starts the next table
    whole = parse_benchmark_log(capture(PROFILE))
    assert len(whole.op_profile) == sum(is_title(line) for line in capture(PROFILE).splitlines()) == 6
    squeezed = parse_benchmark_log(without_blank_lines(capture(PROFILE)))
    assert squeezed.op_profile == whole.op_profile and squeezed.warnings == whole.warnings == ()


def test_a_title_that_lost_its_header_leaves_the_next_table_alone():
    lines = without_blank_lines(capture(PROFILE)).splitlines()
    first = next(i for i, line in enumerate(lines) if is_title(line))
    second = next(i for i in range(first + 1, len(lines)) if is_title(lines[i]))
    # the first table's header and rows are gone: its title is followed by the next title
    log = parse_benchmark_log("\n".join(lines[:first + 1] + lines[second:]) + "\n")
    whole = parse_benchmark_log(capture(PROFILE))
    assert log.op_profile == whole.op_profile[1:] and log.warnings == ()


def test_one_table_pasted_alone_is_the_tools_output_cut_short():
    table = first_table_lines(capture(PROFILE))
    log = parse_benchmark_log("\n".join(table) + "\n")
    whole = parse_benchmark_log(capture(PROFILE))
    assert [(t.title, t.columns, t.rows) for t in log.op_profile] == \
        [(t.title, t.columns, t.rows) for t in whole.op_profile[:1]]
    assert log.error.startswith("incomplete benchmark_model output")


def test_a_capture_cut_mid_row_is_reported_with_the_rows_first_80_characters():
    table = first_table_lines(capture(PROFILE))
    lines = capture(PROFILE).splitlines()
    row = table[2]  # the first row, cut before its last cell
    cut = row[:row.rindex("\t")]
    log = parse_benchmark_log("\n".join(lines[:lines.index(row)] + [cut]) + "\n")
    title = table[0].strip().strip("=").strip()
    cells, columns = len(cut.strip().split("\t")), len(table[1].strip().split("\t"))
    assert cells > 2 and cells == columns - 1 and len(cut.strip()) > 80
    assert log.warnings == (f"profile row of '{title}' has {cells} cells for {columns} columns: {cut.strip()[:80]}",)
    assert log.op_profile[0].rows == ()


def test_at_most_20_cut_rows_are_reported():
    table = first_table_lines(capture(PROFILE))
    cut = table[2][:table[2].rindex("\t")]
    log = parse_benchmark_log("\n".join((table[:2] + [cut]) * 25) + "\n")
    assert len(log.op_profile) == 25 and all(t.rows == () for t in log.op_profile)
    assert len(log.warnings) == 20 and all(w.startswith("profile row of ") for w in log.warnings)


# ------------------------------------------------------------------------------ the line parser's bookkeeping
GPU_LOGCAT = "logcat_apk_gpu_partial_truncated.txt"  # APK logcat: GPU rejects UNPACK, cut mid-line


def test_whitespace_only_input_is_kept_as_raw():
    text = " \n\t\n"
    log = parse_benchmark_log(text)
    assert log.raw == text and not log.complete and log.error.startswith("empty benchmark_model output")


def test_a_block_value_the_stats_lines_do_not_give_is_the_blocks():
    # LiteRT's block alone: "Warmup (first):" is the only first-inference time it prints
    text = capture("litert_gpu_signature_cut_before_rule.txt")
    (line,) = [split_prefix(l)[1] for l in text.splitlines() if "Warmup (first):" in l]
    assert parse_benchmark_log(text).first_ms == float(line.split(":")[1].split()[0])


def test_an_op_like_line_before_any_gpu_list_is_not_an_unsupported_op():
    op = next(l for l in capture(GPU_LOGCAT).splitlines() if "Operation is not supported" in l)
    text = split_prefix(op)[1]  # "UNPACK: Operation is not supported."
    log = parse_benchmark_log(text + "\n" + capture("tf2_gpu_full_delegation.txt"))
    assert log.gpu_unsupported_ops == () and log.delegate("gpu").fully is True


def test_a_second_start_after_a_run_cut_in_its_parameters():
    # the first run died while printing its parameters (no marker, no result), then the tool ran again
    lines = capture("gpu_delegate_opencl_failure.txt").splitlines()
    start = next(i for i, l in enumerate(lines) if l.endswith("STARTING!"))
    first = lines[:start + 3]
    log = parse_benchmark_log("\n".join(first + lines[start:]) + "\n")
    assert log.warnings == (f"a second benchmark run starts at line {len(first) + 1}; only the first one is parsed",)
    assert log.errors == () and log.params == dict(split_param(l) for l in first[start + 1:])


def split_param(line: str) -> tuple[str, str]:
    key, value = split_prefix(line)[1].split(": [")
    return key, value.removesuffix("]")


def _params_only() -> str:
    lines = capture(GPU_LOGCAT).splitlines()
    return "\n".join(l for l in lines if split_prefix(l) and split_prefix(l)[1].endswith("]")
                     and ": [" in l) + "\n"


def _args_only() -> str:
    return next(l for l in capture(GPU_LOGCAT).splitlines() if "benchmark with args:" in l) + "\n"


@pytest.mark.parametrize("text", [
    "INFO: STARTING!\n",
    _params_only(),  # a logcat that lost its start, cut after the parameters
    _args_only(),  # the APK's first line and nothing after it
    "INFO: nnapi accelerator name: [qti-dsp]\n",  # the 2020 NNAPI provider's parameter line
], ids=["starting", "params", "apk_args", "nnapi_old"])
def test_a_capture_cut_after_its_first_lines_is_the_tools_output(text):
    log = parse_benchmark_log(text)
    assert log.error.startswith("incomplete benchmark_model output"), log.error


def test_the_2020_nnapi_provider_line():
    # tf215_nnapi_full_accelerators.txt prints the accelerator and the list on two lines; the 2020 provider
    # printed "nnapi accelerator name: [x] (Available: a,b)" (benchmark_tflite_model.cc of that time)
    text = capture("tf215_nnapi_full_accelerators.txt")
    lines = text.splitlines()
    chosen = next(l for l in lines if "NNAPI accelerator name:" in l)
    listed = next(l for l in lines if "NNAPI accelerators available:" in l)
    name = chosen.split("[")[1].rstrip("]")
    available = listed.split("[")[1].rstrip("]")
    old = chosen.replace("NNAPI accelerator name:", "nnapi accelerator name:") + f" (Available: {available})"
    log = parse_benchmark_log(text.replace(chosen, old).replace(listed + "\n", ""))
    assert log.params["nnapi accelerator name"] == name
    assert log.nnapi_accelerators == tuple(names(available)) and len(log.nnapi_accelerators) == 2
    bare = parse_benchmark_log(text.replace(chosen, chosen.replace("NNAPI accelerator", "nnapi accelerator"))
                               .replace(listed + "\n", ""))
    assert bare.params["nnapi accelerator name"] == name and bare.nnapi_accelerators == ()


@pytest.mark.parametrize("name", ["litert_logcat_cpu_derived.txt", "litert_build_docs_cpu_blazeface.txt"])
def test_a_litert_capture_cut_before_its_block_is_still_litert(name):
    lines = capture(name).splitlines()
    block = next(i for i, l in enumerate(lines) if "BENCHMARK RESULTS" in l and not l.startswith("#"))
    log = parse_benchmark_log("\n".join(lines[:block]) + "\n")
    assert log.tool == "litert" and not log.complete
    assert parse_benchmark_log(capture("tf2_gpu_full_delegation.txt")).tool == "tflite"


@pytest.mark.parametrize("level", ["E", "F"])
def test_error_and_fatal_lines_are_errors_litert_ones_too(level):
    # the derived LiteRT logcat's accelerator line (W) and a classic tflite line, at error levels
    lines = capture("litert_logcat_cpu_derived.txt").splitlines()
    accel = next(l for l in lines if "could not be loaded" in l)
    classic = next(l for l in capture(GPU_LOGCAT).splitlines() if " I tflite  : Loaded model" in l)
    text = "\n".join(lines).replace(accel, accel.replace(" W litert ", f" {level} litert "))
    text += "\n" + classic.replace(" I tflite ", f" {level} tflite ") + "\n"
    log = parse_benchmark_log(text)
    assert log.errors == (split_prefix(accel)[1], split_prefix(classic)[1])
    assert list(log.accelerator_failures.values()) == [split_prefix(accel)[1]]


def test_failure_words_in_an_info_line_are_no_error():
    # old builds print failures without a level, so those count; the same words at INFO level do not
    lines = capture("gpu_delegate_opencl_failure.txt").splitlines()
    errors = parse_benchmark_log("\n".join(lines)).errors
    assert errors  # "ERROR: Failed to build program executable ..." and its unprefixed followers
    informed = ["INFO: " + l.removeprefix("ERROR: ") if not l.startswith(("#", "INFO: ")) else l for l in lines]
    assert parse_benchmark_log("\n".join(informed)).errors == ()


def test_rejected_ops_keep_the_runtimes_kernel_count():
    ops = ["UNPACK: Operation is not supported.", "SPLIT_V: Operation is not supported."]
    replacing = "Replacing 30 out of 32 node(s) with delegate (TfLiteGpuDelegateV2) node, yielding 2 partitions."
    log = parse_benchmark_log(run_log("INFO: Created TensorFlow Lite delegate for GPU.",
                                      "ERROR: Following operations are not supported by GPU delegate:",
                                      *ops, "INFO: " + replacing))
    (gpu,) = log.delegates
    assert (gpu.requested, gpu.applied, gpu.fully) == ("GPU", True, False)
    assert gpu.delegate_kernels == int(replacing.split("yielding ")[1].split()[0])
    assert gpu.message == "GPU delegate cannot run: " + "; ".join(ops)


def test_benchmarking_failed_names_the_tools_line():
    lines = capture("gpu_delegate_opencl_failure.txt").splitlines()
    log = parse_benchmark_log("\n".join(lines + ["ERROR: Benchmarking failed."]) + "\n")
    assert log.error.startswith("benchmark_model reported 'Benchmarking failed.'. Last error printed: ")
