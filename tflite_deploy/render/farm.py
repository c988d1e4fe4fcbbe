"""The farm's Rich output: one live progress row per device, and the run's summary table."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from rich.console import Console
from rich.table import Table

from tflite_deploy.progress import ProgressCallback, ProgressEvent

_STYLE = {"ok": "green", "failed": "red", "not-run": "yellow"}


@contextlib.contextmanager
def device_rows(console: Console, disable: bool = False) -> Iterator[ProgressCallback]:
    """A ProgressCallback with one row per device (``event.stage``), all visible at once, each with
    its cells done / total, failures so far, and its last finished cell. Not on a terminal (cron,
    CI, ``>> nightly.log``): one timestamped line per finished cell instead, which a log can keep."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if not console.is_terminal and not disable:
        yield lambda e: _log_line(console, e)
        return

    with Progress(TextColumn("{task.fields[device]:<24}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[bad]}"), TimeElapsedColumn(), TextColumn("{task.description}"),
                  console=console, disable=disable) as rows:
        tasks: dict[str, Any] = {}
        bad: dict[str, int] = {}

        def show(e: ProgressEvent) -> None:
            if e.stage not in tasks:
                bad[e.stage] = 0
                tasks[e.stage] = rows.add_task("", total=e.total, device=e.stage, bad="")
            status = getattr(e.item, "status", "ok")
            if e.item is not None and status != "ok":
                bad[e.stage] += 1
            style = _STYLE.get(status, "white")
            rows.update(tasks[e.stage], completed=e.done, total=e.total,
                        bad=f"[red]{bad[e.stage]} failed[/]" if bad[e.stage] else "",
                        description=f"[{style}]{e.message}[/]" if e.item is not None else e.message)

        yield show


def _log_line(console: Console, e: ProgressEvent) -> None:
    if e.item is None:  # the "waiting" event before any cell ran
        return
    import time

    rec = e.item
    style = _STYLE.get(rec.status, "white")
    retried = f" after {rec.attempts} attempts" if getattr(rec, "attempts", 1) > 1 else ""
    why = f": {rec.error}" if rec.status != "ok" and rec.error else ""
    console.print(f"{time.strftime('%H:%M:%S')} {e.stage} {e.done}/{e.total} [{style}]{rec.status}[/] "
                  f"{rec.cell_id} ({rec.seconds:.1f} s{retried}){why}", highlight=False, soft_wrap=True)


def summary(run: Any, console: Console) -> None:
    """Cells by target and status, then every cell that did not end ok, with its reason."""
    cached = getattr(run, "cached", 0)
    if not run.ran:
        console.print(f"farm run {run.run_id}: nothing left to run ({run.already} cell(s) done before"
                      + (f", {cached} conversion(s) in the cache" if cached else "") + ").")
        return
    counts: dict[tuple[str, str], int] = {}
    for rec in run.ran.values():
        counts[(rec.target, rec.status)] = counts.get((rec.target, rec.status), 0) + 1
    names = target_names(run)
    table = Table(title=f"farm run {run.run_id}", title_justify="left")
    for col in ("target", "ok", "failed", "not-run"):
        table.add_column(col, no_wrap=True, justify="left" if col == "target" else "right")
    for target in sorted({t for t, _ in counts}):
        table.add_row(names.get(target, target),
                      *(str(counts.get((target, s), 0)) for s in ("ok", "failed", "not-run")))
    _print_wide(console, table)
    if run.already:
        console.print(f"{run.already} cell(s) were already done by this run before it was resumed.")
    if cached:
        console.print(f"{cached} conversion(s) came from the artifact cache (converted by an earlier run).")
    for s in run.skipped:
        console.print(f"[dim]not planned: {s}[/]")
    for rec in sorted(run.failed, key=lambda r: r.cell_id):
        console.print(f"[{_STYLE.get(rec.status, 'red')}]{rec.status}[/] {rec.cell_id}: {rec.error}",
                      highlight=False, soft_wrap=True)



def night(night: Any, console: Console, basis: bool = False) -> None:
    """``farm nightly``: the cells, a compact comparison with the baseline (every target in full: serial
    and phone model, whatever the terminal's width), then each regression numbered with what got worse
    and the basis of its verdict, and one count that equals that list. ``basis``: the basis of every row."""
    summary(night.run, console)
    lines: list[str] = []
    if night.comparison is not None:
        names = target_names(night.run)
        _print_wide(console, _compact_table(night.comparison, names))
        for c in night.comparison.regressions:
            lines.append(f"{c.verdict}: {_cell_name(c.key, names)}: {_change(c)}; {c.latency.basis or c.note}")
        if basis:
            console.print("[bold]basis of every verdict[/]")
            for c in night.comparison.cells:
                console.print(f"  {c.verdict}: {_cell_name(c.key, names)}: {c.latency.basis or c.note or '-'}",
                              highlight=False, soft_wrap=True)
    else:
        console.print(night.note)
    for r in night.accuracy_breaches:
        lines.append(f"less accurate than the plan allows: {r.recipe} ({r.artifact}): top-1 dropped "
                     f"{r.metrics['top1_drop']:.2f} points, more than max_accuracy_drop")
    if lines:
        console.print(f"[bold red]regressions ({len(lines)})[/]")
        for i, line in enumerate(lines, 1):
            console.print(f"  {i}. {line}", highlight=False, soft_wrap=True)
    console.print(f"report: {night.report}", highlight=False, soft_wrap=True)
    console.print(verdict(len(lines), len(night.run.failed)))


def target_names(run: Any) -> dict[str, str]:
    """``{target: "adb:SERIAL (Pixel 7)"}`` from the device facts of the run's results."""
    out: dict[str, str] = {}
    for rec in run.ran.values():
        for r in rec.results:
            model = (r.device or {}).get("model")
            if model and r.target not in out:
                out[r.target] = f"{r.target} ({model})"
    return out


def _cell_name(key: tuple, names: dict[str, str]) -> str:
    model, recipe, target, delegate = key
    return f"{model or '-'} {recipe or '-'} on {names.get(target, target)} with {delegate}"


def _change(c: Any) -> str:
    b, n = c.base, c.new
    if b is None or n is None or c.status != "compared":
        return c.status + (f" ({c.note})" if c.note else "")
    parts = []
    if b.p50 is not None and n.p50 is not None:
        parts.append(f"p50 {b.p50:.3g} -> {n.p50:.3g} ms ({(n.p50 / b.p50 - 1) * 100:+.0f}%)" if b.p50 else "")
    if b.size_bytes and n.size_bytes and b.size_bytes != n.size_bytes:
        parts.append(f"size {b.size_bytes / 1e6:.3g} -> {n.size_bytes / 1e6:.3g} MB")
    if b.top1 is not None and n.top1 is not None:
        parts.append(f"top-1 {b.top1:.1f} -> {n.top1:.1f}")
    if b.mae is not None and n.mae is not None:  # a regression model
        parts.append(f"MAE {b.mae:.4g} -> {n.mae:.4g}")
    return ", ".join(p for p in parts if p) or "-"


def _compact_table(cmp: Any, names: dict[str, str]) -> Table:
    from tflite_deploy.render.store import VERDICT_STYLE, accuracy_cells

    b, n = cmp.base_run, cmp.new_run
    t = Table(title=f"run {b['id']} ({b['tag'] or 'no tag'}) -> run {n['id']} ({n['tag'] or 'no tag'}), "
                    f"min effect {cmp.min_effect:.0%}", title_justify="left")
    for col in ("model", "recipe", "target", "delegate", "p50 base", "p50 new", "change", "size", "top-1 / MAE",
                "verdict"):
        t.add_column(col, no_wrap=True, justify="right" if col in ("p50 base", "p50 new", "change") else "left")
    for c in cmp.cells:
        d = c.to_dict()
        size = "-"
        if d["base_size_bytes"] and d["new_size_bytes"]:
            size = f"{(d['new_size_bytes'] / d['base_size_bytes'] - 1) * 100:+.0f}%"
        acc = accuracy_cells(d, c.accuracy.change)[0]
        ratio = c.latency.ratio
        style = "bold red" if c.regression else VERDICT_STYLE.get(c.verdict, "yellow")
        t.add_row(d["model"] or "-", d["recipe"] or "-", names.get(d["target"], d["target"]), d["delegate"],
                  _ms(d["base_p50_ms"]), _ms(d["new_p50_ms"]), "-" if ratio is None else f"{(ratio - 1) * 100:+.0f}%",
                  size, acc, f"[{style}]{c.verdict}[/]" if style else c.verdict)
    return t


def _ms(v: Any) -> str:
    return "-" if v is None else f"{v:.3g} ms"


def _print_wide(console: Console, table: Table) -> None:
    """At its natural width even off a terminal (a log, CI): a target is never cut to ``adb:12…``."""
    from rich.measure import Measurement

    need = Measurement.get(console, console.options.update_width(10_000), table).maximum
    if need <= console.width:
        console.print(table)
        return
    # Console.print never goes past the console's width: a console of the table's own width, same file
    Console(file=console.file, width=need, force_terminal=console.is_terminal, color_system=console.color_system,
            no_color=console.no_color).print(table)


def verdict(regressions: int, failed: int) -> str:
    """The nightly's last line, what CI shows."""
    if not regressions and not failed:
        return "[bold green]verdict: no regression[/]"
    parts = [f"{regressions} regression(s)"] if regressions else []
    parts += [f"{failed} cell(s) failed or not run"] if failed else []
    return f"[bold red]verdict: {', '.join(parts)}[/]"
