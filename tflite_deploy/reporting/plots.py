"""The report's plots, drawn with matplotlib's Agg backend (imported only when a plot is drawn).

Each function returns a ``matplotlib.figure.Figure`` (no pyplot, no global state).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

PALETTE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C",
           "#CCB974", "#64B5CD"]
VERDICT_COLORS = {"slower": "#C44E52", "faster": "#55A868", "no change": "#8C8C8C"}


def _figure(width: float = 7.0, height: float = 4.2) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig


def _style(ax: Any, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_gid(title)  # the page shows the title above the plot; keep it in the SVG for tools
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def pareto_front(points: Sequence[tuple]) -> list:
    """Indices of points no other point beats on both coordinates (lower is better), by x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    front, best = [], float("inf")
    for i in order:
        if points[i][1] < best:
            front.append(i)
            best = points[i][1]
    return front


def pareto_scatter(rows: Sequence[dict], y_key: str, ylabel: str, title: str,
                   err_key: Optional[str] = None) -> Any:
    fig = _figure()
    ax = fig.add_subplot()
    delegates = sorted({r["delegate"] for r in rows})
    pts = [(r["p50_ms"], r[y_key]) for r in rows]
    for di, d in enumerate(delegates):
        mine = [r for r in rows if r["delegate"] == d]
        xs, ys = [r["p50_ms"] for r in mine], [r[y_key] for r in mine]
        color = PALETTE[di % len(PALETTE)]
        if err_key and all(r.get(err_key) for r in mine):
            lo = [y - r[err_key][0] for y, r in zip(ys, mine)]
            hi = [r[err_key][1] - y for y, r in zip(ys, mine)]
            ax.errorbar(xs, ys, yerr=[[max(v, 0) for v in lo], [max(v, 0) for v in hi]], fmt="none",
                        ecolor=color, alpha=0.5, capsize=3)
        ax.scatter(xs, ys, s=46, color=color, label=d, zorder=3, edgecolor="white", linewidth=0.8)
        for r in mine:
            ax.annotate(f"{r['model']}.{r['recipe']}" if r["recipe"] else r["model"], (r["p50_ms"], r[y_key]),
                        textcoords="offset points", xytext=(5, 4), fontsize=7.5, color="#333333")
    front = pareto_front(pts)
    if len(front) >= 1:
        fx, fy = [pts[i][0] for i in front], [pts[i][1] for i in front]
        ax.step(fx, fy, where="post", color="#222222", linewidth=1.2, linestyle="--", zorder=2,
                label="Pareto front")
        ax.scatter(fx, fy, s=130, facecolor="none", edgecolor="#222222", linewidth=1.2, zorder=4)
    _style(ax, title, "p50 latency (ms)", ylabel)
    ax.legend(fontsize=8, frameon=False)
    return fig


def latency_distributions(samples: dict, title: str) -> Any:
    """Box plots of every sample: one box per model.recipe, coloured and grouped by delegate."""
    from tflite_deploy.reporting.units import time_unit

    labels, data, colors = [], [], []
    per_unit, unit = time_unit(x for per in samples.values() for s in per.values() for x in s[:2000])
    for di, (d, per) in enumerate(sorted(samples.items())):
        for label, s in sorted(per.items()):
            labels.append(f"{label}\n{d}")
            data.append([x / per_unit for x in s])
            colors.append(PALETTE[di % len(PALETTE)])
    fig = _figure(max(6.0, 0.9 * len(data) + 2), 4.2)
    ax = fig.add_subplot()
    box = ax.boxplot(data, orientation="horizontal", patch_artist=True, showfliers=True, widths=0.6,
                     flierprops={"markersize": 2, "alpha": 0.4})
    for patch, c in zip(box["boxes"], colors):
        patch.set_facecolor(c)
        patch.set_alpha(0.55)
    for med in box["medians"]:
        med.set_color("#222222")
    for fliers in box["fliers"]:  # thousands of outlier dots: one embedded image, not an SVG element each
        fliers.set_rasterized(True)
    ax.set_yticks(range(1, len(labels) + 1), labels, fontsize=7.5)
    import numpy as np

    medians = [float(np.median(s)) for s in data if len(s)]
    wide = bool(medians) and min(medians) > 0 and max(float(np.max(s)) for s in data if len(s)) > 20 * min(medians)
    if wide:  # a few slow outliers would squash every box against the left edge
        ax.set_xscale("log")
    _style(ax, title, f"latency per invoke ({unit}" + (", log scale)" if wide else ")"), "")
    return fig


def trend(series: dict, title: str) -> Any:
    """p50 per cell over runs; x is the run order (runs can be seconds or weeks apart)."""
    from tflite_deploy.reporting.units import time_unit

    runs = sorted({p[0] for pts in series.values() for p in pts})
    pos = {r: i for i, r in enumerate(runs)}
    per_unit, unit = time_unit(p[1] for pts in series.values() for p in pts)
    fig = _figure()
    ax = fig.add_subplot()
    for i, (label, pts) in enumerate(sorted(series.items())[:10]):
        ys = [p[1] / per_unit for p in pts]
        color = PALETTE[i % len(PALETTE)]
        ax.plot([pos[p[0]] for p in pts], ys, marker="o", markersize=4, linewidth=1.4, color=color, label=label)
        if len(ys) >= 3:  # the cell's noise band: its runs' median ± their median absolute deviation x 1.4826
            import numpy as np

            mid = float(np.median(ys))
            band = 1.4826 * float(np.median(np.abs(np.asarray(ys) - mid)))
            ax.axhspan(mid - band, mid + band, color=color, alpha=0.08, linewidth=0)
    ax.set_xticks(range(len(runs)), [f"run {r[1]}\n{r[0]:%m-%d %H:%M}" for r in runs], fontsize=7.5)
    _style(ax, title, "", f"p50 latency ({unit})")
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def per_layer(layers: Sequence[dict], label: str, top: int = 15) -> Any:
    rows = sorted(layers, key=lambda r: -(r.get("rmse_over_scale") or 0))[:top]
    fig = _figure(7.0, 0.28 * len(rows) + 1.4)
    ax = fig.add_subplot()
    names = [str(r.get("tensor_name") or r.get("op_name"))[-40:] for r in rows][::-1]
    vals = [r.get("rmse_over_scale") or 0 for r in rows][::-1]
    ax.barh(names, vals, color=["#C44E52" if v > 1 else "#4C72B0" for v in vals])
    ax.axvline(0.29, color="#222222", linestyle=":", linewidth=1)
    ax.tick_params(axis="y", labelsize=7)
    _style(ax, f"Per-layer error ({label})", "RMSE / quantization step", "")
    return fig


def verdict_bars(cells: Sequence[Any]) -> Any:
    cells = [c for c in cells if c.latency.ratio]
    fig = _figure(7.0, 0.32 * len(cells) + 1.5)
    ax = fig.add_subplot()
    names = [" ".join(str(v) for v in c.key if v) for c in cells][::-1]
    ratios = [(c.latency.ratio - 1) * 100 for c in cells][::-1]
    thr = [(c.latency.threshold or 0) * 100 for c in cells][::-1]
    colors = [VERDICT_COLORS.get(c.latency.verdict, "#CCB974") for c in cells][::-1]
    y = range(len(names))
    ax.barh(list(y), [2 * t for t in thr], left=[-t for t in thr], color="#eeeeee", height=0.8)
    ax.barh(list(y), ratios, color=colors, height=0.5)
    ax.set_yticks(list(y), names, fontsize=7.5)
    ax.axvline(0, color="#222222", linewidth=0.8)
    _style(ax, "Latency change (new vs base)", "change of median latency (%)", "")
    return fig


def model_grid(rows: Sequence[dict], y_key: str, ylabel: str, title: str, err_key: Optional[str] = None) -> Any:
    """Small multiples: one panel per model (rows) × target (columns), each with its own Pareto front
    of that model's variants (latency across models or targets is not one trade-off), points coloured
    by delegate and labelled by recipe, latency in the unit that panel's numbers read best in."""
    from tflite_deploy.reporting.units import time_unit

    models = sorted({r["model"] for r in rows}, key=str)
    targets = sorted({r["target"] for r in rows}, key=str)
    delegates = sorted({r["delegate"] for r in rows}, key=str)
    fig = _figure(3.6 * len(targets) + 1.6, 2.9 * len(models) + 0.6)
    axes = fig.subplots(len(models), len(targets), squeeze=False)
    for mi, model in enumerate(models):
        for ti, target in enumerate(targets):
            ax = axes[mi][ti]
            mine = [r for r in rows if r["model"] == model and r["target"] == target]
            per_unit, unit = time_unit(r["p50_ms"] for r in mine)
            for di, d in enumerate(delegates):
                pts = [r for r in mine if r["delegate"] == d]
                if not pts:
                    continue
                xs, ys = [r["p50_ms"] / per_unit for r in pts], [r[y_key] for r in pts]
                color = PALETTE[di % len(PALETTE)]
                if err_key and all(r.get(err_key) for r in pts):
                    lo = [max(y - r[err_key][0], 0) for y, r in zip(ys, pts)]
                    hi = [max(r[err_key][1] - y, 0) for y, r in zip(ys, pts)]
                    ax.errorbar(xs, ys, yerr=[lo, hi], fmt="none", ecolor=color, alpha=0.5, capsize=3)
                ax.scatter(xs, ys, s=40, color=color, label=d, zorder=3, edgecolor="white", linewidth=0.8)
                for x, y, r in zip(xs, ys, pts):
                    ax.annotate(r["recipe"] or "-", (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7,
                                color="#333333")
            pts = [(r["p50_ms"] / per_unit, r[y_key]) for r in mine]
            front = pareto_front(pts)
            if front:
                fx, fy = [pts[i][0] for i in front], [pts[i][1] for i in front]
                ax.step(fx, fy, where="post", color="#222222", linewidth=1.1, linestyle="--", zorder=2)
                ax.scatter(fx, fy, s=110, facecolor="none", edgecolor="#222222", linewidth=1.1, zorder=4)
            _style(ax, f"{model} on {target}", f"p50 latency ({unit})", ylabel if ti == 0 else "")
            ax.set_title(f"{model} · {target}", fontsize=9)
            ax.margins(0.15)
    handles = {}
    for ax in fig.axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    if handles:
        fig.legend(list(handles.values()), list(handles), fontsize=8, frameon=False, loc="outside right upper",
                   title="delegate", title_fontsize=8)
    fig.set_gid(title)
    return fig
