"""Before any cell runs: is every phone of the plan there and answering?

A phone that is not attached, offline, unauthorized or frozen would otherwise be found only when its
first bench cell starts, after every conversion and evaluation ran. :func:`unreachable_targets` asks
each adb server for its devices once, then each listed phone for an ``echo`` (all phones at once,
each with a short time-out), and says why for every target that cannot serve.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any, Callable, Optional, Sequence

from tflite_deploy.adb import AdbDevice, AdbServer
from tflite_deploy.adb.faults import explain, state_error
from tflite_deploy.errors import DeviceError
from tflite_deploy.farm.plan import TargetSpec

ECHO_TIMEOUT_S = 10.0  # a phone that does not echo within this is not going to run a benchmark


def unreachable_targets(targets: Sequence[TargetSpec],
                        list_devices: Optional[Callable[..., Sequence[Any]]] = None) -> dict[str, str]:
    """``{target name: why}`` for each device target that is missing, not in the ``device`` state, or
    does not answer; host targets are always there."""
    if list_devices is None:
        from tflite_deploy.adb import list_devices
    phones = [t for t in targets if t.kind == "device" and t.serial]
    out: dict[str, str] = {}
    listed: dict[Optional[AdbServer], Any] = {}
    for t in phones:
        server = t.server or AdbServer.from_env()
        if server not in listed:
            try:
                listed[server] = {d.serial: d for d in list_devices(server, timeout=10.0, facts=False)}
            except DeviceError as e:
                listed[server] = e
        seen = listed[server]
        if isinstance(seen, DeviceError):
            out[t.name] = str(seen)
        elif t.serial not in seen:
            out[t.name] = str(explain(t.serial, server, "not-found", "checking the plan's targets before the run"))
        elif not seen[t.serial].usable:
            out[t.name] = str(state_error(t.serial, server, seen[t.serial].state,
                                          "checking the plan's targets before the run"))
    ask = [t for t in phones if t.name not in out]
    if ask:
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(ask)) as pool:
            for t, why in zip(ask, pool.map(_no_answer, ask)):
                if why:
                    out[t.name] = why
    return out


def _no_answer(t: TargetSpec) -> Optional[str]:
    try:
        dev = AdbDevice(t.serial or "", t.server or AdbServer.from_env(), timeout=ECHO_TIMEOUT_S)
        if dev.shell(["echo", "ok"], timeout=ECHO_TIMEOUT_S).stdout.strip() == "ok":
            return None
        return f"Android device {t.serial} gave a wrong answer to `echo ok` before the run."
    except DeviceError as e:
        if e.reason == "timeout":
            return (f"Android device {t.serial} is listed but did not answer `echo ok` within "
                    f"{ECHO_TIMEOUT_S:g} s before the run: it is frozen or hung; unplug it or reboot it.")
        return str(e)
