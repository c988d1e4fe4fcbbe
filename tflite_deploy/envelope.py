"""The one JSON document every ``--json`` prints.

::

    {"schema": "tflite-deploy/<kind>/1", "kind": "<kind>", "items": [ ... ]}

``kind`` is the command (recipes, convert, inspect, eval, bench, devices, parse-log, optimize,
demo, history, runs, compare, report, farm-run, farm-nightly); ``items`` is always a list of objects: Result
records for eval, bench and parse-log, one row per artifact for convert, one report for inspect and
optimize, one device for devices, one cell per farm cell run, one night for farm-nightly.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

VERSION = 1


def envelope(kind: str, items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {"schema": f"tflite-deploy/{kind}/{VERSION}", "kind": kind, "items": [dict(i) for i in items]}


def dumps(kind: str, items: Iterable[Mapping[str, Any]]) -> str:
    return json.dumps(envelope(kind, items), indent=2, default=_plain)


def _plain(o: Any) -> Any:
    """Paths, tuples of numpy scalars and the like that records may carry."""
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def items_of(doc: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    """The items of an envelope of ``kind``; ValueError for anything else (what tests and scripts use)."""
    if doc.get("schema") != f"tflite-deploy/{kind}/{VERSION}" or doc.get("kind") != kind \
            or not isinstance(doc.get("items"), list):
        raise ValueError(f"not a tflite-deploy {kind} envelope: {str(dict(doc))[:200]}")
    return list(doc["items"])
