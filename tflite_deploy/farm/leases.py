"""Device leases: two farm runs never use the same phone at once.

A lease names its holder and expires: a run renews it while it works and releases it on exit; a run
that dies without releasing stops renewing, so its lease lapses after ``ttl`` seconds (at once, on
the same host, when its process is gone). :class:`Leases` is the interface; :class:`FileLeases`
keeps them in a folder (one lock directory per serial, created atomically with ``mkdir``); the
results store will back the same interface for a lab whose hosts share no folder.
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
import socket
import threading
import time
import urllib.parse
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

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
        return (f"run {self.holder} (pid {self.pid} on {self.hostname}), "
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
                    raise LeaseHeld(f"Phone {serial} is in use by {old.describe()}. Wait for that run, or "
                                    f"give it other phones.") from None
                self._break(d)  # expired or its holder died: take it over
                continue
            lease = Lease(serial, holder, uuid.uuid4().hex, socket.gethostname(), os.getpid(), time.time() + ttl)
            self._write(lease)
            return lease
        raise LeaseHeld(f"Phone {serial}: another run keeps taking its lease; try again.")

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
            raise LeaseHeld(f"Phone {lease.serial}: our lease lapsed"
                            + (f" and it is now held by {now.describe()}" if now else "") + ".")
        renewed = Lease(**{**asdict(lease), "expires": time.time() + ttl})
        self._write(renewed)
        return renewed

    def release(self, lease: Lease) -> None:
        now = self._read(lease.serial)
        if now is not None and now.token == lease.token:
            self._break(self._dir(lease.serial))


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

    t = threading.Thread(target=renew_loop, name="farm-lease-renew", daemon=True)
    t.start()
    try:
        yield held
    finally:
        stop.set()
        t.join()
        for lease in held:
            leases.release(lease)
