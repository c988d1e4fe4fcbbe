"""Android devices over adb: a small device object with a time-out on every call.

Built on `adbutils <https://github.com/openatx/adbutils>`_: it finds the adb server
(:class:`adbutils.AdbClient`), lists devices, selects a device's transport and reads its features.
The shell and sync (push/pull) exchanges on top of that transport are done here, in a few lines,
because this module needs what adbutils' helpers do not give: one deadline for the whole call (a
per-``recv`` socket time-out never fires on a command that prints now and then), a command whose
output was cut off told apart from one that finished, and ``sendall`` for pushed data (adbutils'
``sync.push`` uses ``send`` and ignores short writes, which happen on a socket with a time-out).

Rules this module keeps (observed with adb 29.0.6 and 36.0.0, see ``shared/ENVIRONMENT.md``):

* Every argument of a shell command is quoted with :func:`shlex.quote`; there is no way to pass a
  raw command string. adb joins its arguments with spaces and the phone's shell splits them again.
* With the ``shell_v2`` feature the exit code and stderr come back apart. Without it, stderr is
  mixed into stdout and the exit code is read from an ``echo EXIT:<nonce>:$?`` marker appended to
  the command; a command whose marker never arrives was cut off and raises :class:`DeviceError`.
* Device faults (offline, unauthorized, not found, connection closed, time-out, no adb server) are
  raised as :class:`~tflite_deploy.errors.DeviceError` naming the serial, what happened and what
  to do. The server's wording differs between versions (``error: device offline`` from 29,
  ``adb: device offline`` from 36), so errors are matched on their meaning, not their prefix. The
  error carries ``serial`` and ``reason`` (``offline``, ``unauthorized``, ``not-found``,
  ``closed``, ``timeout``, ``server``, ``more-than-one``, ``state``, ``failed``) attributes.
* Files on the device live under :data:`DEVICE_ROOT`; push, pull and working directories elsewhere
  are refused.

TensorFlow is never imported here.
"""

from __future__ import annotations

import ipaddress
import os
import posixpath
import re
import secrets
import shlex
import socket
import stat
import struct
import subprocess
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

from tflite_deploy.errors import DeviceError, UserError
from tflite_deploy.hashing import sha256_file

__all__ = [
    "DEFAULT_TIMEOUT",
    "DEVICE_ROOT",
    "STATE_HINTS",
    "AdbDevice",
    "AdbServer",
    "DeviceInfo",
    "DeviceTarget",
    "ShellResult",
    "check_remote_path",
    "connect",
    "list_devices",
    "parse_getprop",
    "parse_target",
    "remote_path",
]

DEVICE_ROOT = "/data/local/tmp/tflite-deploy"
"""Every file this tool puts on a device lives below this folder."""

DEFAULT_TIMEOUT = 30.0
"""Seconds a device call may take unless the caller says otherwise."""

PUSH_MIN_RATE = 1024 * 1024
"""Bytes per second a push or pull is allowed at the least (slow USB 2 / Wi-Fi) for its time-out."""

DEFAULT_PORT = 5037

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

_SHELL_HEADER = struct.Struct("<BI")
_SHELL_STDOUT, _SHELL_STDERR, _SHELL_EXIT = 1, 2, 3
_SYNC_HEADER = struct.Struct("<4sI")
_SYNC_DATA_MAX = 64 * 1024
_MAX_PAYLOAD_V1 = 4096


# --- errors -------------------------------------------------------------------------------------


def _device_error(serial: Optional[str], reason: str, text: str) -> DeviceError:
    err = DeviceError(text)
    err.serial = serial  # type: ignore[attr-defined]
    err.reason = reason  # type: ignore[attr-defined]
    return err


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


def _classify(text: str) -> str:
    for reason, pattern in _MEANINGS:
        if pattern.search(text):
            return reason
    return "failed"


def _explain(
    serial: Optional[str], server: "AdbServer", reason: str, action: str, detail: str = ""
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
    return _device_error(serial, "offline" if reason == "no-permissions" else reason, text)


def _state_error(serial: str, server: "AdbServer", state: str, action: str) -> DeviceError:
    """The error for a device the server lists in ``state`` (not ``device``)."""
    reason = _classify(state)
    if reason in ("unauthorized", "offline", "no-permissions"):
        return _explain(serial, server, reason, action)
    hint = STATE_HINTS.get(state, "it cannot run commands in this state")
    return _device_error(
        serial, "state", f"Android device {serial} is in state {state!r} (while {action}): {hint}."
    )


# --- where the adb server is, which device --------------------------------------------------------


@dataclass(frozen=True)
class AdbServer:
    """The address of an adb server (``adb -P PORT``; a remote one with ``adb -a``)."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "AdbServer":
        """``ANDROID_ADB_SERVER_HOST`` and ``ANDROID_ADB_SERVER_PORT``, as adb itself reads them."""
        env = os.environ if environ is None else environ
        host = env.get("ANDROID_ADB_SERVER_HOST") or "127.0.0.1"
        port_text = env.get("ANDROID_ADB_SERVER_PORT") or str(DEFAULT_PORT)
        return cls(host, _parse_port(port_text, "ANDROID_ADB_SERVER_PORT"))

    @property
    def is_local(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _parse_port(text: str, what: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise UserError(f"{what}: {text!r} is not a TCP port (1-65535).")
    return port


@dataclass(frozen=True)
class DeviceTarget:
    """A device named by a target string: ``adb:SERIAL`` or ``adb://HOST:PORT/SERIAL``.

    ``serial`` is ``None`` for ``adb`` alone: the only device attached.
    """

    serial: Optional[str]
    server: AdbServer

    def __str__(self) -> str:
        return f"adb://{self.server}/{urllib.parse.quote(self.serial or '', safe=':')}"


def parse_target(text: str, environ: Optional[Mapping[str, str]] = None) -> DeviceTarget:
    """Parse ``adb``, ``adb:SERIAL`` or ``adb://HOST[:PORT]/[SERIAL]``.

    ``adb`` and ``adb:SERIAL`` use the server from the environment (:meth:`AdbServer.from_env`).
    Serials may hold colons (``adb:192.168.1.7:5555``).
    """
    raw = text.strip()
    usage = (
        f"Target {text!r} is not an adb target: write adb:SERIAL (a device on the local adb "
        "server), adb://HOST:PORT/SERIAL (a device on a remote adb server) or adb (the only "
        "device attached)."
    )
    if raw in ("adb", "adb:"):
        return DeviceTarget(None, AdbServer.from_env(environ))
    if raw.startswith("adb://"):
        parts = urllib.parse.urlsplit(raw)
        if not parts.hostname or parts.query or parts.fragment:
            raise UserError(usage)
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError:
            raise UserError(usage) from None
        serial = urllib.parse.unquote(parts.path.lstrip("/")) or None
        return DeviceTarget(serial, AdbServer(parts.hostname, port))
    if raw.startswith("adb:"):
        serial = raw[len("adb:") :]
        if not serial or any(ch.isspace() for ch in serial):
            raise UserError(usage)
        return DeviceTarget(serial, AdbServer.from_env(environ))
    raise UserError(usage)


# --- remote paths ---------------------------------------------------------------------------------


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


# --- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShellResult:
    """What a shell command on the device did.

    Without the ``shell_v2`` feature (``protocol == "marker"``) stderr is mixed into ``stdout`` and
    ``stderr`` is empty (``stderr_merged`` is true).
    """

    serial: str
    args: tuple[str, ...]
    command: str
    exit_code: int
    stdout: str
    stderr: str
    protocol: str
    duration_s: float

    @property
    def stderr_merged(self) -> bool:
        return self.protocol == "marker"

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def check(self) -> "ShellResult":
        """Return self if the command exited 0, else raise :class:`DeviceError` with its stderr."""
        if self.exit_code == 0:
            return self
        tail = (self.stderr or self.stdout).strip().splitlines()[-5:]
        raise _device_error(
            self.serial,
            "failed",
            f"Command `{self.command}` failed on Android device {self.serial} with exit code "
            f"{self.exit_code}" + (": " + " / ".join(tail) if tail else "."),
        )


@dataclass(frozen=True)
class DeviceInfo:
    """One device as the adb server lists it, with facts read from its properties.

    Facts are ``None`` when unknown (a device that is not in the ``device`` state, or whose
    properties could not be read); ``hint`` then says what to do.
    """

    serial: str
    state: str
    model: Optional[str] = None
    manufacturer: Optional[str] = None
    product: Optional[str] = None
    device: Optional[str] = None
    board: Optional[str] = None
    soc: Optional[str] = None
    soc_manufacturer: Optional[str] = None
    abis: tuple[str, ...] = ()
    android_release: Optional[str] = None
    sdk: Optional[int] = None
    is_emulator: bool = False
    transport_id: Optional[int] = None
    hint: Optional[str] = None

    @property
    def usable(self) -> bool:
        return self.state == "device"

    @classmethod
    def from_properties(
        cls,
        serial: str,
        state: str,
        props: Mapping[str, str],
        transport_id: Optional[int] = None,
        hint: Optional[str] = None,
    ) -> "DeviceInfo":
        def get(*names: str) -> Optional[str]:
            for name in names:
                value = props.get(name, "").strip()
                if value:
                    return value
            return None

        abilist = get("ro.product.cpu.abilist")
        if abilist:
            abis = tuple(a for a in abilist.split(",") if a)
        else:
            abis = tuple(a for a in (get("ro.product.cpu.abi"), get("ro.product.cpu.abi2")) if a)
        sdk_text = get("ro.build.version.sdk")
        emulator = (
            serial.startswith("emulator-")
            or get("ro.kernel.qemu") == "1"
            or get("ro.boot.qemu") == "1"
            or get("ro.hardware") in ("goldfish", "ranchu")
        )
        return cls(
            serial=serial,
            state=state,
            model=get("ro.product.model"),
            manufacturer=get("ro.product.manufacturer"),
            product=get("ro.product.name"),
            device=get("ro.product.device"),
            board=get("ro.board.platform", "ro.hardware"),
            soc=get("ro.soc.model"),
            soc_manufacturer=get("ro.soc.manufacturer"),
            abis=abis,
            android_release=get("ro.build.version.release"),
            sdk=int(sdk_text) if sdk_text and sdk_text.isdigit() else None,
            is_emulator=emulator,
            transport_id=transport_id,
            hint=hint,
        )


_PROP_LINE = re.compile(r"^\[(?P<key>[^\]]*)\]: \[(?P<value>.*)\]\s*$")


def parse_getprop(text: str) -> dict[str, str]:
    """Parse ``getprop`` output (``[name]: [value]`` lines; a value may span lines)."""
    props: dict[str, str] = {}
    key: Optional[str] = None
    for line in text.splitlines():
        m = _PROP_LINE.match(line)
        if m:
            key = m.group("key")
            props[key] = m.group("value")
        elif line.startswith("[") and "]: [" in line:
            key, _, value = line[1:].partition("]: [")
            props[key] = value
        elif key is not None and not line.startswith("["):
            # continuation of a multi-line value: keep it, drop the closing bracket
            props[key] = (props[key] + "\n" + line).removesuffix("]")
    return props


# --- the adb server connection -------------------------------------------------------------------


def _adbutils():
    import adbutils  # imported when first used: keeps `import tflite_deploy.adb` light

    return adbutils


class _Deadline:
    def __init__(self, seconds: float) -> None:
        if seconds is None or seconds <= 0:
            raise ValueError("a time-out must be a positive number of seconds")
        self.seconds = float(seconds)
        self.end = time.monotonic() + self.seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def check(self) -> float:
        left = self.left()
        if left <= 0:
            raise socket.timeout("deadline passed")
        return left


def _ensure_server(
    server: AdbServer, deadline: _Deadline, start: bool, serial: Optional[str] = None
) -> None:
    """Make sure an adb server answers at ``server``; start a local one if allowed."""
    try:
        with socket.create_connection(
            (server.host, server.port), timeout=min(3.0, deadline.check())
        ):
            return
    except OSError:
        pass
    if not (start and server.is_local):
        raise _explain(serial, server, "server", "connecting to the adb server")
    try:
        adb = _adbutils().adb_path()
        subprocess.run(
            [adb, "-P", str(server.port), "start-server"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=max(1.0, min(20.0, deadline.left())),
            check=False,
        )
    except Exception as exc:  # noqa: BLE001 - any failure to start it is reported the same way
        raise _explain(serial, server, "server", "starting a local adb server", str(exc)) from exc
    try:
        with socket.create_connection(
            (server.host, server.port), timeout=min(3.0, deadline.check())
        ):
            return
    except OSError as exc:
        raise _explain(serial, server, "server", "starting a local adb server", str(exc)) from exc


def _client(server: AdbServer, deadline: _Deadline):
    return _adbutils().AdbClient(
        host=server.host, port=server.port, socket_timeout=max(0.05, deadline.check())
    )


class _Faults:
    """Turn adbutils / socket failures inside a ``with`` block into :class:`DeviceError`."""

    def __init__(self, serial: Optional[str], server: AdbServer, action: str) -> None:
        self.serial, self.server, self.action = serial, server, action

    def __enter__(self) -> "_Faults":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or isinstance(exc, (DeviceError, UserError)):
            return False
        from adbutils.errors import AdbConnectionError, AdbError, AdbTimeout

        if isinstance(exc, (socket.timeout, TimeoutError, AdbTimeout)):
            raise _explain(self.serial, self.server, "timeout", self.action) from exc
        if isinstance(exc, AdbConnectionError):
            raise _explain(self.serial, self.server, "server", self.action, str(exc)) from exc
        if isinstance(exc, (EOFError, ConnectionError)):
            raise _explain(self.serial, self.server, "closed", self.action, str(exc)) from exc
        if isinstance(exc, (AdbError, OSError)):
            text = " ".join(str(a) for a in exc.args) or type(exc).__name__
            raise _explain(
                self.serial,
                self.server,
                _classify(text),
                self.action,
                text.splitlines()[0] if text else "",
            ) from exc
        return False


def list_devices(
    server: Optional[AdbServer] = None,
    *,
    timeout: float = 10.0,
    facts: bool = True,
    start_server: bool = True,
) -> list[DeviceInfo]:
    """Every device the adb server knows, offline and unauthorized ones included (with a hint).

    With ``facts``, devices in the ``device`` state are asked for their properties (one ``getprop``
    each); a device that fails to answer is listed with a hint instead of failing the whole list.
    """
    server = server or AdbServer.from_env()
    deadline = _Deadline(timeout)
    _ensure_server(server, deadline, start_server)
    with _Faults(None, server, "listing devices"):
        entries = _client(server, deadline).list(extended=True)
    out: list[DeviceInfo] = []
    for entry in entries:
        state = "no permissions" if entry.state == "no" else entry.state
        tid = entry.transport_id
        if state != "device":
            out.append(
                DeviceInfo(
                    serial=entry.serial,
                    state=state,
                    transport_id=tid,
                    model=(entry.tags.get("model") or "").replace("_", " ") or None,
                    product=entry.tags.get("product"),
                    device=entry.tags.get("device"),
                    is_emulator=entry.serial.startswith("emulator-"),
                    hint=STATE_HINTS.get(
                        state, f"it is in state {state!r}: it cannot run commands"
                    ),
                )
            )
            continue
        if not facts:
            out.append(
                DeviceInfo.from_properties(
                    entry.serial,
                    state,
                    {
                        "ro.product.model": (entry.tags.get("model") or "").replace("_", " "),
                        "ro.product.name": entry.tags.get("product", ""),
                        "ro.product.device": entry.tags.get("device", ""),
                    },
                    tid,
                )
            )
            continue
        try:
            left = max(0.5, deadline.left())
            props = AdbDevice(entry.serial, server, timeout=left).properties()
            out.append(DeviceInfo.from_properties(entry.serial, state, props, tid))
        except DeviceError as exc:
            out.append(
                DeviceInfo(
                    serial=entry.serial,
                    state=state,
                    transport_id=tid,
                    is_emulator=entry.serial.startswith("emulator-"),
                    hint=f"its properties could not be read: {exc}",
                )
            )
    return out


def connect(
    address: str,
    server: Optional[AdbServer] = None,
    *,
    timeout: float = 15.0,
    start_server: bool = True,
) -> str:
    """``adb connect HOST:PORT`` for a network device; returns its serial.

    ``adb connect`` reports success even when nothing answers, so the answer is checked and the
    device's state is looked up: anything but ``device`` raises :class:`DeviceError` with a hint.
    """
    server = server or AdbServer.from_env()
    deadline = _Deadline(timeout)
    _ensure_server(server, deadline, start_server)
    with _Faults(address, server, f"connecting to {address}"):
        answer = _client(server, deadline).connect(address, timeout=deadline.check())
    if re.search(r"unable|failed|cannot|error", answer, re.I) and "authenticate" not in answer:
        raise _device_error(
            address,
            "not-found",
            f"Could not connect to Android device {address}: {answer.strip()}. "
            "Check the address, that the phone has wireless debugging on, and "
            "that both are on the same network.",
        )
    serial = (
        answer.strip().rsplit(" ", 1)[-1]
        if answer.startswith(("connected", "already"))
        else address
    )
    for info in list_devices(server, timeout=max(1.0, deadline.left()), facts=False):
        if info.serial in (serial, address):
            if info.state != "device":
                raise _state_error(info.serial, server, info.state, f"connecting to {address}")
            return info.serial
    return serial


# --- the device object ----------------------------------------------------------------------------


class AdbDevice:
    """One Android device on an adb server. Every method takes a ``timeout`` in seconds.

    Args:
        serial: the device's serial as ``adb devices`` shows it.
        server: the adb server (default: from ``ANDROID_ADB_SERVER_HOST``/``_PORT``).
        timeout: default time-out for calls that do not name one.
        start_server: start a local adb server if none answers (as ``adb`` itself does).
    """

    def __init__(
        self,
        serial: str,
        server: Optional[AdbServer] = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        start_server: bool = True,
    ) -> None:
        if not serial:
            raise UserError("An adb device needs a serial (see `adb devices -l`).")
        self.serial = serial
        self.server = server or AdbServer.from_env()
        self.timeout = float(timeout)
        self.start_server = start_server
        self._features: Optional[frozenset[str]] = None
        self._hash_tool: Optional[tuple[str, ...]] = None

    def __repr__(self) -> str:
        return f"AdbDevice({self.serial!r}, server={str(self.server)!r})"

    @classmethod
    def open(
        cls,
        target: "str | DeviceTarget | None" = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        environ: Optional[Mapping[str, str]] = None,
    ) -> "AdbDevice":
        """The device a target names (``adb:SERIAL``, ``adb://HOST:PORT/SERIAL``, ``adb``).

        Checks that it is attached and in the ``device`` state; raises :class:`DeviceError`
        with a hint otherwise. ``adb`` alone picks the only device (``ANDROID_SERIAL`` if set).
        """
        if target is None or isinstance(target, str):
            target = parse_target(target or "adb", environ)
        env = os.environ if environ is None else environ
        serial = target.serial or env.get("ANDROID_SERIAL") or None
        devices = list_devices(target.server, timeout=timeout, facts=False)
        if serial is None:
            usable = [d for d in devices if d.usable]
            if len(usable) > 1:
                raise _explain(None, target.server, "more-than-one", "choosing a device")
            if not usable:
                if devices:
                    d = devices[0]
                    raise _state_error(d.serial, target.server, d.state, "choosing a device")
                raise _explain(None, target.server, "not-found", "choosing a device")
            serial = usable[0].serial
        for d in devices:
            if d.serial == serial and not d.usable:
                raise _state_error(serial, target.server, d.state, "opening it")
        if not any(d.serial == serial for d in devices):
            raise _explain(serial, target.server, "not-found", "opening it")
        return cls(serial, target.server, timeout=timeout)

    # -- plumbing ---------------------------------------------------------------------------------
    def _deadline(self, timeout: Optional[float]) -> _Deadline:
        return _Deadline(self.timeout if timeout is None else timeout)

    def _open(self, service: str, deadline: _Deadline, action: str):
        """A connection to ``service`` on the device, through the adb server.

        (adbutils' ``open_transport`` leaves its socket open when the server refuses the device,
        e.g. offline: this closes it.)
        """
        _ensure_server(self.server, deadline, self.start_server, self.serial)
        with _Faults(self.serial, self.server, action):
            conn = _client(self.server, deadline).make_connection(
                timeout=max(0.05, deadline.check())
            )
            try:
                conn.send_command(f"host:transport:{self.serial}")
                conn.check_okay()
                conn.send_command(service)
                conn.check_okay()
            except BaseException:
                conn.close()
                raise
            return conn

    def _host_query(self, request: str, deadline: _Deadline, action: str) -> str:
        """Ask the adb server ``host-serial:SERIAL:REQUEST`` (``features``, ``get-state``)."""
        _ensure_server(self.server, deadline, self.start_server, self.serial)
        with _Faults(self.serial, self.server, action):
            conn = _client(self.server, deadline).make_connection(
                timeout=max(0.05, deadline.check())
            )
            with conn:
                conn.send_command(f"host-serial:{self.serial}:{request}")
                conn.check_okay()
                return conn.read_string_block()

    @staticmethod
    def _recv(sock: socket.socket, size: int, deadline: _Deadline) -> bytes:
        sock.settimeout(max(0.01, deadline.check()))
        return sock.recv(size)

    @classmethod
    def _recv_exact(cls, sock: socket.socket, size: int, deadline: _Deadline) -> bytes:
        buf = bytearray()
        while len(buf) < size:
            chunk = cls._recv(sock, size - len(buf), deadline)
            if not chunk:
                raise EOFError(f"connection closed after {len(buf)} of {size} bytes")
            buf += chunk
        return bytes(buf)

    @staticmethod
    def _sendall(sock: socket.socket, data: bytes, deadline: _Deadline) -> None:
        sock.settimeout(max(0.01, deadline.check()))
        sock.sendall(data)

    # -- facts ------------------------------------------------------------------------------------
    def state(self, timeout: Optional[float] = None) -> str:
        """The adb server's idea of the device's state (``device``, ``offline``, ...)."""
        return self._host_query("get-state", self._deadline(timeout), "asking its state").strip()

    def features(self, timeout: Optional[float] = None) -> frozenset[str]:
        """The features the device announced (``shell_v2``, ``stat_v2``, ...); cached."""
        if self._features is None:
            text = self._host_query("features", self._deadline(timeout), "reading its features")
            self._features = frozenset(f for f in text.strip().split(",") if f)
        return self._features

    def supports_shell_v2(self, timeout: Optional[float] = None) -> bool:
        return "shell_v2" in self.features(timeout)

    def properties(self, timeout: Optional[float] = None) -> dict[str, str]:
        """All system properties (one ``getprop`` call)."""
        result = self.shell(["getprop"], timeout=timeout).check()
        return parse_getprop(result.stdout)

    def getprop(self, name: str, timeout: Optional[float] = None) -> str:
        return self.shell(["getprop", name], timeout=timeout).check().stdout.strip()

    def info(self, timeout: Optional[float] = None) -> DeviceInfo:
        return DeviceInfo.from_properties(self.serial, "device", self.properties(timeout))

    # -- shell ------------------------------------------------------------------------------------
    def shell(
        self,
        args: Sequence[str],
        timeout: Optional[float] = None,
        *,
        cwd: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
    ) -> ShellResult:
        """Run ``args`` on the device; every argument is quoted, none is split again.

        ``cwd`` (under :data:`DEVICE_ROOT`) and ``env`` (NAME: value) are applied with quoted
        ``cd`` and assignments. Returns exit code, stdout and stderr (see :class:`ShellResult`).
        Raises :class:`DeviceError` on a device fault, a time-out (the whole call, not one read)
        or a command whose output was cut off.
        """
        if isinstance(args, (str, bytes)) or not args:
            raise TypeError("shell() takes a non-empty list of arguments, never a command string")
        argv = tuple(str(a) for a in args)
        parts = [shlex.quote(a) for a in argv]
        for name in env or {}:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise UserError(f"{name!r} is not a valid environment variable name.")
        assignments = [f"{name}={shlex.quote(str(value))}" for name, value in (env or {}).items()]
        command = " ".join(assignments + parts)
        if cwd is not None:
            command = f"cd {shlex.quote(check_remote_path(cwd))} && {command}"
        deadline = self._deadline(timeout)
        started = time.monotonic()
        action = f"running `{_short(command)}`"
        if self.supports_shell_v2(max(0.05, deadline.left())):
            code, out, err = self._shell_v2(command, deadline, action)
            protocol = "shell_v2"
        else:
            code, out = self._shell_marker(command, deadline, action)
            err, protocol = b"", "marker"
        return ShellResult(
            serial=self.serial,
            args=argv,
            command=command,
            exit_code=code,
            stdout=out.decode("utf-8", "replace"),
            stderr=err.decode("utf-8", "replace"),
            protocol=protocol,
            duration_s=time.monotonic() - started,
        )

    def _shell_v2(self, command: str, deadline: _Deadline, action: str) -> tuple[int, bytes, bytes]:
        conn = self._open(f"shell,v2,raw:{command}", deadline, action)
        out, err, buf = bytearray(), bytearray(), bytearray()
        with _Faults(self.serial, self.server, action), conn:
            sock = conn.conn
            while True:
                while len(buf) >= _SHELL_HEADER.size:
                    ident, length = _SHELL_HEADER.unpack_from(buf)
                    if len(buf) < _SHELL_HEADER.size + length:
                        break
                    data = bytes(buf[_SHELL_HEADER.size : _SHELL_HEADER.size + length])
                    del buf[: _SHELL_HEADER.size + length]
                    if ident == _SHELL_STDOUT:
                        out += data
                    elif ident == _SHELL_STDERR:
                        err += data
                    elif ident == _SHELL_EXIT:
                        return (data[0] if data else 255), bytes(out), bytes(err)
                chunk = self._recv(sock, 65536, deadline)
                if not chunk:
                    raise _cut_off(self, action, bytes(out) + bytes(err))
                buf += chunk

    def _shell_marker(self, command: str, deadline: _Deadline, action: str) -> tuple[int, bytes]:
        nonce = secrets.token_hex(6)
        marker = f"EXIT:{nonce}:"
        service = f"shell:{command}; echo {marker}$?"
        if len(service) > _MAX_PAYLOAD_V1 - 1:
            raise UserError(
                f"The command for Android device {self.serial} is {len(service)} bytes long; "
                "without the shell_v2 feature adb takes at most 4 KB."
            )
        conn = self._open(service, deadline, action)
        data = bytearray()
        with _Faults(self.serial, self.server, action), conn:
            while True:
                chunk = self._recv(conn.conn, 65536, deadline)
                if not chunk:
                    break
                data += chunk
        m = re.search(re.escape(marker.encode()) + rb"(\d+)\r?\n?\Z", bytes(data))
        if m is None:
            raise _cut_off(self, action, bytes(data))
        return int(m.group(1)), bytes(data[: m.start()])

    # -- files ------------------------------------------------------------------------------------
    def mkdir(self, remote: str, timeout: Optional[float] = None) -> None:
        """``mkdir -p`` a folder under :data:`DEVICE_ROOT`."""
        self.shell(["mkdir", "-p", check_remote_path(remote)], timeout=timeout).check()

    def remove(self, remote: str, timeout: Optional[float] = None) -> None:
        """``rm -rf`` a path under :data:`DEVICE_ROOT` (never the root itself)."""
        path = check_remote_path(remote)
        if path == DEVICE_ROOT:
            raise UserError(f"Refusing to remove {DEVICE_ROOT} itself.")
        self.shell(["rm", "-rf", path], timeout=timeout).check()

    def remote_size(self, remote: str, timeout: Optional[float] = None) -> Optional[int]:
        """Size in bytes of a file on the device, ``None`` if it does not exist."""
        path = check_remote_path(remote)
        r = self.shell(["stat", "-c", "%s", path], timeout=timeout)
        if r.exit_code == 0 and r.stdout.strip().isdigit():
            return int(r.stdout.strip())
        if r.exit_code == 127:  # no stat on this device
            r = self.shell(["wc", "-c", path], timeout=timeout)
            first = r.stdout.split()
            if r.exit_code == 0 and first and first[0].isdigit():
                return int(first[0])
        return None

    def sha256(self, remote: str, timeout: Optional[float] = None) -> Optional[str]:
        """SHA-256 of a file on the device (``sha256sum`` or ``toybox sha256sum``), ``None`` if
        the file is missing or the device has neither tool."""
        return self._remote_digest(check_remote_path(remote), timeout)[1]

    def _remote_digest(self, path: str, timeout: Optional[float]) -> tuple[str, Optional[str]]:
        """``("ok", hex)``, ``("missing", None)`` or ``("no-tool", None)``."""
        tools = [self._hash_tool] if self._hash_tool else [("sha256sum",), ("toybox", "sha256sum")]
        for tool in tools:
            r = self.shell([*tool, path], timeout=timeout)
            words = r.stdout.split()
            if r.exit_code == 0 and words and re.fullmatch(r"[0-9a-fA-F]{64}", words[0]):
                self._hash_tool = tool
                return "ok", words[0].lower()
            text = (r.stderr + r.stdout).lower()
            if r.exit_code != 127 and "unknown command" not in text and "not found" not in text:
                self._hash_tool = tool
                return "missing", None  # the tool ran: the file is missing or unreadable
        return "no-tool", None

    def push(
        self,
        local: "str | os.PathLike[str]",
        remote: str,
        *,
        timeout: Optional[float] = None,
        mode: Optional[int] = None,
        force: bool = False,
    ) -> bool:
        """Copy a file to the device unless an identical one is there; ``True`` if copied.

        Identical means same size and same SHA-256 (same size alone on a device with no
        ``sha256sum``). The folder is created first (``mkdir -p``). ``mode`` defaults to the local
        file's permission bits, so an executable stays executable. The default time-out grows
        with the file's size (:data:`PUSH_MIN_RATE`).
        """
        src = Path(local)
        try:
            st = src.stat()
        except OSError as exc:
            raise UserError(f"{src}: cannot read the file to push ({exc.strerror}).") from exc
        if not stat.S_ISREG(st.st_mode):
            raise UserError(f"{src}: only regular files can be pushed.")
        path = check_remote_path(remote)
        if path == DEVICE_ROOT or remote.endswith("/"):
            raise UserError(
                f"Push to a full file path under {DEVICE_ROOT}/, not a folder: {remote!r}."
            )
        if timeout is None:
            timeout = self.timeout + st.st_size / PUSH_MIN_RATE
        deadline = _Deadline(timeout)
        if not force:
            size = self.remote_size(path, timeout=max(0.05, deadline.left()))
            if size == st.st_size:
                status, digest = self._remote_digest(path, max(0.05, deadline.left()))
                if status == "no-tool":
                    return False  # no hash tool on the device: the same size counts as the same
                if status == "ok" and digest == sha256_file(src):
                    return False
        self.mkdir(posixpath.dirname(path), timeout=max(0.05, deadline.left()))
        perms = stat.S_IMODE(st.st_mode) if mode is None else mode
        self._send_file(src, path, stat.S_IFREG | (perms & 0o7777), int(st.st_mtime), deadline)
        return True

    def _send_file(self, src: Path, path: str, mode: int, mtime: int, deadline: _Deadline) -> None:
        action = f"pushing {src.name} to {path}"
        conn = self._open("sync:", deadline, action)
        with _Faults(self.serial, self.server, action), conn, open(src, "rb") as f:
            sock = conn.conn
            spec = f"{path},{mode}".encode("utf-8")
            self._sendall(sock, _SYNC_HEADER.pack(b"SEND", len(spec)) + spec, deadline)
            while True:
                chunk = f.read(_SYNC_DATA_MAX)
                if not chunk:
                    break
                self._sendall(sock, _SYNC_HEADER.pack(b"DATA", len(chunk)) + chunk, deadline)
            self._sendall(sock, _SYNC_HEADER.pack(b"DONE", mtime & 0xFFFFFFFF), deadline)
            ident, length = _SYNC_HEADER.unpack(self._recv_exact(sock, 8, deadline))
            if ident == b"FAIL":
                msg = self._recv_exact(sock, length, deadline).decode("utf-8", "replace")
                raise _device_error(
                    self.serial,
                    "failed",
                    f"Android device {self.serial} refused the push of {src} to {path}: {msg}",
                )
            if ident != b"OKAY":
                raise _device_error(
                    self.serial,
                    "failed",
                    f"Android device {self.serial} answered {ident!r} to a push.",
                )
            self._sendall(sock, _SYNC_HEADER.pack(b"QUIT", 0), deadline)

    def pull(
        self, remote: str, local: "str | os.PathLike[str]", *, timeout: Optional[float] = None
    ) -> int:
        """Copy a file from the device (under :data:`DEVICE_ROOT`); returns its size.

        The local file appears only once complete (written to a temporary file, then renamed).
        """
        path = check_remote_path(remote)
        dst = Path(local)
        deadline = self._deadline(timeout)
        action = f"pulling {path}"
        conn = self._open("sync:", deadline, action)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{dst.name}.", suffix=".part", dir=dst.parent if str(dst.parent) else "."
        )
        total = 0
        try:
            with _Faults(self.serial, self.server, action), conn, os.fdopen(fd, "wb") as out:
                sock = conn.conn
                raw = path.encode("utf-8")
                self._sendall(sock, _SYNC_HEADER.pack(b"RECV", len(raw)) + raw, deadline)
                while True:
                    ident, length = _SYNC_HEADER.unpack(self._recv_exact(sock, 8, deadline))
                    if ident == b"DATA":
                        out.write(self._recv_exact(sock, length, deadline))
                        total += length
                    elif ident == b"DONE":
                        break
                    elif ident == b"FAIL":
                        msg = self._recv_exact(sock, length, deadline).decode("utf-8", "replace")
                        raise _device_error(
                            self.serial,
                            "failed",
                            f"Android device {self.serial} could not send {path}: {msg}",
                        )
                    else:
                        raise _device_error(
                            self.serial,
                            "failed",
                            f"Android device {self.serial} answered {ident!r} to a pull.",
                        )
                self._sendall(sock, _SYNC_HEADER.pack(b"QUIT", 0), deadline)
            os.replace(tmp_name, dst)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return total


def _cut_off(device: AdbDevice, action: str, partial: bytes) -> DeviceError:
    tail = partial.decode("utf-8", "replace").strip().splitlines()[-1:] if partial else []
    return _device_error(
        device.serial,
        "closed",
        f"Android device {device.serial} closed the connection while {action}, before the command "
        "finished (its output is cut off"
        + (f" after {tail[0]!r}" if tail else "")
        + "): it was disconnected, rebooted or adbd crashed; check `adb devices -l` and retry.",
    )


def _short(command: str, limit: int = 80) -> str:
    return command if len(command) <= limit else command[: limit - 3] + "..."


