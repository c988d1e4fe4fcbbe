"""Errors a user can act on.

Every failure caused by the user's input (a missing file, a corrupt model, a dataset that does not
fit) is raised as a :class:`UserError` whose message is one paragraph naming the file and what is
wrong. The CLI prints that message and exits non-zero; nothing else should reach the user as a
traceback.
"""

from __future__ import annotations

from typing import Optional


class UserError(Exception):
    """Bad input: the message says which file or option and what is wrong with it."""

    exit_code = 2


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
                 reason: Optional[str] = None) -> None:
        super().__init__(message)
        self.serial = serial
        self.reason = reason


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what was kept and how to go on; the CLI prints ``interrupted; <how>`` as one line."""

    def __init__(self, how: str) -> None:
        super().__init__(how)
        self.how = how
