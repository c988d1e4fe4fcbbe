"""The words every layer shares, defined once: delegates, runtimes, target kinds, name rules.

The CLI's choices, the API's checks, a farm plan's validation and the runners all read these, so
a delegate offered by ``bench`` is one a plan accepts too. No heavy imports.
"""

from __future__ import annotations

import re

#: What the host's LiteRT interpreter can be asked for (its op resolver), best first.
HOST_DELEGATES: tuple[str, ...] = ("xnnpack", "none", "reference")
#: What a phone's benchmark tool can apply (``cpu`` is its plain kernels, ``npu`` the vendor's).
DEVICE_DELEGATES: tuple[str, ...] = ("xnnpack", "gpu", "nnapi", "cpu", "npu")
#: The phone-side benchmark tools a user may choose; ``auto`` takes the one the phone has.
DEVICE_RUNTIMES: tuple[str, ...] = ("auto", "litert", "tflite")
#: What eval judges a model on: ``auto`` infers it from the targets' dtype and the outputs' shapes.
TASKS: tuple[str, ...] = ("auto", "classification", "regression", "agreement")
#: Where a model runs: ``host`` (this machine) or ``device`` (a phone over adb).
TARGET_KINDS: tuple[str, ...] = ("host", "device")

# Recipe and model names become parts of file names.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
NAME_RULE = "letters, digits and . _ + - only, starting with a letter or digit (it becomes part of a file name)"


def is_valid_name(name: str | None) -> bool:
    """True for a recipe or model name that is safe as part of a file name."""
    return bool(name) and _NAME_RE.match(name) is not None
