"""Which source model a file was made from, so that variants of different models are never compared silently.

A ``.tflite`` written by ``convert`` carries the sha256 of its source in its sidecar; a source model
(``.keras``, ``.h5``, a SavedModel folder) is hashed as it is. A file without a sidecar cannot be
traced, and is not held against anyone. Checks raise :class:`SourceMismatchError` naming the files,
or, when forced, return a warning per file for its row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from tflite_deploy.artifact import read_sidecar
from tflite_deploy.errors import SourceMismatchError
from tflite_deploy.hashing import sha256_remembered

_TFLITE = ".tflite"


def source_of(path: str | Path) -> Optional[tuple[str, str]]:
    """(sha256, path as recorded) of the model ``path`` was made from, or None when unknown."""
    p = Path(path)
    if p.suffix.lower() != _TFLITE:
        return (sha256_remembered(p), str(p)) if p.exists() else None
    side = read_sidecar(p) or {}
    src = side.get("source") or {}
    sha = src.get("sha256")
    return (sha, str(src.get("path", "?"))) if sha and sha != "in-memory" else None


def check_against_reference(reference: str | Path, variants: Sequence[str | Path], force: bool) -> dict[str, str]:
    """Variants whose sidecar names another source than ``reference``: refused, or warnings when forced."""
    ref = source_of(reference)
    if ref is None:
        return {}
    odd = {str(v): src for v in variants if (src := source_of(v)) is not None and src[0] != ref[0]}
    return _verdict(odd, f"the reference {reference} (made from {ref[1]}, sha256 {ref[0][:12]})", force)


def check_same_source(files: Sequence[str | Path], force: bool) -> dict[str, str]:
    """Files whose sidecars name different sources: the ones unlike the first traced file."""
    traced = [(str(f), src) for f in files if (src := source_of(f)) is not None]
    if not traced:
        return {}
    first, (sha, where) = traced[0]
    odd = {f: src for f, src in traced if src[0] != sha}
    return _verdict(odd, f"{first} (made from {where}, sha256 {sha[:12]})", force)


def _verdict(odd: dict[str, tuple[str, str]], against: str, force: bool) -> dict[str, str]:
    if not odd:
        return {}
    shown = "; ".join(f"{f} was made from {where} (sha256 {sha[:12]})" for f, (sha, where) in odd.items())
    if not force:
        raise SourceMismatchError(f"Not variants of the same model: {shown}, unlike {against}. Their numbers "
                                  "would compare different models. Give variants of one source, or pass force=True to "
                                  "compare them anyway, marked in each row.", param="force")
    return {f: f"NOT the same source model: made from {where} (sha256 {sha[:12]}), unlike {against}."
            for f, (sha, where) in odd.items()}
