"""bench --device end to end: real adb client and server (29 and 36), fake devices on 127.0.0.1,
a stand-in benchmark_model that really runs the model and prints the tool's line formats."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tflite_deploy.benchmark.options import BenchOptions
from tflite_deploy.benchmark.device import bench_devices, split_harness_output
from tflite_deploy.cli import app
from tflite_deploy.envelope import items_of
from tests.support.fake_adbd import DEFAULT_PROPS

runner = CliRunner()


def test_xnnpack_parsed_and_gpu_unavailable_without_failing_the_run(adb_device, digits_variants,
                                                                      benchmark_binary):
    model = digits_variants["int8"].path
    r = runner.invoke(app, ["bench", str(model), "--device", adb_device.serial, "--delegate", "xnnpack,gpu",
                            "--runs", "20", "--benchmark-binary", str(benchmark_binary), "--json"])
    assert r.exit_code == 0, r.output
    xnn, gpu = items_of(json.loads(r.stdout), "bench")
    assert xnn["status"] == "ok" and xnn["delegate"] == "xnnpack" and xnn["target"] == f"adb:{adb_device.serial}"
    assert xnn["latency"]["count"] == 20 and 0 < xnn["latency"]["min_ms"] <= xnn["latency"]["mean_ms"]
    assert xnn["init_ms"] > 0 and xnn["peak_memory_mb"] == 12.5
    assert xnn["device"]["model"] == "Pixel 7" and "arm64-v8a" in xnn["device"]["abis"]
    assert "uptime" in xnn["device"]["state_before"]
    assert gpu["status"] == "unavailable" and "GPU delegate not available" in gpu["error"]
    assert "libOpenCL.so" in gpu["raw_log"]
    # the pushed files live under the tool's folder on the device
    pushed = adb_device.sandbox / "data" / "local" / "tmp" / "tflite-deploy"
    assert (pushed / "bin" / "benchmark_model").is_file() and (pushed / "run_benchmark.sh").is_file()


def test_table_output_and_hostile_model_name(adb_device, digits_variants, benchmark_binary, tmp_path):
    canary = adb_device.sandbox / "data" / "local" / "tmp" / "x"
    canary.mkdir(parents=True)
    (canary / "keep").write_text("still here")
    hostile = tmp_path / "a b;rm -rf x.tflite"
    shutil.copy(digits_variants["float32"].path, hostile)
    r = runner.invoke(app, ["bench", str(hostile), "-D", f"adb:{adb_device.serial}", "--runs", "10",
                            "--benchmark-binary", str(benchmark_binary)])
    assert r.exit_code == 0, r.output
    assert "Time (mean ± σ)" in r.stdout and "a b;rm -rf x.tflite" in r.stdout
    assert (canary / "keep").read_text() == "still here"


def test_device_killed_mid_run_is_reported_and_other_device_finishes(adb_server, fake_devices, digits_variants,
                                                                     benchmark_binary):
    good, doomed = fake_devices(), fake_devices()
    serials = [adb_server.connect(good), adb_server.connect(doomed)]
    # runs with min_secs >= 30 sleep in the fake tool: kill the doomed device while it sleeps
    settings = BenchOptions(delegate=("xnnpack",), runs=5, min_seconds=30, timeout=60)
    fast = BenchOptions(delegate=("xnnpack",), runs=5, min_seconds=0)

    def kill_soon():
        deadline = time.time() + 30
        while time.time() < deadline and not any("benchmark_model" in c for c in doomed.shell_commands):
            time.sleep(0.1)
        doomed.kill()  # the run has started and sleeps for 30 s: this is mid-run

    threading.Thread(target=kill_soon, daemon=True).start()
    model = digits_variants["int8"].path
    started = time.time()
    doomed_results = bench_devices([model], [serials[1]], benchmark_binary, settings)
    good_results = bench_devices([model, digits_variants["float32"].path], [serials[0]], benchmark_binary, fast)
    assert time.time() - started < 60
    (dead,) = doomed_results
    assert dead.status == "failed" and serials[1] in dead.error
    assert all(r.ok for r in good_results) and len(good_results) == 2


def test_two_devices_in_parallel_one_unreachable(adb_server, fake_devices, digits_variants, benchmark_binary):
    ok_dev = fake_devices()
    serial = adb_server.connect(ok_dev)
    results = bench_devices([digits_variants["int8"].path], [serial, "adb:127.0.0.1:1"], benchmark_binary,
                            BenchOptions(runs=5, min_seconds=0))
    assert [r.status for r in results] == ["ok", "failed"]
    assert "127.0.0.1:1" in results[1].error


def test_devices_command_lists_facts(adb_device):
    r = runner.invoke(app, ["devices", "--json"])
    assert r.exit_code == 0, r.output
    (d,) = [x for x in items_of(json.loads(r.stdout), "devices") if x["serial"] == adb_device.serial]
    p = DEFAULT_PROPS  # what the fake device's getprop answers
    assert {k: v for k, v in d.items() if k not in ("transport_id", "hint")} == {
        "serial": adb_device.serial, "state": "device", "model": p["ro.product.model"],
        "manufacturer": p["ro.product.manufacturer"], "product": p["ro.product.name"],
        "device": p["ro.product.device"], "board": p["ro.board.platform"], "soc": p["ro.soc.model"],
        "soc_manufacturer": p["ro.soc.manufacturer"], "abis": p["ro.product.cpu.abilist"].split(","),
        "android_release": p["ro.build.version.release"], "sdk": int(p["ro.build.version.sdk"]),
        "is_emulator": False}


def test_missing_binary_and_unknown_delegate(digits_variants, tmp_path):
    model = str(digits_variants["int8"].path)
    r = runner.invoke(app, ["bench", model, "-D", "emulator-5554", "--benchmark-binary", str(tmp_path / "nope")])
    assert r.exit_code != 0 and "nope" in r.stderr
    exe = tmp_path / "bm"
    exe.write_text("#!/bin/sh\n")
    r = runner.invoke(app, ["bench", model, "-D", "emulator-5554", "--benchmark-binary", str(exe),
                            "--delegate", "tpu"])
    assert r.exit_code != 0 and "Unknown device delegate 'tpu'" in r.stderr


def test_harness_script_runs_under_posix_sh(tmp_path):
    """The device-side script itself, under dash: one block, exit code passed through."""
    from tflite_deploy.benchmark.device import HARNESS

    tool = tmp_path / "tool"
    tool.write_text("#!/bin/sh\necho 'INFO: hello'\necho 'oops' >&2\nexit 3\n")
    tool.chmod(0o755)
    p = subprocess.run(["sh", str(HARNESS), "run", str(tool), "--graph=x"], capture_output=True, text=True)
    assert p.returncode == 3
    parts = split_harness_output(p.stdout)
    assert parts["benchmark"] == "INFO: hello\noops" and parts["exit"] == "3" and "end" in parts
    assert "uptime" in parts["state-before"]


def test_bench_device_does_not_import_tensorflow(adb_device, digits_variants, benchmark_binary, tmp_path):
    """A whole device run, measured on the fake device, without TensorFlow in the process."""
    code = ("import sys\nfrom tflite_deploy.cli import app\ntry:\n    app(['bench', %r, '-D', %r, '--runs', '5', "
            "'--min-seconds', '0', '--benchmark-binary', %r, '--json'])\nexcept SystemExit:\n    pass\n"
            "print('TF' if 'tensorflow' in sys.modules else 'NO-TF', file=sys.stderr)"
            % (str(digits_variants["int8"].path), adb_device.serial, str(benchmark_binary)))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TFLITE_DEPLOY_STORE": str(tmp_path / "results.db"),
           **{k: v for k, v in os.environ.items() if k.startswith(("ANDROID_ADB_SERVER", "ADBUTILS_ADB_PATH"))}}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    (res,) = items_of(json.loads(p.stdout), "bench")
    assert res["status"] == "ok" and res["latency"]["count"] == 5, p.stderr
    assert p.stderr.strip().endswith("NO-TF"), p.stderr


def test_remote_adb_server_option(adb_device, digits_variants, benchmark_binary, monkeypatch):
    """--adb-server HOST:PORT turns plain serials into adb://HOST:PORT/SERIAL targets."""
    port = adb_device.server.port
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", "1")  # the local default would be wrong
    r = runner.invoke(app, ["bench", str(digits_variants["int8"].path), "-D", adb_device.serial,
                            "--adb-server", f"127.0.0.1:{port}", "--runs", "5", "--min-seconds", "0",
                            "--benchmark-binary", str(benchmark_binary), "--json"])
    assert r.exit_code == 0, r.output
    (res,) = items_of(json.loads(r.stdout), "bench")
    assert res["status"] == "ok" and res["target"] == f"adb://127.0.0.1:{port}/{adb_device.serial}"


def test_parse_log_command(tmp_path):
    logs = Path(__file__).parent / "data" / "benchmark_logs"
    r = runner.invoke(app, ["parse-log", str(logs / "tf2_cpu_memory_delta.txt"), "--json"])
    assert r.exit_code == 0, r.output
    (res,) = items_of(json.loads(r.stdout), "parse-log")
    assert res["status"] == "ok" and res["settings"]["threads"] == 4
    assert res["latency"]["count"] == 2 and res["latency"]["mean_ms"] == pytest.approx(6.4795)


def test_charging_or_hot_device_is_flagged():
    from tflite_deploy.benchmark.device import hygiene_warnings, parse_state

    before = parse_state("cpu.cpu0.governor=schedutil\nbattery.level=81\nbattery.status=Charging\n")
    after = parse_state("thermal.cpu-1-0-usr.millicelsius=47300\nthermal.battery.millicelsius=33000\n"
                        "battery.status=Charging\n")
    warnings = hygiene_warnings(before, after)
    assert any("charging" in w for w in warnings) and any("47 °C" in w for w in warnings)
    cool = parse_state("thermal.cpu.millicelsius=38000\nbattery.status=Discharging\n")
    assert hygiene_warnings(cool, cool) == []


def test_op_profiling_and_cleanup(adb_device, digits_variants, benchmark_binary):
    """(Pinning and cooldown are measured in test_device_pinning_cooldown_and_options.py: fake cpufreq, run timestamps.)"""
    pushed = adb_device.sandbox / "data" / "local" / "tmp" / "tflite-deploy"
    settings = BenchOptions(delegate=("xnnpack", "cpu"), runs=5, min_seconds=0, op_profiling=True,
                            cleanup=True)
    results = bench_devices([digits_variants["int8"].path], [adb_device.serial], benchmark_binary, settings)
    assert [r.status for r in results] == ["ok", "ok"], [r.error for r in results]
    table = results[0].metrics["op_profile"][0]
    assert table["title"] == "Run Order" and "avg_ms" in table["columns"]
    assert {row["node_type"] for row in table["rows"]} >= {"CONV_2D", "FULLY_CONNECTED"}
    assert [row["node_type"] for row in table["rows"]].count("CONV_2D") == 2  # conv1 and pwconv, one row each
    assert not (pushed / "models").exists() and (pushed / "bin" / "benchmark_model").is_file()
