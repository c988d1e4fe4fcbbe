"""Every tools/ script still runs its --help, and every tflite_deploy name it imports (top level or
inside a function) exists: nothing runs the benchmarks in CI, so a rename must break a test here."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

TOOLS = sorted((Path(__file__).resolve().parent.parent / "tools").glob("*.py"))


def _project_imports(script: Path) -> list[tuple[str, str | None]]:
    """(module, name) for every ``from tflite_deploy... import name`` / ``import tflite_deploy...``."""
    out: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(script.read_text(), str(script))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tflite_deploy":
            out += [(node.module, a.name) for a in node.names]
        elif isinstance(node, ast.Import):
            out += [(a.name, None) for a in node.names if a.name.split(".")[0] == "tflite_deploy"]
    return out


@pytest.mark.parametrize("script", TOOLS, ids=[p.name for p in TOOLS])
def test_every_project_import_of_a_tool_resolves(script):
    imports = _project_imports(script)
    for module, name in imports:
        mod = importlib.import_module(module)
        if name is not None and not hasattr(mod, name):
            importlib.import_module(f"{module}.{name}")  # a submodule; raises if it is not one either


@pytest.mark.parametrize("script", TOOLS, ids=[p.name for p in TOOLS])
def test_every_tool_answers_help(script):
    p = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "usage" in (p.stdout + p.stderr).lower()


def test_the_import_check_catches_a_moved_module(tmp_path):
    script = tmp_path / "old.py"
    script.write_text("def f():\n    from tflite_deploy.convert import convert\n")
    with pytest.raises(ModuleNotFoundError):
        test_every_project_import_of_a_tool_resolves(script)
