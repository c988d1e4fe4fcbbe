"""Device faults as :class:`~tflite_deploy.errors.DeviceError`: what happened, what to do.

The adb server's wording differs between versions (``error: device offline`` from 29,
``adb: device offline`` from 36), so failures are matched on their meaning (:func:`classify`),
not their prefix, and explained once here (:func:`explain`). :class:`Faults` turns adbutils and
socket failures inside a ``with`` block into those errors.
"""

from __future__ import annotations

import re
import socket
from typing import Optional

from tflite_deploy.adb.targets import AdbServer
from tflite_deploy.errors import DeviceError, UserError

STATE_HINTS: dict[str, str] = {
    "unauthorized": (
        "unlock the phone and accept the 'Allow USB debugging?' prompt (tick 'Always allow'); "
        "if no prompt shows, revoke USB debugging authorizations in Developer options, replug it "
        "and run `adb kill-server`"
    ),
    "offline": (
        "adb sees it but it does not answer: replug the cable (for a network device "
        "`adb disconnect SERIAL` then `adb connect SERIAL`), or run `adb reconnect offline`; "
        "reboot the phone if it stays offline"
    ),
    "no permissions": (
        "this user may not open the USB device: install udev rules for Android "
        "(e.g. the `android-sdk-platform-tools-common` package) and replug it"
    ),
    "authorizing": "the phone is still checking this computer's key: wait a moment and retry",
    "connecting": "adb is still connecting to it: wait a moment and retry",
    "bootloader": "it is in the bootloader: boot it into Android (`fastboot reboot`)",
    "recovery": "it is in recovery: boot it into Android (`adb reboot`)",
    "rescue": "it is in rescue mode: boot it into Android (`adb reboot`)",
    "sideload": "it is in sideload mode: finish or cancel the sideload and boot into Android",
    "host": "this is another computer, not a phone",
}
"""What to do about a device in a state other than ``device``."""


_MEANINGS: list[tuple[str, re.Pattern[str]]] = [
    ("unauthorized", re.compile(r"unauthori[sz]ed|failed to authenticate", re.I)),
    ("offline", re.compile(r"\boffline\b", re.I)),
    ("more-than-one", re.compile(r"more than one (device|emulator)", re.I)),
    (
        "not-found",
        re.compile(r"not found|no devices?( found)?\b|no emulators?|no such device", re.I),
    ),
    ("no-permissions", re.compile(r"no permissions|insufficient permissions", re.I)),
    ("timeout", re.compile(r"timed? ?out", re.I)),
    ("closed", re.compile(r"closed|\beof\b|reset by peer|broken pipe|couldn'?t read", re.I)),
]


#: Faults of the link, not the phone: a dropped cable or a USB reset, after which adb reconnects the
#: phone by itself within seconds. Worth another attempt after a pause.
TRANSIENT_FAULTS = frozenset({"closed", "offline", "not-found", "server"})
#: Faults after which the phone serves nothing more until a person acts (it froze, asks for
#: authorization, sits in the bootloader): its other runs are not attempted.
DEVICE_GONE_FAULTS = frozenset({"frozen", "unauthorized", "state"})


def classify(text: str) -> str:
    for reason, pattern in _MEANINGS:
        if pattern.search(text):
            return reason
    return "failed"


def explain(
    serial: Optional[str], server: AdbServer, reason: str, action: str, detail: str = ""
) -> DeviceError:
    who = f"Android device {serial}" if serial else "Android device"
    detail = detail.strip()
    if reason == "unauthorized":
        text = f"{who} is unauthorized (while {action}): {STATE_HINTS['unauthorized']}."
    elif reason == "offline":
        text = f"{who} is offline (while {action}): {STATE_HINTS['offline']}."
    elif reason == "no-permissions":
        text = f"{who} cannot be opened (while {action}): {STATE_HINTS['no permissions']}."
    elif reason == "not-found":
        text = (
            f"{who} was not found by the adb server at {server} (while {action}): check "
            "`adb devices -l`; plug it in and enable USB debugging, or `adb connect HOST:PORT` "
            "for a network device."
        )
    elif reason == "more-than-one":
        text = (
            f"More than one Android device is attached to the adb server at {server}: name one "
            "with a target adb:SERIAL (serials are in `tflite-deploy devices`)."
        )
    elif reason == "closed":
        text = (
            f"{who} closed the connection while {action}: it was disconnected, rebooted or adbd "
            "crashed; check the cable and `adb devices -l`, then try again."
        )
    elif reason == "timeout":
        text = (
            f"{who} did not answer in time while {action}: it may be hung or very busy; check it "
            f"with `adb -s {serial or 'SERIAL'} shell echo ok`; replug or reboot it if that "
            "hangs too."
        )
    elif reason == "server":
        text = (
            f"No adb server answers at {server} (while {action}"
            + (f" for Android device {serial}" if serial else "")
            + "): start one with "
            f"`adb -P {server.port} start-server`, or point ANDROID_ADB_SERVER_HOST/PORT or the "
            "target adb://HOST:PORT/SERIAL at a running one."
        )
    else:
        text = f"{who} failed while {action}."
    if detail:
        text += f" (adb said: {detail})"
    # a device without USB permissions is as unreachable as an offline one
    reason = "offline" if reason == "no-permissions" else reason
    return DeviceError(text, serial=serial, reason=reason)


def state_error(serial: str, server: AdbServer, state: str, action: str) -> DeviceError:
    """The error for a device the server lists in ``state`` (not ``device``)."""
    reason = classify(state)
    if reason in ("unauthorized", "offline", "no-permissions"):
        return explain(serial, server, reason, action)
    hint = STATE_HINTS.get(state, "it cannot run commands in this state")
    return DeviceError(
        f"Android device {serial} is in state {state!r} (while {action}): {hint}.",
        serial=serial,
        reason="state",
    )


class Faults:
    """Turn adbutils / socket failures inside a ``with`` block into :class:`DeviceError`."""

    def __init__(self, serial: Optional[str], server: AdbServer, action: str) -> None:
        self.serial, self.server, self.action = serial, server, action

    def __enter__(self) -> "Faults":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or isinstance(exc, (DeviceError, UserError)):
            return False
        from adbutils.errors import AdbConnectionError, AdbError, AdbTimeout

        if isinstance(exc, (socket.timeout, TimeoutError, AdbTimeout)):
            raise explain(self.serial, self.server, "timeout", self.action) from exc
        if isinstance(exc, AdbConnectionError):
            raise explain(self.serial, self.server, "server", self.action, str(exc)) from exc
        if isinstance(exc, (EOFError, ConnectionError)):
            raise explain(self.serial, self.server, "closed", self.action, str(exc)) from exc
        if isinstance(exc, (AdbError, OSError)):
            text = " ".join(str(a) for a in exc.args) or type(exc).__name__
            raise explain(
                self.serial,
                self.server,
                classify(text),
                self.action,
                text.splitlines()[0] if text else "",
            ) from exc
        return False


def cut_off(serial: str, action: str, partial: bytes) -> DeviceError:
    """The error for a command whose output stopped before it finished."""
    tail = partial.decode("utf-8", "replace").strip().splitlines()[-1:] if partial else []
    return DeviceError(
        f"Android device {serial} closed the connection while {action}, before the command "
        "finished (its output is cut off"
        + (f" after {tail[0]!r}" if tail else "")
        + "): it was disconnected, rebooted or adbd crashed; check `adb devices -l` and retry.",
        serial=serial,
        reason="closed",
    )
