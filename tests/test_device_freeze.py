"""A phone that freezes completely (transport open, not even a new stream answered) at any moment: during
a short command, during a push, just as a benchmark starts, in the middle of one. The liveness probe
watches every call, so the cell fails soon after the freeze and ``bench --device`` returns, on adb 29
and adb 36 (the ``adb_binary`` fixture runs each test with both).

The probe runs faster here (``TFLITE_DEPLOY_LIVENESS``) so the bound can be tight: the command must
return within the probe's own worst case of the freeze, well below any call's time-out (30 s for a
short command, 240 s for a benchmark). The farm test (tests/test_farm_freeze.py) keeps the defaults.
"""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

from tflite_deploy.cli import app
from tflite_deploy.envelope import items_of

runner = CliRunner()
FAST_PROBE = (1.0, 2.0, 3)  # interval, time-out, misses: frozen found 6 to 7 s after the freeze
FAST_PROBE_WORST = FAST_PROBE[0] + FAST_PROBE[1] * FAST_PROBE[2]

# where the fake phone freezes: (its control, the text that triggers it)
FREEZE_POINTS = {
    "short-command": ("freeze_on_open", "stat -c"),  # the first `stat` of a push's identity check
    "push": ("freeze_on_push", "bin/benchmark_model"),  # the benchmark binary, half sent
    "benchmark-start": ("freeze_on_open", "run_benchmark.sh run"),  # its shell's OPEN never answered
    "mid-benchmark": ("freeze_on", "run_benchmark.sh run"),  # the benchmark runs, nothing comes back
}


@pytest.mark.parametrize("point", list(FREEZE_POINTS))
def test_bench_on_a_phone_that_freezes_returns_soon_after(point, adb_device, digits_variants, benchmark_binary,
                                                          monkeypatch):
    monkeypatch.setenv("TFLITE_DEPLOY_LIVENESS", ",".join(f"{v:g}" for v in FAST_PROBE))
    fake = adb_device.fake
    control, text = FREEZE_POINTS[point]
    setattr(fake, control, text)
    models = [str(digits_variants["int8"].path), str(digits_variants["float32"].path)]
    started = time.monotonic()
    r = runner.invoke(app, ["bench", *models, "--device", adb_device.serial, "--delegate", "xnnpack",
                            "--runs", "5", "--min-seconds", "0", "--benchmark-binary", str(benchmark_binary),
                            "--json"])
    returned = time.monotonic()
    assert fake.frozen_at is not None, f"the phone never froze at {point}: {fake.shell_commands}"
    after_freeze = returned - fake.frozen_at
    assert after_freeze < FAST_PROBE_WORST + 5, f"returned {after_freeze:.1f} s after the freeze"
    assert after_freeze < 60 and returned - started < 90
    first, second = items_of(json.loads(r.stdout), "bench")
    assert first["status"] == second["status"] == "failed"
    assert first["fault"] == second["fault"] == "frozen", (first["error"], second["error"])
    assert "stopped answering" in first["error"] and adb_device.serial in first["error"]
    if point in ("benchmark-start", "mid-benchmark"):  # the first run was lost, the second not attempted
        assert "lost earlier (frozen)" in second["error"]
        assert sum("run_benchmark.sh run" in c for c in fake.shell_commands) <= 1
    else:  # lost while setting up: no benchmark ran at all
        assert not any("run_benchmark.sh run" in c for c in fake.shell_commands)
    assert r.exit_code != 0
