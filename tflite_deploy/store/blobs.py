"""Every measured .tflite kept by content (sha256), so a re-measurement uses the bytes that were measured.

A result names a file by path, and a path can be overwritten (a model re-converted into the same
folder, a ``cp`` over the old file). A re-measurement of "the base run" must measure what the base
run measured, so the store keeps each artifact's bytes under their sha256:

    BLOBS/ab/abcdef....tflite

``BLOBS`` is ``$TFLITE_DEPLOY_BLOBS`` when set, else a folder beside a SQLite store
(``runs.db`` -> ``runs.blobs``), else (PostgreSQL, in-memory) ``~/.cache/tflite-deploy/blobs``.
Blobs are copies, not hard links: a ``cp`` over the original writes into the same inode and would
change a linked blob under its name. Each is written to a temporary file and renamed into place
(atomic), deduplicated by name, and its hash is checked again before it is measured.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from tflite_deploy.errors import UserError

BLOBS_ENV = "TFLITE_DEPLOY_BLOBS"
SUFFIX = ".tflite"
_CHUNK = 1 << 20


class MissingBytesError(UserError):
    """The recorded bytes of an artifact are not (or no longer) in the blob folder."""


def blob_dir(store_url: str) -> Path:
    """The blob folder of a store (see the module docstring for the rule)."""
    env = os.environ.get(BLOBS_ENV)
    if env:
        return Path(env).expanduser().resolve()
    import sqlalchemy as sa

    u = sa.make_url(store_url)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        db = Path(u.database)
        return db.with_name(db.stem + ".blobs")
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "tflite-deploy" / "blobs"


def blob_path(folder: Path, sha256: str) -> Path:
    return Path(folder) / sha256[:2] / f"{sha256}{SUFFIX}"


def keep(src: str | Path, folder: Path, expected_sha256: Optional[str] = None) -> str:
    """Keep the bytes of ``src`` in ``folder``; returns their sha256.

    When ``expected_sha256`` is already kept nothing is copied (the blob's own hash is checked when
    it is used). Otherwise the file is copied to a temporary name while hashed, then renamed to its
    hash: a crash leaves no half blob under a real name.
    """
    if expected_sha256 and blob_path(folder, expected_sha256).is_file():
        return expected_sha256
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(prefix=".incoming-", suffix=SUFFIX, dir=folder)
    try:
        with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
            while chunk := fin.read(_CHUNK):
                h.update(chunk)
                fout.write(chunk)
            fout.flush()
            os.fsync(fout.fileno())
        sha = h.hexdigest()
        dest = blob_path(folder, sha)
        if dest.is_file():  # the same bytes kept before (another path, another run)
            os.unlink(tmp)
        else:
            dest.parent.mkdir(exist_ok=True)
            os.chmod(tmp, 0o444)  # blobs are never edited in place
            os.replace(tmp, dest)
        return sha
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def recorded_bytes(folder: Path, sha256: Optional[str], what: str) -> Path:
    """The kept file with these bytes, checked; :class:`MissingBytesError` naming ``what`` when they are
    gone or altered (never the file at the artifact's path, which may hold other bytes now)."""
    if not sha256:
        raise MissingBytesError(f"{what}: no sha256 was recorded, so the bytes it measured are unknown and "
                                "cannot be measured again.")
    p = blob_path(folder, sha256)
    if not p.is_file():
        raise MissingBytesError(f"{what}: its recorded bytes (sha256 {sha256[:12]}…) are not in the blob "
                                f"folder {folder} (pruned, or recorded before artifacts were kept by content), "
                                "so they cannot be measured again.")
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    if h.hexdigest() != sha256:
        raise MissingBytesError(f"{what}: the blob {p} no longer holds the bytes of sha256 {sha256[:12]}… "
                                "(altered on disk): refusing to measure it.")
    return p


def kept(folder: Path) -> dict[str, Path]:
    """Every blob in the folder, by sha256."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {p.name[: -len(SUFFIX)]: p for p in folder.glob(f"??/*{SUFFIX}") if len(p.name) == 64 + len(SUFFIX)}


@dataclass(frozen=True)
class PruneReport:
    folder: str
    removed: tuple[str, ...]   # sha256 of the blobs removed (or that would be, with dry_run)
    kept: int
    freed_bytes: int
    dry_run: bool


def prune(store: Any, *, older_than: Optional[dt.timedelta] = None, tag: Optional[str] = None,
          dry_run: bool = False) -> PruneReport:
    """Remove the blobs every use of which is old (``older_than``) and/or under ``tag``.

    A blob is removed when each run that recorded it matches all the criteria given; a blob no run
    records any more is removed too. At least one criterion is required.
    """
    if older_than is None and tag is None:
        raise UserError("store prune needs --older-than and/or --tag: it will not empty the blob folder "
                        "without one.")
    folder = blob_dir(store.url)
    uses = _uses(store)
    cutoff = dt.datetime.now(dt.timezone.utc) - older_than if older_than is not None else None
    removed, freed = [], 0
    blobs = kept(folder)
    for sha, path in sorted(blobs.items()):
        runs = uses.get(sha, [])
        if all((cutoff is None or started < cutoff) and (tag is None or run_tag == tag) for run_tag, started in runs):
            removed.append(sha)
            freed += path.stat().st_size
            if not dry_run:
                path.unlink()
    return PruneReport(str(folder), tuple(removed), len(blobs) - len(removed), freed, dry_run)


def _uses(store: Any) -> dict[str, list]:
    """sha256 -> [(tag, started_at)] of every run with a result or artifact of those bytes."""
    import sqlalchemy as sa

    from tflite_deploy.store.query import as_utc
    from tflite_deploy.store.schema import artifacts, results, runs

    q = (sa.select(results.c.artifact_sha256, artifacts.c.sha256, runs.c.tag, runs.c.started_at)
         .select_from(results.join(runs, results.c.run_id == runs.c.id)
                      .outerjoin(artifacts, results.c.artifact_id == artifacts.c.id)))
    out: dict[str, list] = {}
    with store.engine.connect() as conn:
        for sha_r, sha_a, tag, started in conn.execute(q):
            for sha in {sha_r, sha_a} - {None}:
                out.setdefault(sha, []).append((tag, as_utc(started)))
    return out

