"""The host runner on LiteRT's CompiledModel API, beside the Interpreter runner, on the real digits CNN."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from tflite_deploy.benchmark.compiled import CompiledRunner, resolve_host_runner
from tflite_deploy.benchmark.options import BenchOptions
from tflite_deploy.benchmark.host import bench_host
from tflite_deploy.cli import app
from tflite_deploy.envelope import items_of
from tflite_deploy.errors import UserError
from tflite_deploy.result import Result

cli = CliRunner()


def test_compiled_runner_gives_the_same_result_shape_as_the_interpreter(digits_variants):
    paths = [digits_variants["float32"].path, digits_variants["int8"].path]
    base = dict(runs=30, warmup=3, min_seconds=0.0)
    compiled = bench_host(paths, BenchOptions(runner="compiled", **base))
    interp = bench_host(paths, BenchOptions(runner="interpreter", **base))
    for c, i in zip(compiled, interp, strict=True):
        assert c.runner == "compiled" and c.settings["runner"] == "compiled" and i.runner == "litert-python"
        assert c.status == i.status == "ok" and c.artifact == i.artifact and c.recipe == i.recipe
        assert c.latency.count >= 30 and len(c.latency.samples_ms) == c.latency.count
        assert 0 < c.latency.min_ms <= c.latency.p50_ms <= c.latency.max_ms and c.latency.std_ms >= 0
        assert c.warmup.count == 3 and c.init_ms > 0 and c.first_ms > 0
        assert c.coverage.requested == "xnnpack" and c.coverage.applied is True and c.coverage.delegate_kernels >= 1
        assert set(c.to_dict()) == set(i.to_dict())  # same record shape, key for key
        assert Result.from_dict(json.loads(c.to_json())).latency == c.latency


def test_compiled_runner_computes_what_the_interpreter_computes(digits_variants):
    from ai_edge_litert.interpreter import Interpreter

    path = digits_variants["float32"].path
    r = CompiledRunner(path, threads=1, seed=3)
    r.invoke()
    out = r.outputs[0].read(10, np.float32)
    x = r.inputs[0].read(int(np.prod(r.model.get_input_tensor_details(
        r.model.get_signature_by_index(0)["key"]).popitem()[1]["shape"])), np.float32)
    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    detail = it.get_input_details()[0]
    it.set_tensor(detail["index"], x.reshape(detail["shape"]))
    it.invoke()
    expected = it.get_tensor(it.get_output_details()[0]["index"]).reshape(-1)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_runner_choice():
    assert resolve_host_runner("auto", "xnnpack") == "interpreter"  # see resolve_host_runner: LiteRT's chatter
    assert resolve_host_runner("compiled", "xnnpack") == "compiled"
    assert resolve_host_runner("auto", "none") == "interpreter"
    assert resolve_host_runner("auto", "reference") == "interpreter"
    with pytest.raises(UserError, match="runner=interpreter"):
        resolve_host_runner("compiled", "reference")
    with pytest.raises(UserError, match="Unknown host runner"):
        resolve_host_runner("gpu", "xnnpack")


def test_cli_runner_option(digits_variants):
    model = str(digits_variants["int8"].path)
    r = cli.invoke(app, ["bench", model, "--runs", "10", "--min-seconds", "0", "--runner", "compiled", "--json"])
    assert r.exit_code == 0, r.output
    (res,) = items_of(json.loads(r.stdout), "bench")
    assert res["runner"] == "compiled" and res["latency"]["count"] >= 10
    r = cli.invoke(app, ["bench", model, "--runs", "10", "--min-seconds", "0", "--delegate", "reference", "--json"])
    assert r.exit_code == 0 and items_of(json.loads(r.stdout), "bench")[0]["runner"] == "litert-python"
    r = cli.invoke(app, ["bench", model, "--runner", "compiled", "--delegate", "none"])
    assert r.exit_code != 0 and "--runner interpreter" in r.output and "Traceback" not in r.output


def test_compiled_coverage_of_a_model_xnnpack_cannot_take(digits_variants):
    (res,) = bench_host([digits_variants["int16x8"].path], BenchOptions(runner="compiled", runs=5,
                                                                            min_seconds=0.0))
    assert res.coverage.applied is False and res.coverage.fully is False and res.coverage.delegate_kernels == 0


def test_compiled_runner_keeps_litert_chatter_off_stderr(digits_variants):
    """LiteRT logs environment set-up (at creation and at the first buffer write) and, from a static
    object destroyed after Python ends, its teardown: none of it may reach the user's terminal."""
    models = [str(digits_variants["int8"].path), str(digits_variants["float32"].path)]
    code = "import sys; from tflite_deploy.cli import app; sys.argv[0] = 'tflite-deploy'; app()"
    p = subprocess.run([sys.executable, "-c", code, "bench", *models, "--runner", "compiled", "--runs", "5",
                        "--min-seconds", "0", "--json"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert [r["runner"] for r in items_of(json.loads(p.stdout), "bench")] == ["compiled", "compiled"]
    assert "INFO: [" not in p.stderr and "DestroyAccelerator" not in p.stderr, p.stderr
