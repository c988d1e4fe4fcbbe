"""``store prune``: remove kept artifact bytes (tflite_deploy/store/blobs.py) by age or tag."""

from __future__ import annotations

import datetime as dt
import re
from typing import Optional

import typer

from tflite_deploy.cli._common import JsonFlag, StoreFrom, user_errors
from tflite_deploy.envelope import dumps
from tflite_deploy.errors import UserError

store_app = typer.Typer(help="Look after the results store: its kept artifact bytes.", no_args_is_help=True)


def older_than(text: Optional[str]) -> Optional[dt.timedelta]:
    """``30d``, ``12h``, ``90m`` as a duration; a clear error naming --older-than otherwise."""
    if text is None:
        return None
    m = re.fullmatch(r"(\d+)([dhm])", text.strip())
    if not m:
        raise UserError(f"--older-than {text!r}: give a number of days, hours or minutes such as 30d, 12h or 90m.")
    return dt.timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[m.group(2)]: int(m.group(1))})


def prune_cmd(
    older: Optional[str] = typer.Option(None, "--older-than", help="Remove bytes whose every run is older "
                                        "than this (30d, 12h, 90m)."),
    tag: Optional[str] = typer.Option(None, "--tag", help="Remove bytes recorded only by runs with this tag."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be removed; remove nothing."),
    as_json: JsonFlag = False,
    store: StoreFrom = None,
) -> None:
    """Remove kept .tflite bytes (by sha256) that only old runs, or only runs of a tag, recorded.

    A removed blob can no longer be re-measured: compare refuses to confirm its cells.
    """
    from tflite_deploy.render.store import pruned
    from tflite_deploy.store import open_store
    from tflite_deploy.store.blobs import prune

    with open_store(store, create=False) as st:
        rep = prune(st, older_than=older_than(older), tag=tag, dry_run=dry_run)
    if as_json:
        print(dumps("store-prune", [{"folder": rep.folder, "removed": list(rep.removed), "kept": rep.kept,
                                     "freed_bytes": rep.freed_bytes, "dry_run": rep.dry_run}]))
    else:
        pruned(rep)


def register(app: typer.Typer) -> None:
    store_app.command(name="prune")(user_errors(prune_cmd))
    app.add_typer(store_app, name="store")
