"""The autotune searches of a run, for the report: every trial, the front and the chosen point.

Read back from the store: each trial is an ``autotune`` Result, and the chosen file's ``convert``
Result (runner ``autotune``) carries the search's summary (the chosen trial, the front, the budget).
"""

from __future__ import annotations

from typing import Any


def autotune_searches(rows: list[dict]) -> list[dict]:
    """One search per model in ``rows`` (a run's history rows): its trials in order and its summary."""
    by_model: dict[str, dict] = {}
    for row in rows:
        doc = row.get("document") or {}
        if row["kind"] == "autotune":
            s, m = doc.get("settings") or {}, doc.get("metrics") or {}
            search = by_model.setdefault(row["model"] or "-", {"model": row["model"], "trials": [], "summary": {}})
            search["trials"].append({"index": m.get("trial"), "recipe": row["recipe"], "stage": s.get("stage"),
                                     "float_layers": len(s.get("float_layers") or ()),
                                     "size_mb": s["size_bytes"] / 1e6 if s.get("size_bytes") else None,
                                     "drop": m.get("top1_drop", m.get("mae_change")),
                                     "drop_ci": m.get("top1_drop_ci95", m.get("mae_change_ci95")),
                                     "within_budget": m.get("within_budget"), "error": doc.get("error")})
        elif row["kind"] == "convert" and doc.get("runner") == "autotune":
            summary = (doc.get("settings") or {}).get("autotune") or {}
            by_model.setdefault(row["model"] or "-", {"model": row["model"], "trials": [], "summary": {}})[
                "summary"] = summary
    for search in by_model.values():
        summary: dict[str, Any] = search["summary"]
        front, chosen = set(summary.get("pareto") or ()), summary.get("chosen")
        for t in search["trials"]:
            t["mark"] = "chosen" if t["index"] == chosen else "front" if t["index"] in front else ""
    return [s for s in by_model.values() if s["trials"]]
