"""A device-side adb endpoint for tests: the real adb server talks to it as to a phone over TCP.

There is no phone or emulator on development and CI machines. :class:`FakeAdbd` listens on
``127.0.0.1`` (port 0 picks a free port) and speaks adb's *transport* protocol, the one ``adbd``
on a phone speaks, so a real adb server (any version: Debian's 29 and platform-tools 36 are tested)
attaches it with ``adb connect 127.0.0.1:PORT``. Everything from the adb client down to the TCP
socket is the real thing: the server's handshake, stream multiplexing, flow control, the shell
protocol, the sync (push/pull) protocol, time-outs and disconnects.

The wire formats follow AOSP's documentation of adb (``protocol.txt``, ``SERVICES.TXT``,
``SYNC.TXT``, ``shell_protocol.h``, ``file_sync_protocol.h``):

* A message is a 24-byte header of six little-endian ``uint32``: command, arg0, arg1, payload
  length, payload checksum (the byte sum of the payload; from protocol version ``0x01000001`` on
  it is sent as 0 and not checked) and magic (``command ^ 0xffffffff``), then the payload. We send
  the checksum on CNXN/AUTH and whenever the host's version is older, and check it then.
* ``CNXN(version, maxdata, "device::ro.product.name=..;ro.product.model=..;ro.product.device=..;
  features=..")`` answers the host's CNXN. We answer ``min(host version, 0x01000001)`` and
  ``min(host maxdata, max_payload)`` (256 KiB by default; adb 29 and 36 both offer 1 MiB). No AUTH
  unless ``auth="unauthorized"`` asks for a device that never accepts the host's key.
* Streams: ``OPEN(remote-id, 0, "service\\0")`` is answered ``OKAY(local-id, remote-id)`` or
  ``CLSE(0, remote-id)``; ``WRTE`` carries data and each one must be acknowledged with ``OKAY``
  before the sender sends the next; ``CLSE`` ends a stream.
* Services: ``shell:CMD`` (raw, stdout and stderr mixed, no exit code), ``shell,v2[,raw|pty]
  [,TERM=..]:CMD`` with the shell protocol (packets ``id:u8, length:u32, data``; ids stdin 0,
  stdout 1, stderr 2, exit 3, close-stdin 4, window-size 5), ``exec:CMD`` (raw, stdout only), and
  ``sync:`` with ``STAT``, ``STA2``/``LST2``, ``LIST``/``LIS2``, ``SEND`` (``path,mode``, ``DATA``
  chunks, ``DONE`` with the mtime, answered ``OKAY`` or ``FAIL``), ``RECV`` and ``QUIT``.

The device's file system is a *sandbox* folder on the host: the device path ``/x/y`` is the host
path ``SANDBOX/x/y``. Sync requests whose path has a ``..`` component or resolves outside the
sandbox get ``FAIL``. Shell commands run as ``/bin/sh -c CMD`` on the host with

* every ``/data/local/tmp`` in the command text rewritten to ``SANDBOX/data/local/tmp`` (and the
  sandbox prefix rewritten back in what the command prints, chunk by chunk), so commands a test
  sends with device paths touch the sandbox;
* the working directory ``SANDBOX/`` (the device's ``/``), ``TMPDIR`` = ``SANDBOX/data/local/tmp``,
  ``FAKE_ADBD_ROOT`` = ``SANDBOX``;
* ``SANDBOX/system/bin`` first on ``PATH``, holding a ``getprop`` shim (``getprop`` prints every
  property as ``[name]: [value]``, ``getprop NAME [DEFAULT]`` one value, like Android's) backed by
  :attr:`FakeAdbd.props`, and a ``toybox`` shim that runs its arguments as a command (so
  ``toybox sha256sum F`` works).

This is a test fixture, not a security boundary: a shell command can do anything the test process
can. Test controls: :meth:`FakeAdbd.kill` (every socket closed abruptly, the listener gone, running
commands killed: a device that dies), :meth:`FakeAdbd.hang` (sockets stay open, nothing is answered
any more: a device that freezes; :attr:`FakeAdbd.freeze_on` freezes it as a given command starts),
:meth:`FakeAdbd.drop` (every connection reset, the device still listening: a dropped link the adb
server reconnects within a second; :attr:`FakeAdbd.drop_on` drops it once as a given command runs),
:attr:`FakeAdbd.freeze_on_open` (freezes as an OPEN arrives, leaving it unanswered: just as a short
command, a push or a benchmark starts), :attr:`FakeAdbd.freeze_on_push` (freezes mid-push),
:attr:`FakeAdbd.delay` (seconds to wait before accepting each stream). Pushed files keep the mode bits from ``SEND``'s ``path,mode``, so a pushed executable runs.
"""

from __future__ import annotations

import errno
import itertools
import os
import posixpath
import queue
import secrets
import signal
import socket
import stat
import struct
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

__all__ = [
    "DEFAULT_FEATURES",
    "DEFAULT_PROPS",
    "FakeAdbd",
    "SandboxError",
]

# --- transport constants (protocol.txt, adb.h) ---------------------------------------------------


def _cmd(name: str) -> int:
    return struct.unpack("<I", name.encode("ascii"))[0]


A_SYNC = _cmd("SYNC")
A_CNXN = _cmd("CNXN")
A_OPEN = _cmd("OPEN")
A_OKAY = _cmd("OKAY")
A_CLSE = _cmd("CLSE")
A_WRTE = _cmd("WRTE")
A_AUTH = _cmd("AUTH")
A_STLS = _cmd("STLS")

A_VERSION_MIN = 0x01000000
A_VERSION_SKIP_CHECKSUM = 0x01000001
A_VERSION = 0x01000001
MAX_PAYLOAD_V1 = 4 * 1024
HEADER = struct.Struct("<6I")

AUTH_TOKEN = 1
AUTH_SIGNATURE = 2
AUTH_RSAPUBLICKEY = 3

# --- shell protocol (shell_protocol.h) ------------------------------------------------------------
SHELL_STDIN = 0
SHELL_STDOUT = 1
SHELL_STDERR = 2
SHELL_EXIT = 3
SHELL_CLOSE_STDIN = 4
SHELL_WINDOW_SIZE = 5
SHELL_HEADER = struct.Struct("<BI")

# --- sync protocol (file_sync_protocol.h, SYNC.TXT) -----------------------------------------------
SYNC_DATA_MAX = 64 * 1024
SYNC_HEADER = struct.Struct("<4sI")
STAT_V1 = struct.Struct("<4sIII")  # id, mode, size, mtime
STAT_V2 = struct.Struct(
    "<4sIQQIIIIQqqq"
)  # id, error, dev, ino, mode, nlink, uid, gid, size, a/m/ctime
DENT_V1 = struct.Struct("<4sIIII")  # id, mode, size, mtime, namelen
DENT_V2 = struct.Struct("<4sIQQIIIIQqqqI")  # stat_v2 fields + namelen

DEVICE_TMP = "/data/local/tmp"

DEFAULT_FEATURES: tuple[str, ...] = ("shell_v2", "cmd", "stat_v2", "ls_v2", "fixed_push_mkdir")
"""Features announced in the CNXN banner. Leave ``shell_v2`` out for a device without exit codes."""

DEFAULT_PROPS: dict[str, str] = {
    "ro.product.name": "panther",
    "ro.product.model": "Pixel 7",
    "ro.product.device": "panther",
    "ro.product.brand": "google",
    "ro.product.manufacturer": "Google",
    "ro.board.platform": "gs201",
    "ro.soc.manufacturer": "Google",
    "ro.soc.model": "GS201",
    "ro.hardware": "panther",
    "ro.product.cpu.abi": "arm64-v8a",
    "ro.product.cpu.abilist": "arm64-v8a,armeabi-v7a,armeabi",
    "ro.build.version.release": "14",
    "ro.build.version.sdk": "34",
    "ro.build.fingerprint": "google/panther/panther:14/UQ1A.240205.004/11269751:user/release-keys",
    "ro.serialno": "FAKE0000PANTHER",
}
"""Properties of the default fake device (a Pixel 7)."""

_GETPROP_SHIM = r"""#!/bin/sh
# getprop for the fake device: properties are NAME=VALUE lines in $FAKE_ADBD_PROPS.
props="${FAKE_ADBD_PROPS:?}"
if [ $# -eq 0 ]; then
    while IFS= read -r line; do
        printf '[%s]: [%s]\n' "${line%%=*}" "${line#*=}"
    done < "$props"
    exit 0
fi
while IFS= read -r line; do
    case "$line" in
        "$1="*) printf '%s\n' "${line#*=}"; exit 0 ;;
    esac
done < "$props"
printf '%s\n' "${2-}"
"""

_TOYBOX_SHIM = r"""#!/bin/sh
# toybox for the fake device: run the named applet from the host.
if [ $# -eq 0 ]; then echo "toybox: fake device shim" >&2; exit 1; fi
exec "$@"
"""


class SandboxError(Exception):
    """A device path that is not inside the sandbox."""


@dataclass
class Message:
    command: int
    arg0: int
    arg1: int
    payload: bytes = b""

    @property
    def name(self) -> str:
        return struct.pack("<I", self.command).decode("ascii", "replace")


class _Closed(Exception):
    """The connection or stream went away."""


class _Inbox:
    """Bytes received on a stream, read by the service thread."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._cv = threading.Condition()
        self._eof = False

    def feed(self, data: bytes) -> None:
        with self._cv:
            self._buf += data
            self._cv.notify_all()

    def close(self) -> None:
        with self._cv:
            self._eof = True
            self._cv.notify_all()

    def read_exact(self, n: int) -> bytes:
        with self._cv:
            while len(self._buf) < n and not self._eof:
                self._cv.wait()
            if len(self._buf) < n:
                raise _Closed()
            data = bytes(self._buf[:n])
            del self._buf[:n]
            return data


class _Stream:
    """One adb stream on a connection: our end ``local_id``, the host's end ``remote_id``."""

    def __init__(self, conn: "_Connection", local_id: int, remote_id: int, service: str) -> None:
        self.conn = conn
        self.local_id = local_id
        self.remote_id = remote_id
        self.service = service
        self.inbox = _Inbox()
        self._ready = threading.Event()
        self._ready.set()  # OPEN implies READY: the first WRTE may go out at once
        self._send_lock = threading.Lock()
        self.closed = threading.Event()
        self.on_close_hooks: list = []

    # host → device
    def on_ready(self) -> None:
        self._ready.set()

    def on_write(self, data: bytes) -> None:
        self.inbox.feed(data)

    def on_remote_close(self) -> None:
        self._mark_closed()

    # device → host
    def write(self, data: bytes) -> None:
        """Send ``data`` in WRTE messages no larger than the host accepts, one OKAY at a time."""
        limit = self.conn.max_out
        for start in range(0, len(data), limit):
            chunk = data[start : start + limit]
            with self._send_lock:
                while not self._ready.wait(0.1):
                    if self.closed.is_set() or self.conn.dead.is_set():
                        raise _Closed()
                if self.closed.is_set():
                    raise _Closed()
                self._ready.clear()
                self.conn.send(A_WRTE, self.local_id, self.remote_id, chunk)

    def close(self) -> None:
        """Close from our side (the service finished)."""
        if self.closed.is_set():
            return
        # Let the last WRTE be acknowledged first, as adbd does, so nothing is lost.
        with self._send_lock:
            deadline = time.monotonic() + 5
            while not self._ready.wait(0.05):
                if self.closed.is_set() or self.conn.dead.is_set() or time.monotonic() > deadline:
                    break
        if self._mark_closed():
            try:
                self.conn.send(A_CLSE, self.local_id, self.remote_id)
            except _Closed:
                pass

    def _mark_closed(self) -> bool:
        with self.conn.lock:
            if self.closed.is_set():
                return False
            self.closed.set()
            self.conn.streams.pop(self.local_id, None)
        self.inbox.close()
        for hook in self.on_close_hooks:
            try:
                hook()
            except Exception:  # noqa: BLE001 - a hook must not break the reader
                pass
        return True


class _Connection:
    """One TCP connection from an adb server: the transport's two halves and its streams."""

    def __init__(self, server: "FakeAdbd", sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.lock = threading.RLock()
        self._send_lock = threading.Lock()
        self.streams: dict[int, _Stream] = {}
        self._ids = itertools.count(1)
        self.version = A_VERSION_MIN
        self.max_out = MAX_PAYLOAD_V1
        self.online = False
        self.host_banner = ""
        self.dead = threading.Event()
        self.thread = threading.Thread(target=self._run, name="fake-adbd-conn", daemon=True)

    # -- sending --------------------------------------------------------------------------------
    def send(self, command: int, arg0: int, arg1: int, payload: bytes = b"") -> None:
        srv = self.server
        while srv._hung.is_set():  # a hung device answers nothing
            if self.dead.wait(0.05):
                raise _Closed()
        with_checksum = command in (A_CNXN, A_AUTH) or self.version < A_VERSION_SKIP_CHECKSUM
        check = sum(payload) & 0xFFFFFFFF if with_checksum else 0
        header = HEADER.pack(command, arg0, arg1, len(payload), check, command ^ 0xFFFFFFFF)
        with self._send_lock:
            if self.dead.is_set():
                raise _Closed()
            try:
                self.sock.sendall(header + payload)
            except OSError as exc:
                self.dead.set()
                raise _Closed() from exc

    # -- receiving ------------------------------------------------------------------------------
    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except OSError as exc:
                raise _Closed() from exc
            if not chunk:
                raise _Closed()
            buf += chunk
        return bytes(buf)

    def _read_message(self) -> Message:
        command, arg0, arg1, length, check, magic = HEADER.unpack(self._recv_exact(HEADER.size))
        if magic != command ^ 0xFFFFFFFF:
            raise _Closed()  # protocol.txt: an invalid header closes the connection
        if length > max(self.server.max_payload, 1024 * 1024) * 4:
            raise _Closed()
        payload = self._recv_exact(length) if length else b""
        if (
            command != A_CNXN
            and self.version < A_VERSION_SKIP_CHECKSUM
            and check
            and sum(payload) & 0xFFFFFFFF != check
        ):
            raise _Closed()
        return Message(command, arg0, arg1, payload)

    def _run(self) -> None:
        try:
            while True:
                msg = self._read_message()
                if self.server._hung.is_set():
                    continue  # read and drop: the device no longer answers
                srv = self.server
                if msg.command == A_OPEN and srv.freeze_on_open and srv.freeze_on_open in msg.payload.decode(
                        "utf-8", "replace"):
                    srv._record(msg)
                    srv.hang()  # this OPEN is never answered, nor anything after it
                    continue
                self.server._record(msg)
                self._dispatch(msg)
        except _Closed:
            pass
        finally:
            self.close()

    def _dispatch(self, msg: Message) -> None:
        if msg.command == A_CNXN:
            self._on_connect(msg)
        elif msg.command == A_AUTH:
            self._on_auth(msg)
        elif not self.online:
            return  # protocol.txt: nothing but CNXN/AUTH counts before the handshake
        elif msg.command == A_OPEN:
            self._on_open(msg)
        elif msg.command == A_OKAY:
            stream = self.streams.get(msg.arg1)
            if stream is not None and stream.remote_id in (0, msg.arg0):
                stream.on_ready()
        elif msg.command == A_WRTE:
            stream = self.streams.get(msg.arg1)
            if stream is None:
                return
            stream.on_write(msg.payload)
            self.send(A_OKAY, stream.local_id, stream.remote_id)
        elif msg.command == A_CLSE:
            stream = self.streams.get(msg.arg1)
            if stream is not None:
                stream.on_remote_close()

    def _on_connect(self, msg: Message) -> None:
        self.version = min(msg.arg0, A_VERSION)
        self.max_out = max(MAX_PAYLOAD_V1, min(msg.arg1, self.server.max_payload))
        self.host_banner = msg.payload.rstrip(b"\0").decode("utf-8", "replace")
        srv = self.server
        if srv.handshake == "silent":
            return  # never answer: the host keeps the device "offline"
        if srv.auth == "unauthorized":
            self.send(A_AUTH, AUTH_TOKEN, 0, secrets.token_bytes(20))
            return
        self._go_online()

    def _on_auth(self, msg: Message) -> None:
        if self.server.auth != "unauthorized":
            return
        if msg.arg0 == AUTH_SIGNATURE:
            # No key is ever accepted: ask again, until the host offers its public key.
            self.send(A_AUTH, AUTH_TOKEN, 0, secrets.token_bytes(20))
        # AUTH_RSAPUBLICKEY: a phone would show the "Allow USB debugging?" prompt; nobody taps it.

    def _go_online(self) -> None:
        banner = self.server.banner().encode("utf-8")
        # Our maxdata is what we accept; we send no more than the host's (``max_out``) either.
        self.send(A_CNXN, self.version, self.max_out, banner)
        self.online = True

    def _on_open(self, msg: Message) -> None:
        service = msg.payload.split(b"\0", 1)[0].decode("utf-8", "replace")
        remote_id = msg.arg0
        if remote_id == 0:
            return
        if self.server.delay:
            time.sleep(self.server.delay)
        handler = self.server._service_for(service)
        if handler is None:
            self.send(A_CLSE, 0, remote_id)
            return
        with self.lock:
            local_id = next(self._ids)
            stream = _Stream(self, local_id, remote_id, service)
            self.streams[local_id] = stream
        self.send(A_OKAY, local_id, remote_id)
        threading.Thread(
            target=self._serve,
            args=(handler, stream),
            name=f"fake-adbd-{service[:20]}",
            daemon=True,
        ).start()

    def _serve(self, handler, stream: _Stream) -> None:
        try:
            handler(stream)
        except _Closed:
            pass
        finally:
            stream.close()

    def close(self, abort: bool = False) -> None:
        with self.lock:
            streams = list(self.streams.values())
            self.dead.set()
        try:
            if abort:
                # RST instead of FIN: the peer sees the connection torn down, as on a device crash.
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        for stream in streams:
            stream.on_remote_close()


class FakeAdbd:
    """A fake Android device that the real adb server reaches over TCP.

    Args:
        sandbox: host folder that stands for the device's ``/``; created if missing.
        props: device properties (``getprop``); defaults to :data:`DEFAULT_PROPS`. The CNXN banner
            carries ``ro.product.name``, ``ro.product.model`` and ``ro.product.device`` from it.
        features: the features announced in the banner (:data:`DEFAULT_FEATURES`).
        max_payload: the largest message payload the device accepts (and sends).
        delay: seconds to wait before answering each OPEN (a slow device; the connection's other
            streams wait too, as the reader sleeps).
        auth: ``"none"`` (accept every host, like a device whose key is already trusted) or
            ``"unauthorized"`` (ask for AUTH and never accept: ``adb devices`` shows unauthorized).
        handshake: ``"normal"``, or ``"silent"`` to never answer the host's CNXN (offline).
        host, port: where to listen; only loopback addresses are allowed.
    """

    def __init__(
        self,
        sandbox: str | os.PathLike[str],
        *,
        props: Mapping[str, str] | None = None,
        features: Iterable[str] = DEFAULT_FEATURES,
        max_payload: int = 256 * 1024,
        delay: float = 0.0,
        auth: str = "none",
        handshake: str = "normal",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if auth not in ("none", "unauthorized"):
            raise ValueError(f"auth must be 'none' or 'unauthorized', not {auth!r}")
        if handshake not in ("normal", "silent"):
            raise ValueError(f"handshake must be 'normal' or 'silent', not {handshake!r}")
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the fake device listens on loopback only")
        self.root = Path(sandbox).resolve()
        self.props: dict[str, str] = dict(DEFAULT_PROPS if props is None else props)
        self.features: tuple[str, ...] = tuple(features)
        self.max_payload = int(max_payload)
        self.delay = float(delay)
        self.auth = auth
        self.handshake = handshake
        self._host = host
        self._want_port = port
        self._listener: socket.socket | None = None
        self._connections: list[_Connection] = []
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._hung = threading.Event()
        self._stopped = threading.Event()
        self.killed = False
        self.messages: list[str] = []
        """Names of the messages received (``CNXN``, ``OPEN``, ...), oldest first."""
        self.services: list[str] = []
        """Every service the host opened, as sent (``shell,v2,raw:echo hi``, ``sync:``, ...)."""
        self.shell_commands: list[str] = []
        """Every shell command as the device received it (before path rewriting)."""
        self.env: dict[str, str] = {}
        """Extra environment for shell commands (e.g. ``TFLITE_DEPLOY_SYSFS`` for a fake /sys)."""
        self.freeze_on: str | None = None
        """Freeze mode: the first shell command containing this text starts, then the device :meth:`hang` s
        (a phone that freezes while a benchmark runs: its stream stays open, nothing more comes back)."""
        self.freeze_on_open: str | None = None
        """Freeze mode: the device :meth:`hang` s as an OPEN whose service contains this text arrives, and
        never answers it (a phone that freezes just as a command or a push would start)."""
        self.freeze_on_push: str | None = None
        """Freeze mode: the device :meth:`hang` s in the middle of a push whose path contains this text
        (after its first data arrived; the push never gets its OKAY)."""
        self.frozen_at: float | None = None
        """``time.monotonic()`` when the device last froze (:meth:`hang`), to measure how soon it is noticed."""
        self.drop_on: str | None = None
        """Drop mode: the first shell command containing this text starts, then at once the link
        drops (:meth:`drop`: a cable wiggle mid-benchmark); the adb server reconnects."""
        self.host_banners: list[str] = []
        """The CNXN banners the hosts sent (their features)."""
        self.host_versions: list[tuple[int, int]] = []
        """``(version, maxdata)`` from each host CNXN."""

    # -- life cycle --------------------------------------------------------------------------------
    def start(self) -> "FakeAdbd":
        self._prepare_sandbox()
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self._host, self._want_port))
        listener.listen(8)
        self._listener = listener
        self.port = listener.getsockname()[1]
        threading.Thread(
            target=self._accept_loop, args=(listener,), name="fake-adbd-accept", daemon=True
        ).start()
        return self

    def __enter__(self) -> "FakeAdbd":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def address(self) -> str:
        """``HOST:PORT``, what ``adb connect`` takes and what the adb server uses as serial."""
        host = "127.0.0.1" if self._host == "localhost" else self._host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    serial = address

    def stop(self) -> None:
        """Shut down: close the listener and every connection, end running commands."""
        self._stopped.set()
        self._close_everything(abort=False)

    def kill(self) -> None:
        """Die as a device does: every socket reset at once, no new connections, commands killed."""
        self.killed = True
        self._close_everything(abort=True)

    def drop(self) -> None:
        """A dropped link (a cable wiggle, a USB reset): every connection and running command ends
        abruptly, but the device keeps listening, so the adb server can connect to it again."""
        self._end_connections(abort=True)

    def hang(self) -> None:
        """Freeze: keep every socket open but answer nothing (new connections are accepted too)."""
        if not self._hung.is_set():
            self.frozen_at = time.monotonic()
        self._hung.set()

    def resume(self) -> None:
        """Answer again after :meth:`hang` (streams opened before may be out of step)."""
        self._hung.clear()

    def set_prop(self, name: str, value: str) -> None:
        self.props[name] = value
        self._write_props()

    # -- paths -------------------------------------------------------------------------------------
    def device_path(self, path: str) -> Path:
        """The host path of device path ``path``; :class:`SandboxError` if outside the sandbox."""
        if not path.startswith("/"):
            raise SandboxError(f"{path!r}: not an absolute device path")
        if ".." in path.split("/"):
            raise SandboxError(f"{path!r}: '..' is not allowed")
        host = self.root / posixpath.normpath(path).lstrip("/")
        try:
            host.resolve().relative_to(self.root)
        except ValueError:
            raise SandboxError(f"{path!r}: resolves outside the device sandbox") from None
        return host

    def _to_host_command(self, command: str) -> str:
        return command.replace(DEVICE_TMP, str(self.root) + DEVICE_TMP)

    def _to_device_text(self, data: bytes) -> bytes:
        return data.replace(str(self.root).encode() + DEVICE_TMP.encode(), DEVICE_TMP.encode())

    # -- internals ---------------------------------------------------------------------------------
    def banner(self) -> str:
        props = ";".join(
            f"{key}={self.props.get(key, '')}"
            for key in ("ro.product.name", "ro.product.model", "ro.product.device")
        )
        return f"device::{props};features={','.join(self.features)}"

    def _prepare_sandbox(self) -> None:
        (self.root / DEVICE_TMP.lstrip("/")).mkdir(parents=True, exist_ok=True)
        bin_dir = self.root / "system" / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        for name, text in (("getprop", _GETPROP_SHIM), ("toybox", _TOYBOX_SHIM)):
            shim = bin_dir / name
            shim.write_text(text)
            shim.chmod(0o755)
        (self.root / ".fake_adbd").mkdir(exist_ok=True)
        self._write_props()

    @property
    def _props_file(self) -> Path:
        return self.root / ".fake_adbd" / "props"

    def _write_props(self) -> None:
        lines = "".join(f"{k}={v}\n" for k, v in sorted(self.props.items()) if "\n" not in v)
        tmp = self._props_file.with_suffix(".tmp")
        tmp.write_text(lines)
        tmp.replace(self._props_file)

    def _shell_env(self) -> dict[str, str]:
        tmp = str(self.root) + DEVICE_TMP
        return {
            "PATH": f"{self.root}/system/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": tmp,
            "TMPDIR": tmp,
            "LANG": "C.UTF-8",
            "FAKE_ADBD_ROOT": str(self.root),
            "FAKE_ADBD_PROPS": str(self._props_file),
            "ANDROID_DATA": str(self.root) + "/data",
            **self.env,
        }

    def _record(self, msg: Message) -> None:
        self.messages.append(msg.name)
        if msg.command == A_CNXN:
            self.host_versions.append((msg.arg0, msg.arg1))
            self.host_banners.append(msg.payload.rstrip(b"\0").decode("utf-8", "replace"))
        elif msg.command == A_OPEN:
            self.services.append(msg.payload.split(b"\0", 1)[0].decode("utf-8", "replace"))

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            if self._stopped.is_set() or self.killed:
                sock.close()
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(self, sock)
            with self._lock:
                self._connections.append(conn)
            conn.thread.start()

    def _close_everything(self, abort: bool) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        self._end_connections(abort)

    def _end_connections(self, abort: bool) -> None:
        """Close every connection and kill every running command (the listener is left as it is)."""
        with self._lock:
            conns = list(self._connections)
            self._connections.clear()
            procs = list(self._procs)
        for proc in procs:
            _kill_group(proc)
        for conn in conns:
            conn.close(abort=abort)

    def _service_for(self, service: str):
        if service.startswith("shell"):
            name, sep, command = service.partition(":")
            if not sep or not (name == "shell" or name.startswith("shell,")):
                return None
            args = name.split(",")[1:]
            use_v2 = "v2" in args
            if use_v2 and "shell_v2" not in self.features:
                return None
            return lambda stream: self._serve_shell(stream, command, use_v2, merge_stderr=True)
        if service.startswith("exec:"):
            command = service[len("exec:") :]
            return lambda stream: self._serve_shell(stream, command, False, merge_stderr=False)
        if service == "sync:":
            return self._serve_sync
        return None

    # -- shell -------------------------------------------------------------------------------------
    def _spawn(self, command: str, merge_stderr: bool) -> subprocess.Popen:
        self.shell_commands.append(command)
        if self.freeze_on and self.freeze_on in command:
            self.hang()
        if self.drop_on and self.drop_on in command:
            self.drop_on = None
            threading.Timer(0.01, self.drop).start()  # once the command runs, before it can finish
        argv = ["/bin/sh", "-c", self._to_host_command(command)] if command else ["/bin/sh"]
        proc = subprocess.Popen(
            argv,
            cwd=self.root,
            env=self._shell_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            start_new_session=True,
        )
        with self._lock:
            self._procs.add(proc)
        return proc

    def _serve_shell(self, stream: _Stream, command: str, v2: bool, merge_stderr: bool) -> None:
        proc = self._spawn(command, merge_stderr=merge_stderr and not v2)
        stream.on_close_hooks.append(lambda: _kill_group(proc))
        stdin_q: queue.Queue[bytes | None] = queue.Queue()
        threading.Thread(target=_feed_stdin, args=(proc, stdin_q), daemon=True).start()
        if v2:
            threading.Thread(
                target=self._shell_v2_input, args=(stream, stdin_q), daemon=True
            ).start()
        else:
            threading.Thread(
                target=self._shell_raw_input, args=(stream, stdin_q), daemon=True
            ).start()

        def pump(fd, shell_id: int | None) -> None:
            room = stream.conn.max_out - (SHELL_HEADER.size if shell_id is not None else 0)
            try:
                while True:
                    data = os.read(fd.fileno(), max(room, 1))
                    if not data:
                        return
                    data = self._to_device_text(data)
                    if shell_id is not None:
                        data = SHELL_HEADER.pack(shell_id, len(data)) + data
                    stream.write(data)
            except (_Closed, OSError):
                _kill_group(proc)

        pumps = [
            threading.Thread(
                target=pump, args=(proc.stdout, SHELL_STDOUT if v2 else None), daemon=True
            )
        ]
        if v2:
            pumps.append(
                threading.Thread(target=pump, args=(proc.stderr, SHELL_STDERR), daemon=True)
            )
        elif proc.stderr is not None:  # exec: drops stderr
            pumps.append(threading.Thread(target=_drain, args=(proc.stderr,), daemon=True))
        for t in pumps:
            t.start()
        for t in pumps:
            t.join()
        code = proc.wait()
        with self._lock:
            self._procs.discard(proc)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        if code < 0:
            code = 128 - code  # killed by a signal: what a shell reports
        if v2 and not stream.closed.is_set():
            stream.write(SHELL_HEADER.pack(SHELL_EXIT, 1) + bytes([code & 0xFF]))

    @staticmethod
    def _shell_raw_input(stream: _Stream, stdin_q: "queue.Queue[bytes | None]") -> None:
        try:
            while True:
                stdin_q.put(stream.inbox.read_exact(1) + _read_available(stream.inbox))
        except _Closed:
            stdin_q.put(None)

    @staticmethod
    def _shell_v2_input(stream: _Stream, stdin_q: "queue.Queue[bytes | None]") -> None:
        try:
            while True:
                shell_id, length = SHELL_HEADER.unpack(stream.inbox.read_exact(SHELL_HEADER.size))
                data = stream.inbox.read_exact(length) if length else b""
                if shell_id == SHELL_STDIN:
                    stdin_q.put(data)
                elif shell_id == SHELL_CLOSE_STDIN:
                    stdin_q.put(None)
                # window-size changes and unknown ids are ignored
        except _Closed:
            stdin_q.put(None)

    # -- sync --------------------------------------------------------------------------------------
    def _serve_sync(self, stream: _Stream) -> None:
        inbox = stream.inbox
        while True:
            ident, length = SYNC_HEADER.unpack(inbox.read_exact(SYNC_HEADER.size))
            if ident == b"QUIT":
                return
            if length > 1024:
                self._sync_fail(stream, "path too long")
                return
            path = inbox.read_exact(length).decode("utf-8", "replace")
            if ident == b"STAT":
                self._sync_stat_v1(stream, path)
            elif ident in (b"STA2", b"LST2"):
                self._sync_stat_v2(stream, ident, path)
            elif ident in (b"LIST", b"LIS2"):
                self._sync_list(stream, path, v2=ident == b"LIS2")
            elif ident == b"SEND":
                if not self._sync_send(stream, path):
                    return
            elif ident == b"RECV":
                if not self._sync_recv(stream, path):
                    return
            else:
                self._sync_fail(stream, f"unknown command {ident!r}")
                return

    @staticmethod
    def _sync_fail(stream: _Stream, reason: str) -> None:
        data = reason.encode("utf-8")
        stream.write(SYNC_HEADER.pack(b"FAIL", len(data)) + data)

    def _lstat(self, path: str, follow: bool = False) -> os.stat_result | None:
        try:
            host = self.device_path(path)
            return host.stat() if follow else host.lstat()
        except (OSError, SandboxError):
            return None

    def _sync_stat_v1(self, stream: _Stream, path: str) -> None:
        st = self._lstat(path)
        if st is None:
            stream.write(STAT_V1.pack(b"STAT", 0, 0, 0))
        else:
            stream.write(
                STAT_V1.pack(
                    b"STAT",
                    st.st_mode & 0xFFFFFFFF,
                    st.st_size & 0xFFFFFFFF,
                    int(st.st_mtime) & 0xFFFFFFFF,
                )
            )

    def _sync_stat_v2(self, stream: _Stream, ident: bytes, path: str) -> None:
        try:
            host = self.device_path(path)
            st = host.stat() if ident == b"STA2" else host.lstat()
        except SandboxError:
            stream.write(STAT_V2.pack(ident, errno.EACCES, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
            return
        except OSError as exc:
            stream.write(STAT_V2.pack(ident, exc.errno or errno.EIO, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
            return
        stream.write(
            STAT_V2.pack(
                ident,
                0,
                st.st_dev,
                st.st_ino,
                st.st_mode,
                st.st_nlink,
                st.st_uid,
                st.st_gid,
                st.st_size,
                int(st.st_atime),
                int(st.st_mtime),
                int(st.st_ctime),
            )
        )

    def _sync_list(self, stream: _Stream, path: str, v2: bool) -> None:
        try:
            host = self.device_path(path)
            names = [".", ".."] + sorted(os.listdir(host))
        except (OSError, SandboxError):
            names = []
            host = None
        out = bytearray()
        for name in names:
            try:
                st = os.lstat(os.path.join(host, name))
            except OSError:
                continue
            raw = name.encode("utf-8", "surrogateescape")
            if v2:
                out += (
                    DENT_V2.pack(
                        b"DNT2",
                        0,
                        st.st_dev,
                        st.st_ino,
                        st.st_mode,
                        st.st_nlink,
                        st.st_uid,
                        st.st_gid,
                        st.st_size,
                        int(st.st_atime),
                        int(st.st_mtime),
                        int(st.st_ctime),
                        len(raw),
                    )
                    + raw
                )
            else:
                out += (
                    DENT_V1.pack(
                        b"DENT",
                        st.st_mode & 0xFFFFFFFF,
                        st.st_size & 0xFFFFFFFF,
                        int(st.st_mtime) & 0xFFFFFFFF,
                        len(raw),
                    )
                    + raw
                )
        # The DONE that ends a listing is a whole (zeroed) entry, as adbd writes it.
        done = DENT_V2.pack(b"DONE", *([0] * 12)) if v2 else DENT_V1.pack(b"DONE", 0, 0, 0, 0)
        stream.write(bytes(out) + done)

    def _sync_send(self, stream: _Stream, spec: str) -> bool:
        inbox = stream.inbox
        path, comma, mode_text = spec.rpartition(",")
        error = None
        host: Path | None = None
        mode = 0o644
        if not comma:
            error = "missing , in ID_SEND"
        else:
            try:
                mode = int(mode_text)
            except ValueError:
                error = "bad mode"
        if error is None and stat.S_ISLNK(mode):
            error = "symlinks are not supported by the fake device"
        if error is None:
            try:
                host = self.device_path(path)
            except SandboxError as exc:
                error = f"couldn't create file: Permission denied ({exc})"
        out = None
        if error is None and host is not None:
            try:
                host.parent.mkdir(parents=True, exist_ok=True)
                out = open(host, "wb")  # noqa: SIM115 - closed below
            except OSError as exc:
                error = f"couldn't create file: {exc.strerror}"
        if error is not None:
            self._sync_fail(stream, error)
        try:
            while True:
                ident, length = SYNC_HEADER.unpack(inbox.read_exact(SYNC_HEADER.size))
                if ident == b"DATA":
                    if length > SYNC_DATA_MAX:
                        if error is None:
                            self._sync_fail(stream, "oversize data message")
                        return False
                    data = inbox.read_exact(length)
                    if out is not None:
                        out.write(data)
                    if self.freeze_on_push and self.freeze_on_push in path:
                        self.hang()  # mid-push: what is still coming is dropped, nothing is answered
                elif ident == b"DONE":
                    if error is not None:
                        return False
                    out.close()
                    # adbd keeps the permission bits, copying the user's to group and other.
                    perms = mode & 0o777
                    perms |= (perms >> 3) & 0o070
                    perms |= (perms >> 3) & 0o007
                    os.chmod(host, perms)
                    os.utime(host, (length, length))
                    stream.write(SYNC_HEADER.pack(b"OKAY", 0))
                    return True
                else:
                    if error is None:
                        self._sync_fail(stream, "invalid data message")
                    return False
        finally:
            if out is not None and not out.closed:
                out.close()
                if host is not None:
                    host.unlink(missing_ok=True)

    def _sync_recv(self, stream: _Stream, path: str) -> bool:
        try:
            host = self.device_path(path)
            src = open(host, "rb")  # noqa: SIM115
        except SandboxError as exc:
            self._sync_fail(stream, f"open failed: Permission denied ({exc})")
            return False
        except OSError as exc:
            self._sync_fail(stream, f"open failed: {exc.strerror}")
            return False
        with src:
            while True:
                chunk = src.read(SYNC_DATA_MAX)
                if not chunk:
                    break
                stream.write(SYNC_HEADER.pack(b"DATA", len(chunk)) + chunk)
        stream.write(SYNC_HEADER.pack(b"DONE", 0))
        return True


def _read_available(inbox: _Inbox) -> bytes:
    with inbox._cv:
        data = bytes(inbox._buf)
        inbox._buf.clear()
        return data


def _feed_stdin(proc: subprocess.Popen, stdin_q: "queue.Queue[bytes | None]") -> None:
    try:
        while True:
            data = stdin_q.get()
            if data is None:
                break
            proc.stdin.write(data)
            proc.stdin.flush()
    except (OSError, ValueError):
        pass
    finally:
        try:
            proc.stdin.close()
        except (OSError, ValueError):
            pass


def _drain(pipe) -> None:
    try:
        while pipe.read(65536):
            pass
    except (OSError, ValueError):
        pass


def _kill_group(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
