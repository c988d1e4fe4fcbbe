"""``compare BASE NEW``: line up two runs' cells (model × recipe × target × delegate) and judge each.

The numbers come from the store; the judging is :mod:`tflite_deploy.reporting.verdict` (pure).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Optional

from tflite_deploy.reporting import verdict as V
from tflite_deploy.reporting.joined import is_device_eval

CellKey = tuple  # (model, recipe, target, delegate)


@dataclass
class Cell:
    """What one run measured for one cell (several results of a cell pool their repeats)."""

    key: CellKey
    bench_status: Optional[str] = None  # "ok", "failed", "unavailable"; None: not benched
    eval_status: Optional[str] = None
    convert_status: Optional[str] = None
    error: Optional[str] = None
    repeats: list = field(default_factory=list)  # per-repeat medians, ms
    size_bytes: Optional[int] = None
    gzip_bytes: Optional[int] = None
    top1: Optional[float] = None
    top1_ci: Optional[list] = None
    drop: Optional[float] = None
    drop_ci: Optional[list] = None
    task: Optional[str] = None  # "classification", "regression", "agreement" (eval --task)
    mae: Optional[float] = None  # regression: against the targets, with its 95% interval
    mae_ci: Optional[list] = None
    mae_change: Optional[float] = None  # regression: MAE minus the float model's (positive: worse)
    mae_change_ci: Optional[list] = None
    output_sqnr: dict = field(default_factory=dict)  # per output name, dB against the reference (several outputs)
    artifact: Optional[str] = None
    sha256: Optional[str] = None  # the bytes the bench measured (kept by content: store/blobs.py)
    settings: dict = field(default_factory=dict)  # the bench settings (threads, runs, ...) as recorded
    artifact_sha256: Optional[str] = None  # the bytes convert made / eval measured (sha256 may be the bench's)
    source_sha256: Optional[str] = None  # the source model the artifact was converted from
    join_note: str = ""  # said when the joined convert/eval results are of other bytes than the bench's
    instructions: Optional[float] = None  # per invoke, counted under callgrind (bench --measure instructions)
    tool_sha256: Optional[str] = None  # the benchmark_model binary (or APK) a phone ran it with
    # eval --device: this phone x delegate's outputs against the host's
    device_eval_status: Optional[str] = None
    agreement: Optional[float] = None  # top-1 agreement with the host, 0..1
    agreement_samples: Optional[int] = None
    sqnr_db: Optional[float] = None
    nonfinite: Optional[int] = None
    diverged: Optional[bool] = None

    @property
    def p50(self) -> Optional[float]:
        return statistics.median(self.repeats) if self.repeats else None

    @property
    def failed(self) -> bool:
        states = (self.bench_status, self.eval_status, self.convert_status, self.device_eval_status)
        return "failed" in states or "unavailable" in states


def repeat_medians(row: dict) -> list:
    """Per-repeat medians of a bench result: ``metrics["repeat_p50_ms"]`` (``bench --repeat``), else its p50."""
    doc = row.get("document") or {}
    reps = (doc.get("metrics") or {}).get("repeat_p50_ms") or (doc.get("settings") or {}).get("repeat_p50_ms")
    if reps:
        return [float(x) for x in reps if x is not None]
    value = row.get("p50_ms") if row.get("p50_ms") is not None else row.get("mean_ms")
    return [float(value)] if value is not None else []


def cells_of(rows: list) -> dict:
    """Group result rows (from :func:`tflite_deploy.store.query.history`) into cells.

    Bench rows make the cells (model × recipe × target × delegate). Convert rows (size) and eval rows
    (accuracy) describe the artifact, not a target: they join every bench cell of their model × recipe,
    or make a cell of their own (target and delegate "-") when nothing of it was benched.
    """
    cells: dict = {}
    facts: dict = {}
    for row in rows:
        doc = row.get("document") or {}
        ok = row["status"] == "ok"
        if row["kind"] == "bench":
            key = (row["model"], row["recipe"], row["target"], row["delegate"])
            c = cells.setdefault(key, Cell(key))
            c.artifact = c.artifact or row.get("artifact")
            c.size_bytes = c.size_bytes or row.get("size_bytes") or (doc.get("settings") or {}).get("size_bytes")
            c.gzip_bytes = c.gzip_bytes or row.get("gzip_bytes")
            c.source_sha256 = c.source_sha256 or row.get("source_sha256")
            if ok:
                c.bench_status = "ok"
                c.repeats.extend(repeat_medians(row))
                c.sha256 = c.sha256 or row.get("artifact_sha256")
                c.instructions = c.instructions or (doc.get("metrics") or {}).get("instructions_per_invoke")
                c.settings = c.settings or dict(doc.get("settings") or {})
                c.tool_sha256 = c.tool_sha256 or (doc.get("device") or {}).get("benchmark_sha256")
            elif c.bench_status != "ok":
                c.bench_status, c.error = row["status"], doc.get("error")
        elif row["kind"] == "eval" and is_device_eval(row):
            key = (row["model"], row["recipe"], row["target"], row["delegate"])
            _device_eval_facts(cells.setdefault(key, Cell(key)), row, doc, ok)
        elif row["kind"] in ("eval", "convert"):
            f = facts.setdefault((row["model"], row["recipe"]), Cell((row["model"], row["recipe"], "-", "-")))
            f.artifact = f.artifact or row.get("artifact")
            f.source_sha256 = row.get("source_sha256") or f.source_sha256
            if ok:
                f.artifact_sha256 = row.get("artifact_sha256") or f.artifact_sha256
            _artifact_facts(f, row, doc, ok)
    for (model, recipe), f in facts.items():
        mine = [c for k, c in cells.items() if k[:2] == (model, recipe)]
        for c in mine or [cells.setdefault(f.key, f)]:
            if c is not f:
                _join(c, f)
    return cells


def _device_eval_facts(c: Cell, row: dict, doc: dict, ok: bool) -> None:
    m = doc.get("metrics") or {}
    c.artifact = c.artifact or row.get("artifact")
    if ok:
        c.device_eval_status = "ok"
        c.agreement, c.agreement_samples = m.get("top1_agreement"), m.get("samples")
        c.sqnr_db, c.nonfinite, c.diverged = m.get("sqnr_db"), m.get("nonfinite"), m.get("diverged")
    elif c.device_eval_status != "ok":
        c.device_eval_status, c.error = row["status"], doc.get("error")


def _artifact_facts(f: Cell, row: dict, doc: dict, ok: bool) -> None:
    """What a convert (size) or eval (accuracy) row says about its artifact."""
    settings = doc.get("settings") or {}
    if row["kind"] == "convert":
        if ok:
            f.convert_status = "ok"
            f.size_bytes = settings.get("size_bytes") or row.get("size_bytes") or f.size_bytes
            f.gzip_bytes = settings.get("gzip_bytes") or row.get("gzip_bytes") or f.gzip_bytes
        elif f.convert_status != "ok":
            f.convert_status, f.error = row["status"], doc.get("error")
        return
    m = doc.get("metrics") or {}
    f.size_bytes = f.size_bytes or row.get("size_bytes")
    f.gzip_bytes = f.gzip_bytes or row.get("gzip_bytes")
    if ok:
        f.eval_status = "ok"
        f.top1, f.top1_ci = m.get("top1"), m.get("top1_ci95")
        f.drop, f.drop_ci = m.get("top1_drop"), m.get("top1_drop_ci95")
        f.task = m.get("task") or ("classification" if f.top1 is not None else None)
        f.mae, f.mae_ci = m.get("mae"), m.get("mae_ci95")
        f.mae_change, f.mae_change_ci = m.get("mae_change"), m.get("mae_change_ci95")
        f.output_sqnr = {name: o.get("sqnr_db") for name, o in (m.get("outputs") or {}).items()}
    elif f.eval_status != "ok":
        f.eval_status, f.error = row["status"], doc.get("error")


def _join(c: Cell, f: Cell) -> None:
    """A bench cell takes its artifact's convert and eval facts."""
    c.convert_status, c.eval_status = f.convert_status, f.eval_status
    c.error = c.error or f.error
    c.size_bytes = f.size_bytes or c.size_bytes
    c.gzip_bytes = f.gzip_bytes or c.gzip_bytes
    c.top1, c.top1_ci, c.drop, c.drop_ci = f.top1, f.top1_ci, f.drop, f.drop_ci
    c.task, c.mae, c.mae_ci, c.mae_change, c.mae_change_ci = f.task, f.mae, f.mae_ci, f.mae_change, f.mae_change_ci
    c.output_sqnr = f.output_sqnr
    c.source_sha256 = c.source_sha256 or f.source_sha256
    c.artifact_sha256 = f.artifact_sha256
    if c.sha256 and f.artifact_sha256 and c.sha256 != f.artifact_sha256:
        c.join_note = (f"size/accuracy are of other bytes ({f.artifact_sha256[:8]}) than the bench measured "
                       f"({c.sha256[:8]}): the artifact was re-made between the runs")


def accuracy_of(b: Cell, n: Cell) -> V.AccuracyVerdict:
    """The accuracy verdict by the cells' task: the MAE for regression, top-1 otherwise."""
    if "regression" in (b.task, n.task):
        if b.task != n.task:
            return V.AccuracyVerdict(V.NOT_COMPARABLE, basis=f"task {b.task} on base, {n.task} on new")
        return V.regression_verdict(b.mae, n.mae, b.mae_change_ci, n.mae_change_ci, b.mae_ci, n.mae_ci)
    return V.accuracy_verdict(b.top1, n.top1, b.drop_ci, n.drop_ci, b.top1_ci, n.top1_ci)


def output_sqnr_changes(b: Optional[Cell], n: Optional[Cell]) -> dict:
    """{output name: {base_sqnr_db, new_sqnr_db, change_db}} for a model with several outputs."""
    names = list((n.output_sqnr if n else {}) or (b.output_sqnr if b else {}))
    out = {}
    for name in names:
        bs, ns = (b.output_sqnr.get(name) if b else None), (n.output_sqnr.get(name) if n else None)
        out[name] = {"base_sqnr_db": bs, "new_sqnr_db": ns,
                     "change_db": ns - bs if bs is not None and ns is not None else None}
    return out


@dataclass
class CellComparison:
    key: CellKey
    status: str  # "compared", "missing on new", "missing on base", "failed on new", "failed on base"
    base: Optional[Cell]
    new: Optional[Cell]
    latency: V.LatencyVerdict
    accuracy: V.AccuracyVerdict
    size: str
    note: str = ""
    confirmation: str = ""  # "", suspect, confirmed, cleared, re-measured (reporting/suspects.py)
    unconfirmed: Optional[V.LatencyVerdict] = None  # the verdict on the recorded runs, once re-measured

    compute: str = ""  # "now computes in float", ops changed ... (reporting/size_verdict.py)
    agreement: str = V.NOT_COMPARABLE  # eval --device: "dropped", "rose", "no change" (V.agreement_verdict)

    @property
    def instructions(self) -> str:
        """"more instructions" / "fewer instructions" past V.INSTRUCTIONS_EFFECT, "" when not counted on both."""
        b, n = (self.base.instructions if self.base else None), (self.new.instructions if self.new else None)
        if not b or not n:
            return ""
        r = n / b
        return "more instructions" if r > 1 + V.INSTRUCTIONS_EFFECT else \
            "fewer instructions" if r < 1 - V.INSTRUCTIONS_EFFECT else ""

    @property
    def regressed(self) -> list[str]:
        """What got worse, in the verdict's order: ``missing on new`` or ``failed on new``; else ``slower``,
        ``less accurate``, ``larger``, ``now computes in float``, ``more instructions``, ``agreement dropped``."""
        if self.status in ("missing on new", "failed on new"):
            return [self.status]
        return [word for word, worse in ((V.SLOWER, self.latency.verdict == V.SLOWER),
                                         ("less accurate", self.accuracy.verdict == "worse"),
                                         ("larger", self.size == "larger"),
                                         (V.NOW_FLOAT, self.compute.startswith(V.NOW_FLOAT)),
                                         ("more instructions", self.instructions == "more instructions"),
                                         (V.AGREEMENT_DROPPED, self.agreement == "dropped")) if worse]

    @property
    def regression(self) -> bool:
        return bool(self.regressed)

    @property
    def verdict(self) -> str:
        """Words for the table: the status when not compared, else each change found (latency, accuracy,
        size, compute, instructions), or "no change". A row counted as a regression never reads "no change"."""
        if self.status != "compared":
            return self.status
        parts = [self.latency.verdict] if self.latency.verdict in (V.FASTER, V.SLOWER) else []
        parts += [{"worse": "less accurate", "better": "more accurate"}[self.accuracy.verdict]] \
            if self.accuracy.verdict in ("worse", "better") else []
        parts += [self.size] if self.size in ("larger", "smaller") else []
        parts += [V.NOW_FLOAT] if self.compute.startswith(V.NOW_FLOAT) else []
        parts += [self.instructions] if self.status == "compared" and self.instructions else []
        parts += [V.AGREEMENT_DROPPED] if self.agreement == "dropped" else \
            ["agreement rose"] if self.agreement == "rose" else []
        if parts:
            return ", ".join(parts)
        judged = (self.latency.verdict, self.accuracy.verdict, self.size, self.agreement)
        return V.NO_CHANGE if V.NO_CHANGE in judged or self.compute else V.NOT_COMPARABLE

    def to_dict(self) -> dict:
        model, recipe, target, delegate = self.key
        b, n = self.base, self.new
        return {
            "model": model, "recipe": recipe, "target": target, "delegate": delegate,
            "status": self.status, "verdict": self.verdict, "regression": self.regression,
            "regressed": self.regressed,
            "base_p50_ms": b.p50 if b else None, "new_p50_ms": n.p50 if n else None,
            "base_repeats": len(b.repeats) if b else 0, "new_repeats": len(n.repeats) if n else 0,
            "latency": self.latency.to_dict(),
            "base_size_bytes": b.size_bytes if b else None, "new_size_bytes": n.size_bytes if n else None,
            "size": self.size,
            "base_top1": b.top1 if b else None, "new_top1": n.top1 if n else None,
            "new_drop": n.drop if n else None, "new_drop_ci95": n.drop_ci if n else None,
            "task": (n or b).task if (n or b) else None,
            "base_mae": b.mae if b else None, "new_mae": n.mae if n else None,
            "new_mae_change": n.mae_change if n else None, "new_mae_change_ci95": n.mae_change_ci if n else None,
            "outputs": output_sqnr_changes(b, n),
            "accuracy": self.accuracy.__dict__, "note": self.note, "confirmation": self.confirmation,
            "compute": self.compute, "instructions": self.instructions,
            "base_instructions": b.instructions if b else None, "new_instructions": n.instructions if n else None,
            "unconfirmed": self.unconfirmed.to_dict() if self.unconfirmed else None,
            "agreement": self.agreement, "base_agreement": b.agreement if b else None,
            "new_agreement": n.agreement if n else None, "new_diverged": n.diverged if n else None,
        }


def compare_cells(base: dict, new: dict, history: Optional[dict] = None, *, min_effect: float = 0.05
                  ) -> list:
    """Judge every cell either run has. ``history`` maps a cell to its past p50s (same tag)."""
    history = history or {}
    out = []
    for key in sorted(set(base) | set(new), key=lambda k: tuple("" if v is None else str(v) for v in k)):
        b, n = base.get(key), new.get(key)
        none_lat = V.LatencyVerdict(V.NOT_COMPARABLE)
        none_acc = V.AccuracyVerdict(V.NOT_COMPARABLE)
        if n is None or b is None:
            status = "missing on new" if n is None else "missing on base"
            out.append(CellComparison(key, status, b, n, none_lat, none_acc, V.NOT_COMPARABLE))
            continue
        if n.failed or b.failed:
            status = "failed on new" if n.failed else "failed on base"
            err = (n if n.failed else b).error or ""
            out.append(CellComparison(key, status, b, n, none_lat, none_acc, V.NOT_COMPARABLE, err))
            continue
        lat = V.latency_verdict(b.repeats, n.repeats, history.get(key, ()), min_effect=min_effect)
        acc = accuracy_of(b, n)
        notes = [n.join_note] if n.join_note else []
        if b.source_sha256 and n.source_sha256 and b.source_sha256 != n.source_sha256:
            notes.append(f"the source model changed ({b.source_sha256[:8]} -> {n.source_sha256[:8]})")
        agree = V.agreement_verdict(b.agreement, b.agreement_samples, n.agreement, n.agreement_samples,
                                    bool(b.diverged), bool(n.diverged))
        out.append(CellComparison(key, "compared", b, n, lat, acc, V.size_verdict(b.size_bytes, n.size_bytes),
                                  "; ".join(notes), agreement=agree))
    return out


@dataclass
class Comparison:
    base_run: dict
    new_run: dict
    cells: list
    min_effect: float
    confirmed: list = field(default_factory=list)  # cell keys re-measured interleaved (suspects, --confirm)
    blob_folder: Optional[str] = None  # where the store keeps the measured bytes (store/blobs.py)
    base_runs: list = field(default_factory=list)  # every run joined on each side (a tag: one per kind)
    new_runs: list = field(default_factory=list)

    @property
    def regressions(self) -> list:
        return [c for c in self.cells if c.regression]

    def to_dict(self) -> dict:
        def run(r: dict) -> dict:
            return {"id": r["id"], "tag": r["tag"], "started_at": str(r["started_at"]),
                    "git_commit": r.get("git_commit")}
        return {"base": run(self.base_run), "new": run(self.new_run), "min_effect": self.min_effect,
                "regressions": len(self.regressions), "confirmed": [list(k) for k in self.confirmed],
                "base_runs": self.base_runs, "new_runs": self.new_runs,
                "cells": [c.to_dict() for c in self.cells]}


def compare_runs(store: Any, base_ref: str, new_ref: str, *, min_effect: float = 0.05) -> Comparison:
    """Compare two sides of a store: run ids, ``latest``, or tags (the latest convert, eval and bench
    runs under the tag, joined: :mod:`tflite_deploy.reporting.joined`)."""
    from tflite_deploy.reporting.joined import resolve_side

    return compare_sides(store, resolve_side(store, base_ref), resolve_side(store, new_ref), min_effect=min_effect)


def compare_sides(store: Any, base_side: Any, new_side: Any, *, min_effect: float = 0.05) -> Comparison:
    """Judge two resolved sides cell by cell. The noise band comes from past bench runs under the new
    run's tag (else the base's), excluding the compared runs; a slower cell is marked a suspect."""
    from tflite_deploy.reporting.size_verdict import judge_compute
    from tflite_deploy.reporting.suspects import mark_suspects
    from tflite_deploy.store.blobs import blob_dir
    from tflite_deploy.store.query import history

    base_run, new_run = base_side.run, new_side.run
    base, new = cells_of(base_side.rows), cells_of(new_side.rows)
    compared = set(base_side.run_ids) | set(new_side.run_ids)
    past: dict = {}
    tag = new_run["tag"] or base_run["tag"]
    if tag is not None:
        for row in history(store, tag=tag, kind="bench", status="ok", until=new_run["started_at"],
                           with_document=False):
            if row["run_id"] in compared or row["p50_ms"] is None:
                continue
            key = (row["model"], row["recipe"], row["target"], row["delegate"])
            past.setdefault(key, {}).setdefault(row["run_id"], []).append(row["p50_ms"])
    hist = {k: [statistics.median(v) for v in per_run.values()] for k, per_run in past.items()}
    folder = blob_dir(store.url)
    cmp = Comparison(base_run, new_run, compare_cells(base, new, hist, min_effect=min_effect), min_effect,
                     blob_folder=str(folder), base_runs=base_side.run_ids, new_runs=new_side.run_ids)
    judge_compute(cmp.cells, folder)
    return mark_suspects(cmp)
