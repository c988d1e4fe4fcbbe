"""The items of a ``--json`` envelope (see :mod:`tflite_deploy.envelope`) for what an API verb returned,
when they are more than the records' own ``to_dict()``: the sizes table of ``convert``, ``eval`` with
its per-layer errors, the rows of ``demo``."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence, Union

from tflite_deploy.artifact import Artifact, ConversionFailure
from tflite_deploy.recipes import Recipe
from tflite_deploy.result import Result

def convert_items(artifacts: Iterable[Union[Artifact, ConversionFailure]]) -> list[dict[str, Any]]:
    """Rows for the size table: raw and gzipped size, the ratio to the float32 variant, and for a
    failed recipe ``failed`` and its ``error`` (no sizes)."""
    arts = list(artifacts)
    ref = next((a for a in arts if not a.failed and a.meta.get("recipe", {}).get("weights") == "float32"
                and a.meta.get("recipe", {}).get("activations") == "float32"), None)
    rows = []
    for a in arts:
        row: dict[str, Any] = {"failed": False, "error": None, **a.to_dict(),
                               "summary": Recipe.from_dict(a.meta["recipe"]).summary()}
        ok = ref is not None and not a.failed
        row["ratio"] = (ref.size_bytes / a.size_bytes) if ok else None  # type: ignore[union-attr]
        row["gzip_ratio"] = (ref.gzip_bytes / a.gzip_bytes) if ok else None  # type: ignore[union-attr]
        rows.append(row)
    return rows


def demo_items(demo: Any) -> list[dict[str, Any]]:
    """One item per recipe of an :class:`~tflite_deploy.api.DemoReport`: its artifact row, its evaluation and its host bench."""
    rows = convert_items(demo.artifacts)
    return [{"recipe": a["recipe"], "artifact": a, "eval": e.to_dict(), "bench": b.to_dict()}
            for a, e, b in zip(rows, demo.evals[1:], demo.benches)]


def eval_items(results: Sequence[Result], layers: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Each eval Result, with ``per_layer`` (worst first) added to the variants that have them."""
    return [{**r.to_dict(), **({"per_layer": [e.to_dict() for e in layers[r.artifact]]} if r.artifact in layers
                               else {})} for r in results]
