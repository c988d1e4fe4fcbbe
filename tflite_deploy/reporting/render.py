"""Write a :class:`~tflite_deploy.reporting.build.Report` as one self-contained HTML file (plots as inline
SVG, no external URL) or as Markdown with PNG files beside it. Templates are Jinja2, in ``templates/``."""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from tflite_deploy.artifact import write_atomic
from tflite_deploy.errors import UserError

TEMPLATES = Path(__file__).with_name("templates")


def _env(autoescape: bool) -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=autoescape,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _num
    env.filters["pct"] = lambda r: "-" if r is None else f"{(r - 1) * 100:+.1f}%"
    return env


def _num(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def svg_of(fig: Any, name: str) -> str:
    """The figure as an inline <svg> element: text drawn as paths (no fonts needed), ids unique per plot."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": name, "svg.fonttype": "path"}):
        fig.savefig(buf, format="svg", metadata={"Date": None}, dpi=200)  # dpi: of the rasterized parts only
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)  # creator/licence RDF: not needed
    # scale with the page: keep the viewBox, let the width follow the column
    return re.sub(r'<svg([^>]*?)\swidth="([\d.]+)pt"\s+height="[\d.]+pt"',
                  lambda m: f'<svg{m.group(1)} width="100%" style="max-width:{float(m.group(2)) * 4 / 3:.0f}px" '
                            f'data-plot-svg="{name}"', svg, count=1)


def _context(rep: Any) -> dict:
    cmp = rep.comparison
    return {"rep": rep, "generated": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cells": [c.to_dict() | {"basis": c.latency.basis or c.note} for c in cmp.cells] if cmp else [],
            "cmp": cmp}


def write_html(rep: Any, out: Path) -> Path:
    out = Path(out)
    if out.parent and not out.parent.is_dir():
        raise UserError(f"out={out}: the folder {out.parent} does not exist.", param="out")
    svgs = [{"plot": p, "svg": svg_of(p.figure, p.name)} for p in rep.plots]
    html = _env(autoescape=True).get_template("report.html.j2").render(**_context(rep), svgs=svgs)
    if re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html):
        raise AssertionError("report HTML refers to an external URL")  # it must open offline
    write_atomic(out, html.encode())
    return out


def write_markdown(rep: Any, folder: Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pngs = []
    for p in rep.plots:
        buf = io.BytesIO()
        p.figure.savefig(buf, format="png", dpi=110)
        write_atomic(folder / f"{p.name}.png", buf.getvalue())
        pngs.append({"plot": p, "file": f"{p.name}.png"})
    md = _env(autoescape=False).get_template("report.md.j2").render(**_context(rep), pngs=pngs)
    path = folder / "report.md"
    write_atomic(path, md.encode())
    return path


@dataclass(frozen=True)
class ReportFiles:
    """What ``report`` wrote: the HTML file, the Markdown file (with PNGs beside it) if asked for,
    and how many plots and table rows the report has."""

    html: Path
    markdown: Optional[Path]
    plots: int
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return {"html": str(self.html), "markdown": str(self.markdown) if self.markdown else None,
                "plots": self.plots, "rows": self.rows}


def check_html_name(out: Path) -> None:
    """Refuse a report file name that is not .html before anything is read or written."""
    if Path(out).suffix.lower() not in (".html", ".htm"):
        raise UserError(f"out={out}: the report is HTML; give a file name ending in .html.", param="out")


def write_report(rep: Any, out: Path, markdown: Optional[Path] = None) -> ReportFiles:
    """The HTML report, and Markdown with PNG plots in the folder ``markdown`` when given."""
    html = write_html(rep, Path(out))
    md = write_markdown(rep, Path(markdown)) if markdown is not None else None
    return ReportFiles(html, md, len(rep.plots), len(rep.rows))
