"""Open a results store: resolve the URL, check what the file or server holds, migrate, tune SQLite.

A store is a database whose ``alembic_version`` names a migration we ship. A fresh (empty) database
becomes a store; an older store is upgraded by alembic; a newer store, or a database or file that is
something else, is refused with a :class:`StoreError` and left exactly as it was.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from tflite_deploy.errors import UserError

DEFAULT_STORE = "tflite-deploy.db"
STORE_ENV = "TFLITE_DEPLOY_STORE"
BUSY_TIMEOUT_S = 30.0
MIGRATIONS = Path(__file__).with_name("migrations")
T = TypeVar("T")
WRITE = "tflite_deploy_write"


class StoreError(UserError):
    """A results store that cannot be opened, or a file that is not one."""


def resolve_store_url(url_or_path: Optional[str] = None) -> str:
    """``--store`` wins, then ``$TFLITE_DEPLOY_STORE``, then ``./tflite-deploy.db``; paths become sqlite URLs."""
    value = url_or_path or os.environ.get(STORE_ENV) or DEFAULT_STORE
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


def describe(url: str) -> str:
    """The store's name for messages: the file for SQLite, the URL without its password otherwise."""
    u = sa.make_url(url)
    if u.get_backend_name() == "sqlite":
        return str(u.database)
    return u.render_as_string(hide_password=True)


def create_engine(url: str) -> Engine:
    u = sa.make_url(url)
    if u.get_backend_name() != "sqlite":
        return sa.create_engine(u, pool_pre_ping=True)
    if u.database and u.database != ":memory:":
        parent = Path(u.database).parent
        if not parent.is_dir():
            raise StoreError(f"Results store {u.database}: the folder {parent} does not exist.")
    # timeout is SQLite's busy handler: a writer waits for the lock instead of failing at once
    engine = sa.create_engine(u, connect_args={"timeout": BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # A writer takes the lock up front (IMMEDIATE): a deferred transaction that reads and then
        # writes can fail with SQLITE_BUSY at once, without waiting for the busy handler.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN")

    return engine


def writer(engine: Engine) -> Engine:
    """The same engine, for transactions that write (SQLite: BEGIN IMMEDIATE)."""
    return engine.execution_options(**{WRITE: True})


def is_locked_error(exc: BaseException) -> bool:
    text = str(getattr(exc, "orig", exc)).lower()
    return "database is locked" in text or "database is busy" in text or "database table is locked" in text


def with_retries(fn: Callable[[], T], attempts: int = 8) -> T:
    """Run ``fn`` again (after a short random back-off) when SQLite says the database is locked."""
    for attempt in range(attempts):
        try:
            return fn()
        except sa.exc.OperationalError as e:
            if not is_locked_error(e) or attempt == attempts - 1:
                raise
            time.sleep(random.uniform(0.05, 0.2) * (attempt + 1))
    raise AssertionError("unreachable")


def alembic_config(connection: Optional[Connection] = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def check_and_migrate(engine: Engine, url: str, upgrade_to: str = "head") -> str:
    """Refuse a foreign or newer database; create or upgrade ours. Returns the revision now in it."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    name = describe(url)
    script = ScriptDirectory.from_config(alembic_config())
    known = {rev.revision for rev in script.walk_revisions()}

    def step() -> str:
        try:
            return inspect_and_upgrade()
        except sa.exc.DatabaseError as e:
            if is_locked_error(e) or not _unreadable(e):
                raise
            raise StoreError(f"{name} is not a tflite-deploy results store (the database cannot be "
                             f"read: {getattr(e, 'orig', e)}). Nothing in it was changed; give "
                             "another file or URL as store=URL_OR_PATH.", param="store") from None

    def inspect_and_upgrade() -> str:
        with writer(engine).begin() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            current = MigrationContext.configure(conn).get_current_revision() if "alembic_version" in tables else None
            if current is None and tables:
                raise StoreError(f"{name} is a database but not a tflite-deploy results store (it holds "
                                 f"tables {', '.join(sorted(tables)[:6])} and no schema version). Nothing in "
                                 "it was changed; give another file or URL as store=URL_OR_PATH.", param="store")
            if current is not None and current not in known:
                raise StoreError(f"Results store {name} has schema version {current!r}, newer than this "
                                 f"tflite-deploy understands (newest known: {script.get_current_head()!r}). "
                                 "Nothing in it was changed; upgrade tflite-deploy to read it.")
            target = script.get_current_head() if upgrade_to == "head" else upgrade_to
            if current != target:
                command.upgrade(alembic_config(conn), upgrade_to)
            return target

    try:
        return with_retries(step)
    except (sa.exc.ProgrammingError, sa.exc.IntegrityError):
        # PostgreSQL: another process created the same fresh store at the same moment (its tables
        # or version row already exist); by now it has finished, so look again.
        time.sleep(random.uniform(0.2, 0.5))
        return with_retries(step)


def _unreadable(e: BaseException) -> bool:
    text = str(getattr(e, "orig", e)).lower()
    return "not a database" in text or "malformed" in text or "encrypted" in text


def set_wal(engine: Engine) -> None:
    """WAL lets readers and one writer work at once; NORMAL sync stays safe against a killed process."""
    if engine.dialect.name != "sqlite":
        return

    def step() -> None:
        raw = engine.raw_connection()  # outside any transaction: SQLite changes journal mode only there
        try:
            mode = raw.cursor().execute("PRAGMA journal_mode=WAL").fetchone()[0]
        finally:
            raw.close()
        if str(mode).lower() != "wal":
            raise StoreError(f"Results store {engine.url.database}: SQLite refused WAL mode "
                             f"(journal mode {mode!r}); is it on a network file system?")

    with_retries(step)

    @event.listens_for(engine, "connect")
    def _sync(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    engine.dispose()  # later connections get the pragma above
