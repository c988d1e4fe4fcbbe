"""The farm's plan file: every key read into a typed Plan; every problem listed at once with its line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tflite_deploy.errors import UserError
from tflite_deploy.farm.plan import (PlanError, TargetSpec, cheap_input_shape, load_plan, resolve_targets)

REPO = Path(__file__).resolve().parents[1]


def write(tmp: Path, text: str, name: str = "plan.yaml") -> Path:
    p = tmp / name
    p.write_text(textwrap.dedent(text).lstrip("\n"))
    return p


def keras_file(path: Path, shape: list) -> Path:
    """A .keras zip whose config.json says what a Keras 3 Functional model with one input says."""
    config = {"class_name": "Functional", "config": {"layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": shape, "dtype": "float32", "name": "x"}},
        {"class_name": "Dense", "config": {"units": 10}}]}}
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", b"")
    return path


def problems(path: Path, **kw) -> dict[int, str]:
    with pytest.raises(PlanError) as e:
        load_plan(path, **kw)
    out: dict[int, str] = {}
    for line, msg in e.value.problems:  # several problems on one line are joined
        out[line] = f"{out[line]} | {msg}" if line in out else msg
    return out


def test_full_plan_reads_every_key(tmp_path: Path) -> None:
    keras_file(tmp_path / "cnn.keras", [None, 8, 8, 1])
    (tmp_path / "other.keras").write_bytes(b"x")
    (tmp_path / "extra.yaml").write_text("recipes:\n  int8-pt: {base: int8, per_channel: false}\n")
    p = write(tmp_path, """
        models:
          cnn:
            path: cnn.keras
            dataset: digits-test
          other: other.keras
        datasets:
          digits-test: digits:test
          pics: {spec: photos, preprocess: {size: [96, 96], mean: [0.5, 0.5, 0.5], std: 0.5, layout: NHWC}}
        recipes:
          - float32
          - int8-pt
          - {name: int8-head, base: int8, float_ops: [MEAN]}
        recipe_files: [extra.yaml]
        targets: [host, R58M123, "adb:emulator-5554", "adb://farm.lab:5037/ABC", {all: true, min_sdk: 29, abi: arm64-v8a}]
        delegates: [xnnpack, gpu]
        threads: [1, 4]
        runs: 30
        warmup: 3
        repeats: 3
        tag: nightly
        baseline: release-1.2
        thresholds: {min_effect: 0.03, max_accuracy_drop: 1.5}
        cache: artifacts/
        """)
    plan = load_plan(p)
    assert [m.name for m in plan.models] == ["cnn", "other"]
    assert plan.models[0].dataset.spec == "digits:test" and plan.models[1].dataset is None
    assert [r.name for r in plan.recipes] == ["float32", "int8-pt", "int8-head"]
    assert plan.recipes[1].per_channel is False and plan.recipes[2].float_ops == ("MEAN",)
    assert [t.name for t in plan.targets] == ["host", "adb:R58M123", "adb:emulator-5554",
                                              "adb://farm.lab:5037/ABC", "all"]
    assert plan.targets[-1].min_sdk == 29 and plan.targets[-1].abi == "arm64-v8a"
    assert plan.delegates == ("xnnpack", "gpu") and plan.threads == (1, 4)
    assert (plan.runs, plan.warmup, plan.repeats, plan.tag, plan.baseline) == (30, 3, 3, "nightly", "release-1.2")
    assert plan.thresholds.min_effect == 0.03 and plan.thresholds.max_accuracy_drop == 1.5
    assert plan.cache == tmp_path / "artifacts"
    pics = {d.name: d for d in plan.datasets}["pics"]
    assert pics.preprocess.size == (96, 96) and pics.preprocess.std == (0.5,)
    with pytest.raises(Exception):  # frozen
        plan.runs = 1  # type: ignore[misc]


def test_readme_example_is_a_valid_plan(tmp_path: Path) -> None:
    """The README's plan example (with every key) loads, once its model files exist."""
    text = (REPO / "README.md").read_text()
    block = text.split("```yaml\n# farm.yaml\n", 1)[1].split("```", 1)[0]
    for rel in ("models/mobilenet_v2.keras", "models/digits_cnn.keras", "my-recipes.yaml"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
    keras_file(tmp_path / "models/mobilenet_v2.keras", [None, 224, 224, 3])
    keras_file(tmp_path / "models/digits_cnn.keras", [None, 8, 8, 1])
    keras_file(tmp_path / "models/price_mlp.keras", [None, 10])
    import numpy as np
    np.savez(tmp_path / "val.npz", x=np.zeros((5, 10), np.float32), y=np.linspace(0, 1, 5).astype(np.float32))
    (tmp_path / "my-recipes.yaml").write_text("recipes:\n  int8-pt: {base: int8, per_channel: false}\n")
    (tmp_path / "val").mkdir()
    from PIL import Image
    (tmp_path / "val" / "cat").mkdir()
    for i in range(5):
        Image.new("RGB", (300, 250)).save(tmp_path / "val" / "cat" / f"{i}.png")
    plan = load_plan(write(tmp_path, block))
    assert len(plan.models) == 3 and len(plan.recipes) >= 3
    assert {m.name: m.task for m in plan.models}["price"] == "regression"


def test_all_problems_listed_at_once_with_lines(tmp_path: Path) -> None:
    keras_file(tmp_path / "a.keras", [None, 8, 8, 1])
    p = write(tmp_path, """
        models:
          a: a.keras
          b:
            path: missing.keras
            colour: red
        recipes: [float32, int8, nope, {name: x, base: int8, per_channel: maybe}]
        targets: [host, R58M, "bad target", "adb://:99999/x"]
        delegates: [xnnpack, tpu]
        threads: [1, 0]
        runs: many
        thresholds: {min_effect: 2}
        bogus: 1
        """)
    got = problems(p)
    assert "missing.keras" in got[4] and "does not exist" in got[4]
    assert "unknown key 'colour'" in got[5]
    assert "'nope'" in got[6]  # recipes: the unknown one and the bad inline one share line 6
    assert "bad target" in got[7]
    assert "'tpu'" in got[8]
    assert "threads" in got[9] and ">= 1" in got[9]
    assert "runs" in got[10] and "'many'" in got[10]
    assert "min_effect" in got[11]
    assert "unknown key 'bogus'" in got[12]
    with pytest.raises(PlanError) as e:
        load_plan(p)
    message = str(e.value)
    assert str(p) in message and "per_channel" in message and "line 12:" in message
    assert isinstance(e.value, UserError)


def test_npu_on_a_phone_target_is_accepted_and_becomes_a_bench_cell(tmp_path: Path) -> None:
    """The vocabulary lists npu among the device delegates once: the plan and its cells take it from there."""
    from tflite_deploy.farm.cells import expand

    keras_file(tmp_path / "a.keras", [None, 8, 8, 1])
    plan = load_plan(write(tmp_path, """
        models: {a: a.keras}
        recipes: [int8]
        targets: ["adb:PHONE1", host]
        delegates: [npu, xnnpack]
        """))
    assert plan.delegates == ("npu", "xnnpack")
    stages = expand(plan, plan.targets)
    on_phone = {c.delegate for c in stages.bench if c.target == "adb:PHONE1"}
    assert on_phone == {"npu", "xnnpack"}
    assert [s for s in stages.skipped if "npu" in s] == ["host × npu: host takes xnnpack, none, reference"]


def test_missing_required_and_wrong_types(tmp_path: Path) -> None:
    got = problems(write(tmp_path, """
        models: [a.keras]
        targets: {host: 1}
        repeats: 1.5
        tag: [x]
        """))
    assert "'recipes' is missing" in got[1]
    assert "models" in got[1] and "must map names" in got[1]
    assert "targets" in got[2] and "must be a list" in got[2]
    assert "repeats" in got[3]
    assert "tag" in got[4]


def test_duplicates_and_yaml_syntax(tmp_path: Path) -> None:
    (tmp_path / "a.keras").write_bytes(b"x")
    got = problems(write(tmp_path, """
        models:
          a: a.keras
          a: a.keras
        recipes: [int8, int8]
        runs: 3
        runs: 4
        """))
    assert "'a' appears twice" in got[3]
    assert "listed twice" in got[4]
    assert "'runs' appears twice" in got[6]
    got = problems(write(tmp_path, "models: {a: [unclosed\n", "bad.yaml"))
    assert "not valid YAML" in next(iter(got.values()))


def test_recipe_file_problems_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "a.keras").write_bytes(b"x")
    (tmp_path / "r.yaml").write_text("recipes:\n  odd: {base: int8, wieghts: int8}\n")
    got = problems(write(tmp_path, """
        models: {a: a.keras}
        recipes: [odd]
        recipe_files: [r.yaml, nowhere.yaml]
        """))
    assert "wieghts" in got[3] and "r.yaml" in got[3]
    assert "nowhere.yaml" in got[3] or any("nowhere.yaml" in m for m in got.values())
    assert "'odd'" in got[2]  # its definition failed, so the name is unknown too


def test_dataset_that_does_not_fit_the_model(tmp_path: Path) -> None:
    keras_file(tmp_path / "big.keras", [None, 28, 28, 1])
    keras_file(tmp_path / "ok.keras", [None, 8, 8, 1])
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 5, 5, 3), np.float32))
    got = problems(write(tmp_path, """
        models:
          big: {path: big.keras, dataset: digits}
          ok: {path: ok.keras, dataset: digits}
          npz: {path: ok.keras, dataset: d.npz}
          nowhere: {path: ok.keras, dataset: no/such/folder}
        recipes: [float32]
        """))
    assert "(8, 8, 1)" in got[2] and "(28, 28, 1)" in got[2]
    assert 3 not in got
    assert "(5, 5, 3)" in got[4]
    assert "no/such/folder" in got[5]


def test_empty_dataset_split_is_a_problem(tmp_path: Path) -> None:
    keras_file(tmp_path / "ok.keras", [None, 8, 8, 1])
    np.save(tmp_path / "one.npy", np.zeros((1, 8, 8, 1), np.float32))
    got = problems(write(tmp_path, "models: {m: {path: ok.keras, dataset: 'one.npy:test'}}\nrecipes: [float32]\n"))
    assert "no samples" in got[1]


def test_fit_check_hook_for_models_read_elsewhere(tmp_path: Path) -> None:
    """A SavedModel's shape is not read without TF: a caller's probe fills the gap."""
    sm = tmp_path / "sm"
    sm.mkdir()
    (sm / "saved_model.pb").write_bytes(b"")
    p = write(tmp_path, "models: {sm: {path: sm, dataset: digits}}\nrecipes: [float32]\n")
    assert load_plan(p).models[0].name == "sm"  # nothing known: not checked
    got = problems(p, shape_probe=lambda path: ((None, 224, 224, 3), "float32"))
    assert "(224, 224, 3)" in got[1]


def test_cheap_input_shape_reads_a_real_tf_keras_file(digits_keras: Path) -> None:
    assert cheap_input_shape(digits_keras) == ((None, 8, 8, 1), "float32")


def test_resolve_all_targets_with_filters(tmp_path: Path) -> None:
    (tmp_path / "a.keras").write_bytes(b"x")
    plan = load_plan(write(tmp_path, """
        models: {a: a.keras}
        recipes: [float32]
        targets: [host, R1, {all: true, min_sdk: 30, abi: arm64-v8a}]
        """))

    class D:
        def __init__(self, serial, sdk, abis, usable=True):
            self.serial, self.sdk, self.abis, self.usable = serial, sdk, abis, usable

    devices = [D("R1", 33, ("arm64-v8a",)), D("old", 28, ("arm64-v8a",)), D("x86", 33, ("x86_64",)),
               D("new", 34, ("arm64-v8a", "armeabi-v7a")), D("off", 34, ("arm64-v8a",), usable=False)]
    got = resolve_targets(plan, lambda server: devices)
    assert [t.name for t in got] == ["host", "adb:R1", "adb:new"]
    assert TargetSpec("all", min_sdk=30).accepts(None, ()) is False


def test_farm_never_imports_tensorflow(tmp_path: Path) -> None:
    code = ("import sys; import tflite_deploy.farm.plan, tflite_deploy.farm.cells, tflite_deploy.farm.scheduler, "
            "tflite_deploy.farm.leases, tflite_deploy.farm.security, tflite_deploy.cli.farm, distributed; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'keras')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def test_bad_preprocess_values_are_listed_with_their_lines(tmp_path: Path) -> None:
    """The plan reads preprocessing with the same parser as the CLI: each wrong value on its own line."""
    keras_file(tmp_path / "a.keras", [None, 8, 8, 1])
    got = problems(write(tmp_path, """
        models:
          a:
            path: a.keras
            preprocess:
              size: [8, 8, 1]
              std: [0.5, 0]
              layout: HWC
        recipes: [float32]
        """))
    assert got[5].startswith("models.a.preprocess.size: takes HEIGHT,WIDTH or one number")
    assert got[6] == "models.a.preprocess.std: must not contain 0, as [0.5, 0] does"
    assert got[7] == "models.a.preprocess.layout: takes NHWC or NCHW, not 'HWC'"


def test_bench_settings_live_in_the_plan_and_are_checked_with_lines(tmp_path: Path) -> None:
    keras_file(tmp_path / "a.keras", [None, 8, 8, 1])
    (tmp_path / "benchmark_model").write_text("#!/bin/sh\n")
    good = load_plan(write(tmp_path, """
        models: {a: a.keras}
        recipes: [float32]
        targets: ['adb://127.0.0.1:5037/R58M']
        bench:
          benchmark_binary: benchmark_model
          runtime: tflite
          timeout: 120
          gpu_precision: fp32
          cooldown: 2.5
          pin_big_cores: true
        """))
    assert dict(good.bench) == {"tool": str(tmp_path / "benchmark_model"), "runtime": "tflite", "timeout": 120.0,
                                "gpu_precision": "fp32", "cooldown": 2.5, "pin_big_cores": True}
    from tflite_deploy.farm.cells import expand

    cell = expand(good, good.targets, versions={}).bench[0]
    assert dict(cell.options) == dict(good.bench)
    bad = write(tmp_path, """
        models: {a: a.keras}
        recipes: [float32]
        targets: ['adb://127.0.0.1/R58M']
        bench:
          benchmark_binary: nowhere/benchmark_model
          runtime: tflight
          timeout: -1
          gpu_precision: fp8
          pin_big_cores: maybe
          colour: red
        """, "bad.yaml")
    got = problems(bad)
    assert "names no port" in got[3] and "adb://127.0.0.1:5037/R58M" in got[3]
    assert "bench.benchmark_binary" in got[5] and "does not exist" in got[5]
    assert "bench.runtime" in got[6] and "'tflight'" in got[6]
    assert "bench.timeout" in got[7]
    assert "bench.gpu_precision" in got[8] and "fp16, fp32" in got[8]
    assert "bench.pin_big_cores" in got[9] and "true or false" in got[9]
    assert "unknown key 'colour'" in got[10]
