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


def table_rows(run: dict, cells: dict) -> list:
    out = []
    for key, c in sorted(cells.items(), key=lambda kv: tuple(str(v) for v in kv[0])):
        model, recipe, target, delegate = key
        out.append({"run": run["id"], "tag": run["tag"], "model": model, "recipe": recipe, "target": target,
                    "delegate": delegate, "status": c.bench_status or c.eval_status or "-",
                    "size_mb": c.size_bytes / 1e6 if c.size_bytes else None,
                    "gzip_mb": c.gzip_bytes / 1e6 if c.gzip_bytes else None,
                    "top1": c.top1, "drop": c.drop, "drop_ci": c.drop_ci,
                    "p50_ms": c.p50, "repeats": len(c.repeats)})
    return out


def build_report(store: Any, refs: Sequence[str], *, min_effect: float = 0.05) -> Report:
    from tflite_deploy.store.query import history

    ids = list(dict.fromkeys(store.resolve_run(r) for r in refs))
    runs = [store.run(i) for i in ids]
    per_run = {i: history(store, run_id=i) for i in ids}
    rows = [row for run in runs for row in table_rows(run, cells_of(per_run[run["id"]]))]

    comparison = None
    if len(ids) >= 2:
        comparison = compare_runs(store, str(ids[0]), str(ids[-1]), min_effect=min_effect)
    elif runs[0]["tag"]:
        earlier = [r for r in store.runs(tag=runs[0]["tag"]) if r["started_at"] < runs[0]["started_at"]
                   or (r["started_at"] == runs[0]["started_at"] and r["id"] < ids[0])]
        if earlier:
            comparison = compare_runs(store, str(earlier[0]["id"]), str(ids[0]), min_effect=min_effect)

    latest = per_run[ids[-1]]
    rep = Report(runs, rows, comparison, store_name=store.name, searches=autotune_searches(latest))
    latest_rows = [r for r in rows if r["run"] == ids[-1]]
    for target in sorted({r["target"] for r in latest_rows}):
        mine = [r for r in latest_rows if r["target"] == target]
        pts = [r for r in mine if r["p50_ms"] and r["size_mb"]]
        if pts:
            rep.plots.append(Plot(f"size-latency-{_slug(target)}", f"Size vs latency on {target}",
                                  "Each point a model × recipe × delegate; the line joins the Pareto front "
                                  "(nothing both smaller and faster).", plots.pareto_scatter(
                                      pts, "size_mb", "Size (MB)", f"Size vs latency ({target})")))
        pts = [r for r in mine if r["p50_ms"] and r["drop"] is not None]
        if pts:
            rep.plots.append(Plot(f"drop-latency-{_slug(target)}", f"Accuracy drop vs latency on {target}",
                                  "Top-1 drop against the float model (points) with its 95% interval; "
                                  "the line joins the Pareto front.", plots.pareto_scatter(
                                      pts, "drop", "Top-1 drop (points)", f"Accuracy drop vs latency ({target})",
                                      err_key="drop_ci")))
        samples = _samples(latest, target)
        if samples:
            rep.plots.append(Plot(f"latency-dist-{_slug(target)}", f"Latency distributions on {target}",
                                  "Every timed invoke of the latest run, grouped by delegate.",
                                  plots.latency_distributions(samples, f"Latency per delegate ({target})")))
    for tag in sorted({r["tag"] for r in runs if r["tag"]}):
        trend = _trend(store, tag)
        if trend:
            rep.plots.append(Plot(f"trend-{_slug(tag)}", f"Trend of runs tagged {tag}",
                                  "p50 latency of each cell over the runs with this tag.",
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
