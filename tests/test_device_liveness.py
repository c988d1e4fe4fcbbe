"""A frozen phone (adb transport open, nothing answered) must not hang a device benchmark: a liveness
probe finds it in well under a minute, and each run's time-out comes from the run's own bounds.

Real adb client and server, fake devices on 127.0.0.1 (tests/support/fake_adbd.py; ``freeze_on``
freezes a device as the benchmark starts), the stand-in benchmark_model that really runs the model.
"""

from __future__ import annotations

import threading
import time

import pytest

from tflite_deploy.adb import AdbDevice, LivenessProbe
from tflite_deploy.benchmark.options import BenchOptions
from tflite_deploy.benchmark.device import bench_devices
from tflite_deploy.benchmark.flags import benchmark_args, max_seconds, run_timeout
from tflite_deploy.errors import DeviceError



def test_frozen_device_fails_within_a_minute_while_the_other_finishes(adb_server, fake_devices, digits_variants,
                                                                        benchmark_binary):
    good, frozen = fake_devices(), fake_devices()
    serials = [adb_server.connect(good), adb_server.connect(frozen)]
    frozen.freeze_on = "run_benchmark.sh run"  # freezes as its first benchmark process starts
    models = [digits_variants["int8"].path, digits_variants["float32"].path]
    settings = BenchOptions(delegate=("xnnpack", "cpu"), runs=5, min_seconds=0)
    started = time.monotonic()
    results = bench_devices(models, serials, benchmark_binary, settings)
    elapsed = time.monotonic() - started
    assert elapsed < 60, f"took {elapsed:.0f} s"
    on_good = [r for r in results if serials[0] in r.target]
    on_frozen = [r for r in results if serials[1] in r.target]
    assert len(on_good) == len(on_frozen) == 4
    assert all(r.ok and r.latency.count == 5 for r in on_good), [r.error for r in on_good]
    first, *rest = on_frozen
    assert first.status == "failed" and "stopped answering" in first.error and serials[1] in first.error
    assert all(r.status == "failed" and "lost earlier (frozen)" in r.error for r in rest)
    assert {r.fault for r in on_frozen} == {"frozen"} and {r.fault for r in on_good} == {None}
    # the good device's runs were bounded by benchmark_model's own --max_secs, not a fixed 600 s
    assert on_good[0].settings["timeout_s"] == run_timeout(settings) < 600
    assert any(f"--max_secs={max_seconds(settings):g}" in c for c in good.shell_commands)


def test_run_timeout_from_the_bounds_and_explicit_timeout_wins():
    s = BenchOptions(min_seconds=1.0)
    assert max_seconds(s) == 60 and run_timeout(s) == 90 + 2 * 60 + 30
    long = BenchOptions(min_seconds=100.0)
    assert max_seconds(long) == 200 and run_timeout(long) == 90 + 400 + 30
    assert run_timeout(BenchOptions(timeout=42.0, min_seconds=100.0)) == 42.0
    # both tools are given the bound
    for runtime, delegate in (("tflite", "xnnpack"), ("litert", "xnnpack"), ("litert", "gpu")):
        args = benchmark_args("/m.tflite", delegate, BenchOptions(runtime=runtime, max_seconds=7))
        assert "--max_secs=7" in args


def test_probe_quiet_on_a_live_device_then_finds_it_frozen(adb_device):
    dev = AdbDevice(adb_device.serial, timeout=10)
    with LivenessProbe(dev, interval=0.3, timeout=1.0, misses=2) as probe:
        time.sleep(1.5)  # several probes answered
        assert not probe.frozen.is_set()
        adb_device.fake.hang()
        assert probe.frozen.wait(8), "a frozen device was not found"
    assert "stopped answering" in probe.describe() and adb_device.serial in probe.describe()


def test_a_stopped_call_ends_soon_after_the_event(adb_device):
    dev = AdbDevice(adb_device.serial, timeout=10)
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    started = time.monotonic()
    with pytest.raises(DeviceError) as err:
        dev.stopped_by(stop).shell(["sleep", "30"], timeout=60)
    assert time.monotonic() - started < 5 and err.value.reason == "timeout"
    assert dev.shell(["echo", "still", "usable"], timeout=10).stdout.strip() == "still usable"  # the original
