"""The one rule for where a model trained on a ``:train`` split is judged: the matching ``:test`` split."""

from __future__ import annotations

from typing import Any, Optional


def eval_split(train_spec: Any) -> Optional[str]:
    """``digits:train`` -> ``digits:test``; None for anything else (a folder, a Dataset object)."""
    if isinstance(train_spec, str) and train_spec.endswith(":train"):
        return train_spec[: -len(":train")] + ":test"
    return None
