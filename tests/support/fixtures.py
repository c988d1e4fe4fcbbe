"""pytest fixtures: a private adb server (per test, per adb binary) and fake devices attached to it.

Register them in a conftest with ``pytest_plugins = ["tests.support.fixtures"]`` or import the
fixtures by name into a test module.

* ``adb_binary`` is parametrized over the adb binaries present: Debian's ``/usr/bin/adb``
  (platform-tools 29.0.6, ``apt-get install adb``) and the one adbutils ships (36.0.0). A missing
  binary skips its half with the reason.
* ``adb_server`` starts ``adb -P PORT server nodaemon`` on a free port, with its own ``HOME`` (its
  ``~/.android/adbkey``) and ``TMPDIR`` (its log), USB and mDNS off, so a user's adb server, keys
  and phones are never touched, and nothing is sent beyond 127.0.0.1. The test's environment
  points ``ANDROID_ADB_SERVER_HOST``/``_PORT`` and ``ADBUTILS_ADB_PATH`` at it. At teardown the
  server is told to quit and its process is killed if it has not.
* ``fake_devices`` is a factory: ``fake_devices(**FakeAdbd options)`` starts a :class:`FakeAdbd`
  in a fresh sandbox under ``tmp_path``; every one is stopped at teardown.
* ``adb_device`` is the common case: one default fake device (a Pixel 7 with ``shell_v2``),
  connected to ``adb_server`` with ``adb connect`` and seen in the ``device`` state.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tflite_deploy.adb import AdbServer

from .fake_adbd import FakeAdbd

FAKE_TOOL = Path(__file__).parent / "fake_benchmark_model.py"

__all__ = [
    "ADB_BINARIES",
    "AdbBinary",
    "AdbServerProcess",
    "ConnectedDevice",
    "adb_binary",
    "adb_device",
    "adb_server",
    "fake_devices",
    "find_adb_binaries",
    "free_port",
    "refused_port",
]


def _bundled_adb() -> str | None:
    try:
        import adbutils
    except ImportError:
        return None
    path = Path(adbutils.__file__).parent / "binaries" / "adb"
    return str(path) if path.is_file() else None


ADB_BINARIES: dict[str, Callable[[], str | None]] = {
    "adb29": lambda: "/usr/bin/adb" if os.access("/usr/bin/adb", os.X_OK) else None,
    "adb36": _bundled_adb,
}
"""The adb binaries the tests run against, by name (Debian's package, adbutils' bundled one)."""

_INSTALL_HINT = {
    "adb29": "Debian's adb is not installed: apt-get install -y adb",
    "adb36": "adbutils' bundled adb is missing: pip install adbutils==2.12.*",
}


@dataclass(frozen=True)
class AdbBinary:
    name: str
    path: str
    version: str  # e.g. "29.0.6-debian", "36.0.0-13206524"

    @property
    def major(self) -> int:
        m = re.match(r"(\d+)", self.version)
        return int(m.group(1)) if m else 0


def find_adb_binaries() -> dict[str, AdbBinary]:
    """The adb binaries present here, with their versions."""
    found = {}
    for name, locate in ADB_BINARIES.items():
        path = locate()
        if path:
            found[name] = AdbBinary(name, path, _adb_version(path))
    return found


def _adb_version(path: str) -> str:
    try:
        out = subprocess.run(
            [path, "version"], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    m = re.search(r"^Version (\S+)", out, re.M)
    return m.group(1) if m else "unknown"


def free_port() -> int:
    """A port free a moment ago, for a server that binds it itself (retry if it was taken since)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A port where connections are refused, held for the block: bound (not listening) by us, so no
    other process can start listening on it meanwhile."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


@dataclass
class AdbServerProcess:
    """A private adb server for one test; :meth:`run` runs the adb CLI against it."""

    binary: AdbBinary
    port: int
    env: dict[str, str]
    workdir: Path
    proc: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def server(self) -> AdbServer:
        return AdbServer("127.0.0.1", self.port)

    def start(self, timeout: float = 15.0) -> "AdbServerProcess":
        self.log = self.workdir / "server.out"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [self.binary.path, "-P", str(self.port), "server", "nodaemon"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"adb server exited: {self.log.read_text(errors='replace')}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"adb server did not listen on port {self.port} within {timeout} s")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                subprocess.run(
                    [self.binary.path, "-P", str(self.port), "kill-server"],
                    env=self.env,
                    capture_output=True,
                    timeout=5,
                    stdin=subprocess.DEVNULL,
                )
            except (OSError, subprocess.SubprocessError):
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None

    def run(self, *args: str, timeout: float = 20.0) -> subprocess.CompletedProcess:
        """Run ``adb -P PORT ARGS`` (text output, never raises on a non-zero exit)."""
        return subprocess.run(
            [self.binary.path, "-P", str(self.port), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def states(self) -> dict[str, str]:
        """``{serial: state}`` from ``adb devices``."""
        out = self.run("devices").stdout
        states = {}
        for line in out.splitlines()[1:]:
            parts = line.split(None, 1)
            if len(parts) == 2:
                states[parts[0]] = parts[1].strip()
        return states

    def wait_for_state(
        self, serial: str, states: tuple[str, ...] = ("device",), timeout: float = 10.0
    ) -> str:
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            seen = self.states().get(serial)
            if seen in states:
                return seen
            time.sleep(0.05)
        raise AssertionError(f"{serial} did not reach {states} within {timeout} s (last: {seen})")

    def connect(
        self, fake: FakeAdbd, states: tuple[str, ...] = ("device",), timeout: float = 10.0
    ) -> str:
        """``adb connect`` the fake device and wait for one of ``states``; returns the serial.

        ``adb connect`` exits 0 even when it fails, so the device list is what is checked.
        """
        result = self.run("connect", fake.address, timeout=timeout)
        assert fake.address in result.stdout + result.stderr, result
        return_state = self.wait_for_state(fake.address, states, timeout)
        assert return_state in states
        return fake.address


@dataclass
class ConnectedDevice:
    """A fake device attached to a private adb server."""

    fake: FakeAdbd
    serial: str
    adb: AdbServerProcess
    sandbox: Path = field(init=False)

    def __post_init__(self) -> None:
        self.sandbox = self.fake.root

    @property
    def server(self) -> AdbServer:
        return self.adb.server


@pytest.fixture(params=sorted(ADB_BINARIES))
def adb_binary(request) -> AdbBinary:
    """Each adb binary in turn (``adb29``: Debian's, ``adb36``: adbutils'); skipped if absent."""
    found = find_adb_binaries()
    if request.param not in found:
        if os.environ.get("CI"):  # CI installs both (tools/setup.sh --tests): a missing one is a failure there
            pytest.fail(_INSTALL_HINT[request.param])
        pytest.skip(_INSTALL_HINT[request.param])
    return found[request.param]


@pytest.fixture
def adb_server(
    adb_binary: AdbBinary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AdbServerProcess]:
    """A private adb server of ``adb_binary`` on a free port, killed at teardown."""
    work = tmp_path / f"adb-{adb_binary.name}"
    home, tmp = work / "home", work / "tmp"
    home.mkdir(parents=True)
    tmp.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ANDROID_", "ADB_")) and key not in ("ADBUTILS_ADB_PATH",)
    }
    env.update(
        {
            "HOME": str(home),
            "TMPDIR": str(tmp),
            "ANDROID_USER_HOME": str(home / ".android"),
            "ADB_MDNS": "0",  # no multicast discovery (adb 36)
            "ADB_USB": "0",  # no USB scan: never touch a real phone; adb 36 starts 3 s faster
            "ADB_LIBUSB": "0",
        }
    )
    # the adb server binds its port itself, so a port free a moment ago may be taken when it
    # starts: then it exits, and we try another port
    for attempt in range(3):
        port = free_port()
        server = AdbServerProcess(adb_binary, port, {**env, "ANDROID_ADB_SERVER_PORT": str(port)}, work)
        try:
            server.start()
            break
        except RuntimeError:
            server.stop()
            if attempt == 2:
                raise
    for key in ("ANDROID_SERIAL", "ANDROID_ADB_SERVER_ADDRESS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("ANDROID_ADB_SERVER_HOST", "127.0.0.1")
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(port))
    monkeypatch.setenv("ADBUTILS_ADB_PATH", adb_binary.path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_devices(tmp_path: Path) -> Iterator[Callable[..., FakeAdbd]]:
    """Factory: ``fake_devices(**options)`` starts a :class:`FakeAdbd`; all stop at teardown."""
    started: list[FakeAdbd] = []

    def make(**options) -> FakeAdbd:
        fake = FakeAdbd(tmp_path / f"device-{len(started)}", **options).start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()


@pytest.fixture
def adb_device(
    adb_server: AdbServerProcess, fake_devices: Callable[..., FakeAdbd]
) -> ConnectedDevice:
    """One default fake device, connected to ``adb_server`` and in the ``device`` state."""
    fake = fake_devices()
    serial = adb_server.connect(fake)
    return ConnectedDevice(fake, serial, adb_server)


@pytest.fixture
def benchmark_binary(tmp_path: Path) -> Path:
    """The stand-in ``benchmark_model`` (tests/support/fake_benchmark_model.py) as an executable: it
    prints benchmark_model's lines for a real run of the model with LiteRT."""
    exe = tmp_path / "benchmark_model"
    exe.write_text(f"#!{sys.executable}\n" + FAKE_TOOL.read_text())
    exe.chmod(0o755)
    return exe


@dataclass
class FileServer:
    """Files under ``root`` served over HTTP on 127.0.0.1 at ``url``; ``hits`` lists the paths asked for."""

    root: Path
    url: str
    hits: list


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[FileServer]:
    """A local HTTP server standing in for a download site (no internet in tests)."""
    import http.server
    import threading

    root = tmp_path / "www"
    root.mkdir()
    hits: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *a):
            hits.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield FileServer(root, f"http://127.0.0.1:{server.server_port}", hits)
    finally:
        server.shutdown()
