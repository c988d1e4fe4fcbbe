"""Where this tool may put files on a device: below :data:`DEVICE_ROOT`, nowhere else."""

from __future__ import annotations

import posixpath

from tflite_deploy.errors import UserError

DEVICE_ROOT = "/data/local/tmp/tflite-deploy"
"""Every file this tool puts on a device lives below this folder."""


def check_remote_path(path: str) -> str:
    """Return ``path`` normalised if it lies under :data:`DEVICE_ROOT`; raise :class:`UserError`."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise UserError(f"Device path {path!r} must be absolute, under {DEVICE_ROOT}/.")
    if ".." in path.split("/") or "\0" in path or "\n" in path:
        raise UserError(f"Device path {path!r} may not contain '..', NUL or newlines.")
    norm = posixpath.normpath(path)
    if norm != DEVICE_ROOT and not norm.startswith(DEVICE_ROOT + "/"):
        raise UserError(
            f"Device path {path!r} is outside {DEVICE_ROOT}/: this tool only writes there."
        )
    return norm


def remote_path(*parts: str) -> str:
    """Join ``parts`` below :data:`DEVICE_ROOT` (``remote_path("models", "m.tflite")``)."""
    return check_remote_path(posixpath.join(DEVICE_ROOT, *(p.strip("/") for p in parts)))
