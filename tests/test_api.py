"""The public Python API: the README's example runs and makes the CLI's bytes; every --json is one envelope."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

from typer.testing import CliRunner

from tflite_deploy.cli import app
from tflite_deploy.envelope import items_of

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def readme_api_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_python_api_example_runs_and_makes_the_cli_files(digits_keras, tmp_path, monkeypatch, capsys):
    work = tmp_path / "api"
    work.mkdir()
    shutil.copy(digits_keras, work / "digits_cnn.keras")
    monkeypatch.chdir(work)
    exec(compile(readme_api_example(), "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "convert: 3/3" in printed and "int8-pt" in printed  # progress events and the artifacts
    made = sorted((work / "out").glob("*.tflite"))
    assert [p.name for p in made] == ["digits_cnn.float16.tflite", "digits_cnn.int8-pt.tflite",
                                      "digits_cnn.int8.tflite"]

    recipes = tmp_path / "r.yaml"
    recipes.write_text("recipes:\n  int8-pt:\n    base: int8\n    per_channel: false\n")
    r = cli("convert", work / "digits_cnn.keras", "-r", "int8", "-r", "float16", "-r", "int8-pt", "-f", recipes,
            "-d", "digits:train", "-o", tmp_path / "cli")
    assert r.exit_code == 0, r.output
    for p in made:
        assert (tmp_path / "cli" / p.name).read_bytes() == p.read_bytes(), p.name


def farm_plan(tmp: Path, model: Path, variants: dict) -> Path:
    """A one-cell farm plan (float32 on the host), its conversion already in the cache."""
    from tflite_deploy.farm.cells import expand
    from tflite_deploy.farm.plan import load_plan

    plan = tmp / "farm.yaml"
    plan.write_text(f"models: {{m: {model}}}\nrecipes: [float32]\ntargets: [host]\ndelegates: [xnnpack]\n"
                    f"runs: 5\nwarmup: 1\ntag: t\ncache: {tmp / 'cache'}\n")
    p = load_plan(plan)
    for cell in expand(p, p.targets).convert:
        cell.artifact.parent.mkdir(parents=True)
        shutil.copy(variants[cell.recipe.name].path, cell.artifact)
    return plan


def test_every_json_command_prints_the_one_envelope(digits_keras, digits_variants, adb_device, tmp_path,
                                                    benchmark_binary):
    tool = benchmark_binary
    int8 = digits_variants["int8"].path
    log = ROOT / "tests" / "data" / "benchmark_logs" / "tf2_cpu_memory_delta.txt"
    commands = {
        "recipes": ["recipes"],
        "convert": ["convert", digits_keras, "-r", "float32", "-o", tmp_path / "c"],
        "inspect": ["inspect", int8],
        "eval": ["eval", digits_keras, int8, "-d", "digits:test", "--limit", "50"],
        "bench": ["bench", int8, "--runs", "5", "--warmup", "1", "--min-seconds", "0"],
        "devices": ["devices"],
        "parse-log": ["parse-log", log],
        "optimize": ["optimize", digits_keras, "-t", "prune", "-d", "digits:train", "-e", "1", "-o", tmp_path / "o"],
        "demo": ["demo", "--out", tmp_path / "d", "--epochs", "1"],
    }
    plan = farm_plan(tmp_path, digits_keras, digits_variants)
    for kind in ("farm-run", "farm-nightly"):
        commands[kind] = ["farm", kind.split("-")[1], plan, "--store", tmp_path / "farm.db", "--out", tmp_path / "f"]
    docs, exits = {}, {}
    for kind, args in commands.items():
        r = cli(*args, "--json")
        exits[kind] = r.exit_code
        if kind != "farm-nightly":  # its exit code is the verdict's: checked below
            assert r.exit_code == 0, (kind, r.output)
        doc = json.loads(r.stdout)
        assert set(doc) == {"schema", "kind", "items"} and doc["schema"] == f"tflite-deploy/{kind}/1"
        docs[kind] = items_of(doc, kind)
        assert docs[kind] and all(isinstance(i, dict) for i in docs[kind]), kind
    cells = docs["farm-run"]
    assert [(c["stage"], c["status"], c["attempts"], c["run_id"]) for c in cells] == [("bench", "ok", 1, "1")]
    assert cells[0]["results"][0]["latency"]["count"] >= 5
    (night,) = docs["farm-nightly"]
    assert night["run_id"] == "2" and night["failed_cells"] == 0
    # one 5-run host measurement against another: noise may or may not cross the band; the exit code says which
    assert exits["farm-nightly"] == (1 if night["regressions"] else 0)
    assert night["comparison"]["cells"] and Path(night["report"]).is_file()
    # the device run (fake adb endpoint) gives the same envelope, and a Result filled like a host one
    r = cli("bench", int8, "--device", adb_device.serial, "--runs", "7", "--min-seconds", "0",
            "--benchmark-binary", tool, "--json")
    assert r.exit_code == 0, r.output
    (device,) = items_of(json.loads(r.stdout), "bench")
    (host,) = docs["bench"]
    assert device["status"] == "ok" and device["target"] == f"adb:{adb_device.serial}"
    assert device["recipe"] == host["recipe"] == "int8"
    assert device["artifact_sha256"] == host["artifact_sha256"] == hashlib.sha256(int8.read_bytes()).hexdigest()
    assert device["settings"]["runs"] == device["latency"]["count"] and device["settings"]["requested_runs"] == 7
    assert host["settings"]["runs"] == host["latency"]["count"] >= 5
