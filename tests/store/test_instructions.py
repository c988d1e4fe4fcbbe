"""Instructions per invoke under callgrind: the same in every process, and a heavier model counts more;
compare judges them with a tight threshold."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tflite_deploy.cli import app
from tflite_deploy.envelope import items_of

runner = CliRunner()
pytestmark = pytest.mark.skipif(shutil.which("valgrind") is None or not Path("/usr/include/valgrind/callgrind.h").is_file(),
                                reason="valgrind with callgrind.h is not installed")


@pytest.mark.slow  # three processes under valgrind (~50x slower): 1-3 min each on a loaded 2-core machine
def test_counts_repeat_exactly_across_processes_and_see_a_heavier_model(versions: dict, tmp_path: Path) -> None:
    from tflite_deploy.benchmark.instructions import count_instructions

    a, b = (count_instructions(versions["v1"], invokes=2) for _ in range(2))
    assert a.per_invoke > 1e6 and abs(a.per_invoke - b.per_invoke) / a.per_invoke < 0.001, (a, b)
    store = tmp_path / "s.db"
    path = tmp_path / "out" / "conv.float32.tflite"
    path.parent.mkdir()
    for tag, version in (("base", "v1"), ("new", "v2")):  # v2: a 70x70 input, ~20% more work
        shutil.copyfile(versions[version], path)
        r = runner.invoke(app, ["bench", str(path), "--runs", "10", "--min-seconds", "0.05", "--measure",
                                "instructions", "--store", str(store), "--tag", tag])
        assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["compare", "base", "new", "--store", str(store), "--json", "--no-confirm"])
    (doc,) = items_of(json.loads(r.stdout), "compare")
    (cell,) = doc["cells"]
    assert cell["base_instructions"] == pytest.approx(a.per_invoke, rel=0.001), cell
    assert cell["new_instructions"] / cell["base_instructions"] > 1.1 and cell["instructions"] == "more instructions"
    assert r.exit_code == 1 and "more instructions" in cell["verdict"], cell
    r = runner.invoke(app, ["bench", str(path), "--measure", "cycles"])
    assert r.exit_code == 2 and "--measure is time or instructions" in r.output, r.output
