"""Device leases: two farm runs never use the same phone at once.

A lease names its holder and expires: a run renews it while it works and releases it on exit; a run
that dies without releasing stops renewing, so its lease lapses after ``ttl`` seconds (at once, on
the same host, when its process is gone). :class:`Leases` is the interface; :class:`StoreLeases`
keeps them in the results store (a lab's hosts share its PostgreSQL store, not a folder);
:class:`FileLeases` keeps them in a folder (one lock directory per serial, created atomically with
``mkdir``) for ``--no-store`` runs. Expiry compares wall-clock times, possibly taken on different
hosts: a lab's clocks must agree (NTP).
"""

from __future__ import annotations

import abc
import contextlib
import json
import logging
import os
import socket
import threading
import time
import urllib.parse
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import psutil

from tflite_deploy.errors import UserError


class LeaseHeld(UserError):
    """The phone is leased to another run."""

    exit_code = 3


@dataclass(frozen=True)
class Lease:
    serial: str
    holder: str  # who: the farm run id
    token: str  # this acquisition, so a lapsed holder cannot renew or release its successor's lease
    hostname: str
    pid: int
    expires: float  # time.time()

    def describe(self) -> str:
        left = self.expires - time.time()
        return (f"{self.holder} (pid {self.pid} on {self.hostname}), "
                + (f"for {left:.0f} s more unless renewed" if left > 0 else "expired"))


class Leases(abc.ABC):
    @abc.abstractmethod
    def acquire(self, serial: str, holder: str, ttl: float) -> Lease:
        """Take the phone for ``ttl`` seconds; raise :class:`LeaseHeld` if a live lease holds it."""

    @abc.abstractmethod
    def renew(self, lease: Lease, ttl: float) -> Lease:
        """Extend our lease; raise :class:`LeaseHeld` if it lapsed and someone else took the phone."""

    @abc.abstractmethod
    def release(self, lease: Lease) -> None:
        """Give the phone back (a no-op if the lease already passed to someone else)."""

    @abc.abstractmethod
    def current(self, serial: str) -> Optional[Lease]:
        """The live lease on a phone, if any."""


def _new(serial: str, holder: str, ttl: float) -> Lease:
    return Lease(serial, holder, uuid.uuid4().hex, socket.gethostname(), os.getpid(), time.time() + ttl)


def _in_use(old: Lease) -> LeaseHeld:
    return LeaseHeld(f"Phone {old.serial} is in use by {old.describe()}. Wait for that run, or give it "
                     f"other phones.")


def _lapsed(serial: str, now: Optional[Lease]) -> LeaseHeld:
    return LeaseHeld(f"Phone {serial}: our lease lapsed" + (f" and it is now held by {now.describe()}" if now else "")
                     + ".")


def _taken_again(serial: str) -> LeaseHeld:
    return LeaseHeld(f"Phone {serial}: another run keeps taking its lease; try again.")


def _alive(lease: Lease) -> bool:
    if lease.expires <= time.time():
        return False
    if lease.hostname == socket.gethostname():  # same host: a dead process holds nothing
        try:
            return psutil.pid_exists(lease.pid) and lease.pid != 0
        except Exception:
            return True
    return True


class FileLeases(Leases):
    """Leases as lock folders ``ROOT/<serial>.lease/`` with the holder in ``lease.json``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _dir(self, serial: str) -> Path:
        return self.root / (urllib.parse.quote(serial, safe="") + ".lease")

    def _read(self, serial: str) -> Optional[Lease]:
        try:
            return Lease(**json.loads((self._dir(serial) / "lease.json").read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def _write(self, lease: Lease) -> None:
        d = self._dir(lease.serial)
        tmp = d / f".lease.{lease.token}.tmp"
        tmp.write_text(json.dumps(asdict(lease)))
        os.replace(tmp, d / "lease.json")

    def current(self, serial: str) -> Optional[Lease]:
        lease = self._read(serial)
        return lease if lease is not None and _alive(lease) else None

    def acquire(self, serial: str, holder: str, ttl: float) -> Lease:
        d = self._dir(serial)
        for _ in range(3):
            try:
                d.mkdir()
            except FileExistsError:
                old = self._read(serial)
                if old is None:  # being written right now, or a half-made folder from a crash
                    if time.time() - _mtime(d) < 5:
                        raise LeaseHeld(f"Phone {serial} is being leased by another run right now.") from None
                elif _alive(old):
                    raise _in_use(old) from None
                self._break(d)  # expired or its holder died: take it over
                continue
            lease = _new(serial, holder, ttl)
            self._write(lease)
            return lease
        raise _taken_again(serial)

    def _break(self, d: Path) -> None:
        # rename first: of two runs breaking the same stale lease, only one rename succeeds
        tomb = d.with_name(f"{d.name}.stale.{uuid.uuid4().hex}")
        try:
            os.rename(d, tomb)
        except OSError:
            return
        for f in tomb.iterdir():
            f.unlink(missing_ok=True)
        tomb.rmdir()

    def renew(self, lease: Lease, ttl: float) -> Lease:
        now = self._read(lease.serial)
        if now is None or now.token != lease.token:
            raise _lapsed(lease.serial, now)
        renewed = Lease(**{**asdict(lease), "expires": time.time() + ttl})
        self._write(renewed)
        return renewed

    def release(self, lease: Lease) -> None:
        now = self._read(lease.serial)
        if now is not None and now.token == lease.token:
            self._break(self._dir(lease.serial))


class StoreLeases(Leases):
    """Leases as rows of the results store's ``device_leases`` table (one per leased phone).

    Atomic statements decide (:class:`tflite_deploy.store.leases.LeaseRows`): an INSERT wins a free
    phone; a stale row (expired, or its holder's process gone from this host) is taken over by an
    UPDATE that matches its token and expiry, so of two runs taking it over only one succeeds.
    """

    ATTEMPTS = 5

    def __init__(self, store: Any) -> None:
        from tflite_deploy.store.leases import LeaseRows

        self.rows = LeaseRows(store)

    def _read(self, serial: str) -> Optional[Lease]:
        row = self.rows.get(serial)
        return None if row is None else _from_row(row)

    def current(self, serial: str) -> Optional[Lease]:
        lease = self._read(serial)
        return lease if lease is not None and _alive(lease) else None

    def acquire(self, serial: str, holder: str, ttl: float) -> Lease:
        for _ in range(self.ATTEMPTS):
            lease = _new(serial, holder, ttl)
            row = {**asdict(lease), "acquired_at": time.time()}
            if self.rows.insert(row):
                return lease
            old = self.rows.get(serial)
            if old is None:
                continue  # released between our INSERT and our look: try again
            if _alive(_from_row(old)):
                raise _in_use(_from_row(old))
            if self.rows.replace(old, row):  # expired or its holder died: take it over
                return lease
        raise _taken_again(serial)

    def renew(self, lease: Lease, ttl: float) -> Lease:
        renewed = Lease(**{**asdict(lease), "expires": time.time() + ttl})
        if not self.rows.renew(lease.serial, lease.token, renewed.expires):
            raise _lapsed(lease.serial, self._read(lease.serial))
        return renewed

    def release(self, lease: Lease) -> None:
        self.rows.delete(lease.serial, lease.token)


def _from_row(row: dict[str, Any]) -> Lease:
    return Lease(row["serial"], row["holder"], row["token"], row["hostname"], int(row["pid"]), float(row["expires"]))


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


@contextlib.contextmanager
def holding(leases: Leases, serials: Sequence[str], holder: str, ttl: float = 60.0) -> Iterator[list[Lease]]:
    """Lease every phone (all or none), renew them every ``ttl/3`` s while inside, release on exit."""
    held: list[Lease] = []
    try:
        for s in serials:
            held.append(leases.acquire(s, holder, ttl))
    except BaseException:
        for lease in held:
            leases.release(lease)
        raise
    stop = threading.Event()

    def renew_loop() -> None:
        while not stop.wait(ttl / 3):
            for i, lease in enumerate(held):
                try:
                    held[i] = leases.renew(lease, ttl)
                except LeaseHeld:
                    pass  # lost: the farm reports that phone's cells when they fail; nothing to renew
                except Exception as e:  # the store did not answer (restart, network): the lease outlives 3 tries
                    logging.getLogger(__name__).warning("could not renew the lease on %s: %s", lease.serial, e)

    t = threading.Thread(target=renew_loop, name="farm-lease-renew", daemon=True)
    t.start()
    try:
        yield held
    finally:
        stop.set()
        t.join()
        for lease in held:
            leases.release(lease)
