"""Farm cells as Dask ``distributed`` tasks: one machine or a lab, results streamed, none lost.

- One machine: :func:`local_cluster`, an embedded cluster (worker processes, the scheduler on
  127.0.0.1 only) with one worker per attached phone and one for host cells.
- A lab: a ``dask scheduler`` somewhere and on every host with phones :func:`start_worker`
  (``tflite-deploy farm worker --scheduler ADDR``), which advertises ``phone-SERIAL=1`` per phone.

:func:`run_cells` submits every cell with its resource (``phone-SERIAL`` or ``host``), so a device
cell runs on the worker that holds the phone and one cell per phone at a time. Each outcome goes to
a callback as it completes. The executor (``executor(cell) -> value``) is pluggable: the farm
wires in convert / eval / bench; tests use stand-ins. Cells marked ``isolate`` run in a child
process, so a converter that crashes (``abort()``, a segfault) fails its cell and nothing else.

An executor raises :class:`TransientError` for a fault worth another attempt (a dropped adb link:
tried again after a back-off) and :class:`ResourceLost` when the phone is gone (frozen, locked);
after either has failed a cell for good, the cells still waiting for that phone are reported
``not-run`` at once instead of each failing slowly on a phone that is not there.

A worker that dies takes its running cells with it; Dask runs them again on another worker that
has the resource. Where no worker offers a cell's resource for ``lost_grace`` seconds (its phone's
worker left, or never joined), the cell is reported ``not-run`` with the reason: never lost.
"""

from __future__ import annotations

import pickle
import socket
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from tflite_deploy.farm.cells import HOST_RESOURCE, Cell, phone_resource

OK, FAILED, NOT_RUN = "ok", "failed", "not-run"

Executor = Callable[[Cell], Any]


class TransientError(Exception):
    """Raised by an executor for a fault worth retrying (an adb hiccup, a device briefly offline).

    If every attempt fails, the cell fails and its resource counts as lost (see :class:`ResourceLost`).
    """


class ResourceLost(Exception):
    """Raised by an executor when the cell's resource is gone (a phone froze or needs a person): the
    cell fails, and the cells still waiting for that resource are reported not-run, not attempted."""


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts for :class:`TransientError`, with exponential back-off between them."""

    attempts: int = 3
    first_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 30.0

    def delay(self, attempt: int) -> float:
        return min(self.max_delay, self.first_delay * self.factor ** (attempt - 1))


@dataclass(frozen=True)
class CellOutcome:
    """What became of one cell: ``ok`` (``value`` is the executor's return), ``failed`` or ``not-run``."""

    cell_id: str
    status: str
    value: Any = None
    error: Optional[str] = None
    attempts: int = 0
    worker: Optional[str] = None
    seconds: float = 0.0
    resource_lost: bool = False  # its resource (phone) is gone: the cells waiting for it are not run

    @property
    def ok(self) -> bool:
        return self.status == OK


# ------------------------------------------------------------------------- on the worker
def run_cell(executor: Executor, cell: Cell, retry: RetryPolicy, *upstream: CellOutcome) -> CellOutcome:
    """Run one cell where Dask put it; never raises (every fault becomes an outcome)."""
    for up in upstream:
        if not up.ok:
            return CellOutcome(cell.cell_id, NOT_RUN, error=f"{up.cell_id} did not succeed: {up.error}")
    worker = _worker_name()
    start = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            value = _run_isolated(executor, cell) if cell.isolate else executor(cell)
            return CellOutcome(cell.cell_id, OK, value, attempts=attempt, worker=worker,
                               seconds=time.monotonic() - start)
        except TransientError as e:
            if attempt >= retry.attempts:
                return CellOutcome(cell.cell_id, FAILED, error=f"{e} (gave up after {attempt} attempts)",
                                   attempts=attempt, worker=worker, seconds=time.monotonic() - start,
                                   resource_lost=True)
            time.sleep(retry.delay(attempt))
        except ResourceLost as e:
            return CellOutcome(cell.cell_id, FAILED, error=str(e), attempts=attempt, worker=worker,
                               seconds=time.monotonic() - start, resource_lost=True)
        except Exception as e:  # the executor's own failure: this cell fails, the farm goes on
            return CellOutcome(cell.cell_id, FAILED, error=_one_line(e), attempts=attempt, worker=worker,
                               seconds=time.monotonic() - start)


def _worker_name() -> Optional[str]:
    try:
        from distributed import get_worker

        return str(get_worker().name)
    except Exception:
        return None


def _one_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text if isinstance(e, Exception) and type(e).__module__.startswith("tflite_deploy") \
        else f"{type(e).__name__}: {text}"


def _run_isolated(executor: Executor, cell: Cell) -> Any:
    """``executor(cell)`` in a warm child Python; its crash becomes an exception here, not a dead worker.

    A child process rather than multiprocessing: Dask worker processes are daemons, which may not
    have multiprocessing children. The child imports what this process can (same ``sys.path``).
    """
    import cloudpickle

    from tflite_deploy.farm.children import ChildDied, pool

    with tempfile.TemporaryDirectory(prefix="farm-cell-") as tmp:
        job, out = Path(tmp) / "job.pkl", Path(tmp) / "out.pkl"
        job.write_bytes(cloudpickle.dumps((executor, cell)))
        try:
            pool().run(job, out, cell.stage)
        except ChildDied as e:
            raise RuntimeError(str(e)) from None
        kind, payload = pickle.loads(out.read_bytes())
    if kind == "ok":
        return payload
    if kind == "transient":
        raise TransientError(payload)
    if kind == "lost":
        raise ResourceLost(payload)
    raise RuntimeError(payload)


# ------------------------------------------------------------------------- on the client
def run_cells(client: Any, cells: Sequence[Cell], executor: Executor,
              on_outcome: Optional[Callable[[CellOutcome], None]] = None, *,
              done: Iterable[str] = (), retry: RetryPolicy = RetryPolicy(), lost_grace: float = 10.0,
              poll: float = 0.1) -> dict[str, CellOutcome]:
    """Run ``cells`` (dependencies first) on ``client``'s cluster; every cell gets one outcome.

    ``done`` are ids already finished (a resumed run, cached artifacts): needs on them are met.
    ``on_outcome`` is called in this thread as each cell completes (the farm writes it to the store).
    """
    from distributed import as_completed

    done = set(done)
    run_token = uuid.uuid4().hex[:8]
    futures: dict[str, Any] = {}
    outcomes: dict[str, CellOutcome] = {}
    cells_by_id = {c.cell_id: c for c in cells}

    def record(o: CellOutcome) -> None:
        if o.cell_id in outcomes:
            return
        outcomes[o.cell_id] = o
        if on_outcome is not None:
            on_outcome(o)
        resource = cells_by_id[o.cell_id].resource
        if o.resource_lost and resource and resource != HOST_RESOURCE:  # a phone; this host goes on
            _give_up_on(resource, o, futures, cells_by_id, outcomes, record)

    ids = {c.cell_id for c in cells}
    for cell in cells:
        missing = [n for n in cell.needs if n not in done and n not in ids]
        if missing:
            record(CellOutcome(cell.cell_id, NOT_RUN, error=f"needs {', '.join(missing)}, which is not in this run"))
            continue
        upstream = [futures[n] for n in cell.needs if n in futures]
        if any(n in outcomes for n in cell.needs):
            record(CellOutcome(cell.cell_id, NOT_RUN, error=f"needs {cell.needs[0]}, which was not run"))
            continue
        futures[cell.cell_id] = client.submit(
            run_cell, executor, cell, retry, *upstream, key=f"farm-{run_token}-{cell.cell_id}", pure=False,
            resources={cell.resource: 1} if cell.resource else None)
    by_key = {f.key: cid for cid, f in futures.items()}
    ac = as_completed(list(futures.values()))
    missing_since: dict[str, float] = {}
    lost_since: dict[str, float] = {}
    next_check = 0.0
    while len(outcomes) < len(cells):
        for fut in ac.next_batch(block=False):
            cid = by_key[fut.key]
            if fut.status != "lost":  # a lost result is computed again (we hold its future): wait for it
                record(_outcome_of(fut, cid))
        for cid, fut in futures.items():  # a safety net: any future in a final state gets its outcome
            if cid in outcomes:
                continue
            if fut.status == "cancelled":  # here, or by a cancelled dependency: never "completes"
                record(CellOutcome(cid, NOT_RUN, error=_cancel_reason(cells_by_id[cid], outcomes)))
            elif fut.status in ("finished", "error"):
                record(_outcome_of(fut, cid))
            elif fut.status == "lost":  # computed again while a worker can: reported only if it stays lost
                if time.monotonic() - lost_since.setdefault(cid, time.monotonic()) >= lost_grace:
                    record(_outcome_of(fut, cid))
            else:
                lost_since.pop(cid, None)
        if time.monotonic() >= next_check and len(outcomes) < len(cells):
            next_check = time.monotonic() + 1.0
            _drop_unplaceable(client, futures, cells_by_id, outcomes, missing_since, lost_grace, record)
        if len(outcomes) < len(cells):
            time.sleep(poll)
    return outcomes


def _outcome_of(fut: Any, cid: str) -> CellOutcome:
    if fut.status == "finished":
        return fut.result()
    if fut.status == "cancelled":
        return CellOutcome(cid, NOT_RUN, error="cancelled")
    if fut.status == "lost":
        return CellOutcome(cid, NOT_RUN, error="its result was lost with its worker")
    try:
        exc = fut.exception()
    except Exception as e:  # pragma: no cover - a future in an odd state
        exc = e
    name = type(exc).__name__
    if name == "KilledWorker":  # the cell's worker died more times than Dask allows
        return CellOutcome(cid, FAILED, error=f"every worker that ran it died ({exc})")
    return CellOutcome(cid, FAILED, error=_one_line(exc))


def _give_up_on(resource: str, lost: CellOutcome, futures: dict[str, Any], cells: dict[str, Cell],
                outcomes: dict[str, CellOutcome], record: Callable[[CellOutcome], None]) -> None:
    """The resource of ``lost`` is gone: every cell still waiting for it is cancelled, reported not-run."""
    what = _resource_name(resource)
    for cid, fut in futures.items():
        if cid not in outcomes and cells[cid].resource == resource:
            fut.cancel()
            record(CellOutcome(cid, NOT_RUN, error=f"{what} was lost earlier in this run (cell {lost.cell_id} "
                                                   "failed: see why there)"))


def _resource_name(resource: str) -> str:
    return f"phone {resource[len('phone-'):]}" if resource.startswith("phone-") else f"the {resource!r} resource"


def _cancel_reason(cell: Cell, outcomes: dict[str, CellOutcome]) -> str:
    for n in cell.needs:
        if n in outcomes and not outcomes[n].ok:
            return f"{n} did not succeed: {outcomes[n].error}"
    return "cancelled"


def offered_resources(client: Any) -> dict[str, float]:
    """Total of each resource over the workers connected now."""
    total: dict[str, float] = {}
    for w in client.scheduler_info(n_workers=-1).get("workers", {}).values():
        for name, amount in (w.get("resources") or {}).items():
            total[name] = total.get(name, 0) + amount
    return total


def _drop_unplaceable(client: Any, futures: dict[str, Any], cells: dict[str, Cell], outcomes: dict[str, CellOutcome],
                      missing_since: dict[str, float], grace: float, record: Callable[[CellOutcome], None]) -> None:
    """Cells whose resource no worker has offered for ``grace`` seconds: cancel, report not-run."""
    offered = offered_resources(client)
    now = time.monotonic()
    for cid, fut in futures.items():
        cell = cells[cid]
        if cid in outcomes or not cell.resource or offered.get(cell.resource, 0) > 0:
            missing_since.pop(cid, None)
            continue
        since = missing_since.setdefault(cid, now)
        if now - since >= grace:
            what = _resource_name(cell.resource)
            record(CellOutcome(cid, NOT_RUN, error=f"no worker holds {what} (its worker left or never joined)"))
            fut.cancel()


# ------------------------------------------------------------------------- clusters and workers
def local_cluster(phones: Sequence[str] = (), host_slots: int = 1, *, security: Any = None,
                  processes: bool = True, silence_logs: Any = None, **kwargs: Any) -> Any:
    """An embedded cluster on this machine: scheduler on 127.0.0.1 only, no dashboard.

    One worker per phone (``phone-SERIAL=1``, one thread) and one host worker (``host_slots``
    threads and as many ``host`` resources). One worker per phone, not one worker holding them all:
    a Dask worker starts resource-bound tasks in priority order and stops at the first whose
    resource is busy, so one phone's queue would hold up the others. ``processes`` puts each worker
    in its own process (Dask's ``Nanny``), as ``LocalCluster`` does.
    """
    from distributed import Nanny, Scheduler, SpecCluster, Worker

    protocol = "tls://" if security is not None and security.require_encryption else "tcp://"
    scheduler = {"cls": Scheduler, "options": dict(host="127.0.0.1", port=0, protocol=protocol, security=security,
                                                   dashboard=False, dashboard_address=None)}
    common = dict(host="127.0.0.1", protocol=protocol, security=security, dashboard=False,
                  dashboard_address="127.0.0.1:0")  # its HTTP server: a free port, localhost only
    if silence_logs is not None and processes:  # the worker processes log on their own
        common["silence_logs"] = silence_logs
    specs = {f"w-{p}": worker_spec(Nanny if processes else Worker, [p], 0, **common) for p in phones}
    if host_slots > 0:
        specs["w-host"] = worker_spec(Nanny if processes else Worker, [], host_slots, **common)
    return SpecCluster(workers=specs, scheduler=scheduler, security=security,
                       **({"silence_logs": silence_logs} if silence_logs is not None else {}), **kwargs)


def worker_spec(cls: Any, phones: Sequence[str], host_slots: int, **options: Any) -> dict[str, Any]:
    return {"cls": cls, "options": dict(nthreads=max(1, len(phones) + host_slots),
                                        resources=worker_resources(phones, host_slots), **options)}


def worker_resources(phones: Sequence[str], host_slots: int = 0) -> dict[str, float]:
    res = {phone_resource(p): 1.0 for p in phones}
    if host_slots > 0:
        res[HOST_RESOURCE] = float(host_slots)
    return res


def start_worker(scheduler: str, phones: Optional[Sequence[str]] = None,
                 discover: Optional[Callable[[], Sequence[str]]] = None, *, host_slots: int = 0,
                 security: Any = None, name: Optional[str] = None, listen_host: Optional[str] = None) -> None:
    """Run a Dask worker (until it is closed) advertising one resource per attached phone.

    ``phones`` are serials; without them ``discover()`` lists the attached ones (the farm wires it
    to adb). ``host_slots`` > 0 also lets this host convert, evaluate and bench on the host.
    """
    import asyncio

    from distributed import Worker

    serials = list(phones) if phones else list(discover() if discover else [])
    if not serials and host_slots <= 0:
        from tflite_deploy.errors import UserError

        raise UserError("This worker would have nothing to do: no phone attached (give phones=[SERIAL]) and "
                        "no host slots (give host_slots=N to convert and bench on this host).",
                        param="host_slots")

    # one Dask worker per phone (see local_cluster: a worker blocks behind its busiest resource)
    specs = [([p], 0) for p in serials] + ([([], host_slots)] if host_slots > 0 else [])

    async def main() -> None:
        workers = [Worker(scheduler, nthreads=max(1, len(ph) + slots), resources=worker_resources(ph, slots),
                          security=security, dashboard=False, host=listen_host,
                          name=f"{name or socket.gethostname()}/{ph[0] if ph else 'host'}")
                   for ph, slots in specs]
        await asyncio.gather(*workers)  # start them all
        try:
            await asyncio.gather(*(w.finished() for w in workers))
        finally:
            await asyncio.gather(*(w.close() for w in workers), return_exceptions=True)

    asyncio.run(main())
