"""One Android device on an adb server (:class:`AdbDevice`), and the server's device list.

Every call takes a ``timeout`` for the whole call. Every argument of a shell command is quoted
with :func:`shlex.quote`; there is no way to pass a raw command string (adb joins its arguments
with spaces and the phone's shell splits them again). Files go below
:data:`~tflite_deploy.adb.paths.DEVICE_ROOT` only.
"""

from __future__ import annotations

import copy
import os
import posixpath
import re
import shlex
import stat
import tempfile
import threading
import time
from pathlib import Path
from typing import Mapping, Optional, Sequence

from tflite_deploy.adb.facts import DeviceInfo, parse_getprop
from tflite_deploy.adb.faults import STATE_HINTS, Faults, explain, state_error
from tflite_deploy.adb.paths import DEVICE_ROOT, check_remote_path
from tflite_deploy.adb.targets import AdbServer, DeviceTarget, parse_target
from tflite_deploy.adb.transport import Deadline, ShellResult, Transport, client, ensure_server
from tflite_deploy.errors import DeviceError, UserError
from tflite_deploy.hashing import sha256_file

DEFAULT_TIMEOUT = 30.0
"""Seconds a device call may take unless the caller says otherwise."""

PUSH_MIN_RATE = 1024 * 1024
"""Bytes per second a push or pull is allowed at the least (slow USB 2 / Wi-Fi) for its time-out."""


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
    deadline = Deadline(timeout)
    ensure_server(server, deadline, start_server)
    with Faults(None, server, "listing devices"):
        entries = client(server, deadline).list(extended=True)
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
    deadline = Deadline(timeout)
    ensure_server(server, deadline, start_server)
    with Faults(address, server, f"connecting to {address}"):
        answer = client(server, deadline).connect(address, timeout=deadline.check())
    if re.search(r"unable|failed|cannot|error", answer, re.I) and "authenticate" not in answer:
        raise DeviceError(
            f"Could not connect to Android device {address}: {answer.strip()}. "
            "Check the address, that the phone has wireless debugging on, and "
            "that both are on the same network.",
            serial=address,
            reason="not-found",
        )
    serial = (
        answer.strip().rsplit(" ", 1)[-1]
        if answer.startswith(("connected", "already"))
        else address
    )
    for info in list_devices(server, timeout=max(1.0, deadline.left()), facts=False):
        if info.serial in (serial, address):
            if info.state != "device":
                raise state_error(info.serial, server, info.state, f"connecting to {address}")
            return info.serial
    return serial


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
        self._cancel: Optional[threading.Event] = None
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
                raise explain(None, target.server, "more-than-one", "choosing a device")
            if not usable:
                if devices:
                    d = devices[0]
                    raise state_error(d.serial, target.server, d.state, "choosing a device")
                raise explain(None, target.server, "not-found", "choosing a device")
            serial = usable[0].serial
        for d in devices:
            if d.serial == serial and not d.usable:
                raise state_error(serial, target.server, d.state, "opening it")
        if not any(d.serial == serial for d in devices):
            raise explain(serial, target.server, "not-found", "opening it")
        return cls(serial, target.server, timeout=timeout)

    # -- plumbing ---------------------------------------------------------------------------------
    def _deadline(self, timeout: Optional[float]) -> Deadline:
        return Deadline(self.timeout if timeout is None else timeout, self._cancel)

    def stopped_by(self, cancel: threading.Event) -> "AdbDevice":
        """This device, whose calls also end (a ``timeout`` DeviceError) soon after ``cancel`` is set."""
        other = copy.copy(self)
        other._cancel = cancel
        return other

    def _transport(self) -> Transport:
        return Transport(self.serial, self.server, self.start_server)

    # -- facts ------------------------------------------------------------------------------------
    def state(self, timeout: Optional[float] = None) -> str:
        """The adb server's idea of the device's state (``device``, ``offline``, ...)."""
        deadline = self._deadline(timeout)
        return self._transport().host_query("get-state", deadline, "asking its state").strip()

    def features(self, timeout: Optional[float] = None) -> frozenset[str]:
        """The features the device announced (``shell_v2``, ``stat_v2``, ...); cached."""
        if self._features is None:
            deadline = self._deadline(timeout)
            text = self._transport().host_query("features", deadline, "reading its features")
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
            code, out, err = self._transport().shell_v2(command, deadline, action)
            protocol = "shell_v2"
        else:
            code, out = self._transport().shell_marker(command, deadline, action)
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
        deadline = self._deadline(timeout)
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
        mode_bits = stat.S_IFREG | (perms & 0o7777)
        self._transport().send_file(src, path, mode_bits, int(st.st_mtime), deadline)
        return True

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
        transport = self._transport()
        conn = transport.open_service("sync:", deadline, action)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{dst.name}.", suffix=".part", dir=dst.parent if str(dst.parent) else "."
        )
        try:
            with Faults(self.serial, self.server, action), conn, os.fdopen(fd, "wb") as out:
                total = transport.recv_file(conn, path, out, deadline)
            os.replace(tmp_name, dst)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return total


def _short(command: str, limit: int = 80) -> str:
    return command if len(command) <= limit else command[: limit - 3] + "..."
