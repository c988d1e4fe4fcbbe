"""eval --device (issue 29): each delegate's outputs on the phone against the same model on the host.

Real adb client and server (29 and 36), fake phones on 127.0.0.1 whose benchmark_model stand-in runs the
model with LiteRT, honours --input_layer_value_files and --output_filepath, rounds through fp16 for a
``gpu=fp16`` delegate and writes NaN for a ``nan`` one (tests/support/fake_benchmark_model.py). Every
figure is checked against the same computation done here, directly, from the pulled output files.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tflite_deploy.cli import app
from tflite_deploy.envelope import items_of

runner = CliRunner()
N = 12


# ------------------------------------------------------------------------------ direct computations
def _digits(n: int) -> tuple[np.ndarray, np.ndarray]:
    from tflite_deploy.datasets import open_dataset

    ds = open_dataset("digits:test")
    return np.asarray(ds.take(n), np.float32), np.asarray(ds.labels[:n])


def _direct_host(model: Path, x: np.ndarray) -> np.ndarray:
    """The model on the host, sample by sample, with a plain LiteRT interpreter (float outputs)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(model))
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    rows = []
    for sample in x:
        a = sample[None]
        scale, zero = inp["quantization"]
        if scale:
            a = np.clip(np.round(a / scale + zero), -128, 127).astype(inp["dtype"])
        it.set_tensor(inp["index"], a.astype(inp["dtype"]))
        it.invoke()
        rows.append(_dequant(it.get_tensor(out["index"]), out))
    return np.concatenate(rows)


def _dequant(y: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero = detail["quantization"]
    return (y.astype(np.float32) - zero) * scale if scale else y.astype(np.float32)


def _pulled(folder: Path, serial: str, delegate: str, model: Path) -> np.ndarray:
    """A pulled output file read here: per sample, the one output's raw bytes."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(model))
    out = it.get_output_details()[0]
    raw = (folder / serial.replace(":", "_") / f"{delegate}.out").read_bytes()
    return _dequant(np.frombuffer(raw, out["dtype"]).reshape(-1, *out["shape"][1:]), out)


def _sqnr(ref: np.ndarray, var: np.ndarray) -> float:
    r, v = ref.astype(np.float64), var.astype(np.float64)
    return float(10 * np.log10(np.sum(r ** 2) / np.sum((v - r) ** 2)))


def _check_figures(item: dict, host: np.ndarray, phone: np.ndarray, labels: np.ndarray) -> None:
    m = item["metrics"]
    assert m["samples"] == len(host) == len(phone)
    assert m["nonfinite"] == int(np.sum(~np.isfinite(phone)))
    assert m["top1_agreement"] == pytest.approx(float(np.mean(host.argmax(1) == phone.argmax(1))))
    assert m["top1"] == pytest.approx(100 * float(np.mean(np.nan_to_num(phone, nan=-np.inf).argmax(1) == labels)))
    assert m["host_top1"] == pytest.approx(100 * float(np.mean(host.argmax(1) == labels)))
    lo, hi = m["top1_ci95"]
    assert lo <= m["top1"] <= hi
    if np.isfinite(phone).all():
        assert m["max_abs_error"] == pytest.approx(float(np.max(np.abs(phone.astype(np.float64) - host))))
        if m["max_abs_error"] > 0:
            assert m["sqnr_db"] == pytest.approx(_sqnr(host, phone))


# -------------------------------------------------------------------------------------------- tests
def test_xnnpack_agrees_gpu_drift_measured_nan_flagged(adb_device, digits_variants, benchmark_binary, tmp_path):
    adb_device.fake.env["FAKE_DELEGATES"] = "gpu=fp16,nnapi=nan"
    model = digits_variants["float32"].path
    keep = tmp_path / "outputs"
    r = runner.invoke(app, ["eval", str(model), "--data", "digits:test", "--device", adb_device.serial,
                            "--delegate", "xnnpack,gpu,nnapi", "--samples", str(N), "--benchmark-binary",
                            str(benchmark_binary), "--save-outputs", str(keep), "--json", "--no-store"])
    assert r.exit_code == 0, r.output
    xnn, gpu, nnapi = items_of(json.loads(r.stdout), "eval")
    assert [i["delegate"] for i in (xnn, gpu, nnapi)] == ["xnnpack", "gpu", "nnapi"]
    assert all(i["status"] == "ok" and i["target"] == f"adb:{adb_device.serial}" and i["kind"] == "eval"
               for i in (xnn, gpu, nnapi))
    x, labels = _digits(N)
    host = _direct_host(model, x)
    for item in (xnn, gpu, nnapi):
        _check_figures(item, host, _pulled(keep, adb_device.serial, item["delegate"], model), labels)
    # xnnpack: the same bytes as the host
    assert xnn["metrics"]["identical"] and xnn["metrics"]["max_abs_error"] == 0 and not xnn["metrics"]["diverged"]
    # gpu at fp16: a drift that is there, measured, and small enough not to be a divergence
    g = gpu["metrics"]
    assert 0 < g["max_abs_error"] < 0.05 and 30 < g["sqnr_db"] < 150 and not g["diverged"]
    # a delegate that writes NaN: flagged, with the count, in the record and its warnings
    n = nnapi["metrics"]
    assert n["diverged"] and n["nonfinite"] == N * 10
    assert any("NaN/Inf" in w for w in nnapi["warnings"])
    # the samples and outputs left the phone; the model stays (keyed by content, as bench leaves it)
    root = adb_device.sandbox / "data" / "local" / "tmp" / "tflite-deploy"
    assert not list((root / "eval").glob("*")) and list((root / "models").rglob("*.tflite"))
    # one push per input (all samples in one file) and one harness call per delegate, not one per sample
    assert sum("run_outputs.sh" in c and "--graph=" in c for c in adb_device.fake.shell_commands) == 3


def test_table_flags_divergence_and_int8_within_rounding(adb_device, digits_variants, digits_keras,
                                                         benchmark_binary, tmp_path):
    adb_device.fake.env["FAKE_DELEGATES"] = "nnapi=nan"
    int8 = digits_variants["int8"].path
    r = runner.invoke(app, ["eval", str(digits_keras), str(int8), "--data", "digits:test", "-D", adb_device.serial,
                            "--delegate", "xnnpack,nnapi", "--samples", str(N), "--benchmark-binary",
                            str(benchmark_binary), "--no-store"])
    assert r.exit_code == 0, r.output
    assert "agrees" in r.stdout and "diverged" in r.stdout and "SQNR vs float" in r.stdout
    assert "NaN/Inf" in r.stdout
    from tflite_deploy import evaluate_on_device

    keep = tmp_path / "kept"
    (res,) = evaluate_on_device(int8, "digits:test", [adb_device.serial], samples=N, reference=digits_keras,
                                benchmark_binary=benchmark_binary, save_outputs=keep)
    from ai_edge_litert.interpreter import Interpreter

    out = Interpreter(model_path=str(int8)).get_output_details()[0]
    step = out["quantization"][0] or 0.0
    assert res.ok and res.metrics["max_abs_error"] <= step  # exactly, or within one int8 step
    # against the float reference: the Keras model run here, directly, and the pulled file
    import tf_keras

    x, labels = _digits(N)
    ref = np.asarray(tf_keras.models.load_model(digits_keras).predict(x, verbose=0), np.float64)
    phone = _pulled(keep, adb_device.serial, "xnnpack", int8)
    vs = res.metrics["vs_reference"]
    assert vs["sqnr_db"] == pytest.approx(_sqnr(ref, phone), rel=1e-4) and vs["sqnr_db"] > 10
    assert vs["max_abs_error"] == pytest.approx(float(np.max(np.abs(phone - ref))), rel=1e-4, abs=1e-6)
    assert vs["label_agreement"] == pytest.approx(float(np.mean(ref.argmax(1) == phone.argmax(1))))
    _check_figures(res.to_dict(), _direct_host(int8, x), phone, labels)


def test_failing_delegate_and_frozen_phone_do_not_lose_the_others(adb_server, fake_devices, digits_variants,
                                                                  benchmark_binary, monkeypatch):
    from tflite_deploy.datasets import open_dataset
    from tflite_deploy.evaluation.device import DeviceEvalOptions, eval_devices

    monkeypatch.setenv("TFLITE_DEPLOY_LIVENESS", "0.5,2,2")  # a frozen phone is found within seconds
    good, frozen = fake_devices(), fake_devices()
    frozen.freeze_on = "run_outputs.sh"
    serials = [adb_server.connect(good), adb_server.connect(frozen)]
    opts = DeviceEvalOptions(delegates=("xnnpack", "gpu"), samples=4, timeout=120)
    results = eval_devices(digits_variants["float32"].path, open_dataset("digits:test"),
                           serials + ["adb:127.0.0.1:1"], benchmark_binary, opts)  # and one not plugged in
    by = {(r.target.removeprefix("adb:"), r.delegate): r for r in results}
    assert by[(serials[0], "xnnpack")].ok and by[(serials[0], "xnnpack")].metrics["identical"]
    gpu = by[(serials[0], "gpu")]  # this phone has no GPU: unavailable, with the tool's reason
    assert gpu.status == "unavailable" and "libOpenCL" in gpu.error
    lost = [by[(serials[1], d)] for d in ("xnnpack", "gpu")]
    assert all(r.status == "failed" and r.fault for r in lost), [(r.status, r.fault, r.error) for r in lost]
    unplugged = [r for r in results if r.target == "adb:127.0.0.1:1"]
    assert [r.status for r in unplugged] == ["failed", "failed"] and "127.0.0.1:1" in unplugged[0].error


def test_phone_that_dies_mid_loop_is_a_failed_result_not_partial_figures(adb_server, fake_devices, digits_variants,
                                                                          benchmark_binary):
    """adb 29 exits 0 with the output cut off when a device dies mid-command; adb 36 exits 255: both fail."""
    import threading
    import time

    from tflite_deploy.datasets import open_dataset
    from tflite_deploy.evaluation.device import DeviceEvalOptions, eval_devices

    doomed = fake_devices()
    serial = adb_server.connect(doomed)

    def kill_soon():
        deadline = time.time() + 60
        while time.time() < deadline and not any("run_outputs.sh" in c and "--graph=" in c
                                                 for c in doomed.shell_commands):
            time.sleep(0.05)
        time.sleep(0.5)  # a sample or two in: the loop is running
        doomed.kill()

    threading.Thread(target=kill_soon, daemon=True).start()
    opts = DeviceEvalOptions(delegates=("xnnpack", "cpu"), samples=40, timeout=120)
    started = time.time()
    results = eval_devices(digits_variants["float32"].path, open_dataset("digits:test"), [serial], benchmark_binary,
                           opts)
    assert time.time() - started < 100
    assert [r.status for r in results] == ["failed", "failed"], [(r.status, r.error) for r in results]
    assert not results[0].metrics and ("cut off" in results[0].error or serial in results[0].error)
    assert "lost earlier" in results[1].error or results[1].fault


def test_bad_input_names_the_parameter_and_the_flag(digits_variants, tmp_path):
    from tflite_deploy import evaluate_on_device
    from tflite_deploy.errors import UserError

    model = str(digits_variants["float32"].path)
    with pytest.raises(UserError) as e:
        evaluate_on_device(model, "digits:test", ["emulator-5554"], samples=0)
    assert e.value.param == "samples"
    with pytest.raises(UserError, match="npu"):
        evaluate_on_device(model, "digits:test", ["emulator-5554"], delegates=["npu"])
    r = runner.invoke(app, ["eval", model, "-d", "digits:test", "-D", "emulator-5554", "--samples", "0"])
    assert r.exit_code != 0 and "--samples" in r.stderr and "Traceback" not in r.output
    litert = tmp_path / "litert_benchmark_model"  # an ELF holding LiteRT's results-block text
    litert.write_bytes(b"\x7fELF" + b"\0" * 60 + b"BENCHMARK RESULTS")
    with pytest.raises(UserError, match="LiteRT's benchmark_model") as e:
        evaluate_on_device(model, "digits:test", ["emulator-5554"], benchmark_binary=litert)
    assert e.value.param == "benchmark_binary"
    r = runner.invoke(app, ["eval", str(tmp_path / "none.tflite"), "-d", "digits:test", "-D", "x",
                            "--benchmark-binary", str(tmp_path / "bm")])
    assert r.exit_code != 0 and "none.tflite" in r.stderr


def test_harness_loop_under_posix_sh(tmp_path, benchmark_binary, digits_variants):
    """The phone-side loop itself, under dash: samples cut from one file per input, outputs appended in order."""
    from tflite_deploy.evaluation.device import SCRIPT

    model = digits_variants["float32"].path
    x, _ = _digits(3)
    (tmp_path / "input0.all").write_bytes(x.reshape(3, 1, 8, 8, 1).astype(np.float32).tobytes())
    out = tmp_path / "all.out"
    from ai_edge_litert.interpreter import Interpreter

    name = Interpreter(model_path=str(model)).get_input_details()[0]["name"]
    p = subprocess.run(["sh", str(SCRIPT), str(tmp_path), "3", str(x[0].nbytes), str(out), str(benchmark_binary),
                        f"--graph={model}", "--num_runs=1", "--warmup_runs=0", "--warmup_min_secs=0",
                        f"--input_layer={name}", "--input_layer_shape=1,8,8,1",
                        f"--input_layer_value_files={name.replace(':', '::')}:in0.bin"], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "==== tflite-deploy done=3 ====" in p.stdout and "==== tflite-deploy end ====" in p.stdout
    got = np.frombuffer(out.read_bytes(), np.float32).reshape(3, 10)
    np.testing.assert_array_equal(got, _direct_host(model, x))
    # a binary that writes no output file (older than TF 2.11) stops the loop with the reason
    old = tmp_path / "old_benchmark_model"
    old.write_text("#!/bin/sh\necho 'INFO: Inference timings in us: Init: 1'\n")
    old.chmod(0o755)
    p = subprocess.run(["sh", str(SCRIPT), str(tmp_path), "3", str(x[0].nbytes), str(out), str(old)],
                       capture_output=True, text=True)
    assert p.returncode == 3 and "needs TFLite 2.11 or later" in p.stdout and "done=0" in p.stdout


# ------------------------------------------------------------- several inputs, token ids, two outputs
def _case(root: Path, name: str, build, arrays: dict, recipe: str) -> dict:
    from tflite_deploy.conversion.run import convert
    from tflite_deploy.recipes import PRESETS

    model = build(root / f"{name}.keras")
    data = root / f"{name}.npz"
    np.savez(data, **arrays)
    (art,) = convert(model, [PRESETS[recipe]], str(data), root / "out")
    assert not art.failed, art.reason
    return {"path": art.path, "data": data, "arrays": arrays}


@pytest.fixture(scope="session")
def bert_float(tmp_path_factory) -> dict:
    from tests.support import any_models as am

    return _case(tmp_path_factory.mktemp("bert-device"), "bert", am.bert_like, am.bert_data(10), "float32")


@pytest.fixture(scope="session")
def two_out_int8(tmp_path_factory) -> dict:
    from tests.support import any_models as am

    return _case(tmp_path_factory.mktemp("two-device"), "two", am.two_in_two_out, am.two_in_data(40), "int8")


@pytest.mark.slow
def test_token_id_inputs_and_two_outputs_on_the_phone(adb_device, bert_float, two_out_int8, benchmark_binary,
                                                       tmp_path):
    from tests.support import any_models as am
    from tflite_deploy import evaluate_on_device

    adb_device.fake.env["FAKE_DELEGATES"] = "gpu=fp16"
    keep = tmp_path / "kept"
    xnn, gpu = evaluate_on_device(bert_float["path"], str(bert_float["data"]), [adb_device.serial],
                                  delegates=["xnnpack", "gpu"], samples=8, benchmark_binary=benchmark_binary,
                                  save_outputs=keep)
    arrays = {k: v[:8] for k, v in bert_float["arrays"].items() if k != "y"}
    (host,) = am.direct_outputs(bert_float["path"], arrays).values()
    labels = bert_float["arrays"]["y"][:8]
    for r in (xnn, gpu):  # three int32 inputs went through value files, sample by sample
        assert r.ok, r.error
        _check_figures(r.to_dict(), host, _pulled(keep, adb_device.serial, r.delegate, bert_float["path"]), labels)
    assert xnn.metrics["identical"] and not xnn.metrics["diverged"]
    # the attention mask's -1e9 constant overflows fp16 to -inf, and -inf * 0 is NaN: the real GPU-fp16 failure
    # of transformer models, caught here as a divergence with its count
    assert gpu.metrics["diverged"] and gpu.metrics["nonfinite"] > 0 and any("NaN" in w for w in gpu.warnings)
    (res,) = evaluate_on_device(two_out_int8["path"], str(two_out_int8["data"]), [adb_device.serial], samples=6,
                                benchmark_binary=benchmark_binary)
    assert res.ok, res.error
    direct = am.direct_outputs(two_out_int8["path"], {k: v[:6] for k, v in two_out_int8["arrays"].items() if k != "y"})
    assert set(res.metrics["outputs"]) == set(direct) and len(direct) == 2
    assert all(m["max_abs_error"] == 0 for m in res.metrics["outputs"].values())  # int8 in, int8 out: the same bytes


# ------------------------------------------------------------------------- store, compare, report
def test_stored_compare_flags_a_dropped_delegate_and_report_grid(adb_device, digits_variants, benchmark_binary,
                                                                  tmp_path):
    from tflite_deploy import compare, evaluate_on_device, history, report

    db = tmp_path / "phone.db"
    model = digits_variants["float32"].path
    adb_device.fake.env["FAKE_DELEGATES"] = "gpu=exact"  # the baseline: a GPU that agrees
    events = []
    first = evaluate_on_device(model, "digits:test", [adb_device.serial], delegates=["xnnpack", "gpu"], samples=N,
                               benchmark_binary=benchmark_binary, store=db, tag="phones", progress=events.append)
    assert [(e.done, e.total) for e in events] == [(0, 2), (1, 2), (2, 2)] and all(e.stage == "eval on device"
                                                                                   for e in events)
    assert [r.delegate for r in first] == ["xnnpack", "gpu"] and all(r.metrics["identical"] for r in first)
    adb_device.fake.env["FAKE_DELEGATES"] = "gpu=nan"  # a driver update that breaks it
    evaluate_on_device(model, "digits:test", [adb_device.serial], delegates=["xnnpack", "gpu"], samples=N,
                       benchmark_binary=benchmark_binary, store=db, tag="phones")
    rows = history(db, kind="eval", target=f"adb:{adb_device.serial}", delegate="gpu").rows
    assert len(rows) == 2 and all(r["kind"] == "eval" for r in rows)
    cmp = compare("latest~1", "latest", store=db, confirm=False)
    by = {c.key[3]: c for c in cmp.cells}
    assert set(by) == {"xnnpack", "gpu"} and all(c.key[2] == f"adb:{adb_device.serial}" for c in cmp.cells)
    assert by["gpu"].regressed == ["agreement dropped"] and by["gpu"].verdict == "agreement dropped"
    assert by["xnnpack"].regressed == [] and by["xnnpack"].verdict == "no change"
    assert [c.key for c in cmp.regressions] == [by["gpu"].key]
    assert by["gpu"].to_dict()["base_agreement"] == 1.0 and by["gpu"].to_dict()["new_diverged"] is True
    # the report's phone x delegate grid: the latest run, gpu diverged
    files = report(["phones"], tmp_path / "r.html", markdown=tmp_path / "md", store=db)
    html = Path(files.html).read_text()
    assert 'id="agreement-grid"' in html and f"adb:{adb_device.serial}" in html
    grid = html.split('id="agreement-grid"')[1].split("</table>")[0]
    assert grid.count('data-diverged="true"') == 1 and grid.count('data-diverged="false"') == 1
    assert f"{N * 10} NaN/Inf (diverged)" in grid and "100.0%" in grid
    md = (tmp_path / "md" / "report.md").read_text()
    assert "top-1 agreement with the host" in md and "(diverged)**" in md


def test_agreement_verdict_rules():
    from tflite_deploy.reporting.verdict import agreement_verdict

    assert agreement_verdict(1.0, 100, 1.0, 100) == "no change"
    assert agreement_verdict(1.0, 100, 0.99, 100) == "no change"  # one sample in 100: within chance
    assert agreement_verdict(1.0, 100, 0.95, 100) == "dropped"  # five: beyond it
    assert agreement_verdict(0.95, 100, 0.93, 100) == "no change"  # within the interval of two proportions
    assert agreement_verdict(0.99, 400, 0.90, 400) == "dropped"
    assert agreement_verdict(0.90, 400, 0.99, 400) == "rose"
    assert agreement_verdict(1.0, 100, 1.0, 100, base_bad=False, new_bad=True) == "dropped"
    assert agreement_verdict(None, None, 1.0, 100) == "not comparable"


# ------------------------------------------------------------------------------------------- farm
def test_farm_plan_asks_for_accuracy_on_the_phone_per_device_cell(adb_device, digits_keras, digits_variants,
                                                                    benchmark_binary, tmp_path):
    from dataclasses import replace

    from tflite_deploy.farm.cells import expand
    from tflite_deploy.farm.plan import PlanError, load_plan
    from tflite_deploy.farm.run import CellExecutor

    adb_device.fake.env["FAKE_DELEGATES"] = "gpu=fp16"
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"""models: {{digits: {{path: {digits_keras}, dataset: 'digits:test'}}}}
recipes: [float32]
targets: [host, 'adb:{adb_device.serial}']
delegates: [xnnpack, gpu]
runs: 3
warmup: 1
cache: {tmp_path / 'cache'}
bench:
  accuracy: {{samples: 6, min_sqnr_db: 100}}
""")
    p = load_plan(plan)
    assert dict(dict(p.bench)["accuracy"]) == {"samples": 6, "min_sqnr_db": 100.0}
    cells = {(c.target, c.delegate): c for c in expand(p, p.targets, versions={}).bench}
    run = CellExecutor(benchmark_tool=str(benchmark_binary), min_seconds=0)
    art = digits_variants["float32"].path
    host = run(replace(cells[("host", "xnnpack")], artifact=art))
    assert [r.kind for r in host] == ["bench"]  # accuracy on the phone is a device cell's
    gpu = run(replace(cells[(f"adb:{adb_device.serial}", "gpu")], artifact=art))
    assert [r.kind for r in gpu] == ["bench", "eval"]
    ev = gpu[1]
    assert ev.settings["on_device"] and ev.delegate == "gpu" and ev.recipe == "float32" and ev.metrics["samples"] == 6
    # the plan's own threshold: fp16 drift (about 77 dB here) is below 100 dB, so this delegate is flagged
    assert ev.metrics["diverged"] and "SQNR" in ev.metrics["divergence"][0] and ev.settings["min_sqnr_db"] == 100
    plan.write_text(plan.read_text().replace("samples: 6", "samples: 0").replace("min_sqnr_db: 100", "colour: red"))
    with pytest.raises(PlanError) as e:
        load_plan(plan)
    assert "bench.accuracy.samples" in str(e.value) and "colour" in str(e.value)
