"""Device lease rows in the results store: one row per leased phone, so every host of a lab sees them.

Only the SQL lives here; who may hold a phone is the farm's call
(:class:`tflite_deploy.farm.leases.StoreLeases`). Every change is one atomic statement and no table
is locked: the primary key lets one INSERT win, and UPDATE/DELETE match the row's token (and, to take
over a stale row, its expiry too), a compare-and-swap, so of two hosts only one ever wins a phone.
Each statement is its own short transaction, retried while SQLite says the database is locked.
"""

from __future__ import annotations

from typing import Any, Optional

import sqlalchemy as sa

from tflite_deploy.store.engine import with_retries, writer
from tflite_deploy.store.schema import device_leases as t


class LeaseRows:
    """The ``device_leases`` table of an open :class:`~tflite_deploy.store.db.Store`.

    Safe to use from several threads (each statement takes a pooled connection of its own, not the
    store's kept write connection).
    """

    def __init__(self, store: Any) -> None:
        self._engine: sa.Engine = store.engine
        self._writer = writer(store.engine)

    def insert(self, row: dict[str, Any]) -> bool:
        """Add a lease row; False if the phone already has one (the row there is left alone)."""
        def step() -> bool:
            try:
                with self._writer.begin() as conn:
                    conn.execute(t.insert(), row)
            except sa.exc.IntegrityError:
                return False
            return True
        return with_retries(step)

    def get(self, serial: str) -> Optional[dict[str, Any]]:
        def step() -> Optional[dict[str, Any]]:
            with self._engine.connect() as conn:
                found = conn.execute(sa.select(t).where(t.c.serial == serial)).mappings().first()
            return dict(found) if found is not None else None
        return with_retries(step)

    def replace(self, old: dict[str, Any], row: dict[str, Any]) -> bool:
        """Put ``row`` in place of ``old`` if the phone's row is still exactly that lease (same token,
        not renewed since); False if another run changed it first."""
        same = (t.c.serial == old["serial"]) & (t.c.token == old["token"]) & (t.c.expires == old["expires"])
        return self._update(same, row)

    def renew(self, serial: str, token: str, expires: float) -> bool:
        """Move our lease's expiry; False if the row is no longer ours."""
        return self._update((t.c.serial == serial) & (t.c.token == token), {"expires": expires})

    def delete(self, serial: str, token: str) -> bool:
        """Remove our lease row; False (and nothing removed) if it is no longer ours."""
        def step() -> bool:
            with self._writer.begin() as conn:
                return conn.execute(t.delete().where((t.c.serial == serial) & (t.c.token == token))).rowcount == 1
        return with_retries(step)

    def _update(self, where: Any, values: dict[str, Any]) -> bool:
        def step() -> bool:
            with self._writer.begin() as conn:
                return conn.execute(t.update().where(where).values(**values)).rowcount == 1
        return with_retries(step)
