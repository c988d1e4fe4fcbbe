"""Is the phone still answering while a long command runs on it?

A phone whose adb transport stays open but answers nothing makes a running ``adb shell`` wait for
its whole time-out, and ``get-state`` still says ``device`` (see shared/ENVIRONMENT.md). So, while
a benchmark runs, :class:`LivenessProbe` asks the phone a trivial question (``echo``) on a second
adb connection every few seconds, each with its own short time-out. After ``misses`` unanswered
probes in a row it sets :attr:`LivenessProbe.frozen`; a device from
:meth:`~tflite_deploy.adb.device.AdbDevice.stopped_by` that event ends its running call at once.
"""

from __future__ import annotations

import threading
import time
from typing import Optional

from tflite_deploy.adb.device import AdbDevice
from tflite_deploy.errors import DeviceError

PROBE_INTERVAL_S = 5.0  # between the starts of two probes
PROBE_TIMEOUT_S = 5.0   # an `echo` on a busy phone answers in well under a second
PROBE_MISSES = 3        # in a row: one slow answer is not a frozen phone


class LivenessProbe:
    """``with LivenessProbe(dev) as probe: dev.stopped_by(probe.frozen).shell(...)``."""

    def __init__(self, dev: AdbDevice, interval: float = PROBE_INTERVAL_S, timeout: float = PROBE_TIMEOUT_S,
                 misses: int = PROBE_MISSES) -> None:
        self.dev, self.interval, self.timeout, self.misses = dev, interval, timeout, misses
        self.frozen = threading.Event()
        self.last_error: Optional[str] = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"liveness-{dev.serial}", daemon=True)

    def __enter__(self) -> "LivenessProbe":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(self.timeout + 1)

    def describe(self) -> str:
        return (f"Android device {self.dev.serial} stopped answering: {self.misses} liveness probes in a row "
                f"(`echo` on a second adb connection, {self.timeout:g} s each) went unanswered while the "
                f"benchmark ran ({self.last_error or 'no answer'}). The phone is frozen or hung; "
                "unplug it or reboot it (`adb reboot`).")

    def _watch(self) -> None:
        missed, wait = 0, self.interval
        while not self._stop.wait(wait):
            started = time.monotonic()
            try:
                ok = self.dev.shell(["echo", "alive"], timeout=self.timeout).stdout.strip() == "alive"
                self.last_error = None if ok else "an unexpected answer"
            except DeviceError as e:
                ok, self.last_error = False, f"the last probe: {e.reason or 'failed'}"
            missed = 0 if ok else missed + 1
            if missed >= self.misses:
                self.frozen.set()
                return
            # probes start one interval apart: after a miss that took its whole time-out, at once
            wait = max(0.0, self.interval - (time.monotonic() - started))
