"""Reading the store back: which run a reference names, and filtered history."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Optional

import sqlalchemy as sa

from tflite_deploy.result import Result
from tflite_deploy.store.engine import StoreError
from tflite_deploy.store.schema import artifacts, results, runs

RUN_COLUMNS = ("id", "started_at", "tag", "git_commit", "argv", "cwd")
HISTORY_COLUMNS = ("result_id", "run_id", "started_at", "tag", "kind", "model", "recipe", "target",
                   "delegate", "status", "p50_ms", "mean_ms", "init_ms", "peak_memory_mb",
                   "accuracy_top1", "accuracy_drop", "size_bytes", "gzip_bytes", "artifact")


def resolve_run(store: Any, ref: str | int) -> int:
    """A run id, ``latest`` / ``latest~N``, or a tag (its latest run). Unknown: :class:`StoreError`."""
    text = str(ref).strip()
    with store.engine.connect() as conn:
        if text.isdigit():
            if conn.execute(sa.select(runs.c.id).where(runs.c.id == int(text))).scalar() is None:
                raise StoreError(f"Results store {store.name} has no run {text}.")
            return int(text)
        m = re.fullmatch(r"latest(?:~(\d+))?", text)
        q = sa.select(runs.c.id).order_by(runs.c.started_at.desc(), runs.c.id.desc())
        if m:
            back = int(m.group(1) or 0)
            found = conn.execute(q.offset(back).limit(1)).scalar()
            if found is None:
                raise StoreError(f"Results store {store.name} has fewer than {back + 1} runs ({text!r}).")
            return int(found)
        found = conn.execute(q.where(runs.c.tag == text).limit(1)).scalar()
        if found is None:
            tags = conn.execute(sa.select(runs.c.tag).where(runs.c.tag.is_not(None)).distinct().limit(10)).scalars().all()
            raise StoreError(f"Results store {store.name} has no run tagged {text!r} (a run id, a tag or "
                             f"'latest' is expected; tags there: {', '.join(sorted(tags)) or 'none'}).")
        return int(found)


def parse_time(text: Optional[str], option: str) -> Optional[dt.datetime]:
    """ISO date/time (UTC when no zone), or a relative ``7d`` / ``12h``."""
    if not text:
        return None
    m = re.fullmatch(r"(\d+)([dhm])", text.strip())
    if m:
        unit = {"d": "days", "h": "hours", "m": "minutes"}[m.group(2)]
        return dt.datetime.now(dt.timezone.utc) - dt.timedelta(**{unit: int(m.group(1))})
    try:
        t = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        shown = f"{option} {text!r}" if option.startswith("-") else f"{option}={text!r}"  # a flag or a parameter
        raise StoreError(f"{shown} is not a date: give YYYY-MM-DD, an ISO time, or 7d / 12h.",
                         param=option.lstrip("-").replace("-", "_")) from None
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def as_utc(t: Optional[dt.datetime]) -> Optional[dt.datetime]:
    """SQLite hands back naive datetimes: they were written in UTC."""
    if t is None:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def history(store: Any, *, run_id: Optional[int] = None, model: Optional[str] = None,
            recipe: Optional[str] = None, target: Optional[str] = None, delegate: Optional[str] = None,
            tag: Optional[str] = None, kind: Optional[str] = None, status: Optional[str] = None,
            since: Optional[dt.datetime] = None, until: Optional[dt.datetime] = None,
            limit: Optional[int] = None, with_document: bool = True) -> list[dict]:
    """Result rows joined with their run (oldest first), filtered; each has HISTORY_COLUMNS (+ document)."""
    cols = [results.c.id.label("result_id"), results.c.run_id, runs.c.started_at, runs.c.tag,
            results.c.kind, results.c.model, results.c.recipe, results.c.target, results.c.delegate,
            results.c.status, results.c.p50_ms, results.c.mean_ms, results.c.init_ms,
            results.c.peak_memory_mb, results.c.accuracy_top1, results.c.accuracy_drop,
            artifacts.c.size_bytes, artifacts.c.gzip_bytes, results.c.artifact, results.c.artifact_sha256]
    if with_document:
        cols.append(results.c.document)
    q = sa.select(*cols).select_from(results.join(runs, results.c.run_id == runs.c.id)
                                     .outerjoin(artifacts, results.c.artifact_id == artifacts.c.id))
    for col, value in ((results.c.run_id, run_id), (results.c.model, model), (results.c.recipe, recipe),
                       (results.c.target, target), (results.c.delegate, delegate), (runs.c.tag, tag),
                       (results.c.kind, kind), (results.c.status, status)):
        if value is not None:
            q = q.where(col == value)
    if since is not None:
        q = q.where(runs.c.started_at >= since.astimezone(dt.timezone.utc))
    if until is not None:
        q = q.where(runs.c.started_at <= until.astimezone(dt.timezone.utc))
    q = q.order_by(runs.c.started_at, results.c.id)
    if limit:
        q = q.limit(limit)
    with store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(q).mappings()]
    for r in rows:
        r["started_at"] = as_utc(r["started_at"])
    return rows


@dataclass(frozen=True)
class History:
    """What ``history`` read: result rows (or, with ``runs_only``, run rows) oldest first, each with
    ``columns`` (more keys may be present), from the store named ``store``; ``results``: the rows'
    Result records when asked for (``with_results``), else empty."""

    store: str
    columns: tuple[str, ...]
    rows: list[dict]
    runs_only: bool = False
    results: tuple[Result, ...] = ()

    @property
    def kind(self) -> str:
        """The ``--json`` envelope's kind: ``runs`` or ``history``."""
        return "runs" if self.runs_only else "history"


def read_history(store: Any, *, run: Optional[str] = None, since: Optional[str] = None,
                 until: Optional[str] = None, runs_only: bool = False, tag: Optional[str] = None,
                 limit: Optional[int] = None, with_results: bool = False, **filters: Optional[str]) -> History:
    """:func:`history` with the references as a user writes them: ``run`` (an id, a tag or latest),
    ``since``/``until`` (a date, an ISO time, or ``7d`` / ``12h`` ago); ``runs_only`` lists runs
    (by ``tag``, at most ``limit``) instead. ``filters``: model, recipe, target, delegate, kind.
    ``with_results`` also reads each row's stored Result (its whole document)."""
    if runs_only:
        return History(store.name, RUN_COLUMNS, store.runs(tag=tag, limit=limit), runs_only=True)
    rows = history(store, run_id=resolve_run(store, run) if run else None, tag=tag, limit=limit,
                   since=parse_time(since, "since"), until=parse_time(until, "until"), with_document=with_results,
                   **filters)
    results = tuple(Result.from_dict(r.pop("document")) for r in rows) if with_results else ()
    return History(store.name, HISTORY_COLUMNS, rows, results=results)
