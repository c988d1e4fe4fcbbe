"""The results store: every measurement remembered (SQLite by default, PostgreSQL by URL).

    from tflite_deploy.store import open_store
    with open_store("results.db") as store:          # or "postgresql+psycopg://user@host/db"
        run = store.start_run(tag="nightly", argv=sys.argv)
        for r in results:
            store.add_result(run, r)                 # committed at once, one transaction each

The store never imports TensorFlow. Commands wire it with :func:`record_results` (``--store``,
``--tag``, ``--no-store``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

if TYPE_CHECKING:  # the Store class is imported when a store is opened
    from tflite_deploy.store.db import Store
    from tflite_deploy.store.engine import DEFAULT_STORE, STORE_ENV, StoreError, resolve_store_url

#: Names from :mod:`tflite_deploy.store.engine`, imported on first use: it imports SQLAlchemy (~0.3 s),
#: which a command run with ``--no-store`` never needs.
_ENGINE_NAMES = ("DEFAULT_STORE", "STORE_ENV", "StoreError", "resolve_store_url")

__all__ = ["open_store", "record_results", "Store", "StoreError", "DEFAULT_STORE", "STORE_ENV",
           "resolve_store_url"]


def open_store(url_or_path: Optional[str | Path] = None, *, create: bool = True,
               upgrade_to: str = "head") -> "Store":
    """Open (creating or migrating) the store at a path or SQLAlchemy URL.

    ``None`` means ``$TFLITE_DEPLOY_STORE`` or ``./tflite-deploy.db``. A newer store, or a file or
    database that is not a store, raises :class:`StoreError` and is left untouched.
    ``create=False`` (the reading commands) refuses a SQLite file that does not exist yet.
    ``upgrade_to`` exists for tests that build an old-schema store.
    """
    import sqlalchemy as sa

    from tflite_deploy.store import engine as _engine
    from tflite_deploy.store.db import Store
    from tflite_deploy.store.engine import STORE_ENV, StoreError, resolve_store_url

    url = resolve_store_url(str(url_or_path) if url_or_path is not None else None)
    try:
        u = sa.make_url(url)
    except sa.exc.ArgumentError as e:
        raise StoreError(f"store={url_or_path or url!r} is neither a file path nor a database URL "
                         f"SQLAlchemy understands ({e}).", param="store") from None
    if not create and u.get_backend_name() == "sqlite" and u.database and not Path(u.database).exists():
        raise StoreError(f"There is no results store at {u.database}: measure with store={u.database} "
                         f"first, or name another store (or set ${STORE_ENV}).", param="store")
    try:
        eng = _engine.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as e:
        raise StoreError(f"store={url_or_path or url!r} is neither a file path nor a database URL "
                         f"SQLAlchemy understands ({e}).", param="store") from None
    try:
        revision = _engine.check_and_migrate(eng, url, upgrade_to)
        _engine.set_wal(eng)
    except StoreError:
        eng.dispose()
        raise
    except sa.exc.OperationalError as e:
        eng.dispose()
        raise StoreError(f"Cannot open results store {_engine.describe(url)}: "
                         f"{str(getattr(e, 'orig', e)).strip()}") from None
    return Store(eng, url, revision)


def record_results(store_url: Optional[str], tag: Optional[str], argv: Sequence[str], results: Sequence,
                   artifacts: Sequence = ()) -> int:
    """Record a finished command's results as one run; returns the run id.

    For commands that measure one result at a time, open the store first and call
    ``store.add_result`` as each completes instead (nothing is lost if the process dies).
    ``artifacts`` are :class:`tflite_deploy.artifact.Artifact` objects or .tflite paths.
    """
    with open_store(store_url) as store:
        run = store.start_run(tag=tag, argv=list(argv))
        ids: dict[str, int] = {}
        for a in artifacts:
            path = str(getattr(a, "path", a))
            ids[path] = store.add_artifact_file(path)
        for r in results:
            aid = ids.get(r.artifact)
            if aid is None and r.artifact.endswith(".tflite") and Path(r.artifact).is_file():
                aid = ids[r.artifact] = store.add_artifact_file(r.artifact)
            store.add_result(run, r, artifact_id=aid)
        return run


def __getattr__(name: str):  # Store and the engine's names without importing SQLAlchemy on `import tflite_deploy.store`
    if name == "Store":
        from tflite_deploy.store.db import Store

        return Store
    if name in _ENGINE_NAMES:
        from tflite_deploy.store import engine

        return getattr(engine, name)
    raise AttributeError(name)
