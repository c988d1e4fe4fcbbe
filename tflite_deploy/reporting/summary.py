"""What a lab reads first: one sentence per model naming its best variants, and device × delegate grids
(latency; and from ``eval --device``, each delegate's agreement with the host)."""

from __future__ import annotations

from typing import Optional

from tflite_deploy.reporting.units import fmt_time


def _name(r: dict) -> str:
    return f"{r['recipe'] or '-'} ({r['delegate']} on {r['target']})"


def best_sentences(rows: list) -> list[dict]:
    """Per model: the fastest variant on each target, the smallest file and the least accuracy lost.

    ``rows`` are report table rows of one side (build.table_rows). Returns ``{"model", "text"}`` dicts.
    """
    out = []
    for model in sorted({r["model"] for r in rows}, key=str):
        mine = [r for r in rows if r["model"] == model and r["status"] == "ok"]
        parts = []
        for target in sorted({r["target"] for r in mine}, key=str):
            timed = [r for r in mine if r["target"] == target and r["p50_ms"]]
            if timed:
                best = min(timed, key=lambda r: r["p50_ms"])
                parts.append(f"fastest on {target} is {best['recipe'] or '-'} with {best['delegate']} "
                             f"({fmt_time(best['p50_ms'])} p50)")
        sized = {r["recipe"]: r["size_mb"] for r in mine if r["size_mb"]}
        if sized:
            recipe = min(sized, key=lambda k: sized[k])
            parts.append(f"smallest is {recipe} ({sized[recipe]:.3g} MB)")
        drops = {r["recipe"]: r["drop"] for r in mine if r["drop"] is not None}
        if drops:
            recipe = min(drops, key=lambda k: drops[k])
            parts.append(f"{recipe} loses least accuracy ({drops[recipe]:+.2f} points top-1)")
        maes = {r["recipe"]: r["mae_change"] for r in mine if r.get("mae_change") is not None}
        if maes:
            recipe = min(maes, key=lambda k: maes[k])
            parts.append(f"{recipe} loses least accuracy (MAE {maes[recipe]:+.3g} against the float model)")
        if parts:
            out.append({"model": model, "text": f"{model}: " + "; ".join(parts) + "."})
    return out


def latency_grid(rows: list) -> dict:
    """``{"columns": [(target, delegate)], "rows": [{"model", "recipe", "cells": [text or "-"]}]}``:
    p50 of each model.recipe on each device and delegate, each in its own unit, the row's best marked."""
    cols = sorted({(r["target"], r["delegate"]) for r in rows if r["p50_ms"]}, key=str)
    table = []
    for key in sorted({(r["model"], r["recipe"]) for r in rows}, key=str):
        by: dict[tuple, Optional[float]] = {(r["target"], r["delegate"]): r["p50_ms"] for r in rows
                                            if (r["model"], r["recipe"]) == key and r["p50_ms"]}
        if not by:
            continue
        table.append({"model": key[0], "recipe": key[1],
                      "cells": [fmt_time(by.get(c)) if by.get(c) else "-" for c in cols]})
    return {"columns": cols, "rows": table}


def agreement_grid(rows: list) -> dict:
    """``{"columns": [(target, delegate)], "rows": [{"model", "recipe", "cells": [{"text", "diverged"}]}]}``:
    each phone x delegate's top-1 agreement with the host (``eval --device``), with NaN/Inf and divergence."""
    measured = [r for r in rows if r.get("agreement") is not None or r.get("diverged") is not None]
    cols = sorted({(r["target"], r["delegate"]) for r in measured}, key=str)
    table = []
    for key in sorted({(r["model"], r["recipe"]) for r in measured}, key=str):
        by = {(r["target"], r["delegate"]): r for r in measured if (r["model"], r["recipe"]) == key}
        cells = []
        for c in cols:
            r = by.get(c)
            if r is None:
                cells.append({"text": "-", "diverged": False})
                continue
            text = "-" if r["agreement"] is None else f"{100 * r['agreement']:.1f}%"
            if r.get("nonfinite"):
                text += f", {r['nonfinite']} NaN/Inf"
            elif r.get("sqnr_db") is not None:
                text += f", {r['sqnr_db']:.0f} dB"
            cells.append({"text": text + (" (diverged)" if r.get("diverged") else ""),
                          "diverged": bool(r.get("diverged"))})
        table.append({"model": key[0], "recipe": key[1], "cells": cells})
    return {"columns": cols, "rows": table}
