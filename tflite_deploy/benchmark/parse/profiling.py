"""``--enable_op_profiling`` tables: a ``==== Title ====`` line, a header row of bracketed names
(``[start]`` was dropped in 2021) and tab-separated rows, read by header name.

:class:`TableReader` is the part of the line parser that keeps the open table; it is mixed into
the parser in :mod:`tflite_deploy.benchmark.parse.log`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

_TABLE_TITLE = re.compile(r"^=+ (?P<title>.+?) =+$")
_SECTION = re.compile(
    r"^(?P<label>(?:Operator-wise )?Profiling Info for [^:]+|Delegate internal|Primary graph \w+"
    r"|Subgraph \(index: \d+\) \w+):\s*$"
)
_HEADER_CELL = re.compile(r"\[([^\[\]]*)\]")
_INT = re.compile(r"^-?\d+$")
_FLOAT = re.compile(r"^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?%?$")
_TEXT_COLUMNS = ("node_type", "name")


@dataclass(frozen=True)
class ProfileTable:
    """One ``--enable_op_profiling`` table, its columns named from its own header row.

    Column names are the header's, normalised: ``[node type]`` -> ``node_type``, ``[avg ms]``
    -> ``avg_ms``, ``[%]`` -> ``pct``, ``[cdf%]`` and ``[cdf %]`` -> ``cdf_pct``, ``[mem KB]`` ->
    ``mem_kb``, ``[times called]`` -> ``times_called``, ``[Name]`` -> ``name``; old builds add
    ``start``. Numbers become int or float (a percentage loses its ``%``); names stay text.
    """

    section: str  # "Operator-wise Profiling Info for Regular Benchmark Runs", "" if not printed
    title: str  # "Run Order", "Top by Computation Time", "Summary by node type", ...
    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]
    graph: str = ""  # "Subgraph (index: 1) profile" when the model has several subgraphs

    def to_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "graph": self.graph,
            "title": self.title,
            "columns": list(self.columns),
            "rows": [dict(r) for r in self.rows],
        }


class TableReader:
    """The open profiling table and the finished ones; needs ``self.warnings`` from its host."""

    warnings: list[str]

    def __init__(self) -> None:
        self.tables: list[ProfileTable] = []
        self.section = ""
        self.graph = ""
        self.table: Optional[dict[str, Any]] = None  # open table: title, columns, rows

    def _profiling(self, s: str) -> bool:
        m = _SECTION.match(s)
        if m:
            self._close_table()
            label = m["label"]
            if label.startswith(("Primary graph", "Subgraph")):
                self.graph = label
            else:
                self.section, self.graph = label, ""
            return True
        m = _TABLE_TITLE.match(s)
        if m:
            self._close_table()
            self.table = {"title": m["title"], "columns": None, "rows": []}
            return True
        return False

    def _table_row(self, s: str) -> bool:
        """Take `s` into the open table if it is its header or one of its rows."""
        t = self.table
        assert t is not None
        if t["columns"] is None:
            if s.startswith("["):
                t["columns"] = tuple(_column_key(c) for c in _HEADER_CELL.findall(s))
                return True
            self._close_table()  # a title with no header: not a table after all
            return False
        cells = [c.strip() for c in s.split("\t")] if "\t" in s else re.split(r"\s{2,}", s)
        if s and len(cells) == len(t["columns"]):
            t["rows"].append({k: _cell(k, c) for k, c in zip(t["columns"], cells, strict=True)})
            return True
        # a row cut short; the profiler's own lines between tables (titles, "Number of nodes executed: N",
        # "Timings (microseconds): count=..") are one cell once stripped, so they never get here
        if s and len(cells) > 2 and len(self.warnings) < 20:
            self.warnings.append(
                f"profile row of '{t['title']}' has {len(cells)} cells for {len(t['columns'])} columns: {s[:80]}"
            )
        self._close_table()
        return False

    def _close_table(self) -> None:
        t, self.table = self.table, None
        if t is not None and t["columns"]:
            self.tables.append(
                ProfileTable(self.section, t["title"], t["columns"], tuple(t["rows"]), graph=self.graph)
            )


def _column_key(header: str) -> str:
    key = header.strip().lower().replace("%", " pct")
    return re.sub(r"[^a-z0-9]+", "_", key).strip("_")


def _cell(column: str, text: str) -> Any:
    if column in _TEXT_COLUMNS or not _FLOAT.match(text):
        return text
    text = text.rstrip("%")
    return int(text) if _INT.match(text) else float(text)

