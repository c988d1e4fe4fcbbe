"""Write what a measuring command finds to the results store as each piece completes.

``convert``, ``evaluate``, ``bench`` and ``parse_logs`` of :mod:`tflite_deploy.api` take
``store=`` (a path, a SQLAlchemy URL, or True for ``$TFLITE_DEPLOY_STORE`` / ``./tflite-deploy.db``)
and ``tag=``; they open a :class:`Recorder` and hand it every Result (and Artifact) the moment it
is finished. Each write is its own transaction, so a crash or ``kill -9`` half-way through keeps
every finished result and never leaves half a row.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from tflite_deploy.result import Result

StoreSpec = Union[str, Path, bool, None]


class Recorder:
    """One run in the store; :meth:`result` and :meth:`artifact` commit at once."""

    def __init__(self, store: StoreSpec, tag: Optional[str] = None, argv: Optional[Sequence[str]] = None):
        from tflite_deploy.store import open_store

        self._store = open_store(None if store is True else store)
        self.name = self._store.name
        self._tag, self._argv = tag, list(sys.argv if argv is None else argv)
        self.run_id: Optional[int] = None  # started with the first result: a refused command records no run
        self.count = 0
        self._artifacts: dict[str, int] = {}
        self._lock = threading.Lock()  # device runs report from one thread per device

    def artifact(self, path: Union[str, Path]) -> Optional[int]:
        """The artifact row of a .tflite on disk (recorded once per run), None for anything else."""
        key = str(path)
        if key not in self._artifacts:
            if not (key.endswith(".tflite") and Path(key).is_file()):
                return None
            self._artifacts[key] = self._store.add_artifact_file(key)
        return self._artifacts[key]

    def result(self, r: Result) -> Result:
        with self._lock:
            if self.run_id is None:
                self.run_id = self._store.start_run(tag=self._tag, argv=self._argv)
            aid = self.artifact(r.artifact)
            if aid is not None and not r.artifact_sha256:  # e.g. eval rows: name the bytes that were kept
                r = replace(r, artifact_sha256=self._store.kept_sha.get(str(r.artifact)))
            self._store.add_result(self.run_id, r, artifact_id=aid)
            self.count += 1
        return r

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open_recorder(store: StoreSpec, tag: Optional[str] = None) -> Optional[Recorder]:
    """A Recorder, or None when ``store`` is None/False (no store wanted)."""
    if store is None or store is False:
        return None
    return Recorder(store, tag)


def conversion_failure_result(failure: Any, out: Union[str, Path]) -> Result:
    """A ``failed`` convert record for a recipe that made no file (its reason as the error)."""
    return Result(kind="convert", artifact=str(Path(out) / f"{failure.model}.{failure.recipe}.tflite"),
                  runner="converter", delegate="-", recipe=failure.recipe, status="failed", error=failure.reason,
                  metrics={"seconds": round(failure.seconds, 3)})


def conversion_result(artifact: Any) -> Result:
    """A ``convert`` record for an Artifact: its sizes and how long the conversion took."""
    return Result(kind="convert", artifact=str(artifact.path), runner="converter", delegate="-",
                  recipe=artifact.recipe, artifact_sha256=(artifact.meta.get("tflite") or {}).get("sha256"),
                  settings={"size_bytes": artifact.size_bytes, "gzip_bytes": artifact.gzip_bytes},
                  metrics={"seconds": round(artifact.seconds, 3)})
