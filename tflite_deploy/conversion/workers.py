"""Run one job per worker process, so that a crash, an abort or the OOM killer fails only that job.

TensorFlow is not fork-safe, so workers are *spawned* (a fresh interpreter that imports what the
job function needs). A job function must be a module-level function; it runs under :func:`_guarded`,
which turns any exception into an :class:`Outcome` with the message, so the pool only ever breaks
when a worker process dies. A broken pool fails every job it still held, including innocent ones:
those are rerun, each in its own single-worker pool, and only a job that kills its worker there
too is failed (with the signal or exit code).

No TensorFlow here: the job function imports it in the worker.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from tflite_deploy.errors import UserError


@dataclass(frozen=True)
class Outcome:
    """What became of one job: ``value`` when ``ok``, else ``error`` (one paragraph for the user)."""

    ok: bool
    value: Any = None
    error: str = ""


def failure_message(e: Exception) -> str:
    """A UserError is already a paragraph naming the file and the cause; anything else gets its type."""
    return str(e) if isinstance(e, UserError) else f"{type(e).__name__}: {str(e)[:500]}"


def _guarded(fn: Callable[..., Any], args: tuple) -> Outcome:
    try:
        return Outcome(True, fn(*args))
    except Exception as e:  # a bug or an unexpected library error too: still only this job's failure
        return Outcome(False, error=failure_message(e))


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_jobs(tasks: int, bytes_per_job: float) -> int:
    """Cores, bounded by the memory available now at ``bytes_per_job`` each, and by the number of tasks."""
    import psutil

    by_memory = int(psutil.virtual_memory().available // max(bytes_per_job, 1.0))
    return max(1, min(available_cores(), by_memory, tasks))


def run_isolated(fn: Callable[..., Any], jobs_args: Sequence[tuple], jobs: int,
                 on_done: Optional[Callable[[int, Outcome], None]] = None) -> list[Outcome]:
    """``fn(*args)`` for each args in worker processes, ``jobs`` at a time; outcomes in input order."""
    outcomes: dict[int, Outcome] = {}

    def done(i: int, outcome: Outcome) -> None:
        outcomes[i] = outcome
        if on_done:
            on_done(i, outcome)

    orphans = _run_pool(fn, list(enumerate(jobs_args)), max(1, jobs), done)
    for start in range(0, len(orphans), max(1, jobs)):  # rerun the orphans alone: find the one that kills
        batch = orphans[start:start + max(1, jobs)]
        pools = [(i, ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))) for i, _ in batch]
        futures = {pool.submit(_guarded, fn, args): (i, pool) for (i, pool), (_, args) in zip(pools, batch)}
        procs = {i: list((getattr(pool, "_processes", None) or {}).values()) for i, pool in pools}
        for fut in futures:
            i, pool = futures[fut]
            try:
                done(i, fut.result())
            except BrokenProcessPool:
                done(i, Outcome(False, error=f"The worker process died while running it ({_death(procs[i])}): a "
                                             "crash in native code, an abort, or the out-of-memory killer."))
        for _, pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)
    return [outcomes[i] for i in range(len(jobs_args))]


def _run_pool(fn: Callable[..., Any], items: list[tuple[int, tuple]], jobs: int,
              done: Callable[[int, Outcome], None]) -> list[tuple[int, tuple]]:
    """Run ``items`` in one pool; returns those a dead worker took down with it (to be rerun)."""
    orphans: list[tuple[int, tuple]] = []
    pool = ProcessPoolExecutor(min(jobs, len(items)) or 1, mp_context=multiprocessing.get_context("spawn"))
    try:
        pending: dict[Future, tuple[int, tuple]] = {pool.submit(_guarded, fn, args): (i, args) for i, args in items}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                i, args = pending.pop(fut)
                try:
                    done(i, fut.result())
                except BrokenProcessPool:
                    orphans.append((i, args))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return sorted(orphans)


def _death(procs: list) -> str:
    """How a pool's single worker ended: ``killed by SIGABRT`` or ``exit code 1``."""
    for p in procs:
        p.join(timeout=5)
    codes = [p.exitcode for p in procs if p.exitcode is not None]
    if not codes:
        return "it exited"
    code = codes[0]
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
