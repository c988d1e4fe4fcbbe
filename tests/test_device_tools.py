"""Fetching the official benchmark tools into the cache, and the benchmark APK runner.

The download is served by a local HTTP server on 127.0.0.1; the APK runner drives a fake device
whose `pm`, `am` and `logcat` are small shell stand-ins that keep the real tools' contract: `pm
install` installs, `am start` launches the "app" in the background, and its lines reach `logcat -d -s
tflite` in logcat's own format.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tflite_deploy.benchmark import binaries
from tflite_deploy.benchmark.options import BenchOptions
from tflite_deploy.benchmark.device import bench_devices
from tflite_deploy.errors import UserError

FAKE_TOOL = Path(__file__).parent / "support" / "fake_benchmark_model.py"


@pytest.fixture
def served(file_server, tmp_path, monkeypatch):
    """Files under a folder served on 127.0.0.1 as the benchmark download site; counts requests."""
    monkeypatch.setenv("TFLITE_DEPLOY_BENCHMARK_URL", f"{file_server.url}/{{file}}")
    monkeypatch.setenv("TFLITE_DEPLOY_CACHE", str(tmp_path / "cache"))
    return file_server.root, file_server.hits


def test_fetch_once_then_cached_and_refetched_when_damaged(served):
    root, hits = served
    (root / "android_aarch64_benchmark_model").write_bytes(b"\x7fELF" + b"x" * 1000)
    path = binaries.fetch_tool("arm64-v8a")
    assert path.read_bytes().startswith(b"\x7fELF") and path.stat().st_mode & 0o111
    manifest = json.loads((path.parent / "manifest.json").read_text())
    assert manifest["size"] == 1004 and len(manifest["sha256"]) == 64
    assert binaries.fetch_tool("arm64-v8a") == path and len(hits) == 1  # from the cache
    path.write_bytes(b"\x7fELF truncated")
    binaries.fetch_tool("arm64-v8a")
    assert len(hits) == 2 and path.stat().st_size == 1004


def test_fetch_refuses_what_is_not_a_binary_or_has_the_wrong_hash(served):
    root, _ = served
    (root / "android_arm_benchmark_model").write_bytes(b"<html>not found</html>")
    with pytest.raises(UserError, match="not an Android executable"):
        binaries.fetch_tool("armeabi-v7a")
    (root / "android_x86_64_benchmark_model").write_bytes(b"\x7fELF" + b"y" * 10)
    with pytest.raises(UserError, match="sha256"):
        binaries.fetch_tool("x86_64", expected_sha256="0" * 64)
    with pytest.raises(UserError, match="Could not download"):
        binaries.fetch_tool("x86")  # 404
    with pytest.raises(UserError, match="No official benchmark_model build for ABI 'mips'"):
        binaries.fetch_tool("mips")
    cache = Path(binaries.cache_root())
    assert not [p for p in cache.rglob("*") if p.is_file() and p.name != "manifest.json"]


SHIMS = {
    "pm": """#!/bin/sh
root=$(cd "$(dirname "$0")/../.." && pwd)
app="$root/data/app/org.tensorflow.lite.benchmark/base.apk"
case "$1" in
  path) [ -f "$app" ] && echo "package:/data/app/org.tensorflow.lite.benchmark/base.apk"; exit 0 ;;
  install) shift; while [ "${1#-}" != "$1" ]; do shift; done
           mkdir -p "$(dirname "$app")" && cp "$1" "$app" && chmod 755 "$app" && echo Success ;;
esac
""",
    "am": """#!/bin/sh
root=$(cd "$(dirname "$0")/../.." && pwd)
app="$root/data/app/org.tensorflow.lite.benchmark/base.apk"
args=""
while [ $# -gt 0 ]; do
  if [ "$1" = "--es" ] && [ "$2" = "args" ]; then args=$3; shift 3; else shift; fi
done
# the app runs in its own process: start it and return at once, as am does
( $app $args 2>&1 | while IFS= read -r line; do
    echo "11-25 10:00:00.000  4242  4242 I tflite  : $line"; done >> "$root/logcat.txt" ) &
echo "Starting: Intent { cmp=org.tensorflow.lite.benchmark/.BenchmarkModelActivity }"
""",
    "logcat": """#!/bin/sh
root=$(cd "$(dirname "$0")/../.." && pwd)
case "$1" in
  -c) : > "$root/logcat.txt" ;;
  -d) cat "$root/logcat.txt" 2>/dev/null ;;
esac
""",
}


def test_benchmark_apk_runner_reads_logcat(adb_device, digits_variants, tmp_path):
    bindir = adb_device.sandbox / "system" / "bin"
    for name, text in SHIMS.items():
        (bindir / name).write_text(text)
        (bindir / name).chmod(0o755)
    apk = tmp_path / "benchmark.apk"
    apk.write_text(f"#!{sys.executable}\n" + FAKE_TOOL.read_text())
    results = bench_devices([digits_variants["int8"].path], [adb_device.serial], apk,
                            BenchOptions(delegate=("xnnpack", "gpu"), runs=10, min_seconds=0, runner="apk",
                                         timeout=60))
    xnn, gpu = results
    assert xnn.status == "ok", xnn.error
    assert xnn.runner == "benchmark_apk" and xnn.latency.count == 10 and xnn.init_ms > 0
    assert "I tflite  :" in xnn.raw_log
    assert gpu.status == "unavailable" and "GPU delegate not available" in gpu.error
    assert (adb_device.sandbox / "data" / "app" / "org.tensorflow.lite.benchmark" / "base.apk").is_file()
