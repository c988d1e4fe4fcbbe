"""Artifacts: a ``.tflite`` file plus its sidecar JSON, written atomically."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Optional

SIDECAR_SCHEMA = "tflite-deploy/artifact/1"


@dataclass(frozen=True)
class Artifact:
    path: Path
    sidecar: Path
    model: str
    recipe: str
    size_bytes: int
    gzip_bytes: int
    seconds: float
    meta: dict[str, Any]
    failed: ClassVar[bool] = False

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "sidecar": str(self.sidecar), "model": self.model,
                "recipe": self.recipe, "size_bytes": self.size_bytes, "gzip_bytes": self.gzip_bytes,
                "seconds": round(self.seconds, 3), "warnings": list(self.meta.get("warnings", []))}


@dataclass(frozen=True)
class ConversionFailure:
    """A recipe that made no file: the sweep goes on, and its row says why (``reason``, one paragraph)."""

    model: str
    recipe: str
    reason: str
    seconds: float
    meta: dict[str, Any]  # {"recipe": the recipe's fields}, as in a sidecar
    failed: ClassVar[bool] = True

    def to_dict(self) -> dict[str, Any]:
        return {"path": None, "sidecar": None, "model": self.model, "recipe": self.recipe, "size_bytes": None,
                "gzip_bytes": None, "seconds": round(self.seconds, 3), "failed": True, "error": self.reason}


def gzip_size(data: bytes) -> int:
    """Size after gzip -9: what a download costs, and where pruning/clustering pay off."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, then rename: a crash never leaves half a file.

    The file gets the mode an ordinary ``open()`` would give it (0666 less the umask): mkstemp's
    private 0600 would otherwise stay on the renamed result.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            os.fchmod(f.fileno(), 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


def save_artifact(out_dir: Path, model: str, recipe: str, data: bytes, meta: dict[str, Any],
                  seconds: float) -> Artifact:
    """Write ``MODEL.RECIPE.tflite`` and ``MODEL.RECIPE.json``; return the artifact."""
    path = Path(out_dir) / f"{model}.{recipe}.tflite"
    sidecar = path.with_suffix(".json")
    size, gz = len(data), gzip_size(data)
    doc = {"schema": SIDECAR_SCHEMA, "model": model, "recipe_name": recipe, **meta,
           "tflite": {"file": path.name, "sha256": hashlib.sha256(data).hexdigest(),
                      "size_bytes": size, "gzip_bytes": gz},
           "seconds": round(seconds, 3)}
    write_atomic(path, data)
    try:
        write_atomic(sidecar, (json.dumps(doc, indent=2) + "\n").encode())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Artifact(path, sidecar, model, recipe, size, gz, seconds, doc)


def read_sidecar(tflite_path: Path) -> Optional[dict[str, Any]]:
    """The sidecar of a .tflite, or None when it has none (a file converted elsewhere)."""
    side = Path(tflite_path).with_suffix(".json")
    if not side.is_file():
        return None
    try:
        doc = json.loads(side.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("schema") == SIDECAR_SCHEMA else None


def recipe_name(tflite_path: str | Path) -> Optional[str]:
    """The recipe that made a .tflite, from its sidecar (None for a file converted elsewhere)."""
    side = read_sidecar(Path(tflite_path))
    return side.get("recipe_name") if side else None
