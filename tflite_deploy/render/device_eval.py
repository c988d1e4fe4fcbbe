"""The table of ``eval --device``: per phone x delegate, its outputs against the host's (and the float reference)."""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

from rich.console import Console
from rich.table import Table

from tflite_deploy.render.verbs import file_labels
from tflite_deploy.result import Result


def _db(v: Optional[float], identical: bool = False) -> str:
    if identical or (v is not None and math.isinf(v) and v > 0):
        return "∞"
    return "-" if v is None or math.isnan(v) else f"{v:.1f}"


def _err(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3g}"


def device_eval_table(results: Sequence[Result], console: Console) -> None:
    """One row per device x delegate; a diverged delegate in red with its reasons below the table."""
    if not results:
        return
    first = results[0].settings
    console.print(f"On the phone: outputs of each delegate against the same model on the host (LiteRT), "
                  f"{first.get('samples')} samples of [bold]{first.get('dataset')}[/]")
    label = file_labels(sorted({r.artifact for r in results}))
    with_ref = any("vs_reference" in r.metrics for r in results)
    labelled = any("top1" in r.metrics for r in results)
    t = Table(title_justify="left")
    cols = ["model", "device", "delegate", "top-1 agree", "max |err|", "SQNR dB", "NaN/Inf"]
    cols += ["top-1 (95% CI)", "host top-1"] if labelled else []
    cols += ["SQNR vs float"] if with_ref else []
    cols += ["verdict"]
    for c in cols:
        t.add_column(c, justify="left" if c in ("model", "device", "delegate", "verdict") else "right")
    for r in results:
        m = r.metrics
        row = [label[r.artifact], r.device.get("model") or r.target, r.delegate]
        if not r.ok:
            row += ["-"] * (len(cols) - 4) + [f"[red]{r.status}[/]" if r.status == "failed" else f"[yellow]{r.status}[/]"]
            t.add_row(*row)
            continue
        agree = m.get("top1_agreement")
        row += ["-" if agree is None else f"{100 * agree:.1f}%", _err(m.get("max_abs_error")),
                _db(m.get("sqnr_db"), m.get("identical", False)), str(m.get("nonfinite", 0))]
        if labelled:
            ci = m.get("top1_ci95")
            row += [f"{m['top1']:.1f}% ({ci[0]:.1f} … {ci[1]:.1f})" if "top1" in m and ci else "-",
                    f"{m['host_top1']:.1f}%" if "host_top1" in m else "-"]
        if with_ref:
            ref = m.get("vs_reference") or {}
            row += [_db(ref.get("sqnr_db"))]
        row += ["[red]diverged[/]" if m.get("diverged") else "[green]agrees[/]"]
        t.add_row(*row)
    console.print(t)
    for r in results:
        where = f"{r.device.get('model') or r.target} {r.delegate}"
        if not r.ok:
            console.print(f"[red]{where}:[/] {r.error}", highlight=False)
        for w in r.warnings:
            console.print(f"[yellow]{where}:[/] {w}", highlight=False)
    s = first
    console.print(f"[dim]diverged = top-1 agreement below {100 * s.get('min_agreement', 0.99):g}%, SQNR below "
                  f"{s.get('min_sqnr_db', 30):g} dB, or any NaN/Inf (--min-agreement, --min-sqnr).[/]")
