"""Gather what a report shows from the store: rows, samples, trends, per-layer errors, verdicts."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from tflite_deploy.reporting import plots
from tflite_deploy.reporting.compare import Comparison, cells_of, compare_runs
from tflite_deploy.reporting.search import autotune_searches


@dataclass
class Plot:
    name: str  # stable id, also the PNG file name
    title: str
    caption: str
    figure: Any  # a matplotlib Figure until rendered


@dataclass
class Report:
    runs: list  # run dicts
    rows: list  # one dict per cell per run: the size / accuracy / latency table
    comparison: Optional[Comparison]
    plots: list = field(default_factory=list)
    store_name: str = ""
    searches: list = field(default_factory=list)  # autotune searches of the latest run (reporting.search)
    sentences: list = field(default_factory=list)  # one per model: its best variants (summary.py)
    grid: dict = field(default_factory=dict)  # the latest side's p50 per model.recipe x target/delegate
    agreement_grid: dict = field(default_factory=dict)  # eval --device: agreement with the host per phone x delegate


def table_rows(run: dict, cells: dict) -> list:
    out = []
    for key, c in sorted(cells.items(), key=lambda kv: tuple(str(v) for v in kv[0])):
        model, recipe, target, delegate = key
        out.append({"run": run["id"], "tag": run["tag"], "model": model, "recipe": recipe, "target": target,
                    "delegate": delegate,
                    "status": c.bench_status or c.device_eval_status or c.eval_status or c.convert_status or "-",
                    "size_mb": c.size_bytes / 1e6 if c.size_bytes else None,
                    "gzip_mb": c.gzip_bytes / 1e6 if c.gzip_bytes else None,
                    "top1": c.top1, "drop": c.drop, "drop_ci": c.drop_ci,
                    "task": c.task, "mae": c.mae, "mae_change": c.mae_change, "mae_change_ci": c.mae_change_ci,
                    "accuracy": accuracy_text(c), "change": change_text(c), "outputs": outputs_text(c),
                    "p50_ms": c.p50, "repeats": len(c.repeats), "source": c.source_sha256, "note": "",
                    "agreement": c.agreement, "diverged": c.diverged, "nonfinite": c.nonfinite,
                    "sqnr_db": c.sqnr_db})
    return out


def accuracy_text(c: Any) -> str:
    """The accuracy cell of a report row: MAE for a regression model, top-1 (%) otherwise."""
    if c.task == "regression":
        return "-" if c.mae is None else f"MAE {c.mae:.4g}"
    return "-" if c.top1 is None else f"{c.top1:.3g}%"


def change_text(c: Any) -> str:
    """Against the float model: the MAE change (positive: worse) or the top-1 drop (points), with the 95% CI."""
    val, ci, fmt = (c.mae_change, c.mae_change_ci, "{:+.3g}") if c.task == "regression" else (c.drop, c.drop_ci, "{:+.2f}")
    if val is None:
        return "-"
    return fmt.format(val) + (f" [{fmt.format(ci[0])}, {fmt.format(ci[1])}]" if ci else "")


def outputs_text(c: Any) -> str:
    """Per-output SQNR (dB) of a model with several outputs, by name."""
    return ", ".join(f"{name} {'-' if v is None else f'{v:.1f}'}" for name, v in c.output_sqnr.items())


def build_report(store: Any, refs: Sequence[str], *, min_effect: float = 0.05) -> Report:
    """The report of ``refs`` (run ids, ``latest``, or tags: a tag joins its latest convert, eval and
    bench runs, see reporting/joined.py); with two or more the first is compared with the last, with
    one its previous state (the run before it, or for a tag the runs of each kind before those)."""
    from tflite_deploy.reporting.compare import compare_sides
    from tflite_deploy.reporting.joined import is_tag, resolve_side
    from tflite_deploy.reporting.summary import agreement_grid, best_sentences, latency_grid

    sides = []
    for ref in refs:
        side = resolve_side(store, ref)
        if all(side.run_ids != x.run_ids for x in sides):
            sides.append(side)
    runs = [side.run for side in sides]
    rows = [row for side in sides for row in table_rows(side.run, cells_of(side.rows))]
    _note_source_changes(rows)

    comparison = None
    if len(sides) >= 2:
        comparison = compare_sides(store, sides[0], sides[-1], min_effect=min_effect)
    elif is_tag(refs[0]):
        before = resolve_side(store, refs[0], exclude=sides[0].run_ids)
        if before.rows:
            comparison = compare_sides(store, before, sides[0], min_effect=min_effect)
    elif runs[0]["tag"]:
        earlier = [r for r in store.runs(tag=runs[0]["tag"]) if r["started_at"] < runs[0]["started_at"]
                   or (r["started_at"] == runs[0]["started_at"] and r["id"] < runs[0]["id"])]
        if earlier:
            comparison = compare_runs(store, str(earlier[0]["id"]), str(runs[0]["id"]), min_effect=min_effect)

    latest = sides[-1].rows
    rep = Report(runs, rows, comparison, store_name=store.name, searches=autotune_searches(latest))
    latest_rows = [r for r in rows if r["run"] == runs[-1]["id"] and r["target"] != "-"]
    rep.sentences = best_sentences(latest_rows)
    rep.grid = latency_grid(latest_rows)
    rep.agreement_grid = agreement_grid(latest_rows)
    label = f"run {runs[-1]['id']}" + (f" ({sides[-1].label})" if len(sides[-1].run_ids) > 1 else "")
    pts = [r for r in latest_rows if r["p50_ms"] and r["size_mb"]]
    if pts:
        rep.plots.append(Plot("size-latency", "Size vs latency, per model and target",
                              f"The latest results ({label}). One panel per model × target, each with its own "
                              "Pareto front (ringed, joined by a dashed line: nothing both smaller and faster); points are recipes, "
                              "coloured by delegate.", plots.model_grid(pts, "size_mb", "size (MB)",
                                                                         "Size vs latency")))
    for key, slug, what, caption in (  # the accuracy cost with its interval, against latency
            ("mae_change", "mae", "MAE change", " of regression models: the MAE's change against the float model "
             "(positive: worse)"),
            ("drop", "drop", "Accuracy drop", ": top-1 drop against the float model (points)")):
        pts = [r for r in latest_rows if r["p50_ms"] and r[key] is not None]
        if pts:
            axis = "top-1 drop (points)" if key == "drop" else what
            rep.plots.append(Plot(f"{slug}-latency", f"{what} vs latency, per model and target",
                                  f"The latest results ({label}){caption} "
                                  "with its 95% interval; one Pareto front per panel.",
                                  plots.model_grid(pts, key, axis, f"{what} vs latency", err_key=f"{key}_ci")))
    for target in sorted({r["target"] for r in latest_rows}):
        samples = _samples(latest, target)
        if samples:
            rep.plots.append(Plot(f"latency-dist-{_slug(target)}", f"Latency distributions on {target}",
                                  f"Every timed invoke of the latest results ({label}), grouped by delegate.",
                                  plots.latency_distributions(samples, f"Latency per delegate ({target})")))
    for tag in sorted({r["tag"] for r in runs if r["tag"]}):
        trend = _trend(store, tag)
        if trend:
            rep.plots.append(Plot(f"trend-{_slug(tag)}", f"Trend of runs tagged {tag}",
                                  "p50 latency of each cell over the runs with this tag; the shaded band is "
                                  "each cell's noise (median ± 1.48 MAD of its runs).",
                                  plots.trend(trend, f"p50 over runs tagged {tag!r}")))
    for row in latest:
        layers = ((row.get("document") or {}).get("metrics") or {}).get("per_layer")
        if row["kind"] == "eval" and layers:
            label = f"{row['model']}.{row['recipe']}"
            rep.plots.append(Plot(f"per-layer-{_slug(label)}", f"Per-layer error of {label}",
                                  "RMSE of each quantized tensor in units of its quantization step "
                                  "(about 0.29 is ideal rounding), worst first.", plots.per_layer(layers, label)))
    if comparison and any(c.latency.ratio for c in comparison.cells):
        rep.plots.append(Plot("verdicts", "Latency change, new vs base",
                              "Ratio of medians per cell; the shaded band is the change each verdict needed.",
                              plots.verdict_bars(comparison.cells)))
    return rep


def _note_source_changes(rows: list) -> None:
    """A row whose source model (sha256 of what it was converted from) differs from the previous run's
    row of the same cell says so: its numbers measure another model, not a change of recipe or tool."""
    seen: dict = {}
    for r in rows:
        key = (r["model"], r["recipe"], r["target"], r["delegate"])
        before = seen.get(key)
        if before and before["source"] and r["source"] and before["source"] != r["source"]:
            r["note"] = f"source model changed since run {before['run']} ({before['source'][:8]} -> {r['source'][:8]})"
        seen[key] = r


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in str(text)).strip("-").lower() or "x"


def _samples(rows: list, target: str) -> dict:
    """{delegate: {label: samples}} from the raw samples of a run's bench results on one target."""
    out: dict = {}
    for row in rows:
        if row["kind"] != "bench" or row["target"] != target or row["status"] != "ok":
            continue
        lat = (row.get("document") or {}).get("latency") or {}
        s = lat.get("samples_ms") or []
        if s:
            out.setdefault(row["delegate"], {}).setdefault(f"{row['model']}.{row['recipe']}", []).extend(s)
    return out


def _trend(store: Any, tag: str) -> dict:
    """{cell label: [((run started_at, run id), p50), ...]} over every run with this tag."""
    from tflite_deploy.store.query import history

    per: dict = {}
    for row in history(store, tag=tag, kind="bench", status="ok", with_document=False):
        if row["p50_ms"] is None:
            continue
        label = f"{row['model']}.{row['recipe']} {row['target']}/{row['delegate']}"
        per.setdefault(label, {}).setdefault((row["started_at"], row["run_id"]), []).append(row["p50_ms"])
    trend = {k: sorted(((t, run_id), statistics.median(v)) for (t, run_id), v in runs.items())
             for k, runs in per.items()}
    return {k: v for k, v in trend.items() if len(v) >= 2}
