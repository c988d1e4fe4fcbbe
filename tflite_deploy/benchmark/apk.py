"""The benchmark APK path: TFLite's benchmark app, driven with ``am start`` and read from logcat.

The app measures the model inside an Android process, the way an app would run it (it is what
TFLite recommends for numbers closest to an app's). It prints benchmark_model's lines to logcat under
the tag ``tflite``, which the same parser reads. The text returned here has the harness's block
shape (state before, benchmark output, exit, state after) so both runners share one path to a Result.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

from tflite_deploy.adb import AdbDevice, remote_path
from tflite_deploy.errors import DeviceError

PACKAGE = "org.tensorflow.lite.benchmark"
ACTIVITY = f"{PACKAGE}/.BenchmarkModelActivity"
DONE_MARKERS = ("Inference timings in us", "Benchmarking failed", "Failed to apply", "FATAL EXCEPTION")
POLL_SECONDS = 0.5


def install_apk(dev: AdbDevice, apk: Path) -> None:
    """Install (or update) the benchmark app: push under the tool's folder, then ``pm install``."""
    remote = remote_path("benchmark_model.apk")
    changed = dev.push(apk, remote)
    installed = dev.shell(["pm", "path", PACKAGE], timeout=30).stdout.strip().startswith("package:")
    if changed or not installed:
        dev.shell(["pm", "install", "-r", "-t", "-g", remote], timeout=120).check()


def _state(dev: AdbDevice, harness_remote: str) -> str:
    return dev.shell(["sh", harness_remote, "state"], timeout=30).stdout.strip()


def run_apk(dev: AdbDevice, harness_remote: str, args: Sequence[str], timeout: float) -> tuple[str, int]:
    """One benchmark in the app; returns (harness-shaped text, 0 or 1)."""
    before = _state(dev, harness_remote)
    dev.shell(["logcat", "-c"], timeout=30).check()
    dev.shell(["am", "start", "-S", "-W", "-n", ACTIVITY, "--es", "args", " ".join(args)], timeout=60).check()
    deadline = time.monotonic() + timeout
    log = ""
    while time.monotonic() < deadline:
        log = dev.shell(["logcat", "-d", "-s", "tflite:*", "AndroidRuntime:E"], timeout=30).stdout
        if any(m in log for m in DONE_MARKERS):
            break
        time.sleep(POLL_SECONDS)
    else:
        dev.shell(["am", "force-stop", PACKAGE], timeout=30)
        raise DeviceError(f"The benchmark app on Android device {dev.serial} did not finish within {timeout:.0f} s "
                          "(logcat shows no result). Raise timeout for large models.", param="timeout")
    done = "Inference timings in us" in log
    after = _state(dev, harness_remote)
    text = (f"==== tflite-deploy state-before ====\n{before}\n==== tflite-deploy benchmark ====\n{log}\n"
            f"==== tflite-deploy exit={0 if done else 1} ====\n==== tflite-deploy state-after ====\n{after}\n"
            "==== tflite-deploy end ====\n")
    return text, 0 if done else 1
