"""What a run records about where it ran: git commit, host, tool versions. No heavy imports."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Optional

# Packages whose versions decide the numbers; read from installed metadata, never imported.
VERSIONED = ("tflite-deploy", "ai-edge-litert", "tensorflow", "numpy")


def git_commit(folder: str | Path = ".") -> Optional[str]:
    """The commit checked out in ``folder`` (with ``-dirty`` when it has changes), or None."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True,
                              timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def host_facts() -> dict:
    u = platform.uname()
    return {"hostname": u.node, "system": u.system, "release": u.release, "machine": u.machine,
            "cpu_count": os.cpu_count(), "python": platform.python_version()}


def tool_versions() -> dict:
    out = {}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out
