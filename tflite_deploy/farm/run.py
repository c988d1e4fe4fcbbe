"""``farm run``: a plan's cells through the public API on a Dask cluster, each outcome recorded at once.

The executor is a client of :mod:`tflite_deploy.api` like any user script: ``convert`` (in a child
process, into the content-hash cache), ``evaluate`` on the host, ``bench`` on a target × delegate.
The scheduler (:mod:`tflite_deploy.farm.scheduler`) places the cells; this module wires the plan,
the cache, the phone leases, the record and the progress callback around it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from tflite_deploy import api
from tflite_deploy.adb.faults import DEVICE_GONE_FAULTS, TRANSIENT_FAULTS
from tflite_deploy.benchmark.flags import resolve_runtime
from tflite_deploy.farm.cells import ArtifactCache, Cell, Stages, expand, pending
from tflite_deploy.farm.leases import FileLeases, Leases, StoreLeases, holding
from tflite_deploy.farm.plan import Plan, TargetSpec, load_plan, resolve_targets
from tflite_deploy.farm.plan_bench import ACCURACY
from tflite_deploy.farm.preflight import unreachable_targets
from tflite_deploy.farm.record import PHONE_LOST, CellRecord, JsonLinesRecord, RunRecord, StoreRecord, tag_results
from tflite_deploy.farm.scheduler import (FAILED, NOT_RUN, OK, CellOutcome, ResourceLost, TransientError,
                                          local_cluster, run_cells)
from tflite_deploy.progress import ProgressCallback, report
from tflite_deploy.result import Result
from tflite_deploy.store.recording import conversion_result


def calibration_spec(spec: str) -> str:
    """The split that calibrates int8 recipes: the train split of an eval spec that names ``:test``."""
    return spec[: -len(":test")] + ":train" if spec.endswith(":test") else spec


@dataclass(frozen=True)
class CellExecutor:
    """Runs one cell (pickled to Dask workers and isolated child processes)."""

    benchmark_tool: Optional[str] = None  # benchmark_model for device cells (default: the bundled lookup)
    min_seconds: float = 1.0

    def __call__(self, cell: Cell) -> list[Result]:
        return getattr(self, f"_{cell.stage}")(cell)

    def _convert(self, cell: Cell) -> list[Result]:
        model, ds = cell.model, cell.dataset
        pre = cell.preprocess
        target = cell.artifact
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".convert-"))
        try:
            (art,) = api.convert(model.path, [cell.recipe], None if ds is None else calibration_spec(ds.spec),
                                 tmp, preprocess=pre)
            # the sidecar first, the .tflite last: the cache trusts a .tflite that is there
            os.replace(art.sidecar, target.with_suffix(".json"))
            os.replace(art.path, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        # stored like every cell (history --kind convert); the cache, not this record, says it is done
        return [replace(conversion_result(art), artifact=str(target), target="host")]

    def _eval(self, cell: Cell) -> list[Result]:
        assert cell.dataset is not None
        pre = cell.preprocess
        results = api.evaluate(cell.model.path, [cell.artifact], cell.dataset.spec, preprocess=pre,
                               task=cell.model.task)
        return [replace(r, recipe=cell.recipe.name) for r in results[1:]]

    def _bench(self, cell: Cell) -> list[Result]:
        out: list[Result] = []
        for i in range(cell.repeats):
            # the plan's bench: settings over the executor's defaults; --benchmark-binary over the plan
            # (a host cell takes min_seconds only: the rest are benchmark_model's and the phone's)
            opts = {"min_seconds": self.min_seconds, **{k: v for k, v in cell.options if k != ACCURACY and
                                                        (cell.target != "host" or k == "min_seconds")},
                    **({"tool": self.benchmark_tool} if self.benchmark_tool and cell.target != "host" else {})}
            rs = api.bench([cell.artifact], [cell.target], delegate=cell.delegate, threads=cell.threads,
                           runs=cell.runs, warmup=cell.warmup, **opts)
            raise_device_fault(rs)
            out += [replace(r, recipe=r.recipe or cell.recipe.name, settings={**r.settings, "repeat": i})
                    for r in rs]
        return out + self._accuracy_on_device(cell)

    def _accuracy_on_device(self, cell: Cell) -> list[Result]:
        """The plan's ``bench: accuracy:`` on a device cell: this phone x delegate against the host (eval --device)."""
        wanted = dict(cell.options).get(ACCURACY)
        if not wanted or cell.target == "host" or cell.dataset is None or cell.delegate is None:
            return []
        tool = self.benchmark_tool or dict(cell.options).get("tool")
        if tool and resolve_runtime("auto", Path(tool)) == "litert":
            tool = None  # LiteRT's tool has no value-file or output-file flags: fetch TFLite's classic one
        rs = api.evaluate_on_device(cell.artifact, cell.dataset.spec, [cell.target], delegates=[cell.delegate],
                                    threads=cell.threads, benchmark_binary=tool, preprocess=cell.preprocess,
                                    **dict(wanted))
        raise_device_fault(rs)
        return [replace(r, recipe=cell.recipe.name) for r in rs]


def raise_device_fault(results: Sequence[Result]) -> None:
    """A phone's fault as the scheduler's exception: a dropped link is retried after a pause
    (:class:`TransientError`); a frozen or locked phone is given up on (:class:`ResourceLost`).
    A fault of the model's own (a delegate that fails, a run over its time-out) stays a failed Result."""
    for r in results:
        if r.fault in TRANSIENT_FAULTS:
            raise TransientError(r.error or r.fault)
        if r.fault in DEVICE_GONE_FAULTS:
            raise ResourceLost(r.error or r.fault)


@dataclass(frozen=True)
class FarmRun:
    """What a ``farm run`` did: its id, every cell's record (this invocation's and earlier ones)."""

    run_id: str
    plan: Plan
    record: RunRecord
    ran: dict[str, CellRecord]  # cells run by this invocation
    skipped: tuple[str, ...]  # target × delegate pairs that cannot run
    already: int  # cells finished by an earlier invocation of this run (--resume)
    cached: int = 0  # conversions found in the artifact cache (converted by an earlier run)

    @property
    def failed(self) -> list[CellRecord]:
        return [r for r in self.ran.values() if r.status != OK]


def failed_results(cell: Cell, o: CellOutcome) -> list[Result]:
    """A failed cell as a ``failed`` Result, so the store, ``history`` and ``compare`` see it. Not-run
    cells leave no Result: a resumed run runs them again (a convert cell too, failed or not: see record)."""
    if o.status != FAILED:
        return []
    return [Result(kind=cell.stage, artifact=str(cell.artifact), target=cell.target, delegate=cell.delegate or "",
                   status="failed", error=o.error, fault=PHONE_LOST if o.resource_lost else None,
                   recipe=cell.recipe.name, runner="farm", settings={"threads": cell.threads} if cell.threads else {})]


def progress_group(cell: Cell) -> str:
    """The row of the live view a cell counts in: its target (convert and eval run on the host)."""
    return cell.target


@dataclass(frozen=True)
class FarmSettings:
    """How ``farm run`` and ``farm nightly`` run a plan (what the plan file does not say); the CLI builds one."""

    store: Optional[str] = None          # results store: a path or URL; None: the default store
    use_store: bool = True               # False: record the cells in OUT/RUN_ID/cells.jsonl
    resume: Optional[str] = None         # the run id whose unfinished cells to run
    tag: Optional[str] = None            # this run's tag; None: the plan's
    argv: tuple[str, ...] = ()           # the command line, kept with the run
    executor: Optional[Callable[[Cell], Any]] = None  # runs one cell; None: CellExecutor()
    benchmark_tool: Optional[str] = None  # --benchmark-binary: over the plan's, for the cells and the confirmation
    host_slots: int = 1                  # host cells (convert, eval, host bench) at a time
    scheduler: Optional[str] = None      # a lab's Dask scheduler; None: an embedded cluster
    security: Any = None                 # distributed.Security for a tls:// scheduler
    on_start: Optional[Callable[[str], None]] = None  # told the run id before the first cell
    list_devices: Optional[Callable[[Any], Sequence[Any]]] = None  # for ``all`` targets; None: adb's


def open_record(out: Path, settings: FarmSettings, plan_tag: str) -> RunRecord:
    """The record this run writes into: a new one, or the one ``settings.resume`` names."""
    tag = settings.tag or plan_tag
    if settings.use_store:
        if settings.resume:
            return StoreRecord.resume(settings.store, settings.resume)
        return StoreRecord.start(settings.store, tag, settings.argv)
    if settings.resume:
        return JsonLinesRecord.resume(out, settings.resume)
    out.mkdir(parents=True, exist_ok=True)
    return JsonLinesRecord.start(out, tag, settings.argv)


def run_plan(plan_path: str | Path, out: str | Path, settings: FarmSettings = FarmSettings(),
             progress: Optional[ProgressCallback] = None) -> FarmRun:
    """Run (or resume) the plan; every cell's outcome is recorded as it completes.

    ``progress`` gets one ProgressEvent per cell, ``stage`` = the target it counts for, with
    done/total per target and ``item`` = the :class:`CellRecord`.
    """
    plan = load_plan(plan_path)
    targets = resolve_targets(plan, settings.list_devices or _devices) \
        if any(t.kind == "all" for t in plan.targets) else plan.targets
    stages = expand(plan, targets)
    rec = open_record(Path(out), settings, plan.tag)
    try:
        return _run(plan, stages, targets, rec, settings, progress)
    finally:
        rec.close()


def _run(plan: Plan, stages: Stages, targets: Sequence[TargetSpec], rec: RunRecord, settings: FarmSettings,
         progress: Optional[ProgressCallback]) -> FarmRun:
    cache = ArtifactCache(plan.cache)
    if settings.on_start is not None:
        settings.on_start(rec.run_id)
    finished = rec.finished()
    todo, done = pending(stages, finished, cache)
    cached = sum(1 for c in stages.convert if c.cell_id in done and c.cell_id not in finished)
    executor = settings.executor or CellExecutor(benchmark_tool=settings.benchmark_tool)
    # the phones are checked here unless a lab's workers hold them or a stand-in executor runs no phone
    preflight = settings.scheduler is None and isinstance(executor, CellExecutor)
    phones = _phones(targets)

    totals: dict[str, int] = {}
    for c in todo:
        totals[progress_group(c)] = totals.get(progress_group(c), 0) + 1
    counts = {g: 0 for g in totals}
    for g, n in totals.items():
        report(progress, g, 0, n, "waiting")
    by_id = {c.cell_id: c for c in todo}
    ran: dict[str, CellRecord] = {}

    def on_outcome(o: CellOutcome) -> None:
        cell = by_id[o.cell_id]
        results = tag_results(o.value or [] if o.ok else failed_results(cell, o), o.cell_id, rec.run_id)
        status, error = o.status, o.error
        bad = next((x for x in results if x.status == "failed"), None)
        if status == OK and bad is not None:  # the run itself failed (benchmark_model exited 1, ...): say so
            status, error = FAILED, bad.error
        r = CellRecord(o.cell_id, cell.stage, status, error, o.seconds, o.worker, tuple(results), cell.target,
                       max(1, o.attempts))
        rec.add(r)
        ran[o.cell_id] = r
        g = progress_group(cell)
        counts[g] += 1
        report(progress, g, counts[g], totals[g], f"{status} {o.cell_id}", r)

    if todo:
        with holding(phone_leases(plan, rec), phones, f"farm run {rec.run_id}"):
            if preflight:  # before any conversion: a phone that is not there or not answering is reported now
                away = unreachable_targets(targets)
                for c in [c for c in todo if c.target in away]:
                    on_outcome(CellOutcome(c.cell_id, NOT_RUN, error=f"not run: {away[c.target]}"))
                todo = [c for c in todo if c.target not in away]
                phones = [p for p in phones if not any(t.serial == p and t.name in away for t in targets)]
            if todo:
                _run_on_cluster(todo, done, executor, on_outcome, phones, settings.host_slots, settings.scheduler,
                                settings.security)
    return FarmRun(rec.run_id, plan, rec, ran, stages.skipped, len(stages.cells) - len(todo) - cached, cached)


def phone_leases(plan: Plan, rec: RunRecord) -> Leases:
    """In the results store the run records into (lab-wide with PostgreSQL); ``--no-store``: a folder."""
    if isinstance(rec, StoreRecord):
        return StoreLeases(rec.store)
    return FileLeases(plan.cache / "leases")


def _run_on_cluster(todo: list[Cell], done: set[str], executor: Callable[[Cell], Any],
                    on_outcome: Callable[[CellOutcome], None], phones: list[str], host_slots: int,
                    scheduler: Optional[str] = None, security: Any = None) -> None:
    """On an embedded cluster, or on a lab's scheduler whose farm workers offer the phones."""
    import logging

    from distributed import Client

    if scheduler:
        with Client(scheduler, security=security, timeout="30s") as client:
            run_cells(client, todo, executor, on_outcome, done=done)
        return

    # Dask logs worker start/stop and task retries at INFO/WARNING: our view says what happened
    for name in ("distributed", "distributed.nanny", "distributed.scheduler", "distributed.worker"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with local_cluster(phones, host_slots=max(1, host_slots), silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        run_cells(client, todo, executor, on_outcome, done=done)


def _phones(targets: Sequence[TargetSpec]) -> list[str]:
    return sorted({t.serial for t in targets if t.kind == "device" and t.serial})


def _devices(server: Any) -> Sequence[Any]:
    return api.list_devices(None if server is None else str(server))


@dataclass(frozen=True)
class Nightly:
    """A farm run compared with its baseline, and the report written."""

    run: FarmRun
    comparison: Any  # tflite_deploy.reporting.compare.Comparison, None without a baseline run
    report: Path
    note: str = ""
    accuracy_breaches: tuple[Result, ...] = ()  # eval Results that dropped more than the plan allows

    @property
    def regressions(self) -> list:
        found = list(self.comparison.regressions) if self.comparison is not None else []
        return found + list(self.accuracy_breaches)


def accuracy_breaches(results: Sequence[Result], max_drop: Optional[float]) -> tuple[Result, ...]:
    """Eval Results whose top-1 drop against the float model (percentage points) exceeds ``max_drop``."""
    if max_drop is None:
        return ()
    return tuple(r for r in results if r.kind == "eval" and r.ok
                 and (r.metrics.get("top1_drop") or 0.0) > max_drop)


def nightly(plan_path: str | Path, out: str | Path, settings: FarmSettings = FarmSettings(),
            progress: Optional[ProgressCallback] = None) -> Nightly:
    """``farm run``, then compare with the plan's baseline tag (else the previous run under this
    run's tag) and write ``OUT/report-RUN.html``. The results store is needed (``settings.use_store``)."""
    done = run_plan(plan_path, out, replace(settings, use_store=True), progress)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    where, this = settings.store or True, int(done.run_id)
    base_tag = done.plan.baseline or next(r["tag"] for r in api.history(where, runs_only=True).rows if r["id"] == this)
    earlier = [r for r in api.history(where, runs_only=True, tag=base_tag).rows if r["id"] != this] if base_tag else []
    min_effect = done.plan.thresholds.min_effect
    cmp, note = None, ""
    if earlier:
        # suspects are re-measured from their kept bytes, as compare does (reporting/suspects.py), on a
        # phone with the benchmark binary and cooldown the cells ran with (--benchmark-binary over the plan's)
        bench = dict(done.plan.bench)
        tool = settings.benchmark_tool or bench.get("tool")
        cmp = api.compare(str(earlier[0]["id"]), str(this), store=where, min_effect=min_effect,
                          tool=tool, cooldown=bench.get("cooldown", 0.0))
    else:
        note = f"no earlier run tagged {base_tag!r} to compare with: no verdict this time"
    refs = [str(earlier[0]["id"]), str(this)] if earlier else [str(this)]
    report = api.report(refs, out / f"report-{this}.html", store=where, min_effect=min_effect).html
    results = api.history(where, run=str(this), with_results=True).results
    breaches = accuracy_breaches(results, done.plan.thresholds.max_accuracy_drop)
    return Nightly(done, cmp, report, note, breaches)
