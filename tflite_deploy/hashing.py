"""Content hashes of files and folders (sidecars, push-if-changed, the tool cache)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def cache_root() -> Path:
    """The tool's cache folder: ``$TFLITE_DEPLOY_CACHE``, default ``~/.cache/tflite-deploy``."""
    return Path(os.environ.get("TFLITE_DEPLOY_CACHE") or Path.home() / ".cache" / "tflite-deploy")


def sha256_file(path: str | Path) -> str:
    """sha256 of a file, or of a folder's files in sorted path order (a SavedModel)."""
    p = Path(path)
    h = hashlib.sha256()
    for f in _files(p):
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


#: Smaller files are hashed every time (a few ms): no memo files for them, e.g. for temporary SavedModels.
REMEMBER_FROM_BYTES = 16 << 20


def sha256_remembered(path: str | Path) -> str:
    """:func:`sha256_file`, remembered under the cache by the file's stat key (size, mtime, ctime, inode).

    Hashing a ResNet-size reference costs ~0.3 s per read on every ``eval``; while its stat key is
    unchanged the remembered hash is used. Any write changes ctime (which no tool can set back),
    a replaced file has another inode: then the content is hashed again and remembered anew.
    """
    p = Path(path).resolve()
    key = _stat_key(p)
    if sum(size for _, size, *_ in key) < REMEMBER_FROM_BYTES:
        return sha256_file(p)
    memo = cache_root() / "hashes" / f"{hashlib.sha256(str(p).encode()).hexdigest()[:32]}.json"
    try:
        seen = json.loads(memo.read_text())
        if seen["stat"] == key and isinstance(seen["sha256"], str):
            return seen["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    digest = sha256_file(p)
    if _stat_key(p) == key:  # changed while being read: do not remember a hash of half-old bytes
        _write_json(memo, {"path": str(p), "stat": key, "sha256": digest})
    return digest


def _files(p: Path) -> list[Path]:
    return sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p]


def _stat_key(p: Path) -> list[Any]:
    out: list[Any] = []
    for f in _files(p):
        st = f.stat()
        out.append([str(f.relative_to(p)) if f != p else "", st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino])
    return out


def _write_json(path: Path, data: Any) -> None:
    """Atomically (temp file + rename); a read-only cache only costs the memo, never the command."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".hash-", suffix=".json", dir=path.parent)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except OSError:
        pass
