"""The commands that read the results store: ``history``, ``compare`` and ``report``, each one call
of the API (:func:`tflite_deploy.history`, :func:`~tflite_deploy.compare`, :func:`~tflite_deploy.report`).

Every command takes ``--store`` (a path or a SQLAlchemy URL; default ``$TFLITE_DEPLOY_STORE`` or
``./tflite-deploy.db``). The measuring commands write to the same store with ``--store``, ``--tag``
and ``--no-store`` (see ``_common``).
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import List, Optional

import typer

from tflite_deploy import api
from tflite_deploy.cli._common import JsonFlag, MinEffect, StoreFrom, console, progress_bars, user_errors
from tflite_deploy.envelope import dumps
from tflite_deploy.errors import UserError
from tflite_deploy.render.store import comparison_table, history_table, plain, report_written


# ------------------------------------------------------------------------------------- history
def history_cmd(
    model: Optional[str] = typer.Option(None, "--model", help="Only this model (the file name before .RECIPE.tflite)."),
    recipe: Optional[str] = typer.Option(None, "--recipe", help="Only this recipe."),
    target: Optional[str] = typer.Option(None, "--target", help="Only this target (host, adb:SERIAL, ...)."),
    delegate: Optional[str] = typer.Option(None, "--delegate", help="Only this delegate."),
    tag: Optional[str] = typer.Option(None, "--tag", help="Only runs with this tag."),
    kind: Optional[str] = typer.Option(None, "--kind", help="bench or eval."),
    run: Optional[str] = typer.Option(None, "--run", help="Only this run (id, tag or latest)."),
    since: Optional[str] = typer.Option(None, "--since", help="Runs from this date/time on (YYYY-MM-DD, ISO, or 7d / 12h ago)."),
    until: Optional[str] = typer.Option(None, "--until", help="Runs up to this date/time."),
    limit: Optional[int] = typer.Option(None, "--limit", help="At most this many rows."),
    runs_only: bool = typer.Option(False, "--runs", help="List runs, not results."),
    as_json: JsonFlag = False,
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV."),
    store: StoreFrom = None,
) -> None:
    """Runs and results from the store, oldest first, filtered."""
    if as_json and as_csv:
        raise UserError("--json and --csv exclude each other: choose one.")
    found = api.history(store or True, model=model, recipe=recipe, target=target, delegate=delegate, tag=tag,
                        kind=kind, run=run, since=since, until=until, limit=limit, runs_only=runs_only)
    title = f"Runs in {found.store}" if runs_only else f"{len(found.rows)} result(s) in {found.store}"
    _print_rows(found.rows, list(found.columns), title, found.kind, as_json, as_csv)


def _print_rows(rows: list, cols: list, title: str, kind: str, as_json: bool, as_csv: bool) -> None:
    if as_json:
        print(dumps(kind, [{c: plain(r.get(c)) for c in cols} for r in rows]))
        return
    if as_csv:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for r in rows:
            w.writerow(["" if r.get(c) is None else plain(r.get(c)) for c in cols])
        sys.stdout.write(buf.getvalue())
        return
    history_table(rows, cols, title, console())


# ------------------------------------------------------------------------------------- compare
def compare_cmd(
    base: str = typer.Argument(..., help="Base run: an id, a tag (its latest run), or latest~1."),
    new: str = typer.Argument("latest", help="New run: an id, a tag, or latest (default)."),
    min_effect: MinEffect = 0.05,
    confirm: bool = typer.Option(False, "--confirm", help="Judge host cells on a new measurement: base and new "
                                 "artifacts (when both are on disk) alternating in this one process."),
    repeat: int = typer.Option(10, "--repeat", help="With --confirm: measurements of each side (at least 3)."),
    as_json: JsonFlag = False,
    store: StoreFrom = None,
) -> None:
    """Per model × recipe × target × delegate: size, accuracy and latency change with a verdict.

    Exit code 1 when any cell regressed (slower, less accurate, larger, failed or missing on NEW).
    """
    with progress_bars(as_json or not confirm) as progress:
        cmp = api.compare(base, new, store=store or True, min_effect=min_effect, confirm=confirm, repeat=repeat,
                          progress=progress)
    if as_json:
        print(dumps("compare", [cmp.to_dict()]))
    else:
        comparison_table(cmp, console())
    if cmp.regressions:
        raise typer.Exit(1)


# -------------------------------------------------------------------------------------- report
def report_cmd(
    runs: Optional[List[str]] = typer.Argument(None, help="Runs to report (ids, tags, latest); default latest. "
                                                         "With two or more, the first is compared with the last."),
    out_file: Path = typer.Option(..., "--out", help="The HTML file to write (self-contained, opens offline)."),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="Also write report.md and PNG plots in this folder."),
    min_effect: MinEffect = 0.05,
    as_json: JsonFlag = False,
    store: StoreFrom = None,
) -> None:
    """An HTML report (tables, plots, verdicts) and optionally Markdown with PNGs for a pull request."""
    written = api.report(runs or ["latest"], out_file, markdown=markdown, store=store or True, min_effect=min_effect)
    if as_json:
        print(dumps("report", [written.to_dict()]))
    else:
        report_written(written.html, written.markdown, written.plots, written.rows, console())


def register(app: typer.Typer) -> None:
    """Add ``history``, ``compare`` and ``report`` to the ``tflite-deploy`` app."""
    app.command(name="history")(user_errors(history_cmd))
    app.command(name="compare")(user_errors(compare_cmd))
    app.command(name="report")(user_errors(report_cmd))
