"""The commands that read the results store: ``history``, ``compare`` and ``report``.

``cli.py`` calls :func:`register` once. Every command takes ``--store`` (a path or a SQLAlchemy
URL; default ``$TFLITE_DEPLOY_STORE`` or ``./tflite-deploy.db``). The measuring commands write to
the same store through :func:`tflite_deploy.store.record_results` / ``Store.add_result`` with the
flags ``--store URL_OR_PATH``, ``--tag NAME`` and ``--no-store`` (wired in their own commands).
"""

from __future__ import annotations

import csv
import functools
import io
import sys
from pathlib import Path
from typing import Annotated, Any, Callable, List, Optional

import typer
from rich.console import Console

from tflite_deploy.envelope import dumps
from tflite_deploy.errors import UserError
from tflite_deploy.render.store import comparison_table, history_table, plain, report_written

StoreOption = typer.Option(None, "--store", envvar="TFLITE_DEPLOY_STORE",
                           help="Results store: a file path (SQLite) or a URL such as "
                                "postgresql+psycopg://user@host/db. Default ./tflite-deploy.db.")


def _console(stderr: bool = False) -> Console:
    c = Console(stderr=stderr)
    return c if c.is_terminal else Console(stderr=stderr, width=160)


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a UserError into its one-paragraph message and a non-zero exit, not a traceback (every command)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            _console(stderr=True).print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            _console(stderr=True).print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None

    return wrapper


# The options of the measuring commands (convert, eval, bench, parse-log) that say where results go.
StoreTo = Annotated[Optional[str], typer.Option(
    "--store", help="Record results in this store: a file path (SQLite) or a URL such as "
                    "postgresql+psycopg://user@host/db. Default $TFLITE_DEPLOY_STORE or ./tflite-deploy.db.")]
RunTag = Annotated[Optional[str], typer.Option("--tag", help="Tag of this run in the store (e.g. nightly).")]
NoStore = Annotated[bool, typer.Option("--no-store", help="Do not record the results.")]


def store_target(store: Optional[str], no_store: bool) -> Any:
    """What the API's ``store=`` gets: None (not recorded), the store named, or True (the default one)."""
    return None if no_store else (store or True)


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
    as_json: bool = typer.Option(False, "--json", help="Print the JSON envelope instead of a table."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV."),
    store: Optional[str] = StoreOption,
) -> None:
    """Runs and results from the store, oldest first, filtered."""
    from tflite_deploy.store import open_store
    from tflite_deploy.store.query import HISTORY_COLUMNS, history, parse_time

    if as_json and as_csv:
        raise UserError("--json and --csv exclude each other: choose one.")
    with open_store(store, create=False) as st:
        if runs_only:
            rows = st.runs(tag=tag, limit=limit)
            cols = ["id", "started_at", "tag", "git_commit", "argv", "cwd"]
            title = f"Runs in {st.name}"
        else:
            rows = history(st, model=model, recipe=recipe, target=target, delegate=delegate, tag=tag, kind=kind,
                           run_id=st.resolve_run(run) if run else None, since=parse_time(since, "--since"),
                           until=parse_time(until, "--until"), limit=limit, with_document=False)
            cols = list(HISTORY_COLUMNS)
            title = f"{len(rows)} result(s) in {st.name}"
    _print_rows(rows, cols, title, "runs" if runs_only else "history", as_json, as_csv)


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
    history_table(rows, cols, title, _console())


# ------------------------------------------------------------------------------------- compare
def compare_cmd(
    base: str = typer.Argument(..., help="Base run: an id, a tag (its latest run), or latest~1."),
    new: str = typer.Argument("latest", help="New run: an id, a tag, or latest (default)."),
    min_effect: float = typer.Option(0.05, "--min-effect", help="Smallest latency change worth a verdict (0.05 = 5%)."),
    confirm: bool = typer.Option(False, "--confirm", help="Re-measure every cell, not only the suspects: "
                                 "the recorded bytes of base and new alternating (host: in this one process; "
                                 "device: on its phone and delegate, in one sitting)."),
    no_confirm: bool = typer.Option(False, "--no-confirm", help="Skip the re-measurement of suspects (faster): "
                                    "an unconfirmed 'slower' then fails the comparison."),
    repeat: int = typer.Option(10, "--repeat", help="Interleaved pairs per re-measured cell (at least 6; up to 3 rounds while undecided)."),
    tool: Optional[Path] = typer.Option(None, "--benchmark-binary", help="Device cells: the benchmark_model "
                                        "binary to re-measure with (default: fetch the official build)."),
    cooldown: float = typer.Option(0.0, "--cooldown", help="Device cells: seconds of rest between runs."),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON envelope instead of a table."),
    store: Optional[str] = StoreOption,
) -> None:
    """Per model × recipe × target × delegate: size, accuracy and latency change with a verdict.

    An unconfirmed "slower" is a suspect, re-measured from the recorded bytes (base and new alternating).

    Exit code 1 when any cell regressed: confirmed slower, less accurate, larger, failed or missing on NEW.
    """
    from tflite_deploy import api
    from tflite_deploy.render.verbs import progress_bars

    if confirm and no_confirm:
        raise UserError("--confirm and --no-confirm exclude each other: choose one.")
    with progress_bars(_console(stderr=True), disable=as_json or no_confirm) as progress:
        cmp = api.compare(base, new, store=store or True, min_effect=min_effect,
                          confirm=True if confirm else False if no_confirm else "suspects", repeat=repeat,
                          tool=tool, cooldown=cooldown, progress=progress)
    if as_json:
        print(dumps("compare", [cmp.to_dict()]))
    else:
        comparison_table(cmp, _console())
    if cmp.regressions:
        raise typer.Exit(1)


# -------------------------------------------------------------------------------------- report
def report_cmd(
    runs: Optional[List[str]] = typer.Argument(None, help="Runs to report (ids, tags, latest); default latest. "
                                                         "With two or more, the first is compared with the last."),
    out_file: Path = typer.Option(..., "--out", help="The HTML file to write (self-contained, opens offline)."),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="Also write report.md and PNG plots in this folder."),
    min_effect: float = typer.Option(0.05, "--min-effect", help="Smallest latency change worth a verdict."),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON envelope (files written) instead."),
    store: Optional[str] = StoreOption,
) -> None:
    """An HTML report (tables, plots, verdicts) and optionally Markdown with PNGs for a pull request."""
    from tflite_deploy.reporting.build import build_report
    from tflite_deploy.reporting.render import write_html, write_markdown
    from tflite_deploy.store import open_store

    if out_file.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"--out {out_file}: the report is HTML; give a file name ending in .html.")
    with open_store(store, create=False) as st:
        rep = build_report(st, runs or ["latest"], min_effect=min_effect)
    write_html(rep, out_file)
    md = write_markdown(rep, markdown) if markdown is not None else None
    if as_json:
        print(dumps("report", [{"html": str(out_file), "markdown": str(md) if md else None,
                                "plots": len(rep.plots), "rows": len(rep.rows)}]))
    else:
        report_written(out_file, md, len(rep.plots), len(rep.rows), _console())


def register(app: typer.Typer) -> None:
    """Add ``history``, ``compare`` and ``report`` to the ``tflite-deploy`` app."""
    app.command(name="history")(user_errors(history_cmd))
    app.command(name="compare")(user_errors(compare_cmd))
    app.command(name="report")(user_errors(report_cmd))
