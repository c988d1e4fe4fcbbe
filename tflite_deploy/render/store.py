"""Terminal output of the results-store commands (``history``, ``compare``): Rich tables.

Kept beside :mod:`tflite_deploy.render.verbs` (same layer) so the store's tables live in one room.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from rich.console import Console
from rich.table import Table

from tflite_deploy.render.verbs import ms  # one time format: µs, ms or s with the unit

# Short headers for the terminal table (JSON and CSV keep the column names).
TABLE_LABELS = {"result_id": "id", "run_id": "run", "started_at": "started (UTC)", "p50_ms": "p50 ms",
                "mean_ms": "mean ms", "init_ms": "init ms", "peak_memory_mb": "peak MB", "accuracy_top1": "top-1",
                "accuracy_drop": "drop", "size_bytes": "bytes", "gzip_bytes": "gzip bytes", "git_commit": "git"}

VERDICT_STYLE = {"faster": "green", "slower": "bold red", "no change": "", "failed on new": "bold red",
                 "missing on new": "bold red", "less accurate": "bold red", "more accurate": "green"}


def plain(v: Any) -> Any:
    """A store value as JSON/CSV carry it: times in ISO 8601, argv lists joined."""
    return v.isoformat() if hasattr(v, "isoformat") else " ".join(v) if isinstance(v, list) else v


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def _pct(ratio: Optional[float]) -> str:
    return "-" if ratio is None else f"{(ratio - 1) * 100:+.1f}%"


def history_table(rows: Sequence[dict], cols: Sequence[str], title: str, console: Console) -> None:
    shown = [c for c in cols if c not in ("artifact", "cwd") and any(r.get(c) is not None for r in rows)] or list(cols)
    t = Table(title=title, title_justify="left")
    cells = [[_fmt(plain(r.get(c))) if not hasattr(r.get(c), "isoformat") else f"{r[c]:%Y-%m-%d %H:%M}"
              for c in shown] for r in rows]
    for i, c in enumerate(shown):
        right = c.endswith(("_ms", "_mb", "_bytes", "_id", "top1", "drop")) or c == "id"
        # whole values, never "float…": numbers and short words keep their width, long text folds
        widest = max((len(row[i]) for row in cells), default=0)
        t.add_column(TABLE_LABELS.get(c, c), justify="right" if right else "left", overflow="fold",
                     min_width=widest if right or widest <= 12 else None)
    for row in cells:
        t.add_row(*row)
    console.print(t)


def comparison_table(cmp: Any, console: Console) -> None:
    b, n = cmp.base_run, cmp.new_run
    t = Table(title=f"run {b['id']} ({b['tag'] or 'no tag'}) -> run {n['id']} ({n['tag'] or 'no tag'}), "
                    f"min effect {cmp.min_effect:.0%}", title_justify="left")
    for c in ("model", "recipe", "target", "delegate", "size", "top-1 / MAE", "drop / MAE change (95% CI)",
              "p50 base", "p50 new", "change", "verdict", "basis"):
        t.add_column(c, justify="right" if c in ("size", "top-1 / MAE", "p50 base", "p50 new", "change") else "left")
    for c in cmp.cells:
        d = c.to_dict()
        size = "-" if not d["new_size_bytes"] else f"{d['new_size_bytes'] / 1e6:.3g} MB"
        if d["base_size_bytes"] and d["new_size_bytes"]:
            size += f" ({_pct(d['new_size_bytes'] / d['base_size_bytes'])})"
        acc, drop = accuracy_cells(d, c.accuracy.change)
        style = "bold red" if c.regression else VERDICT_STYLE.get(c.verdict, "yellow")
        word = c.verdict + (f" ({c.confirmation})" if getattr(c, "confirmation", "") else "")
        benched = bool(c.base and c.base.repeats) or bool(c.new and c.new.repeats)
        basis = "; ".join(x for x in (c.latency.basis if benched else "", getattr(c, "compute", ""), c.note) if x)
        if getattr(c, "unconfirmed", None) is not None:
            basis += f" (unconfirmed: {c.unconfirmed.verdict} {_pct(c.unconfirmed.ratio)})"
        t.add_row(d["model"] or "-", d["recipe"] or "-", d["target"], d["delegate"], size, acc, drop,
                  ms(d["base_p50_ms"]), ms(d["new_p50_ms"]), _pct(c.latency.ratio),
                  f"[{style}]{word}[/]" if style else word, basis)
    console.print(t)
    _output_sqnr_lines(cmp.cells, console)
    regs = cmp.regressions
    console.print(f"[bold red]{len(regs)} regression(s)[/]" if regs else "[green]no regressions[/]")
    if getattr(cmp, "confirmed", None):
        console.print(f"[dim]Re-measured {len(cmp.confirmed)} cell(s) from their recorded bytes, base and new "
                      "interleaved in this process.[/]")
    left = [x for x in cmp.cells if getattr(x, "confirmation", "") == "suspect"]
    if left:
        console.print(f"[yellow]{len(left)} suspect(s) not re-measured[/] (--no-confirm, a device cell, or the "
                      "recorded bytes are gone): they count as regressions until a re-measurement clears them.")


def accuracy_cells(d: dict, change: Optional[float]) -> tuple[str, str]:
    """The accuracy columns of a compare row: top-1 and its drop, or for regression the MAE and its change."""
    if d.get("task") == "regression":
        acc = "-" if d["new_mae"] is None else f"MAE {d['new_mae']:.4g}" + (f" ({change:+.3g})" if change is not None else "")
        ci = d["new_mae_change_ci95"]
        val = d["new_mae_change"]
        return acc, "-" if val is None else f"{val:+.3g}" + (f" [{ci[0]:+.3g}, {ci[1]:+.3g}]" if ci else "")
    acc = "-" if d["new_top1"] is None else f"{d['new_top1']:.1f}"
    if change is not None:
        acc += f" ({change:+.1f})"
    ci = d["new_drop_ci95"]
    drop = "-" if d["new_drop"] is None else f"{d['new_drop']:+.2f}" + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "")
    return acc, drop


def _output_sqnr_lines(cells: list, console: Console) -> None:
    """Per-output SQNR against the float model, base -> new, for models with several outputs."""
    def db(v: Optional[float]) -> str:
        return "-" if v is None else f"{v:.1f}"

    for c in cells:
        d = c.to_dict()
        if not d["outputs"]:
            continue
        parts = [f"{name} {db(o['base_sqnr_db'])} -> {db(o['new_sqnr_db'])}"
                 + (f" ({o['change_db']:+.1f})" if o["change_db"] is not None else "") for name, o in d["outputs"].items()]
        console.print(f"SQNR per output (dB), {d['model']}.{d['recipe']}: " + ", ".join(parts), highlight=False)


def report_written(out_file: Any, markdown: Any, plots: int, rows: int, console: Console) -> None:
    console.print(f"Wrote {out_file} ({plots} plot(s), {rows} result row(s))")
    if markdown is not None:
        console.print(f"Wrote {markdown} and {plots} PNG file(s) beside it")


def recorded(store_name: str, run_id: int, count: int, console: Console) -> None:
    """One dim line on stderr after a measuring command: where its results went."""
    console.print(f"[dim]Recorded {count} result(s) as run {run_id} in {store_name}[/]", highlight=False)


def pruned(rep: Any, console: Optional[Console] = None) -> None:
    """The line ``store prune`` prints."""
    console = console or Console()
    verb = "would be removed" if rep.dry_run else "removed"
    console.print(f"{len(rep.removed)} blob(s) {verb} ({rep.freed_bytes / 1e6:.3g} MB) from {rep.folder}; "
                  f"{rep.kept} kept", highlight=False)
