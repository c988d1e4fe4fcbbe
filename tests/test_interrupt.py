"""Ctrl-C (a real SIGINT to the command's whole process group, as a terminal sends it) on ``farm run``,
``bench`` and ``compare --confirm``: one line that says how to go on, no traceback, what finished is kept."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tflite_deploy.farm.cells import expand
from tflite_deploy.farm.plan import load_plan
from tflite_deploy.store import open_store

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from tflite_deploy.cli import main; main()"]
RECIPES = ["float32", "float16", "int8", "dynamic"]


def interrupt(args: list[str], cwd: Path, ready, timeout: float = 300) -> subprocess.CompletedProcess:
    """Start ``args``; once ``ready()`` is true, SIGINT its process group (what Ctrl-C does); wait for it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None and not ready():
            time.sleep(0.2)
        assert proc.poll() is None, "it finished before it could be interrupted: " + proc.stderr.read()
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def assert_one_line(r: subprocess.CompletedProcess, resume_hint: str) -> None:
    assert r.returncode == 130, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and "KeyboardInterrupt" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "interrupted" in ln]
    assert len(lines) == 1 and resume_hint in lines[0], r.stderr
    assert "Error" not in r.stderr and "WARNING" not in r.stderr and "Exception" not in r.stderr, r.stderr


def stored(db: Path) -> list:
    if not db.is_file():
        return []
    try:
        with open_store(db, create=False) as st:
            return [r for run in st.runs() for r in st.results(run["id"])]
    except Exception:  # the store is being created by the run
        return []


def host_plan(tmp_path: Path, digits_keras: Path, digits_variants: dict) -> Path:
    """Four host bench cells of about a second each; their conversions already in the cache."""
    plan = tmp_path / "plan.yaml"
    plan.write_text(textwrap.dedent(f"""\
        models:
          m: {{path: {digits_keras}}}
        recipes: [{', '.join(RECIPES)}]
        targets: [host]
        delegates: [xnnpack]
        runs: 5
        cache: {tmp_path / 'cache'}
        """))
    p = load_plan(plan)
    for cell in expand(p, p.targets).convert:  # converted already: the bench cells take a second each
        cell.artifact.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(digits_variants[cell.recipe.name].path, cell.artifact)
    return plan


@pytest.mark.slow
def test_ctrl_c_on_farm_run_says_how_to_resume_and_keeps_finished_cells(tmp_path: Path, digits_keras: Path,
                                                                       digits_variants: dict) -> None:
    plan = host_plan(tmp_path, digits_keras, digits_variants)
    db = tmp_path / "s.db"
    r = interrupt([*CLI, "farm", "run", str(plan), "--store", str(db)], tmp_path, lambda: len(stored(db)) >= 2)
    assert_one_line(r, "--resume 1")
    kept = stored(db)
    assert len(kept) >= 2 and all(x.status == "ok" for x in kept)
    again = subprocess.run([*CLI, "farm", "run", str(plan), "--store", str(db), "--resume", "1"], cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    cells = [x.settings["farm_cell"] for x in stored(db)]
    assert len(cells) == len(set(cells)) == len(RECIPES), cells  # every cell once: none run twice


def test_ctrl_c_on_bench_keeps_the_results_already_measured(tmp_path: Path, digits_variants: dict) -> None:
    models = [str(digits_variants[r].path) for r in RECIPES]
    db = tmp_path / "s.db"
    r = interrupt([*CLI, "bench", *models, "--repeat", "10", "--min-seconds", "1", "--store", str(db)], tmp_path,
                  lambda: len(stored(db)) >= 1)
    assert_one_line(r, "run the command again")
    kept = stored(db)
    assert 1 <= len(kept) < len(models) and all(x.status == "ok" for x in kept)
    assert f"the {len(kept)} result(s) finished before it are kept" in r.stderr


def test_ctrl_c_on_compare_confirm_says_nothing_changed(tmp_path: Path, digits_variants: dict) -> None:
    db = tmp_path / "s.db"
    models = [str(digits_variants[r].path) for r in RECIPES[:2]]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(2):
        subprocess.run([*CLI, "bench", *models, "--runs", "20", "--store", str(db)], cwd=tmp_path, env=env,
                       check=True, capture_output=True, timeout=300)
    before = len(stored(db))
    started = time.monotonic()
    r = interrupt([*CLI, "compare", "1", "2", "--store", str(db), "--confirm", "--repeat", "500"], tmp_path,
                  lambda: time.monotonic() - started > 6)
    assert_one_line(r, "with --no-confirm")
    assert len(stored(db)) == before


@pytest.mark.slow
def test_kill_9_on_farm_run_leaves_no_foreign_warning(tmp_path: Path, digits_keras: Path,
                                                      digits_variants: dict) -> None:
    """Python's resource tracker outlives a SIGKILLed run and used to warn of "leaked semaphore objects"."""
    plan = host_plan(tmp_path, digits_keras, digits_variants)
    db = tmp_path / "s.db"
    proc = subprocess.Popen([*CLI, "farm", "run", str(plan), "--store", str(db)], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None and len(stored(db)) < 1:
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)  # the run alone: its workers and the tracker see it die
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert "leaked" not in err and "resource_tracker" not in err and "Traceback" not in err, err


def test_the_resume_line_is_the_same_command_with_resume() -> None:
    from tflite_deploy.cli.farm import interrupted_line

    line = interrupted_line("12", ["x", "farm", "run", "my plan.yaml", "--resume", "9", "--store", "s.db"])
    assert line == ("interrupted; resume with: tflite-deploy farm run 'my plan.yaml' --store s.db --resume 12 "
                    "(finished cells are kept)")
    assert "nothing was recorded" in interrupted_line(None, ["x", "farm", "run", "p.yaml"])
