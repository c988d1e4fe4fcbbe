"""tflite_deploy.adb against real adb servers (Debian's adb 29, adbutils' adb 36) and fake devices.

Each test gets its own adb server (own port, HOME and TMPDIR) from ``tests/support/fixtures.py``
and fake devices from ``tests/support/fake_adbd.py`` that the server reaches with ``adb connect``.
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import sys
import threading
import time
from pathlib import Path

import pytest

from tflite_deploy.adb import (
    DEVICE_ROOT,
    AdbDevice,
    AdbServer,
    DeviceInfo,
    check_remote_path,
    connect,
    list_devices,
    parse_getprop,
    parse_target,
    remote_path,
)
from tflite_deploy.errors import DeviceError, UserError

from tests.support.fake_adbd import DEFAULT_FEATURES, FakeAdbd
from tests.support.fixtures import refused_port

NO_SHELL_V2 = tuple(f for f in DEFAULT_FEATURES if f != "shell_v2")


def sandbox_file(device, remote: str) -> Path:
    return device.fake.device_path(remote)


def kill_once_running(fake, settle: float = 0.3) -> threading.Thread:
    """Kill the fake device ``settle`` s after its first shell command started."""

    def run() -> None:
        deadline = time.monotonic() + 10
        while not fake.shell_commands and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(settle)
        fake.kill()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


# --- pure parts: no adb needed --------------------------------------------------------------------


def test_parse_target_forms(monkeypatch):
    monkeypatch.setenv("ANDROID_ADB_SERVER_HOST", "10.0.0.2")
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", "5038")
    t = parse_target("adb:R58M12ABCDE")
    assert (t.serial, t.server) == ("R58M12ABCDE", AdbServer("10.0.0.2", 5038))
    t = parse_target("adb:192.168.1.7:5555")
    assert t.serial == "192.168.1.7:5555"
    t = parse_target("adb://lab-host:5039/emulator-5554")
    assert (t.serial, t.server) == ("emulator-5554", AdbServer("lab-host", 5039))
    t = parse_target("adb://lab-host:5037/127.0.0.1:5555")
    assert (t.serial, t.server) == ("127.0.0.1:5555", AdbServer("lab-host", 5037))
    with pytest.raises(UserError, match=r"names no port .* adb://lab-host:5037/127.0.0.1:5555 for adb's default"):
        parse_target("adb://lab-host/127.0.0.1:5555")  # never a silent 5037
    assert parse_target("adb").serial is None
    assert parse_target(str(parse_target("adb://h:1/x:2"))) == parse_target("adb://h:1/x:2")
    assert parse_target("adb:").serial is None  # like "adb": the only device
    for bad in ("host", "adb: x", "adb://", "adb://h:99999/x", "usb:123"):
        with pytest.raises(UserError):
            parse_target(bad)
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", "nope")
    with pytest.raises(UserError, match="ANDROID_ADB_SERVER_PORT"):
        AdbServer.from_env()


def test_remote_paths_stay_under_the_root():
    assert remote_path("models", "m.tflite") == f"{DEVICE_ROOT}/models/m.tflite"
    assert check_remote_path(DEVICE_ROOT + "/a//b/") == DEVICE_ROOT + "/a/b"
    for bad in (
        "/data/local/tmp/other",
        "relative/x",
        DEVICE_ROOT + "/../x",
        "/data/local/tmp/tflite-deploy-evil/x",
        "/sdcard/x",
        DEVICE_ROOT + "/a\nb",
    ):
        with pytest.raises(UserError):
            check_remote_path(bad)


def test_push_refuses_paths_outside_the_root_without_asking_the_device(tmp_path):
    f = tmp_path / "m.tflite"
    f.write_bytes(b"x")
    with refused_port() as port:
        dev = AdbDevice("nowhere:1", AdbServer("127.0.0.1", port), start_server=False)
        with pytest.raises(UserError, match="outside"):
            dev.push(f, "/data/local/tmp/m.tflite")
    with pytest.raises(UserError):
        dev.pull("/etc/passwd", tmp_path / "x")
    with pytest.raises(TypeError):
        dev.shell("echo hi")  # type: ignore[arg-type]


def test_parse_getprop_and_facts():
    props = parse_getprop(
        "[ro.product.model]: [Pixel 7]\n[ro.build.version.sdk]: [34]\n"
        "[ro.product.cpu.abilist]: [arm64-v8a,armeabi-v7a]\n"
        "[ro.kernel.qemu]: [1]\n[multi]: [a\nb]\n"
    )
    assert props["multi"] == "a\nb"
    info = DeviceInfo.from_properties("x", "device", props)
    assert (info.model, info.sdk, info.abis, info.is_emulator) == (
        "Pixel 7",
        34,
        ("arm64-v8a", "armeabi-v7a"),
        True,
    )
    assert DeviceInfo.from_properties("emulator-5554", "device", {}).is_emulator


def test_no_adb_server_is_a_device_error():
    with refused_port() as port, pytest.raises(DeviceError, match="No adb server answers") as err:
        list_devices(AdbServer("127.0.0.1", port), start_server=False, timeout=2)
    assert err.value.reason == "server"


def test_device_error_fields_survive_pickling():
    """serial and reason are real fields: a worker process can send the error back whole."""
    import pickle

    err = pickle.loads(pickle.dumps(DeviceError("gone", serial="R58M", reason="offline")))
    assert (str(err), err.serial, err.reason, err.exit_code) == ("gone", "R58M", "offline", 3)
    assert (DeviceError("plain").serial, DeviceError("plain").reason) == (None, None)


# --- against real adb servers ---------------------------------------------------------------------


def test_connect_and_list_devices_with_facts(adb_server, adb_device, fake_devices):
    emu = fake_devices(
        props={
            "ro.product.model": "sdk_gphone64_x86_64",
            "ro.product.manufacturer": "Google",
            "ro.product.cpu.abilist": "x86_64,arm64-v8a",
            "ro.build.version.release": "15",
            "ro.build.version.sdk": "35",
            "ro.kernel.qemu": "1",
            "ro.product.name": "sdk_gphone64",
            "ro.product.device": "emu64xa",
        }
    )
    emu_serial = connect(emu.address, timeout=10)  # the module's own `adb connect`
    assert emu_serial == emu.address
    devices = {d.serial: d for d in list_devices(timeout=10)}
    assert set(devices) == {adb_device.serial, emu_serial}
    phone = devices[adb_device.serial]
    assert phone.state == "device" and phone.usable and phone.hint is None
    assert (phone.model, phone.manufacturer, phone.product, phone.device) == (
        "Pixel 7",
        "Google",
        "panther",
        "panther",
    )
    assert (phone.board, phone.soc, phone.soc_manufacturer) == ("gs201", "GS201", "Google")
    assert phone.abis == ("arm64-v8a", "armeabi-v7a", "armeabi")
    assert (phone.android_release, phone.sdk, phone.is_emulator) == ("14", 34, False)
    assert phone.transport_id is not None
    emulator = devices[emu_serial]
    assert emulator.is_emulator and emulator.abis[0] == "x86_64" and emulator.sdk == 35
    assert emulator.board is None and emulator.soc is None

    dev = AdbDevice.open(f"adb:{adb_device.serial}")
    assert dev.info() == DeviceInfo.from_properties(dev.serial, "device", dev.properties())
    assert dev.getprop("ro.product.model") == "Pixel 7"
    assert dev.getprop("ro.does.not.exist") == ""
    assert dev.state() == "device"
    remote = AdbDevice.open(f"adb://127.0.0.1:{adb_server.port}/{adb_device.serial}")
    assert remote.server == adb_server.server
    with pytest.raises(DeviceError, match="More than one"):
        AdbDevice.open("adb")
    with refused_port() as port, pytest.raises(DeviceError) as err:
        connect(f"127.0.0.1:{port}", timeout=10)  # nothing listens there
    assert err.value.reason == "not-found"


def test_shell_v2_keeps_exit_code_and_stderr_apart(adb_device):
    dev = AdbDevice(adb_device.serial, timeout=10)
    assert dev.supports_shell_v2()
    r = dev.shell(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (r.exit_code, r.stdout, r.stderr, r.protocol) == (3, "out\n", "err\n", "shell_v2")
    assert not r.ok
    with pytest.raises(DeviceError, match=r"exit code 3: err") as err:
        r.check()
    assert err.value.serial == adb_device.serial
    assert adb_device.fake.services[-1].startswith("shell,v2,raw:")
    big = dev.shell(["head", "-c", "700000", "/dev/zero"])  # several WRTEs, flow control
    assert big.exit_code == 0 and len(big.stdout) == 700000


def test_shell_falls_back_to_exit_marker_without_shell_v2(adb_server, fake_devices):
    fake = fake_devices(features=NO_SHELL_V2)
    serial = adb_server.connect(fake)
    dev = AdbDevice(serial, timeout=10)
    assert not dev.supports_shell_v2()
    r = dev.shell(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (r.exit_code, r.protocol, r.stderr) == (3, "marker", "")
    assert r.stderr_merged and r.stdout == "out\nerr\n"
    assert dev.shell(["printf", "no newline"]).stdout == "no newline"
    assert dev.shell(["true"]).exit_code == 0
    assert fake.services[-1].startswith("shell:") and "EXIT:" in fake.services[-1]
    q = dev.shell(["printf", "[%s]", "a b;rm -rf x"])
    assert q.stdout == "[a b;rm -rf x]"


def test_every_argument_is_quoted(adb_device):
    root = adb_device.fake.device_path(DEVICE_ROOT)
    root.mkdir(parents=True)
    canary = root / "x"
    canary.write_text("still here")
    (adb_device.sandbox / "x").write_text("still here")
    dev = AdbDevice(adb_device.serial, timeout=10)
    nasty = [
        "a b;rm -rf x",
        "$(touch pwned)",
        "`touch pwned2`",
        "*",
        "it's",
        '"q"',
        "",
        "-n",
        "a\nb",
        "|| rm -rf x",
    ]
    r = dev.shell(["printf", "[%s]\n", *nasty], cwd=DEVICE_ROOT, env={"X": "y z; rm -rf x"})
    assert r.exit_code == 0
    assert r.stdout == "".join(f"[{a}]\n" for a in nasty)
    assert canary.read_text() == "still here"
    assert (adb_device.sandbox / "x").exists()
    assert not list(root.glob("pwned*")) and not list(adb_device.sandbox.glob("pwned*"))
    env = dev.shell(["sh", "-c", 'printf "%s" "$X"'], env={"X": "y z; rm -rf x"})
    assert env.stdout == "y z; rm -rf x"
    with pytest.raises(UserError):
        dev.shell(["true"], env={"BAD NAME": "1"})
    with pytest.raises(UserError):
        dev.shell(["true"], cwd="/")


def test_push_pull_round_trip_and_push_only_if_changed(adb_device, tmp_path):
    dev = AdbDevice(adb_device.serial, timeout=20)
    local = tmp_path / "model.bin"
    payload = os.urandom(3 * 1024 * 1024 + 17)
    local.write_bytes(payload)
    remote = remote_path("models", "model.bin")
    assert dev.push(local, remote) is True  # the folder does not exist yet: mkdir -p first
    assert sandbox_file(adb_device, remote).read_bytes() == payload
    assert dev.sha256(remote) == hashlib.sha256(payload).hexdigest()
    assert dev.remote_size(remote) == len(payload)
    assert dev.remote_size(remote_path("nope")) is None

    syncs = adb_device.fake.services.count("sync:")
    assert dev.push(local, remote) is False  # identical: skipped
    assert adb_device.fake.services.count("sync:") == syncs

    changed = bytearray(payload)
    changed[1000] ^= 0xFF  # same size, other content
    local.write_bytes(changed)
    assert dev.push(local, remote) is True
    back = tmp_path / "back.bin"
    assert dev.pull(remote, back) == len(changed)
    assert back.read_bytes() == bytes(changed)

    with pytest.raises(DeviceError, match="could not send") as err:
        dev.pull(remote_path("missing.bin"), tmp_path / "missing.bin")
    assert err.value.serial == adb_device.serial
    assert not (tmp_path / "missing.bin").exists()
    assert not list(tmp_path.glob(".missing.bin.*"))


def test_pushed_executable_runs(adb_device, tmp_path):
    dev = AdbDevice(adb_device.serial, timeout=10)
    script = tmp_path / "runner.sh"
    script.write_text('#!/bin/sh\necho "ran with $# args: $1"\n')
    script.chmod(0o755)
    remote = remote_path("bin", "runner.sh")
    assert dev.push(script, remote)
    r = dev.shell([remote, "a b"])
    assert (r.exit_code, r.stdout) == (0, "ran with 1 args: a b\n")
    data = tmp_path / "data.txt"
    data.write_text("x")
    data.chmod(0o644)
    dev.push(data, remote_path("bin", "data.txt"))
    assert dev.shell([remote_path("bin", "data.txt")]).exit_code == 126  # not executable


def test_push_if_changed_falls_back_to_toybox_then_to_size(adb_device, tmp_path):
    bin_dir = adb_device.sandbox / "system" / "bin"
    missing = '#!/bin/sh\necho "$0: not found" >&2\nexit 127\n'
    (bin_dir / "sha256sum").write_text(missing)
    (bin_dir / "sha256sum").chmod(0o755)
    (bin_dir / "toybox").write_text(
        '#!/bin/sh\n[ "$1" = sha256sum ] || exit 127\nshift\nexec /usr/bin/sha256sum "$@"\n'
    )
    local = tmp_path / "m.bin"
    local.write_bytes(b"a" * 5000)
    remote = remote_path("m.bin")
    dev = AdbDevice(adb_device.serial, timeout=10)
    assert dev.push(local, remote)
    local.write_bytes(b"b" * 5000)  # same size, new content: toybox sha256sum tells
    assert dev.push(local, remote)
    assert dev.sha256(remote) == hashlib.sha256(b"b" * 5000).hexdigest()
    assert dev._hash_tool == ("toybox", "sha256sum")

    (bin_dir / "toybox").write_text(missing)  # no hash tool at all: the size decides
    local.write_bytes(b"c" * 5000)
    fresh = AdbDevice(adb_device.serial, timeout=10)
    assert fresh.sha256(remote) is None
    assert fresh.push(local, remote) is False
    local.write_bytes(b"c" * 5001)
    assert fresh.push(local, remote) is True
    assert sandbox_file(adb_device, remote).read_bytes() == b"c" * 5001


@pytest.mark.parametrize("features", [DEFAULT_FEATURES, NO_SHELL_V2], ids=["shell_v2", "marker"])
def test_device_killed_mid_shell_is_a_device_error(adb_server, fake_devices, features):
    fake = fake_devices(features=features)
    serial = adb_server.connect(fake)
    dev = AdbDevice(serial, timeout=15)
    dev.features()
    kill_once_running(fake)
    started = time.monotonic()
    with pytest.raises(DeviceError) as err:
        dev.shell(
            ["sh", "-c", "echo Initialized session; sleep 20; echo 'Inference timings in us'"]
        )
    assert time.monotonic() - started < 10
    assert serial in str(err.value)
    assert err.value.reason == "closed"
    assert "cut off" in str(err.value) and "Initialized session" in str(err.value)
    # Now gone: the server reports it offline, which is a DeviceError too, at once.
    with pytest.raises(DeviceError) as again:
        AdbDevice(serial, timeout=5).shell(["true"])
    assert again.value.reason in ("offline", "closed", "not-found")
    assert serial in str(again.value)


def test_hung_device_times_out(adb_device, tmp_path):
    dev = AdbDevice(adb_device.serial, timeout=10)
    dev.features()
    adb_device.fake.hang()
    started = time.monotonic()
    with pytest.raises(DeviceError, match="did not answer in time") as err:
        dev.shell(["echo", "hi"], timeout=1.5)
    assert 1.0 < time.monotonic() - started < 5
    assert err.value.reason == "timeout" and adb_device.serial in str(err.value)
    local = tmp_path / "f.bin"
    local.write_bytes(b"x" * 1000)
    started = time.monotonic()
    with pytest.raises(DeviceError, match="did not answer in time"):
        dev.push(local, remote_path("f.bin"), timeout=1.5, force=True)
    assert time.monotonic() - started < 5


def test_unauthorized_and_offline_devices_are_listed_with_hints(adb_server, fake_devices):
    locked = fake_devices(auth="unauthorized")
    locked_serial = adb_server.connect(locked, states=("unauthorized",))
    gone = fake_devices()
    gone_serial = adb_server.connect(gone)
    gone.kill()
    adb_server.wait_for_state(gone_serial, ("offline",))

    devices = {d.serial: d for d in list_devices(timeout=10)}
    assert devices[locked_serial].state == "unauthorized"
    assert not devices[locked_serial].usable
    assert "Allow USB debugging" in devices[locked_serial].hint
    assert devices[gone_serial].state == "offline"
    assert "replug" in devices[gone_serial].hint

    with pytest.raises(DeviceError, match="unauthorized") as err:
        AdbDevice(locked_serial, timeout=5).shell(["true"])
    assert err.value.reason == "unauthorized" and locked_serial in str(err.value)
    with pytest.raises(DeviceError, match="offline") as err:
        AdbDevice.open(f"adb:{gone_serial}", timeout=5)
    assert err.value.reason == "offline" and gone_serial in str(err.value)
    with pytest.raises(DeviceError, match="not found") as err:
        AdbDevice("127.0.0.1:1", timeout=5).shell(["true"])
    assert err.value.reason == "not-found" and "127.0.0.1:1" in str(err.value)


def test_cli_exit_status_of_a_cut_off_shell(adb_server, fake_devices):
    """Why the module reads the shell protocol itself: the CLI's exit status for a device that
    dies mid-command differs by version (29: 0 with the output cut off; 36: 255)."""
    fake = fake_devices()
    serial = adb_server.connect(fake)
    kill_once_running(fake)
    r = adb_server.run("-s", serial, "shell", "echo start; sleep 20; echo end", timeout=15)
    assert r.stdout == "start\n"
    assert r.returncode == (0 if adb_server.binary.major < 30 else 255)
    r = adb_server.run("-s", serial, "shell", "true")
    assert r.returncode == 1 and "device offline" in r.stderr


# --- the fake device's own wire format, with a hand-made host (no adb binary) ---------------------

_HEADER = struct.Struct("<6I")


def _cmd(name: str) -> int:
    return struct.unpack("<I", name.encode())[0]


def _send(sock, name: str, arg0: int, arg1: int, payload: bytes = b"", check=None) -> None:
    command = _cmd(name)
    check = sum(payload) & 0xFFFFFFFF if check is None else check
    sock.sendall(
        _HEADER.pack(command, arg0, arg1, len(payload), check, command ^ 0xFFFFFFFF) + payload
    )


def _recv(sock):
    def exact(n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    header = exact(24)
    if header is None:
        return None
    command, arg0, arg1, length, check, magic = _HEADER.unpack(header)
    assert magic == command ^ 0xFFFFFFFF
    payload = exact(length) if length else b""
    return struct.pack("<I", command).decode(), arg0, arg1, payload, check


def test_fake_adbd_speaks_the_old_protocol_version_with_checksums(tmp_path):
    """A host offering version 0x01000000 and 4 KiB payloads gets checksummed packets no larger
    than that, stdin through the shell protocol, and a dropped connection for a bad checksum."""
    with (
        FakeAdbd(tmp_path / "dev", delay=0.2) as fake,
        socket.create_connection(("127.0.0.1", fake.port), timeout=10) as sock,
    ):
        _send(sock, "CNXN", 0x01000000, 4096, b"host::features=shell_v2\0")
        name, version, maxdata, banner, check = _recv(sock)
        assert (name, version, maxdata) == ("CNXN", 0x01000000, 4096)
        assert check == sum(banner) and banner.startswith(b"device::ro.product.name=panther;")
        assert b"features=shell_v2," in banner

        started = time.monotonic()
        _send(sock, "OPEN", 7, 0, b"shell,v2,raw:cat; echo done >&2; exit 5\0")
        name, local_id, remote_id, _, _ = _recv(sock)
        assert (name, remote_id) == ("OKAY", 7) and time.monotonic() - started >= 0.2
        text = b"x" * 6000  # the answer must come back in WRTEs of at most 4096 bytes
        stdin = struct.pack("<BI", 0, len(text)) + text + struct.pack("<BI", 4, 0)
        for start in range(0, len(stdin), 4096):
            _send(sock, "WRTE", 7, local_id, stdin[start : start + 4096])
            assert _recv(sock)[0] == "OKAY"
        stream = b""
        while True:
            name, arg0, arg1, payload, check = _recv(sock)
            assert (arg0, arg1) == (local_id, 7)
            if name == "CLSE":
                break
            assert name == "WRTE" and len(payload) <= 4096 and check == sum(payload)
            stream += payload
            _send(sock, "OKAY", 7, local_id)
        packets = []
        while stream:
            ident, length = struct.unpack_from("<BI", stream)
            packets.append((ident, stream[5 : 5 + length]))
            stream = stream[5 + length :]
        assert b"".join(d for i, d in packets if i == 1) == text
        assert b"".join(d for i, d in packets if i == 2) == b"done\n"
        assert packets[-1] == (3, bytes([5]))

        _send(sock, "OPEN", 8, 0, b"exec:echo hi; echo hidden >&2\0")
        name, local_id, _, _, _ = _recv(sock)
        assert name == "OKAY"
        name, _, _, payload, _ = _recv(sock)
        assert (name, payload) == ("WRTE", b"hi\n")
        _send(sock, "OKAY", 8, local_id)
        assert _recv(sock)[0] == "CLSE"

        _send(sock, "OPEN", 9, 0, b"reboot:\0")
        assert _recv(sock)[:3] == ("CLSE", 0, 9)  # unknown service: refused

        _send(sock, "OPEN", 10, 0, b"shell:true\0", check=12345)  # corrupt: connection closed
        assert _recv(sock) is None
        assert fake.host_versions == [(0x01000000, 4096)]


def test_fake_adbd_silent_handshake_never_answers(tmp_path):
    with (
        FakeAdbd(tmp_path / "dev", handshake="silent") as fake,
        socket.create_connection(("127.0.0.1", fake.port), timeout=0.5) as sock,
    ):
        _send(sock, "CNXN", 0x01000001, 1 << 20, b"host::\0")
        with pytest.raises(socket.timeout):
            sock.recv(24)
        assert fake.messages == ["CNXN"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
