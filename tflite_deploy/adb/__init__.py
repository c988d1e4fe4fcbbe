"""Android devices over adb: a small device object with a time-out on every call.

Built on `adbutils <https://github.com/openatx/adbutils>`_ (it finds the adb server, lists devices
and opens connections); the shell and sync exchanges are hand-written in
:mod:`~tflite_deploy.adb.transport` so one deadline covers a whole call. One module per role:

* :mod:`~tflite_deploy.adb.targets`: ``adb``, ``adb:SERIAL``, ``adb://HOST:PORT/SERIAL``;
* :mod:`~tflite_deploy.adb.paths`: files live under :data:`DEVICE_ROOT` and nowhere else;
* :mod:`~tflite_deploy.adb.faults`: adb and socket failures as ``DeviceError`` with a hint;
* :mod:`~tflite_deploy.adb.facts`: what a device is, from its properties;
* :mod:`~tflite_deploy.adb.transport`: shell v2 / exit-marker and sync push/pull exchanges;
* :mod:`~tflite_deploy.adb.device`: :class:`AdbDevice`, :func:`list_devices`, :func:`connect`;
* :mod:`~tflite_deploy.adb.liveness`: :class:`LivenessProbe`, a frozen phone found whatever call it froze in.

Rules kept (observed with adb 29.0.6 and 36.0.0, see ``shared/ENVIRONMENT.md``):

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
  ``closed``, ``timeout``, ``server``, ``more-than-one``, ``state``, ``failed``).
* Files on the device live under :data:`DEVICE_ROOT`; push, pull and working directories elsewhere
  are refused.

TensorFlow is never imported here.
"""

from tflite_deploy.adb.device import (
    DEFAULT_TIMEOUT,
    PUSH_MIN_RATE,
    AdbDevice,
    connect,
    list_devices,
)
from tflite_deploy.adb.facts import DeviceInfo, parse_getprop
from tflite_deploy.adb.faults import DEVICE_GONE_FAULTS, STATE_HINTS, TRANSIENT_FAULTS
from tflite_deploy.adb.liveness import LivenessProbe
from tflite_deploy.adb.paths import DEVICE_ROOT, check_remote_path, remote_path
from tflite_deploy.adb.targets import DEFAULT_PORT, AdbServer, DeviceTarget, parse_target
from tflite_deploy.adb.transport import ShellResult

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_TIMEOUT",
    "DEVICE_GONE_FAULTS",
    "DEVICE_ROOT",
    "PUSH_MIN_RATE",
    "STATE_HINTS",
    "TRANSIENT_FAULTS",
    "AdbDevice",
    "AdbServer",
    "DeviceInfo",
    "DeviceTarget",
    "LivenessProbe",
    "ShellResult",
    "check_remote_path",
    "connect",
    "list_devices",
    "parse_getprop",
    "parse_target",
    "remote_path",
]
