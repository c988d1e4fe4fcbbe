"""Where a farm run writes each cell's outcome as it completes, and reads them back to resume.

A cell's Results carry its id in ``settings["farm_cell"]``, so a resumed run knows which cells are
finished from the records alone. Finished: an eval or bench cell that ended ``ok`` or ``failed``
(a failed cell is stored as a ``failed`` Result, so ``compare`` sees it; results are never
overwritten). Not finished, so run again on resume: cells never reached (the run was killed),
``not-run`` cells (a phone whose worker left), a cell that failed because its phone was lost
(``fault`` :data:`PHONE_LOST`: nothing was measured) and convert cells, which the artifact cache
answers.

- :class:`StoreRecord`: the results store (one store run per farm run; ``--resume`` takes its id).
- :class:`JsonLinesRecord` (``--no-store``): ``OUT/RUN_ID/cells.jsonl``, one line per cell, appended
  and flushed as the cell completes (a line torn by a kill is ignored on resume).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional, Protocol, Sequence

from tflite_deploy.errors import UserError
from tflite_deploy.result import Result

CELL_KEY = "farm_cell"  # Result.settings key holding the farm cell id
FINISHED = ("ok", "failed", "unavailable")  # a delegate the phone lacks was measured as absent: done
#: ``Result.fault`` of a cell that failed because its phone was lost (dropped for good, frozen,
#: locked): nothing was measured, so a resumed run runs it again, as it does the phone's not-run cells
PHONE_LOST = "phone-lost"


class RunRecord(Protocol):
    """Where a farm run's cells go: :class:`StoreRecord` (the results store) or :class:`JsonLinesRecord`."""

    run_id: str

    @property
    def tag(self) -> Optional[str]: ...

    def add(self, record: "CellRecord") -> None:
        """Keep one cell's outcome now (a kill later must not lose it)."""

    def finished(self) -> set[str]:
        """The ids of the cells a resumed run need not run again."""

    def results(self) -> list[Result]: ...

    def close(self) -> None: ...


def counts_as_finished(r: Result) -> bool:
    return r.status in FINISHED and r.fault != PHONE_LOST


def tag_results(results: Sequence[Result], cell_id: str, run_id: str) -> list[Result]:
    """The cell's Results with its id (and the farm run's) in their settings."""
    return [replace(r, settings={**r.settings, CELL_KEY: cell_id, "farm_run": run_id}) for r in results]


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


@dataclass(frozen=True)
class CellRecord:
    """One line of a run's record."""

    cell_id: str
    stage: str
    status: str  # ok | failed | not-run
    error: Optional[str] = None
    seconds: float = 0.0
    worker: Optional[str] = None
    results: tuple[Result, ...] = ()
    target: str = "host"  # where it ran: convert and eval cells run on the host
    attempts: int = 1  # more than one: a transient fault (a dropped adb link) was retried

    def to_dict(self) -> dict[str, Any]:
        return {"cell_id": self.cell_id, "stage": self.stage, "status": self.status, "error": self.error,
                "seconds": round(self.seconds, 3), "worker": self.worker,
                "target": self.target, "attempts": self.attempts, "results": [r.to_dict() for r in self.results]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CellRecord":
        return cls(d["cell_id"], d["stage"], d["status"], d.get("error"), d.get("seconds", 0.0), d.get("worker"),
                   tuple(Result.from_dict(r) for r in d.get("results") or ()), d.get("target", "host"),
                   d.get("attempts", 1))


class JsonLinesRecord:
    """``OUT/RUN_ID/cells.jsonl`` (plus ``run.json``: tag, argv, start time)."""

    def __init__(self, out_dir: Path, run_id: str) -> None:
        self.run_id = run_id
        self.folder = Path(out_dir) / run_id
        self.path = self.folder / "cells.jsonl"

    @classmethod
    def start(cls, out_dir: Path, tag: str, argv: Sequence[str]) -> "JsonLinesRecord":
        rec = cls(out_dir, new_run_id())
        rec.folder.mkdir(parents=True, exist_ok=False)
        (rec.folder / "run.json").write_text(json.dumps(
            {"run_id": rec.run_id, "tag": tag, "argv": list(argv),
             "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=2) + "\n")
        rec.path.touch()
        return rec

    @classmethod
    def resume(cls, out_dir: Path, run_id: str) -> "JsonLinesRecord":
        rec = cls(out_dir, run_id)
        if not rec.path.is_file():
            raise UserError(f"resume={run_id}: there is no farm run {run_id} in {out_dir} "
                            f"(no {rec.path}). Resume with the output folder of the first run.", param="resume")
        return rec

    @property
    def tag(self) -> Optional[str]:
        try:
            return json.loads((self.folder / "run.json").read_text()).get("tag")
        except (OSError, ValueError):
            return None

    def add(self, record: CellRecord) -> None:
        line = json.dumps(record.to_dict(), separators=(",", ":")) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def records(self) -> list[CellRecord]:
        """Every complete line; a line torn by a kill is skipped. Later lines win for one cell."""
        out: dict[str, CellRecord] = {}
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                try:
                    rec = CellRecord.from_dict(json.loads(line))
                except (ValueError, KeyError, TypeError):
                    continue
                out[rec.cell_id] = rec
        return list(out.values())

    def finished(self) -> set[str]:
        return {r.cell_id for r in self.records() if r.status in FINISHED and r.stage != "convert"
                and all(counts_as_finished(x) for x in r.results)}

    def results(self) -> list[Result]:
        return [res for r in self.records() for res in r.results]

    def close(self) -> None:
        """Nothing stays open: every line is written and flushed as its cell completes."""


class StoreRecord:
    """One run in the results store; every cell's Results committed as the cell completes."""

    def __init__(self, store: Any, run: int) -> None:
        self.store, self.run = store, run
        self.run_id = str(run)
        self._artifacts: dict[str, int] = {}

    @classmethod
    def start(cls, store_url: Optional[str], tag: str, argv: Sequence[str]) -> "StoreRecord":
        from tflite_deploy.store import open_store

        store = open_store(store_url)
        return cls(store, store.start_run(tag=tag, argv=list(argv)))

    @classmethod
    def resume(cls, store_url: Optional[str], run_id: str) -> "StoreRecord":
        from tflite_deploy.store import open_store

        store = open_store(store_url, create=False)
        if not run_id.isdigit() or store.run(int(run_id)) is None:
            store.close()
            raise UserError(f"resume={run_id}: results store {store.name} has no run {run_id} "
                            "(the id the farm run printed when it started).", param="resume")
        return cls(store, int(run_id))

    @property
    def tag(self) -> Optional[str]:
        return (self.store.run(self.run) or {}).get("tag")

    def add(self, record: CellRecord) -> None:
        for r in record.results:
            aid = self._artifacts.get(r.artifact)
            if aid is None and r.artifact.endswith(".tflite") and Path(r.artifact).is_file():
                aid = self._artifacts[r.artifact] = self.store.add_artifact_file(r.artifact)
            self.store.add_result(self.run, r, artifact_id=aid)

    def finished(self) -> set[str]:
        return {cid for r in self.store.results(self.run) if counts_as_finished(r)
                and (cid := r.settings.get(CELL_KEY))}

    def results(self) -> list[Result]:
        return self.store.results(self.run)

    def close(self) -> None:
        self.store.close()
