"""The results store: runs, artifacts and results, one committed transaction per write.

Every write is its own short transaction, so a process killed in the middle of a multi-model run
leaves every result it finished and never half a row (SQLite and PostgreSQL both guarantee it).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import sqlalchemy as sa

from tflite_deploy.result import Result
from tflite_deploy.store import engine as _engine
from tflite_deploy.store import facts
from tflite_deploy.store.schema import artifacts, results, runs


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def model_name(artifact: str, recipe: Optional[str]) -> str:
    """The model an artifact was made from: ``MODEL.RECIPE.tflite`` -> MODEL, else the file's stem."""
    name = Path(artifact).name
    if recipe and name.endswith(f".{recipe}.tflite"):
        return name[: -len(f".{recipe}.tflite")]
    return Path(name).stem


def headline(result: Result) -> dict[str, Any]:
    """The indexed columns of a result row (everything else stays in its JSON document)."""
    lat = result.latency
    m = result.metrics or {}
    return {
        "kind": result.kind, "artifact": result.artifact, "artifact_sha256": result.artifact_sha256,
        "model": model_name(result.artifact, result.recipe), "recipe": result.recipe,
        "target": result.target, "delegate": result.delegate, "status": result.status,
        "p50_ms": lat.p50_ms if lat else None, "mean_ms": lat.mean_ms if lat else None,
        "init_ms": result.init_ms, "peak_memory_mb": result.peak_memory_mb,
        "accuracy_top1": _num(m.get("top1")), "accuracy_drop": _num(m.get("top1_drop")),
    }


def _num(v: Any) -> Optional[float]:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


class Store:
    """An open results store. Make one with :func:`tflite_deploy.store.open_store`."""

    def __init__(self, engine: sa.Engine, url: str, revision: str):
        self.engine = engine
        self._writer = _engine.writer(engine)
        self._inserts: dict[str, Any] = {}
        self._conn: Optional[sa.Connection] = None
        self.url = url
        self.revision = revision
        self.kept_sha: dict[str, str] = {}  # path -> sha256 of the bytes kept for it (blobs.py)

    @property
    def name(self) -> str:
        return _engine.describe(self.url)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.engine.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _insert(self, table: sa.Table, row: dict) -> int:
        """INSERT one row and return its id, in its own transaction (retried while SQLite is locked).

        One prebuilt statement per table with the row as parameters: SQLAlchemy compiles it once.
        """
        stmt = self._inserts.get(table.name)
        if stmt is None:
            stmt = self._inserts[table.name] = table.insert().returning(table.c.id)

        def step() -> int:
            conn = self._write_connection()
            with conn.begin():
                return int(conn.execute(stmt, row).scalar_one())
        return _engine.with_retries(step)

    def _write_connection(self) -> sa.Connection:
        """One connection kept for this store's writes: a pool checkout per result costs more than the insert."""
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = self._writer.connect()
        return self._conn

    # ---------------------------------------------------------------------------------- writes
    def start_run(self, tag: Optional[str] = None, argv: Optional[Sequence[str]] = None,
                  cwd: Optional[str | Path] = None, started_at: Optional[dt.datetime] = None) -> int:
        """Record a run (one command invocation) and return its id."""
        folder = Path(cwd or os.getcwd())
        row = {"started_at": started_at or _now(), "tag": tag, "argv": list(argv or []), "cwd": str(folder),
               "git_commit": facts.git_commit(folder), "host": facts.host_facts(),
               "versions": facts.tool_versions()}
        return self._insert(runs, row)

    def add_result(self, run_id: int, result: Result, artifact_id: Optional[int] = None) -> int:
        """Commit one result now (its own transaction); returns its row id."""
        row = {"run_id": run_id, "artifact_id": artifact_id, "created_at": _now(), **headline(result),
               "document": result.to_dict()}
        return self._insert(results, row)

    def add_results(self, run_id: int, items: Iterable[Result]) -> int:
        """Many results in one transaction (imports, tools): all or none. Returns how many."""
        rows = [{"run_id": run_id, "artifact_id": None, "created_at": _now(), **headline(r),
                 "document": r.to_dict()} for r in items]
        if rows:
            def step() -> None:
                with self._writer.begin() as conn:
                    conn.execute(results.insert(), rows)
            _engine.with_retries(step)
        return len(rows)

    def add_artifact(self, path: str | Path, sha256: str, *, model: Optional[str] = None,
                     recipe: Optional[str] = None, source_sha256: Optional[str] = None,
                     size_bytes: Optional[int] = None, gzip_bytes: Optional[int] = None,
                     sidecar: Optional[dict] = None) -> int:
        """Record an artifact once per (sha256, path); returns its id (the existing one if known)."""
        key = (artifacts.c.sha256 == sha256) & (artifacts.c.path == str(path))

        def step() -> int:
            with self._writer.begin() as conn:
                found = conn.execute(sa.select(artifacts.c.id).where(key)).scalar()
                if found is not None:
                    return int(found)
                return int(conn.execute(artifacts.insert().values(
                    path=str(path), sha256=sha256, model=model, recipe=recipe, source_sha256=source_sha256,
                    size_bytes=size_bytes, gzip_bytes=gzip_bytes, sidecar=sidecar).returning(artifacts.c.id)).scalar_one())
        return _engine.with_retries(step)

    def add_artifact_file(self, path: str | Path) -> int:
        """Record a .tflite from disk, taking recipe, source hash and sizes from its sidecar when it has one."""
        from tflite_deploy.artifact import read_sidecar
        from tflite_deploy.hashing import sha256_file

        p = Path(path)
        side = read_sidecar(p) or {}
        tfl = side.get("tflite") or {}
        sha = self.keep_bytes(p, sha256_file(p))  # the bytes on disk now, not a sidecar's word
        return self.add_artifact(
            p, sha, model=side.get("model"), recipe=side.get("recipe_name"),
            source_sha256=(side.get("source") or {}).get("sha256"),
            size_bytes=tfl.get("size_bytes", p.stat().st_size), gzip_bytes=tfl.get("gzip_bytes"),
            sidecar=side or None)

    def keep_bytes(self, path: str | Path, sha256: str) -> str:
        """Keep a .tflite's bytes in the blob folder (store/blobs.py); returns the sha256 of what was kept."""
        from tflite_deploy.store import blobs

        if not str(path).endswith(blobs.SUFFIX):
            return sha256
        sha = self.kept_sha[str(path)] = blobs.keep(path, blobs.blob_dir(self.url), sha256)
        return sha

    # ----------------------------------------------------------------------------------- reads
    def run(self, run_id: int) -> Optional[dict]:
        from tflite_deploy.store.query import as_utc

        with self.engine.connect() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
        return {**row, "started_at": as_utc(row["started_at"])} if row else None

    def runs(self, tag: Optional[str] = None, limit: Optional[int] = None) -> list[dict]:
        """Runs newest first, optionally those with one tag."""
        q = sa.select(runs).order_by(runs.c.started_at.desc(), runs.c.id.desc())
        if tag is not None:
            q = q.where(runs.c.tag == tag)
        if limit:
            q = q.limit(limit)
        from tflite_deploy.store.query import as_utc

        with self.engine.connect() as conn:
            return [{**r, "started_at": as_utc(r["started_at"])} for r in conn.execute(q).mappings()]

    def resolve_run(self, ref: str | int) -> int:
        """A run id, ``latest``, ``latest~N`` (N runs before), or a tag (its latest run)."""
        from tflite_deploy.store.query import resolve_run

        return resolve_run(self, ref)

    def results(self, run_id: Optional[int] = None, **filters: Any) -> list[Result]:
        from tflite_deploy.store.query import history

        return [Result.from_dict(row["document"]) for row in history(self, run_id=run_id, **filters)]

    def count_results(self, run_id: Optional[int] = None) -> int:
        q = sa.select(sa.func.count()).select_from(results)
        if run_id is not None:
            q = q.where(results.c.run_id == run_id)
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar_one())
