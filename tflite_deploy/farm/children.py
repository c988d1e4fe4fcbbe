"""Warm child processes for isolated cells: crash isolation without a fresh Python per cell.

An isolated cell (convert, eval, host bench) runs outside the Dask worker, so a converter that
aborts fails its cell and not the worker. Starting a new Python for each cell costs its imports
again (TensorFlow alone is seconds) for every cell of a nightly. A :class:`ChildPool` keeps child
processes (``python -m tflite_deploy.farm._child``) that run cell after cell: a crash ends
that child only, and the next cell gets a new one. A child is retired after ``max_jobs`` cells (so
whatever a converter leaks is given back), is closed by the pool after ``idle_seconds`` without
work, and leaves by itself when its parent goes away (its stdin closes). The pool, not the child,
decides when an idle child goes: a child that left on its own could do so just as a cell is handed
to it.

Protocol: the parent writes ``JOB OUT`` (two paths) on the child's stdin; the child writes the
cell's outcome to OUT (see :mod:`tflite_deploy.farm._child`) and then ``done`` on a private
control pipe, not its stdout, which the cell's own printing would share. Its stdout and stderr go
to a log file, whose tail explains a crash.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

MAX_JOBS = 20
IDLE_SECONDS = 120.0


def child_environment() -> dict[str, str]:
    """What a child starts with: this process's environment, and its ``sys.path`` as PYTHONPATH."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}


class ChildDied(Exception):
    """The child ended before finishing its cell: ``str()`` says how, with the last lines it wrote."""


class WarmChild:
    """One long-lived child Python that runs cells one at a time."""

    def __init__(self) -> None:
        self.jobs = 0
        self.idle_since = time.monotonic()
        self.env = child_environment()
        fd, log_name = tempfile.mkstemp(prefix="farm-child-", suffix=".log")
        os.close(fd)
        self.log = Path(log_name)
        ctrl_read, ctrl_write = os.pipe()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tflite_deploy.farm._child", str(ctrl_write)],
                env=self.env, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, pass_fds=(ctrl_write,))
        os.close(ctrl_write)
        self.ctrl = os.fdopen(ctrl_read, "rb")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def run(self, job: Path, out: Path, what: str) -> None:
        """Run one job; raise :class:`ChildDied` if the child ends first (``what`` names the work)."""
        start = self.log.stat().st_size
        self.jobs += 1
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(f"{job}\t{out}\n".encode())
            self.proc.stdin.flush()
            line = self.ctrl.readline()
        except (BrokenPipeError, OSError):
            line = b""
        if line.strip() == b"done":
            return
        code = self.proc.wait()
        how = (f"was killed by {signal.Signals(-code).name}" if code < 0 and -code in signal.Signals._value2member_map_
               else f"exited with code {code}")
        with open(self.log, "rb") as f:
            f.seek(start)
            tail = f.read().decode(errors="replace").strip().splitlines()[-3:]
        raise ChildDied(f"the {what} process {how} before finishing" + (f": {' | '.join(tail)}" if tail else ""))

    def close(self) -> None:
        if self.alive:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()  # the child's loop ends on end of input
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.ctrl.close()
        self.log.unlink(missing_ok=True)


class ChildPool:
    """Idle warm children, handed out one per running cell (a worker runs several cells at once)."""

    def __init__(self, max_jobs: int = MAX_JOBS, idle_seconds: float = IDLE_SECONDS) -> None:
        self.max_jobs, self.idle_seconds = max_jobs, idle_seconds
        self._idle: list[WarmChild] = []
        self._lock = threading.Lock()
        self._reaper: Optional[threading.Thread] = None
        self._closed = threading.Event()

    def run(self, job: Path, out: Path, what: str) -> None:
        child = self._take()
        try:
            child.run(job, out, what)
        except BaseException:
            child.close()
            raise
        self._give_back(child)

    def _take(self) -> WarmChild:
        env = child_environment()
        stale: list[WarmChild] = []
        found = None
        with self._lock:
            while self._idle and found is None:
                child = self._idle.pop()
                # one started under other settings would not see today's
                if child.alive and child.env == env:
                    found = child
                else:
                    stale.append(child)
        for child in stale:
            child.close()
        return found or WarmChild()

    def _give_back(self, child: WarmChild) -> None:
        if child.jobs >= self.max_jobs or not child.alive:
            child.close()
            return
        child.idle_since = time.monotonic()
        with self._lock:
            self._idle.append(child)
            if self._reaper is None:
                self._reaper = threading.Thread(target=self._reap, name="farm-child-reaper", daemon=True)
                self._reaper.start()

    def _reap(self) -> None:
        """Close the children idle for ``idle_seconds``: their memory goes back to the host."""
        while not self._closed.wait(self.idle_seconds / 4):
            now = time.monotonic()
            with self._lock:
                old = [c for c in self._idle if now - c.idle_since >= self.idle_seconds]
                self._idle = [c for c in self._idle if c not in old]
            for child in old:
                child.close()

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            idle, self._idle = self._idle, []
        for child in idle:
            child.close()


_pool: Optional[ChildPool] = None
_pool_lock = threading.Lock()


def pool() -> ChildPool:
    """This process's pool (one per Dask worker process), closed when the process exits."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ChildPool()
            atexit.register(_pool.close)
        return _pool
