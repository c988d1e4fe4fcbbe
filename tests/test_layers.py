"""House rules that hold for the whole package: one-way layers (import-linter), a light public API."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = str(Path(sys.executable).parent / "lint-imports")


def _lint(where: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(where), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"}
    return subprocess.run([LINT, "--no-cache"], cwd=where, env=env, capture_output=True, text=True, timeout=300)


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "tflite_deploy", tmp_path / "tflite_deploy",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_import_contracts_hold():
    p = _lint(ROOT)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "3 kept, 0 broken" in p.stdout


def test_contract_catches_tensorflow_in_the_tflite_reader(tmp_path):
    copy = _copy(tmp_path)
    reader = copy / "tflite_deploy" / "tflite" / "reader.py"
    reader.write_text(reader.read_text() + "\n\ndef _sneaky():\n    import tensorflow  # noqa: F401\n")
    p = _lint(copy)
    assert p.returncode != 0
    assert "never import TensorFlow BROKEN" in p.stdout and "-> tensorflow" in p.stdout


def test_contract_catches_an_upward_import_and_a_circle(tmp_path):
    copy = _copy(tmp_path)
    recipes = copy / "tflite_deploy" / "recipes.py"  # vocabulary reaching up into a verb: the old circle
    recipes.write_text(recipes.read_text() + "\n\ndef _up():\n    from tflite_deploy import conversion  # noqa: F401\n")
    p = _lint(copy)
    assert p.returncode != 0
    assert "Layers point down" in p.stdout and "BROKEN" in p.stdout
    assert "No import circles between the modules of a package BROKEN" in p.stdout


def test_public_api_is_lazy_and_not_shadowed_by_modules():
    code = ("import sys, tflite_deploy as td\n"
            "names = [td.convert, td.evaluate, td.bench, td.inspect_model, td.optimize, td.demo, td.open_dataset,\n"
            "         td.load_recipes, td.Recipe, td.Artifact, td.Result, td.ProgressEvent]\n"
            "print('TF' if 'tensorflow' in sys.modules else 'NO-TF')\n"
            "import tflite_deploy.conversion.run, tflite_deploy.evaluation.run, tflite_deploy.benchmark.host\n"
            "import tflite_deploy.optimization.run, tflite_deploy.sources.demo\n"
            "print(all(callable(getattr(td, n)) and getattr(td, n).__module__ == 'tflite_deploy.api'\n"
            "          for n in ('convert', 'evaluate', 'bench', 'optimize', 'demo')))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["NO-TF", "True"]
