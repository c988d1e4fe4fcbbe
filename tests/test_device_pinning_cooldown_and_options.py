"""Device runs: the harness pins to the big cores (taskset), cooldown rests between runs, two
devices run at once, the CLI's device options reach the device, the tool is downloaded once. Checked
so that broken code fails: timestamps written by the benchmark stand-in on each fake device, a fake
cpufreq tree and a ``taskset`` shim that records its arguments, the CLI's device options as the
device received them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tflite_deploy.benchmark.options import BenchOptions
from tflite_deploy.benchmark.device import HARNESS, bench_devices, split_harness_output
from tflite_deploy.cli import app
from tflite_deploy.envelope import items_of

REPO = Path(__file__).resolve().parents[1]
FAKE_TOOL = Path(__file__).parent / "support" / "fake_benchmark_model.py"
runner = CliRunner()

# Prepended to the benchmark stand-in: it appends "START END" (epoch seconds) to runs.log in the
# device's root when it exits, and first sleeps as many seconds as the root's "slow" file says.
_TIMED = '''import atexit as _ax, os as _os, time as _t
_root = _os.environ.get("FAKE_ADBD_ROOT", ".")
_t0 = _t.time()
if _os.path.exists(_os.path.join(_root, "slow")):
    _t.sleep(float(open(_os.path.join(_root, "slow")).read()))
_ax.register(lambda: open(_os.path.join(_root, "runs.log"), "a").write(f"{_t0} {_t.time()}\\n"))
'''


@pytest.fixture
def timed_binary(tmp_path: Path) -> Path:
    exe = tmp_path / "benchmark_model"
    exe.write_text(f"#!{sys.executable}\n" + _TIMED + FAKE_TOOL.read_text())
    exe.chmod(0o755)
    return exe


def runs_of(fake) -> list[tuple[float, float]]:
    log = fake.root / "runs.log"
    return [tuple(map(float, line.split())) for line in log.read_text().splitlines()] if log.exists() else []


def make_sysfs(root: Path, max_khz: list[int]) -> Path:
    for cpu, khz in enumerate(max_khz):
        d = root / "devices" / "system" / "cpu" / f"cpu{cpu}" / "cpufreq"
        d.mkdir(parents=True)
        (d / "cpuinfo_max_freq").write_text(f"{khz}\n")
        (d / "scaling_governor").write_text("schedutil\n")
    zone = root / "class" / "thermal" / "thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "type").write_text("cpu big\n")
    (zone / "temp").write_text("41000\n")
    return root


def make_taskset(bindir: Path, log: Path, fail: bool = False) -> Path:
    """A taskset that records "MASK CMD ARGS..." per call, then runs the command (or fails)."""
    bindir.mkdir(parents=True, exist_ok=True)
    body = ('echo "taskset: failed to set pid 0\'s affinity: Invalid argument" >&2; exit 1' if fail
            else 'shift; exec "$@"')
    shim = bindir / "taskset"
    shim.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\n{body}\n')
    shim.chmod(0o755)
    return shim


BIG_LITTLE = [1_800_000] * 4 + [2_350_000] * 3 + [2_850_000]  # a Pixel-like 4+3+1 layout


def run_harness(tmp_path: Path, sysfs: Path, bindir: Path | None, *tool_args: str):
    tool = tmp_path / "tool"
    tool.write_text("#!/bin/sh\necho \"INFO: ran with $*\"\n")
    tool.chmod(0o755)
    path = (f"{bindir}:" if bindir else "") + "/usr/bin:/bin"
    p = subprocess.run(["sh", str(HARNESS), "run", "--pin-big", str(tool), *tool_args], capture_output=True,
                       text=True, env={"PATH": path, "TFLITE_DEPLOY_SYSFS": str(sysfs)}, timeout=30)
    return p, split_harness_output(p.stdout), tool


# ------------------------------------------------------------------------------ hole 2: pinning
def test_harness_pins_to_the_fastest_cores_with_taskset(tmp_path):
    log = tmp_path / "taskset.log"
    p, parts, tool = run_harness(tmp_path, make_sysfs(tmp_path / "sys", BIG_LITTLE),
                                 make_taskset(tmp_path / "bin", log).parent, "--graph=m.tflite", "--num_runs=5")
    assert p.returncode == 0, p.stderr
    calls = log.read_text().splitlines()
    assert calls[-1] == f"80 {tool} --graph=m.tflite --num_runs=5"  # cpu7 only: mask 0x80
    assert parts["benchmark"] == "INFO: ran with --graph=m.tflite --num_runs=5"
    state = dict(line.split("=", 1) for line in parts["state-before"].splitlines())
    assert state["pinned.mask"] == "80" and "pinned.note" not in state
    # the state comes from the same sysfs root
    assert state["cpu.cpu7.max_khz"] == "2850000" and state["cpu.cpu0.governor"] == "schedutil"
    assert state["thermal.cpu_big.millicelsius"] == "41000"


def test_same_speed_cores_are_all_pinned(tmp_path):
    log = tmp_path / "taskset.log"
    p, parts, tool = run_harness(tmp_path, make_sysfs(tmp_path / "sys", [2_000_000] * 8),
                                 make_taskset(tmp_path / "bin", log).parent, "--graph=m")
    assert p.returncode == 0
    assert log.read_text().splitlines()[-1] == f"ff {tool} --graph=m"
    assert "pinned.mask=ff" in parts["state-before"].splitlines()
    # two clusters of two at the top speed: cpus 2 and 3 of 0..3
    log.unlink()
    p, parts, tool = run_harness(tmp_path, make_sysfs(tmp_path / "sys2", [1, 1, 5, 5]),
                                 tmp_path / "bin", "--graph=m")
    assert log.read_text().splitlines()[-1] == f"c {tool} --graph=m"


def test_a_failing_taskset_falls_back_to_an_unpinned_run(tmp_path):
    log = tmp_path / "taskset.log"
    p, parts, tool = run_harness(tmp_path, make_sysfs(tmp_path / "sys", BIG_LITTLE),
                                 make_taskset(tmp_path / "bin", log, fail=True).parent, "--graph=m")
    assert p.returncode == 0 and parts["exit"] == "0"
    assert parts["benchmark"] == "INFO: ran with --graph=m"  # measured anyway
    state = dict(line.split("=", 1) for line in parts["state-before"].splitlines())
    assert "pinned.mask" not in state
    assert state["pinned.note"] == ("unpinned: taskset 80 failed: taskset: failed to set pid 0's affinity: "
                                    "Invalid argument")


def test_no_cpufreq_means_unpinned_with_a_note(tmp_path):
    empty = tmp_path / "sys"
    empty.mkdir()
    log = tmp_path / "taskset.log"
    p, parts, _ = run_harness(tmp_path, empty, make_taskset(tmp_path / "bin", log).parent, "--graph=m")
    assert p.returncode == 0 and not log.exists()
    assert "pinned.note=unpinned: no cpufreq information to find the big cores" in parts["state-before"]


def test_packaged_harness_is_the_android_harness():
    assert HARNESS.read_bytes() == (REPO / "android_harness" / "run_benchmark.sh").read_bytes()


def test_pinned_device_run_end_to_end(adb_device, digits_variants, timed_binary):
    """Through adb: the device's taskset receives the mask and benchmark_model's own arguments."""
    fake = adb_device.fake
    fake.env["TFLITE_DEPLOY_SYSFS"] = str(make_sysfs(fake.root / "sys", BIG_LITTLE))
    log = fake.root / "taskset.log"
    make_taskset(fake.root / "system" / "bin", log)
    (r,) = bench_devices([digits_variants["int8"].path], [adb_device.serial], timed_binary,
                         BenchOptions(runs=5, min_seconds=0, pin_big_cores=True))
    assert r.status == "ok" and r.latency.count == 5, r.error
    mask, tool, *args = log.read_text().splitlines()[-1].split(" ")
    assert mask == "80" and tool.endswith("/data/local/tmp/tflite-deploy/bin/benchmark_model")
    assert "--num_runs=5" in args and any(a.startswith("--graph=") for a in args)
    assert r.device["state_before"]["pinned.mask"] == "80"
    assert not any("unpinned" in w for w in r.warnings)


def test_failing_taskset_on_the_device_is_a_warning_not_a_failure(adb_device, digits_variants, timed_binary):
    fake = adb_device.fake
    fake.env["TFLITE_DEPLOY_SYSFS"] = str(make_sysfs(fake.root / "sys", BIG_LITTLE))
    make_taskset(fake.root / "system" / "bin", fake.root / "taskset.log", fail=True)
    (r,) = bench_devices([digits_variants["int8"].path], [adb_device.serial], timed_binary,
                         BenchOptions(runs=5, min_seconds=0, pin_big_cores=True))
    assert r.status == "ok" and r.latency.count == 5, r.error
    assert any(w.startswith("--pin-big-cores: unpinned: taskset 80 failed") for w in r.warnings)


# ------------------------------------------------------------------------------ hole 1: cooldown
def test_cooldown_rests_between_runs(adb_device, digits_variants, timed_binary):
    settings = BenchOptions(delegate=("xnnpack", "cpu"), runs=3, min_seconds=0, cooldown=1.5)
    results = bench_devices([digits_variants["int8"].path], [adb_device.serial], timed_binary, settings)
    assert [r.status for r in results] == ["ok", "ok"]
    (s1, e1), (s2, e2) = runs_of(adb_device.fake)
    assert s2 - e1 >= 1.5  # the rest falls between the end of one run and the start of the next


# ------------------------------------------------------------------------------ hole 4: parallel
def test_two_devices_run_at_the_same_time(adb_server, fake_devices, digits_variants, timed_binary):
    fakes = [fake_devices(), fake_devices()]
    serials = [adb_server.connect(f) for f in fakes]
    for f in fakes:
        (f.root / "slow").write_text("2")
    results = bench_devices([digits_variants["int8"].path], serials, timed_binary,
                            BenchOptions(runs=3, min_seconds=0))
    assert [r.status for r in results] == ["ok", "ok"]
    (a,), (b,) = runs_of(fakes[0]), runs_of(fakes[1])
    assert max(a[0], b[0]) < min(a[1], b[1]), (a, b)  # the two run windows overlap


# ---------------------------------------- hole 5 and 8: every device option through the CLI, a hung device
def test_cli_device_options_reach_the_device(adb_server, fake_devices, digits_variants, timed_binary):
    good, hung = fake_devices(), fake_devices()
    serials = [adb_server.connect(good), adb_server.connect(hung)]
    good.env["TFLITE_DEPLOY_SYSFS"] = str(make_sysfs(good.root / "sys", BIG_LITTLE))
    make_taskset(good.root / "system" / "bin", good.root / "taskset.log")
    (hung.root / "slow").write_text("60")  # a benchmark that hangs: --timeout must end it
    pushed = good.root / "data" / "local" / "tmp" / "tflite-deploy"
    r = runner.invoke(app, ["bench", str(digits_variants["int8"].path), "-D", serials[0], "-D", serials[1],
                            "--delegate", "xnnpack,gpu,nnapi", "--runner", "binary", "--gpu-precision", "fp32",
                            "--nnapi-accelerator", "google-edgetpu", "--op-profiling", "--pin-big-cores",
                            "--cooldown", "1", "--timeout", "8", "--cleanup", "--runs", "4", "--warmup", "2",
                            "--threads", "2", "--min-seconds", "0",
                            "--benchmark-binary", str(timed_binary), "--json"])
    results = items_of(json.loads(r.stdout), "bench")
    mine = [x for x in results if x["target"] == f"adb:{serials[0]}"]
    stuck = [x for x in results if x["target"] == f"adb:{serials[1]}"]
    assert [x["status"] for x in mine] == ["ok", "unavailable", "unavailable"], [x.get("error") for x in mine]
    runs = [c for c in good.shell_commands if "benchmark_model" in c and " run " in c]
    assert len(runs) == 3
    for c in runs:
        assert " run --pin-big " in c
        for flag in ("--num_threads=2", "--num_runs=4", "--warmup_runs=2", "--min_secs=0.0",
                     "--enable_op_profiling=true"):
            assert flag in c, (flag, c)
    assert "--use_xnnpack=true" in runs[0]
    assert "--use_gpu=true" in runs[1] and "--gpu_precision_loss_allowed=false" in runs[1]
    assert "--use_nnapi=true" in runs[2] and "--nnapi_accelerator_name=google-edgetpu" in runs[2]
    assert mine[0]["metrics"]["op_profile"] and mine[0]["device"]["state_before"]["pinned.mask"] == "80"
    (s1, e1), (s2, e2), (s3, e3) = runs_of(good)
    assert 1.0 <= s2 - e1 < 5 and 1.0 <= s3 - e2 < 5  # --cooldown 1
    assert not (pushed / "models").exists()  # --cleanup
    # the hung device: its first run is cut off by --timeout, the rest are not attempted
    assert stuck[0]["status"] == "failed" and "time" in stuck[0]["error"].lower()
    assert all("not run" in x["error"] for x in stuck[1:])
    assert len(stuck) == 3


# ------------------------------------------------------------------------------ hole 8: download
def test_device_run_downloads_the_benchmark_binary_once(adb_device, digits_variants, tmp_path, monkeypatch,
                                                        file_server):
    """No --benchmark-binary, --runtime tflite: TFLite's official build for the device's ABI is fetched, cached and
    pushed."""
    served = file_server.root / "android_aarch64_benchmark_model"  # the fake device is arm64-v8a
    shutil.copy("/bin/echo", served)  # a real ELF that prints the arguments it was run with
    monkeypatch.setenv("TFLITE_DEPLOY_BENCHMARK_URL", f"{file_server.url}/{{file}}")
    monkeypatch.setenv("TFLITE_DEPLOY_CACHE", str(tmp_path / "cache"))
    for _ in range(2):
        (r,) = bench_devices([digits_variants["int8"].path], [adb_device.serial], None,
                             BenchOptions(runs=3, min_seconds=0, runtime="tflite"))
    assert file_server.hits == ["/android_aarch64_benchmark_model"]  # downloaded once, then cached
    pushed = adb_device.sandbox / "data" / "local" / "tmp" / "tflite-deploy" / "bin" / "benchmark_model"
    assert pushed.read_bytes() == served.read_bytes()
    # echo ran on the device with benchmark_model's arguments: no timings, so the run fails honestly
    assert r.status == "failed" and "--num_runs=3" in r.raw_log
