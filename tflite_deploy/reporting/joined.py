"""One side of a comparison: a run, or what a tag knows, joined across its runs.

The README suggests tagging convert, eval and bench alike (``--tag release-1.2``); each is its own run.
A tag therefore stands for the latest run *of each kind* under it: the latest convert run's sizes,
the latest eval run's accuracy and the latest bench run's latency, joined per artifact
(:func:`tflite_deploy.reporting.compare.cells_of`), instead of whichever single run came last. Within a
kind nothing is mixed across runs, so a cell the latest bench run lacks is still "missing". A run
id or ``latest`` / ``latest~N`` names exactly one run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

KINDS = ("convert", "eval", "eval-device", "bench", "autotune")  # a tag joins the latest run of each kind


def is_device_eval(row: dict) -> bool:
    """An ``eval --device`` result: a phone x delegate's outputs against the host's (its own cell)."""
    return row["kind"] == "eval" and bool(((row.get("document") or {}).get("settings") or {}).get("on_device"))


def kind_of(row: dict) -> str:
    """The kind a tag joins by: ``eval --device`` runs apart from host evals (both may share a tag)."""
    return "eval-device" if is_device_eval(row) else row["kind"]


@dataclass
class Side:
    run: dict            # the newest run joined (its id, tag and time head the comparison)
    rows: list           # result rows (store.query.history, with documents)
    run_ids: list = field(default_factory=list)  # every run joined, newest first

    @property
    def label(self) -> str:
        more = f" (+ run {', '.join(map(str, self.run_ids[1:]))})" if len(self.run_ids) > 1 else ""
        return f"run {self.run['id']}{more}"


def is_tag(ref: str) -> bool:
    text = str(ref).strip()
    return not text.isdigit() and re.fullmatch(r"latest(?:~\d+)?", text) is None


def resolve_side(store: Any, ref: str, exclude: Sequence[int] = ()) -> Side:
    """The run ``ref`` names, or for a tag the latest run of each kind under it (``exclude``: run ids
    left out, e.g. to find the tag's previous state)."""
    from tflite_deploy.store.query import history

    run_id = store.resolve_run(ref)  # an unknown ref is refused here, with the tags there are
    if not is_tag(ref):
        return Side(store.run(run_id), history(store, run_id=run_id), [run_id])
    rows_by_run: dict = {}
    for row in history(store, tag=str(ref).strip()):
        if row["run_id"] not in exclude:
            rows_by_run.setdefault(row["run_id"], []).append(row)
    order = [r["id"] for r in store.runs(tag=str(ref).strip()) if r["id"] in rows_by_run]  # newest first
    chosen: dict = {}
    for kind in KINDS:
        found = next((rid for rid in order if any(kind_of(x) == kind for x in rows_by_run[rid])), None)
        if found is not None:
            chosen[kind] = found
    ids = [rid for rid in order if rid in chosen.values()]
    if not ids:  # a tag whose runs recorded nothing (or all excluded): its latest run, empty
        return Side(store.run(run_id), [], [run_id])
    rows = [x for kind, rid in chosen.items() for x in rows_by_run[rid] if kind_of(x) == kind]
    rows.sort(key=lambda x: (x["started_at"], x["result_id"]))
    return Side(store.run(ids[0]), rows, ids)
