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
    if not run.ran:
        console.print(f"farm run {run.run_id}: nothing left to run ({run.already} cell(s) done before).")
        return
    counts: dict[tuple[str, str], int] = {}
    for rec in run.ran.values():
        counts[(rec.target, rec.status)] = counts.get((rec.target, rec.status), 0) + 1
    table = Table(title=f"farm run {run.run_id}", title_justify="left")
    for col in ("target", "ok", "failed", "not-run"):
        table.add_column(col, justify="left" if col == "target" else "right")
    for target in sorted({t for t, _ in counts}):
        table.add_row(target, *(str(counts.get((target, s), 0)) for s in ("ok", "failed", "not-run")))
    console.print(table)
    if run.already:
        console.print(f"{run.already} cell(s) were already done (an earlier run, or converted before).")
    for s in run.skipped:
        console.print(f"[dim]not planned: {s}[/]")
    for rec in sorted(run.failed, key=lambda r: r.cell_id):
        console.print(f"[{_STYLE.get(rec.status, 'red')}]{rec.status}[/] {rec.cell_id}: {rec.error}",
                      highlight=False, soft_wrap=True)



def night(night: Any, console: Console) -> None:
    """``farm nightly``'s tables: the cells, the comparison with the baseline, accuracy breaches, the verdict."""
    from tflite_deploy.render.store import comparison_table

    summary(night.run, console)
    if night.comparison is not None:
        comparison_table(night.comparison, console)
    else:
        console.print(night.note)
    for r in night.accuracy_breaches:
        console.print(f"[red]accuracy[/] {r.recipe} ({r.artifact}): top-1 dropped {r.metrics['top1_drop']:.2f} "
                      "points, more than the plan's max_accuracy_drop", highlight=False, soft_wrap=True)
    console.print(f"report: {night.report}")
    console.print(verdict(len(night.regressions), len(night.run.failed)))


def verdict(regressions: int, failed: int) -> str:
    """The nightly's last line, what CI shows."""
    if not regressions and not failed:
        return "[bold green]verdict: no regression[/]"
    parts = [f"{regressions} regression(s)"] if regressions else []
    parts += [f"{failed} cell(s) failed or not run"] if failed else []
    return f"[bold red]verdict: {', '.join(parts)}[/]"
