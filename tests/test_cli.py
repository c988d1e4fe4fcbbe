"""The command line: happy paths, bad input (clear message, non-zero exit, no partial file), start-up."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from typer.testing import CliRunner

from tflite_deploy.cli import app
from tflite_deploy.envelope import items_of

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_convert_several_recipes_json(digits_keras, tmp_path):
    r = run("convert", digits_keras, "-r", "float32", "-r", "int8", "-r", "float16", "--data", "digits:train",
            "--out", tmp_path, "--json")
    assert r.exit_code == 0, r.output
    rows = {a["recipe"]: a for a in items_of(json.loads(r.stdout), "convert")}
    assert set(rows) == {"float32", "int8", "float16"}
    assert rows["float32"]["ratio"] == 1.0 and rows["int8"]["ratio"] > 2.5
    assert (tmp_path / "digits_cnn.int8.tflite").is_file() and (tmp_path / "digits_cnn.int8.json").is_file()


def test_convert_table_and_user_recipe_file(digits_keras, tmp_path):
    f = tmp_path / "recipes.toml"
    f.write_text('[recipes.int8-pt]\nbase = "int8"\nper_channel = false\n')
    r = run("convert", digits_keras, "-r", "float32", "-r", "int8-pt", "-f", f, "-d", "digits:train",
            "-o", tmp_path / "out")
    assert r.exit_code == 0, r.output
    assert "int8-pt" in r.stdout and "per-tensor" in r.stdout and "x" in r.stdout
    assert (tmp_path / "out" / "digits_cnn.int8-pt.tflite").is_file()


def test_recipes_lists_presets():
    r = run("recipes", "--json")
    assert r.exit_code == 0
    items = items_of(json.loads(r.stdout), "recipes")
    assert [d["name"] for d in items][:3] == ["float32", "dynamic", "int8"]
    patterns = [d["name"] for d in items if d.get("pattern")]
    assert "prune<percent>-<preset>" in patterns and "cqat<n>-<preset>" in patterns


def _assert_clean_failure(r, out_dir, *needles):
    assert r.exit_code != 0
    message = r.stderr
    assert "Traceback" not in r.output
    for n in needles:
        assert n in message, message
    assert not list(out_dir.rglob("*.tflite")) and not list(out_dir.rglob("*.part"))


def test_missing_model(tmp_path):
    r = run("convert", tmp_path / "nope.keras", "-o", tmp_path, "-d", "digits")
    _assert_clean_failure(r, tmp_path, "nope.keras", "does not exist")


def test_non_model_file(tmp_path):
    bad = tmp_path / "model.keras"
    bad.write_text("this is not a model")
    r = run("convert", bad, "-o", tmp_path / "o", "-d", "digits")
    _assert_clean_failure(r, tmp_path, "model.keras", "not a Keras file")
    other = tmp_path / "weights.bin"
    other.write_bytes(b"\0" * 10)
    r = run("convert", other, "-o", tmp_path / "o")
    _assert_clean_failure(r, tmp_path, "weights.bin", "unsupported file type")


def test_truncated_h5_model(digits_keras, tmp_path):
    import tf_keras

    h5 = tmp_path / "m.h5"
    tf_keras.models.load_model(digits_keras, compile=False).save(h5)
    h5.write_bytes(h5.read_bytes()[:2000])
    r = run("convert", h5, "-o", tmp_path / "o", "-d", "digits")
    _assert_clean_failure(r, tmp_path, "m.h5", "could not be loaded")


def test_dataset_shape_does_not_fit(digits_keras, tmp_path):
    np.savez(tmp_path / "wrong.npz", x=np.zeros((10, 28, 28, 1), np.float32))
    r = run("convert", digits_keras, "-r", "int8", "-d", tmp_path / "wrong.npz", "-o", tmp_path / "o")
    _assert_clean_failure(r, tmp_path, "wrong.npz", "(28, 28, 1)", "(8, 8, 1)")


def test_int8_without_data(digits_keras, tmp_path):
    r = run("convert", digits_keras, "-r", "int8", "-o", tmp_path / "o")
    _assert_clean_failure(r, tmp_path, "int8", "--data")


def test_recipe_file_with_unknown_key(digits_keras, tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("recipes:\n  mine:\n    base: int8\n    calibration_sample: 10\n")
    r = run("convert", digits_keras, "-r", "mine", "-f", f, "-d", "digits", "-o", tmp_path / "o")
    _assert_clean_failure(r, tmp_path, "r.yaml", "calibration_sample")


def _modules_after(args: list[str]) -> tuple[set[str], float, int]:
    code = ("import sys, time; t = time.perf_counter(); from tflite_deploy.cli import app\n"
            "try:\n    app(%r)\nexcept SystemExit as e:\n    rc = e.code or 0\n"
            "print(time.perf_counter() - t, rc); print(' '.join(sorted(sys.modules)))" % (args,))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    lines = p.stdout.strip().splitlines()
    seconds, rc = lines[-2].split()[-2:]
    return set(lines[-1].split()), float(seconds), int(rc)


def test_help_does_not_import_tensorflow():
    modules, seconds, rc = _modules_after(["--help"])
    assert rc == 0
    assert "tensorflow" not in modules and "tf_keras" not in modules and "keras" not in modules


def test_recipes_command_does_not_import_tensorflow():
    modules, _, rc = _modules_after(["recipes"])
    assert rc == 0 and "tensorflow" not in modules


def test_console_script_starts_light():
    # what makes start-up fast is what it does not import (a wall-clock bound fails on a loaded machine)
    exe = sys.executable.replace("python", "tflite-deploy")
    p = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "tflite-deploy" in p.stdout
    modules, _, rc = _modules_after(["--version"])
    assert rc == 0 and not {"tensorflow", "tf_keras", "keras", "numpy"} & modules, sorted(modules)[:50]


def test_inspect_shows_what_the_recipes_made(digits_variants, digits_keras, tmp_path):
    """int8 weights, one scale per output channel on conv kernels (none per-tensor), I/O as the recipe says."""
    r = run("inspect", digits_variants["int8"].path, "--json")
    assert r.exit_code == 0, r.output
    (rep,) = items_of(json.loads(r.stdout), "inspect")
    assert rep["quantization"]["kind"] == "int8"
    assert [i["dtype"] for i in rep["inputs"]] == ["float32"]
    conv = [t for t in rep["per_channel_tensors"] if len(t["shape"]) == 4 and t["role"] == "weight"]
    assert conv and all(t["num_scales"] == t["shape"][t["quantized_dimension"]] for t in conv)
    assert {w["dtype"] for w in rep["quantization"]["weight_dtypes"] if w["role"] == "weight"} == {"int8"}
    (io,) = items_of(json.loads(run("inspect", digits_variants["int8-io"].path, "--json").stdout), "inspect")
    assert [i["dtype"] for i in io["inputs"] + io["outputs"]] == ["int8", "int8"]
    pt = tmp_path / "pt"
    f = tmp_path / "r.yaml"
    f.write_text("recipes:\n  int8-pt:\n    base: int8\n    per_channel: false\n")
    assert run("convert", digits_keras, "-r", "int8-pt", "-f", f, "-d", "digits:train", "-o", pt).exit_code == 0
    (per_tensor,) = items_of(json.loads(run("inspect", pt / "digits_cnn.int8-pt.tflite", "--json").stdout),
                             "inspect")
    assert per_tensor["per_channel_tensors"] == [] and per_tensor["quantization"]["kind"] == "int8"
    table = run("inspect", digits_variants["int8"].path)
    assert table.exit_code == 0 and "Per-channel" in table.stdout and "XNNPACK" in table.stdout


def test_inspect_bad_files(tmp_path, digits_variants):
    data = digits_variants["int8"].path.read_bytes()
    (tmp_path / "cut.tflite").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.tflite").write_text("hello, not a model")
    for name in ("cut.tflite", "text.tflite", "missing.tflite"):
        r = run("inspect", tmp_path / name)
        assert r.exit_code != 0 and name in r.stderr and "Traceback" not in r.output


def test_inspect_does_not_import_tensorflow(digits_variants):
    modules, seconds, rc = _modules_after(["inspect", str(digits_variants["int8"].path), "--json"])
    assert rc == 0 and "tensorflow" not in modules


def test_demo_end_to_end(tmp_path):
    r = run("demo", "--out", tmp_path, "--epochs", "8", "--json")
    assert r.exit_code == 0, r.output
    items = items_of(json.loads(r.stdout), "demo")
    recipes = [i["recipe"] for i in items]
    assert recipes == ["float32", "dynamic", "int8", "int8-io", "float16", "int16x8"]
    assert [i["artifact"]["recipe"] for i in items] == recipes
    evals = [i["eval"] for i in items]
    assert all(e["metrics"]["role"] == "variant" and e["metrics"]["reference"].endswith("digits_cnn.keras")
               for e in evals)
    assert all("top1_drop_ci95" in e["metrics"] for e in evals)
    assert [i["bench"]["recipe"] for i in items] == recipes and all(i["bench"]["status"] == "ok" for i in items)
    assert (tmp_path / "digits_cnn.keras").is_file()
