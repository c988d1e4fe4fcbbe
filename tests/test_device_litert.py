"""bench --device with LiteRT's benchmark_model: real adb client and server, a fake device on 127.0.0.1,
and the stand-in (tests/support/fake_benchmark_model.py) in its LiteRT mode, which prints the results
block with the format strings of litert/tools/benchmark_litert_model.h."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tflite_deploy.benchmark import binaries
from tflite_deploy.benchmark.options import BenchOptions
from tflite_deploy.benchmark.device import bench_devices
from tflite_deploy.benchmark.flags import benchmark_args, resolve_runtime
from tflite_deploy.cli import app
from tflite_deploy.envelope import items_of
from tflite_deploy.errors import UserError

runner = CliRunner()


def test_litert_cpu_gpu_npu_on_the_test_endpoint(adb_device, digits_variants, benchmark_binary):
    model = digits_variants["int8"].path
    r = runner.invoke(app, ["bench", str(model), "--device", adb_device.serial, "--delegate", "xnnpack,cpu,gpu,npu",
                            "--runtime", "litert", "--runs", "20", "--benchmark-binary", str(benchmark_binary),
                            "--json"])
    assert r.exit_code == 0, r.output
    xnn, cpu, gpu, npu = items_of(json.loads(r.stdout), "bench")
    for res in (xnn, cpu):
        assert res["status"] == "ok", res["error"]
        assert res["settings"]["runtime"] == "litert" and res["metrics"]["tool"] == "litert"
        assert res["latency"]["count"] == 20 and 0 < res["latency"]["min_ms"] <= res["latency"]["mean_ms"]
        assert res["latency"]["max_ms"] >= res["latency"]["mean_ms"] and res["latency"]["std_ms"] is not None
        assert res["warmup"]["count"] >= 1 and res["init_ms"] > 0
        assert res["init_memory_mb"] == 3.5 and res["peak_memory_mb"] == 12.5
        # cold and warm processes: the first one wrote the cache the second one read
        assert res["settings"]["model_cache"] is True
        assert res["metrics"]["init_cold_ms"] == res["init_ms"] > res["metrics"]["init_warm_ms"] > 0
        assert "BENCHMARK RESULTS" in res["raw_log"] and "--use_cpu=true" not in res["raw_log"]
    assert "--xnnpack_weight_cache_file_path" in " ".join(adb_device.fake.shell_commands)
    # GPU: LiteRT could not load its GPU accelerator and the run fell back to the CPU: not a GPU number
    assert gpu["status"] == "unavailable" and "GPU delegate not available" in gpu["error"]
    assert "GPU accelerator could not be loaded" in gpu["error"]
    assert npu["status"] == "unavailable" and "no NPU dispatch library given" in npu["error"]
    assert npu["settings"]["runtime"] == "litert"


def test_npu_with_libraries_pushes_them_and_passes_their_folder(adb_device, digits_variants, benchmark_binary,
                                                               tmp_path):
    dispatch = tmp_path / "libLiteRtDispatch_Qualcomm.so"
    plugin = tmp_path / "libLiteRtCompilerPlugin_Qualcomm.so"
    dispatch.write_bytes(b"\x7fELF fake dispatch")
    plugin.write_bytes(b"\x7fELF fake plugin")
    settings = BenchOptions(delegate=("npu",), runs=5, runtime="litert", npu_dispatch_lib=str(dispatch),
                                   npu_compiler_plugin=str(plugin))
    (res,) = bench_devices([digits_variants["int8"].path], [adb_device.serial], benchmark_binary, settings)
    pushed = adb_device.sandbox / "data" / "local" / "tmp" / "tflite-deploy" / "npu"
    assert (pushed / dispatch.name).read_bytes() == dispatch.read_bytes() and (pushed / plugin.name).is_file()
    command = next(c for c in adb_device.fake.shell_commands if "--use_npu=true" in c)
    assert "--dispatch_library_path=/data/local/tmp/tflite-deploy/npu" in command
    assert "--compiler_plugin_library_path=/data/local/tmp/tflite-deploy/npu" in command
    assert "--libdir" in command  # LD_LIBRARY_PATH / ADSP_LIBRARY_PATH for the vendor's runtime
    # the stand-in's dispatch library does not serve this SoC: a reason, not a crash
    assert res.status == "unavailable" and "NPU delegate not available" in res.error
    assert "Unsupported SoC" in res.error


def test_nnapi_on_android_15_runs_with_a_deprecation_warning(adb_server, fake_devices, digits_variants,
                                                            benchmark_binary):
    from tests.support.fake_adbd import DEFAULT_PROPS

    phone = fake_devices(props={**DEFAULT_PROPS, "ro.build.version.sdk": "35"})
    serial = adb_server.connect(phone)
    settings = BenchOptions(delegate=("xnnpack", "nnapi"), runs=5, runtime="tflite")
    xnn, nnapi = bench_devices([digits_variants["int8"].path], [serial], benchmark_binary, settings)
    assert xnn.ok and xnn.settings["runtime"] == "tflite" and not any("NNAPI" in w for w in xnn.warnings)
    assert nnapi.status == "unavailable"  # this fake phone has no NNAPI driver; it was run all the same
    assert any("deprecated from Android 15" in w and "--delegate npu" in w for w in nnapi.warnings)
    assert any("--use_nnapi=true" in c for c in phone.shell_commands)
    # LiteRT's tool has no NNAPI: said so, without running
    (lite,) = bench_devices([digits_variants["int8"].path], [serial], benchmark_binary,
                            BenchOptions(delegate=("nnapi",), runs=5, runtime="litert"))
    assert lite.status == "unavailable" and "--runtime tflite" in lite.error


def test_runtime_auto_and_flags(tmp_path):
    script = tmp_path / "classic"
    script.write_text("#!/bin/sh\n")
    litert_elf = tmp_path / "litert"
    litert_elf.write_bytes(b"\x7fELF...\n========== BENCHMARK RESULTS ==========\n")
    classic_elf = tmp_path / "tflite"
    classic_elf.write_bytes(b"\x7fELF...Inference timings in us")
    assert resolve_runtime("auto", None) == "litert"  # what we download
    assert resolve_runtime("auto", litert_elf) == "litert" and resolve_runtime("auto", classic_elf) == "tflite"
    assert resolve_runtime("auto", script) == "tflite" and resolve_runtime("litert", script) == "litert"
    full = BenchOptions(runtime="litert", require_full_delegation=True, gpu_backend="opencl")
    assert benchmark_args("/m.tflite", "gpu", full)[-5:] == [
        "--use_cpu=false", "--use_gpu=true", "--gpu-precision=fp16", "--gpu_backend=opencl",
        "--require_full_delegation=true"]
    assert "--use_xnnpack=true" in benchmark_args("/m.tflite", "xnnpack", BenchOptions(runtime="tflite"))
    with pytest.raises(UserError, match="npu delegate needs LiteRT"):
        benchmark_args("/m.tflite", "npu", BenchOptions(runtime="tflite"))


def test_litert_binary_is_fetched_for_the_installed_version(tmp_path, monkeypatch, file_server):
    (file_server.root / "9.9.9" / "android_arm64").mkdir(parents=True)
    (file_server.root / "9.9.9" / "android_arm64" / "benchmark_model").write_bytes(b"\x7fELF litert " + b"x" * 100)
    monkeypatch.setenv("TFLITE_DEPLOY_LITERT_URL", f"{file_server.url}/{{version}}/android_arm64/{{file}}")
    monkeypatch.setenv("TFLITE_DEPLOY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(binaries, "litert_version", lambda: "9.9.9")
    path = binaries.fetch_litert_tool("arm64-v8a")
    assert path.parent.name == "arm64-v8a" and path.parent.parent.name == "litert-9.9.9"
    assert json.loads((path.parent / "manifest.json").read_text())["size"] == path.stat().st_size
    assert binaries.fetch_litert_tool("arm64-v8a") == path
    assert file_server.hits == ["/9.9.9/android_arm64/benchmark_model"]
    with pytest.raises(UserError, match="arm64-v8a only"):
        binaries.fetch_litert_tool("armeabi-v7a")
    assert binaries.litert_url_for("benchmark_model", "2.3.0").startswith("http://127.0.0.1")
    monkeypatch.delenv("TFLITE_DEPLOY_LITERT_URL")
    assert binaries.litert_url_for("benchmark_model", "2.3.0") == (
        "https://storage.googleapis.com/litert/binaries/2.3.0/android_arm64/benchmark_model")
