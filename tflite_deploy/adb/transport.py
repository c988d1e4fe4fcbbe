"""The hand-written adb exchanges: shell (v2 and exit marker) and sync (push, pull).

`adbutils <https://github.com/openatx/adbutils>`_ finds the adb server and opens connections; the
exchanges on a device's transport are done here, in a few lines, because adbutils' helpers do not
give what is needed: one deadline for the whole call (:class:`Deadline`; a per-``recv`` socket
time-out never fires on a command that prints now and then), a command whose output was cut off
told apart from one that finished, and ``sendall`` for pushed data (adbutils' ``sync.push`` uses
``send`` and ignores short writes, which happen on a socket with a time-out).

Faults inside an exchange become :class:`~tflite_deploy.errors.DeviceError` through
:class:`~tflite_deploy.adb.faults.Faults`.
"""

from __future__ import annotations

import re
import secrets
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Optional

from tflite_deploy.adb.faults import Faults, cut_off, explain
from tflite_deploy.adb.targets import AdbServer
from tflite_deploy.errors import DeviceError, UserError

_SHELL_HEADER = struct.Struct("<BI")
_SHELL_STDOUT, _SHELL_STDERR, _SHELL_EXIT = 1, 2, 3
_SYNC_HEADER = struct.Struct("<4sI")
_SYNC_DATA_MAX = 64 * 1024
_MAX_PAYLOAD_V1 = 4096
CANCEL_POLL_S = 0.5  # how soon a cancelled call notices


def adbutils_module():
    """adbutils, imported on first use."""
    import adbutils  # imported when first used: keeps `import tflite_deploy.adb` light

    return adbutils


class Deadline:
    """The end of one whole call. With ``cancel`` (an Event another thread may set, e.g. a liveness
    probe that found the device frozen) the call also ends, within :data:`CANCEL_POLL_S`, once it is set."""

    def __init__(self, seconds: float, cancel: Optional[threading.Event] = None) -> None:
        if seconds is None or seconds <= 0:
            raise ValueError("a time-out must be a positive number of seconds")
        self.seconds = float(seconds)
        self.end = time.monotonic() + self.seconds
        self.cancel = cancel

    def left(self) -> float:
        return self.end - time.monotonic()

    def check(self) -> float:
        if self.cancel is not None and self.cancel.is_set():
            raise socket.timeout("cancelled: the device stopped answering")
        left = self.left()
        if left <= 0:
            raise socket.timeout("deadline passed")
        return left


def ensure_server(
    server: AdbServer, deadline: Deadline, start: bool, serial: Optional[str] = None
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
        raise explain(serial, server, "server", "connecting to the adb server")
    try:
        adb = adbutils_module().adb_path()
        subprocess.run(
            [adb, "-P", str(server.port), "start-server"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=max(1.0, min(20.0, deadline.left())),
            check=False,
        )
    except Exception as exc:  # noqa: BLE001 - any failure to start it is reported the same way
        raise explain(serial, server, "server", "starting a local adb server", str(exc)) from exc
    try:
        with socket.create_connection(
            (server.host, server.port), timeout=min(3.0, deadline.check())
        ):
            return
    except OSError as exc:
        raise explain(serial, server, "server", "starting a local adb server", str(exc)) from exc


def client(server: AdbServer, deadline: Deadline):
    return adbutils_module().AdbClient(
        host=server.host, port=server.port, socket_timeout=max(0.05, deadline.check())
    )


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
        raise DeviceError(
            f"Command `{self.command}` failed on Android device {self.serial} with exit code "
            f"{self.exit_code}" + (": " + " / ".join(tail) if tail else "."),
            serial=self.serial,
            reason="failed",
        )


@dataclass(frozen=True)
class Transport:
    """A device's transport on an adb server (``host:transport:SERIAL``) and the exchanges on it.

    ``start_server``: start a local adb server if none answers (as ``adb`` itself does).
    """

    serial: str
    server: AdbServer
    start_server: bool = True

    def open_service(self, service: str, deadline: Deadline, action: str):
        """A connection to ``service`` on the device, through the adb server.

        (adbutils' ``open_transport`` leaves its socket open when the server refuses the device,
        e.g. offline: this closes it.)
        """
        ensure_server(self.server, deadline, self.start_server, self.serial)
        with Faults(self.serial, self.server, action):
            conn = client(self.server, deadline).make_connection(
                timeout=max(0.05, deadline.check())
            )
            try:
                # by hand, not adbutils' check_okay: a frozen phone never answers the OPEN the server
                # sends for ``service``, and that wait must end when ``deadline`` is cancelled
                request(conn.conn, f"host:transport:{self.serial}", deadline)
                request(conn.conn, service, deadline)
            except BaseException:
                conn.close()
                raise
            return conn

    def host_query(self, request: str, deadline: Deadline, action: str) -> str:
        """Ask the adb server ``host-serial:SERIAL:REQUEST`` (``features``, ``get-state``)."""
        ensure_server(self.server, deadline, self.start_server, self.serial)
        with Faults(self.serial, self.server, action):
            conn = client(self.server, deadline).make_connection(
                timeout=max(0.05, deadline.check())
            )
            with conn:
                conn.send_command(f"host-serial:{self.serial}:{request}")
                conn.check_okay()
                return conn.read_string_block()

    def shell_v2(self, command: str, deadline: Deadline, action: str) -> tuple[int, bytes, bytes]:
        """Run ``command`` with the shell v2 protocol: exit code, stdout, stderr."""
        conn = self.open_service(f"shell,v2,raw:{command}", deadline, action)
        out, err, buf = bytearray(), bytearray(), bytearray()
        with Faults(self.serial, self.server, action), conn:
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
                chunk = recv(sock, 65536, deadline)
                if not chunk:
                    raise cut_off(self.serial, action, bytes(out) + bytes(err))
                buf += chunk

    def shell_marker(self, command: str, deadline: Deadline, action: str) -> tuple[int, bytes]:
        """Run ``command`` without shell v2: exit code from an ``EXIT:<nonce>:$?`` marker."""
        nonce = secrets.token_hex(6)
        marker = f"EXIT:{nonce}:"
        service = f"shell:{command}; echo {marker}$?"
        if len(service) > _MAX_PAYLOAD_V1 - 1:
            raise UserError(
                f"The command for Android device {self.serial} is {len(service)} bytes long; "
                "without the shell_v2 feature adb takes at most 4 KB."
            )
        conn = self.open_service(service, deadline, action)
        data = bytearray()
        with Faults(self.serial, self.server, action), conn:
            while True:
                chunk = recv(conn.conn, 65536, deadline)
                if not chunk:
                    break
                data += chunk
        m = re.search(re.escape(marker.encode()) + rb"(\d+)\r?\n?\Z", bytes(data))
        if m is None:
            raise cut_off(self.serial, action, bytes(data))
        return int(m.group(1)), bytes(data[: m.start()])

    def send_file(self, src: Path, path: str, mode: int, mtime: int, deadline: Deadline) -> None:
        """Push ``src`` to ``path`` (sync ``SEND``), every byte with ``sendall``."""
        action = f"pushing {src.name} to {path}"
        conn = self.open_service("sync:", deadline, action)
        with Faults(self.serial, self.server, action), conn, open(src, "rb") as f:
            sock = conn.conn
            spec = f"{path},{mode}".encode("utf-8")
            sendall(sock, _SYNC_HEADER.pack(b"SEND", len(spec)) + spec, deadline)
            while True:
                chunk = f.read(_SYNC_DATA_MAX)
                if not chunk:
                    break
                sendall(sock, _SYNC_HEADER.pack(b"DATA", len(chunk)) + chunk, deadline)
            sendall(sock, _SYNC_HEADER.pack(b"DONE", mtime & 0xFFFFFFFF), deadline)
            ident, length = _SYNC_HEADER.unpack(recv_exact(sock, 8, deadline))
            if ident == b"FAIL":
                msg = recv_exact(sock, length, deadline).decode("utf-8", "replace")
                raise DeviceError(
                    f"Android device {self.serial} refused the push of {src} to {path}: {msg}",
                    serial=self.serial,
                    reason="failed",
                )
            if ident != b"OKAY":
                raise DeviceError(
                    f"Android device {self.serial} answered {ident!r} to a push.",
                    serial=self.serial,
                    reason="failed",
                )
            sendall(sock, _SYNC_HEADER.pack(b"QUIT", 0), deadline)

    def recv_file(self, conn, path: str, out: BinaryIO, deadline: Deadline) -> int:
        """Receive the device file ``path`` (sync ``RECV``) on ``conn`` into ``out``; its size."""
        sock = conn.conn
        raw = path.encode("utf-8")
        sendall(sock, _SYNC_HEADER.pack(b"RECV", len(raw)) + raw, deadline)
        total = 0
        while True:
            ident, length = _SYNC_HEADER.unpack(recv_exact(sock, 8, deadline))
            if ident == b"DATA":
                out.write(recv_exact(sock, length, deadline))
                total += length
            elif ident == b"DONE":
                break
            elif ident == b"FAIL":
                msg = recv_exact(sock, length, deadline).decode("utf-8", "replace")
                raise DeviceError(
                    f"Android device {self.serial} could not send {path}: {msg}",
                    serial=self.serial,
                    reason="failed",
                )
            else:
                raise DeviceError(
                    f"Android device {self.serial} answered {ident!r} to a pull.",
                    serial=self.serial,
                    reason="failed",
                )
        sendall(sock, _SYNC_HEADER.pack(b"QUIT", 0), deadline)
        return total


def request(sock: socket.socket, text: str, deadline: Deadline) -> None:
    """Send one request to the adb server and wait for its ``OKAY`` (``FAIL``: AdbError with its reason)."""
    raw = text.encode("utf-8")
    sendall(sock, f"{len(raw):04x}".encode() + raw, deadline)
    status = recv_exact(sock, 4, deadline)
    if status == b"OKAY":
        return
    errors = adbutils_module().errors
    if status == b"FAIL":
        length = int(recv_exact(sock, 4, deadline), 16)
        raise errors.AdbError(recv_exact(sock, length, deadline).decode("utf-8", "replace"))
    raise errors.AdbError(f"Unknown data: {status!r}")


def recv(sock: socket.socket, size: int, deadline: Deadline) -> bytes:
    if deadline.cancel is None:
        sock.settimeout(max(0.01, deadline.check()))
        return sock.recv(size)
    while True:  # wait in short slices so a cancel is seen while the device prints nothing
        sock.settimeout(max(0.01, min(CANCEL_POLL_S, deadline.check())))
        try:
            return sock.recv(size)
        except socket.timeout:
            continue


def recv_exact(sock: socket.socket, size: int, deadline: Deadline) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        chunk = recv(sock, size - len(buf), deadline)
        if not chunk:
            raise EOFError(f"connection closed after {len(buf)} of {size} bytes")
        buf += chunk
    return bytes(buf)


def sendall(sock: socket.socket, data: bytes, deadline: Deadline) -> None:
    if deadline.cancel is None:
        sock.settimeout(max(0.01, deadline.check()))
        sock.sendall(data)
        return
    view = memoryview(data)
    while view:  # in short slices: a frozen phone stops taking data, and a cancel must still be seen
        sock.settimeout(max(0.01, min(CANCEL_POLL_S, deadline.check())))
        try:
            view = view[sock.send(view):]
        except socket.timeout:
            continue
