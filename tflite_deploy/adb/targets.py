"""Which adb server and which device a target string names.

``adb`` (the only device), ``adb:SERIAL`` (a device on the local adb server, or the one
``ANDROID_ADB_SERVER_HOST``/``_PORT`` point at) and ``adb://HOST:PORT/SERIAL`` (a device on a
remote adb server; the port is required, never silently 5037). Serials may hold colons (``adb:192.168.1.7:5555``).
"""

from __future__ import annotations

import ipaddress
import os
import urllib.parse
from dataclasses import dataclass
from typing import Mapping, Optional

from tflite_deploy.errors import UserError

DEFAULT_PORT = 5037


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
    """Parse ``adb``, ``adb:SERIAL`` or ``adb://HOST:PORT/[SERIAL]``.

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
            port = parts.port
        except ValueError:
            raise UserError(usage) from None
        if port is None:  # no silent 5037: a lab's remote server often listens elsewhere
            host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
            raise UserError(f"Target {text!r} names no port for the adb server at {host}: write "
                            f"adb://{host}:{DEFAULT_PORT}{parts.path or '/'} for adb's default port "
                            f"({DEFAULT_PORT}), or the port that server listens on (adb -P PORT).")
        serial = urllib.parse.unquote(parts.path.lstrip("/")) or None
        return DeviceTarget(serial, AdbServer(parts.hostname, port))
    if raw.startswith("adb:"):
        serial = raw[len("adb:") :]
        if not serial or any(ch.isspace() for ch in serial):
            raise UserError(usage)
        return DeviceTarget(serial, AdbServer.from_env(environ))
    raise UserError(usage)
