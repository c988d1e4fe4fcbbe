"""Errors a user can act on.

Every failure caused by the user's input (a missing file, a corrupt model, a dataset that does not
fit) is raised as a :class:`UserError` whose message is one paragraph naming the file and what is
wrong. The CLI prints that message and exits non-zero; nothing else should reach the user as a
traceback.
"""

from __future__ import annotations

import re
from typing import Optional


class UserError(Exception):
    """Bad input: the message says which file or parameter and what is wrong with it.

    ``param`` names the API parameter the error is about (``runs``), when it is about one: the
    message names it with its Python name, and the command line shows its own flag there instead
    (:meth:`naming`), so ``bench(runs=0)`` says ``runs`` and ``tflite-deploy bench --runs 0`` says ``--runs``.
    """

    exit_code = 2

    def __init__(self, message: str, *, param: Optional[str] = None) -> None:
        super().__init__(message)
        self.param = param

    def naming(self, name: str) -> str:
        """The message with its first mention of ``param`` spelled ``name`` (a flag such as ``--runs``)."""
        if not self.param:
            return str(self)
        return re.sub(rf"(?<![\w-]){re.escape(self.param)}(?![\w-])", lambda _: name, str(self), count=1)


class ModelError(UserError):
    """A model file that cannot be read, converted or run."""


class DatasetError(UserError):
    """A dataset that cannot be read or does not fit the model."""


class RecipeError(UserError):
    """An unknown recipe or an invalid recipe file."""


class SourceMismatchError(UserError):
    """Variants compared with each other (or with a reference) that were made from different models."""


class DeviceError(UserError):
    """An Android device that is missing, offline, unauthorized or failed a command.

    ``serial`` names the device (``None`` when no single device is meant); ``reason`` says what
    happened in one word (``offline``, ``unauthorized``, ``not-found``, ``closed``, ``timeout``,
    ``server``, ``more-than-one``, ``state``, ``failed``; ``None`` if not classified).
    """

    exit_code = 3

    def __init__(self, message: str, *, serial: Optional[str] = None,
                 reason: Optional[str] = None, param: Optional[str] = None) -> None:
        super().__init__(message, param=param)
        self.serial = serial
        self.reason = reason
