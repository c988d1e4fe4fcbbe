"""Before any cell runs, every phone of the plan is checked: one that is not attached and one that is
listed but frozen are reported not-run at once, and the rest of the plan goes on. The plan alone says how
to bench (its ``bench:`` key: the benchmark binary, runtime, time-out, core pinning): nothing on the
command line."""

from __future__ import annotations

import shutil
import textwrap
import time
from pathlib import Path

import pytest

from tflite_deploy.farm.cells import expand
from tflite_deploy.farm.plan import load_plan
from tflite_deploy.farm.run import FarmSettings, run_plan
from tflite_deploy.farm.scheduler import NOT_RUN, OK


@pytest.mark.parametrize("adb_binary", ["adb36"], indirect=True)
def test_unreachable_phones_are_not_run_before_anything_and_the_plan_alone_says_how_to_bench(
        tmp_path: Path, adb_server, fake_devices, digits_keras: Path, digits_variants: dict,
        benchmark_binary: Path) -> None:
    good, frozen = fake_devices(), fake_devices()
    serials = [adb_server.connect(good), adb_server.connect(frozen)]
    frozen.hang()  # listed by adb as a device, answers nothing
    plan = tmp_path / "plan.yaml"
    plan.write_text(textwrap.dedent(f"""\
        models:
          m: {{path: {digits_keras}}}
        recipes: [float32, int8]
        targets: ['adb:{serials[0]}', 'adb:{serials[1]}', 'adb:emulator-5554']
        delegates: [xnnpack]
        runs: 5
        warmup: 1
        cache: {tmp_path / 'cache'}
        bench:
          benchmark_binary: {benchmark_binary}
          runtime: tflite
          timeout: 77
          min_seconds: 0
          pin_big_cores: true
        """))
    p = load_plan(plan)
    for cell in expand(p, p.targets).convert:
        cell.artifact.parent.mkdir(parents=True)
        shutil.copy(digits_variants[cell.recipe.name].path, cell.artifact)
    order: list[tuple[float, str, str]] = []

    def progress(event) -> None:
        if event.item is not None:
            order.append((time.monotonic(), event.item.target, event.item.status))

    started = time.monotonic()
    done = run_plan(plan, tmp_path / "out", FarmSettings(store=str(tmp_path / "s.db")), progress)  # the real executor
    by_target: dict[str, list] = {}
    for r in done.ran.values():
        by_target.setdefault(r.target, []).append(r)
    assert [r.status for r in by_target[f"adb:{serials[0]}"]] == [OK, OK], by_target
    gone = by_target["adb:emulator-5554"] + by_target[f"adb:{serials[1]}"]
    assert len(gone) == 4 and {r.status for r in gone} == {NOT_RUN}
    assert all("emulator-5554 was not found" in r.error for r in by_target["adb:emulator-5554"])
    assert all("did not answer `echo ok`" in r.error for r in by_target[f"adb:{serials[1]}"])
    # reported first, before any cell ran, and within the echo's time-out
    assert [s for _, _, s in order[:4]] == [NOT_RUN] * 4 and order[3][0] - started < 20
    # what the plan said reached the phone: its binary, runtime, time-out and pinning
    ok = [x for r in by_target[f"adb:{serials[0]}"] for x in r.results]
    assert {x.settings["runtime"] for x in ok} == {"tflite"} and {x.settings["timeout_s"] for x in ok} == {77}
    runs = [c for c in good.shell_commands if "run_benchmark.sh run" in c]
    assert len(runs) == 2 and all("--pin-big" in c for c in runs)
    pushed = good.root / "data/local/tmp/tflite-deploy/bin/benchmark_model"
    assert pushed.read_bytes() == benchmark_binary.read_bytes()
