"""eval (accuracy, paired drop interval, agreement, per-layer) and host bench, on the real digits CNN."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from tflite_deploy.cli import app
from tflite_deploy.errors import DatasetError, UserError
from tflite_deploy.evaluation.layer_errors import per_layer_errors
from tflite_deploy.evaluation.run import agreement, evaluate, paired_bootstrap
from tflite_deploy.envelope import items_of

runner = CliRunner()


def test_paired_bootstrap_on_known_differences():
    ref = np.ones(1000, bool)
    var = ref.copy()
    var[:30] = False  # the variant loses exactly 3 points
    drop, lo, hi = paired_bootstrap(ref, var)
    assert drop == pytest.approx(3.0)
    assert 1.5 < lo < 3.0 < hi < 4.5
    same = paired_bootstrap(ref, ref)
    assert same == (0.0, 0.0, 0.0)


def test_agreement_metrics():
    ref = np.array([[1.0, 0.0], [0.0, 2.0]])
    assert agreement(ref, ref)["sqnr_db"] == float("inf")
    m = agreement(ref, ref + 0.1)
    assert m["mse"] == pytest.approx(0.01) and m["max_abs_error"] == pytest.approx(0.1)
    assert m["sqnr_db"] == pytest.approx(10 * np.log10(5 / 0.04))
    assert m["label_agreement"] == 1.0
    assert agreement(ref, ref[:, ::-1])["label_agreement"] == 0.0


def test_int8_drop_is_below_one_point_with_its_interval(digits_keras, digits_variants):
    paths = [digits_variants[r].path for r in ("float32", "int8", "int8-io", "dynamic", "float16", "int16x8")]
    ref, *variants = evaluate(digits_keras, paths, "digits:test")
    assert ref.metrics["top1"] > 95 and ref.metrics["top1_ci95"][0] < ref.metrics["top1"]
    by = {r.recipe: r.metrics for r in variants}
    for name in ("int8", "int8-io"):
        m = by[name]
        assert m["top1_drop"] < 1.0
        lo, hi = m["top1_drop_ci95"]
        assert lo <= m["top1_drop"] <= hi
        assert m["sqnr_db"] > 25 and m["label_agreement"] > 0.98
    # float32 .tflite is the same network: agreement is (numerically) exact
    assert by["float32"]["sqnr_db"] > 80 and by["float32"]["top1_drop"] == 0
    # quantization modes are told apart by output agreement even where accuracy ties
    assert by["float16"]["sqnr_db"] > by["int16x8"]["sqnr_db"] > by["int8"]["sqnr_db"]
    # int8 I/O is (de)quantized correctly: same outputs as float I/O int8
    assert by["int8-io"]["sqnr_db"] == pytest.approx(by["int8"]["sqnr_db"], abs=3)


def test_eval_cli_json_and_table(digits_keras, digits_variants):
    args = ["eval", str(digits_keras), str(digits_variants["int8"].path), "-d", "digits:test", "--limit", "200"]
    r = runner.invoke(app, args + ["--json"])
    assert r.exit_code == 0, r.output
    items = items_of(json.loads(r.stdout), "eval")
    assert items[0]["metrics"]["role"] == "reference"
    assert items[1]["settings"]["samples"] == 200 and items[1]["kind"] == "eval"
    table = runner.invoke(app, args)
    assert table.exit_code == 0 and "drop" in table.stdout and "int8" in table.stdout


def test_per_layer_errors_worst_first(digits_variants):
    layers = per_layer_errors(digits_variants["int8"].path, "digits:test", samples=32)
    names = {e.op_name for e in layers}
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"} <= names
    ratios = [e.rmse_over_scale for e in layers]
    assert ratios == sorted(ratios, reverse=True)
    assert 0.1 < ratios[0] < 2.0  # near rounding noise (~0.29) for a well-calibrated model
    with pytest.raises(UserError, match="int8 full-integer"):
        per_layer_errors(digits_variants["dynamic"].path, "digits:test")


def test_labels_that_do_not_match_the_classes(digits_keras, digits_variants, tmp_path):
    x = np.random.default_rng(0).random((30, 8, 8, 1)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(30) % 12)  # 12 classes, model has 10
    with pytest.raises(DatasetError, match="12 classes.*outputs 10 scores"):
        evaluate(digits_variants["float32"].path, [digits_variants["int8"].path], str(tmp_path / "d.npz"))


def test_tflite_input_shape_does_not_match_data(digits_variants):
    # the input is named, with its shape and dtype (issue 27)
    with pytest.raises(DatasetError, match=r"shape \(224, 224, 3\) for input 'image' \(shape \(\?, 8, 8, 1\), float32\)"):
        evaluate(digits_variants["float32"].path, [digits_variants["int8"].path], "photos")
    r = runner.invoke(app, ["eval", str(digits_variants["float32"].path), str(digits_variants["int8"].path),
                            "-d", "photos"])
    assert r.exit_code != 0 and "224, 224, 3" in r.stderr and "Traceback" not in r.output


def test_bench_two_files_interleaved_json_and_csv(digits_variants, tmp_path):
    a, b = str(digits_variants["float32"].path), str(digits_variants["int16x8"].path)
    r = runner.invoke(app, ["bench", a, b, "--runs", "30", "--warmup", "3", "--min-seconds", "0",
                            "--json", "--csv", str(tmp_path / "b.csv")])
    assert r.exit_code == 0, r.output
    res = items_of(json.loads(r.stdout), "bench")
    assert [x["artifact"] for x in res] == [a, b]
    for x in res:
        lat = x["latency"]
        assert lat["count"] == 30 and len(lat["samples_ms"]) == 30
        samples = np.array(lat["samples_ms"])
        for q in (50, 90, 99):
            assert lat[f"p{q}_ms"] == pytest.approx(np.percentile(samples, q))
        assert (lat["min_ms"], lat["max_ms"]) == (samples.min(), samples.max())
        assert lat["mean_ms"] == pytest.approx(samples.mean()) and lat["std_ms"] == pytest.approx(samples.std(ddof=1))
        assert x["init_ms"] > 0 and x["first_ms"] > 0 and x["warmup"]["count"] == 3
        assert x["peak_memory_mb"] > 0 and x["settings"]["interleaved_with"] == 2
        # the harness's own cost per timed call is tiny next to the model
        assert x["settings"]["timer_overhead_ms"] < 0.1 * lat["p50_ms"]
    # int16x8 has no XNNPACK kernels: coverage says so, and it is far slower than float32
    assert res[1]["coverage"]["applied"] is False and res[0]["coverage"]["applied"] is True
    assert res[1]["latency"]["p50_ms"] > 3 * res[0]["latency"]["p50_ms"]
    rows = list(csv.DictReader(open(tmp_path / "b.csv")))
    assert [row["recipe"] for row in rows] == ["float32", "int16x8"] and float(rows[0]["p50_ms"]) > 0


def test_bench_table_shows_ratios_and_reference_kernels(digits_variants):
    a, b = str(digits_variants["float32"].path), str(digits_variants["int8"].path)
    r = runner.invoke(app, ["bench", a, b, "--runs", "20", "--min-seconds", "0", "--delegate", "reference"])
    assert r.exit_code == 0, r.output
    assert "Time (mean ± σ)" in r.stdout and "× vs first" in r.stdout and "reference" in r.stdout


def test_bench_bad_input(tmp_path, digits_variants):
    r = runner.invoke(app, ["bench", str(digits_variants["int8"].path), "--delegate", "tpu"])
    assert r.exit_code != 0 and "Unknown host delegate 'tpu'" in r.stderr
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"TFL3" + b"\0" * 50)
    r = runner.invoke(app, ["bench", str(bad)])
    assert r.exit_code != 0 and "bad.tflite" in r.stderr and "Traceback" not in r.output
    r = runner.invoke(app, ["bench", str(tmp_path / "missing.tflite")])
    assert r.exit_code != 0 and "missing.tflite" in r.stderr


def test_bench_does_not_import_tensorflow(digits_variants):
    code = ("import sys\nfrom tflite_deploy.cli import app\ntry:\n    app(['bench', %r, '--runs', '5', "
            "'--min-seconds', '0', '--json'])\nexcept SystemExit:\n    pass\n"
            "print('TF' if 'tensorflow' in sys.modules else 'NO-TF', file=sys.stderr)"
            % str(digits_variants["int8"].path))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert items_of(json.loads(p.stdout), "bench")[0]["status"] == "ok"
    assert p.stderr.strip().endswith("NO-TF")


def test_a_variant_slower_than_float_is_flagged(digits_variants):
    """On x86, dynamic-range is often slower than float32 (MobileNetV2: ~2x); the report must say so, and
    so for any other variant slower than float32 by p50 beyond noise."""
    from tflite_deploy.benchmark.host import _flag_slower_than_float
    from tflite_deploy.result import LatencyStats, Result

    def res(recipe: str, p50: float, low: float | None = None) -> Result:
        return Result(kind="bench", artifact=str(digits_variants[recipe].path), recipe=recipe,
                      latency=LatencyStats(count=10, p50_ms=p50, min_ms=low))

    flagged = _flag_slower_than_float([res("float32", 8.0), res("dynamic", 15.2), res("int8", 3.7)])
    assert flagged[0].warnings == () and flagged[2].warnings == ()
    assert "dynamic model is 1.9x SLOWER than float32" in flagged[1].warnings[0]
    assert "hybrid kernels" in flagged[1].warnings[0]
    assert _flag_slower_than_float([res("float32", 8.0), res("dynamic", 7.0)])[1].warnings == ()
    slow_int8 = _flag_slower_than_float([res("float32", 8.0, 7.5), res("int8", 12.0, 11.0)])[1]
    assert "int8 model is 1.5x SLOWER than float32" in slow_int8.warnings[0]
    # within noise: p50 above, but its fastest run beats float32's p50
    assert _flag_slower_than_float([res("float32", 8.0, 7.5), res("int8", 9.2, 7.0)])[1].warnings == ()
    assert "int16x8 has no XNNPACK kernels" in _flag_slower_than_float(
        [res("float32", 8.0), res("int16x8", 80.0, 75.0)])[1].warnings[0]
