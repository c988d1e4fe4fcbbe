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

    ``param`` names the API parameter the error is about, when it is about one. The message names it
    as the API spells it, ``runs=0`` (``force=True`` for a switch, or just ``runs`` where no value
    fits); the command line shows its own flag there instead (:meth:`naming`): ``bench(runs=0)``
    says ``runs must be at least 1``, ``bench --runs 0`` says ``--runs must be at least 1``.
    """

    exit_code = 2

    def __init__(self, message: str, *, param: Optional[str] = None) -> None:
        super().__init__(message)
        self.param = param

    def naming(self, flag: str) -> str:
        """The message with ``param`` spelled ``flag`` once: its first ``param=VALUE`` becomes ``FLAG VALUE``
        (``param=True``: ``FLAG``); a message without one has its first bare ``param`` replaced."""
        if not self.param:
            return str(self)
        name = re.escape(self.param)
        assigned = re.compile(rf"(?<![\w.=-]){name}(?:(=True)\b|=)")
        if assigned.search(str(self)):
            return assigned.sub(lambda m: flag if m.group(1) else flag + " ", str(self), count=1)
        return re.sub(rf"(?<![\w.=-]){name}(?![\w=-])", lambda _: flag, str(self), count=1)


class ModelError(UserError):
    """A model file that cannot be read, converted or run."""


class DatasetError(UserError):
    """A dataset that cannot be read or does not fit the model."""


class RecipeError(UserError):
    """An unknown recipe or an invalid recipe file."""


class OptimizeError(UserError):
    """A model or option that TF-MOT cannot work with; the message says what to change."""


class OptimizeStepError(RecipeError, OptimizeError):
    """A bad optimize step: wrong in a recipe file and wrong as ``optimize()``'s settings alike."""


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
