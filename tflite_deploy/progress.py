"""The one progress-callback shape every verb and API function takes.

``progress(ProgressEvent(stage="convert", done=2, total=5, message="int8", item=artifact))``:
``stage`` names what is under way (a new stage starts a new bar), ``done``/``total`` count its
units (``total`` None when unknown), ``message`` is a short line for a display, and ``item`` is the
record just finished when there is one (an Artifact, a Result, a training event).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional


@dataclass(frozen=True)
class ProgressEvent:
    stage: str
    done: int = 0
    total: Optional[int] = None
    message: str = ""
    item: Any = None


ProgressCallback = Callable[[ProgressEvent], None]


def report(progress: Optional[ProgressCallback], stage: str, done: int = 0, total: Optional[int] = None,
           message: str = "", item: Any = None) -> None:
    """Call ``progress`` when one was given (verbs call this instead of checking for None)."""
    if progress is not None:
        progress(ProgressEvent(stage, done, total, message, item))
