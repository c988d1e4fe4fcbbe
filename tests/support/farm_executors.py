"""Stand-in cell executors for the farm tests (importable by Dask workers and isolated children)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tflite_deploy.farm.scheduler import ResourceLost, TransientError


def record(cell):
    """Succeeds at once, saying where it ran."""
    return {"cell": cell.cell_id, "pid": os.getpid(), "start": time.time()}


def make_sleeper(seconds: float):
    def sleeper(cell):
        start = time.time()
        time.sleep(seconds)
        return {"cell": cell.cell_id, "target": cell.target, "start": start, "end": time.time()}
    return sleeper


def crash_on(recipes_to_kill: dict):
    """Kills its own process for the named recipes: {"int8": "exit"} (os._exit(1)) or "abort"."""
    def executor(cell):
        how = recipes_to_kill.get(cell.recipe.name)
        if cell.stage == "convert" and how == "exit":
            os._exit(1)
        if cell.stage == "convert" and how == "abort":
            os.abort()
        if cell.stage == "convert" and how == "raise":
            raise ValueError("converter said no")
        return record(cell)
    return executor


def flaky(counter_dir: str, failures: int):
    """Raises TransientError the first ``failures`` times per cell, then succeeds."""
    def executor(cell):
        marker = Path(counter_dir) / cell.cell_id.replace("/", "_")
        n = int(marker.read_text()) if marker.exists() else 0
        marker.write_text(str(n + 1))
        if n < failures:
            raise TransientError(f"adb: device offline (attempt {n + 1})")
        return {"attempts": n + 1}
    return executor


def lose_phone(serial: str, how: str):
    """Cells on phone ``serial`` fail as a lost phone does: ``"frozen"`` (ResourceLost at once) or
    ``"gone"`` (TransientError every time, until the retries run out); other cells succeed."""
    def executor(cell):
        if cell.resource == f"phone-{serial}":
            if how == "frozen":
                raise ResourceLost(f"phone {serial} stopped answering")
            raise TransientError(f"adb: device '{serial}' not found")
        return record(cell)
    return executor


class AbortOnRecipe:
    """The real farm executor, except that converting ``recipe`` aborts the process (a converter crash)."""

    def __init__(self, recipe: str):
        from tflite_deploy.farm.run import CellExecutor

        self.recipe, self.real = recipe, CellExecutor()

    def __call__(self, cell):
        import os

        if cell.stage == "convert" and cell.recipe.name == self.recipe:
            os.abort()
        return self.real(cell)
