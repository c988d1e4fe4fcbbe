"""Is the phone still answering, whatever is being asked of it?

A phone whose adb transport stays open but answers nothing makes any adb call wait for its whole
time-out (a push, a ``stat``, the OPEN of a benchmark's shell, a running benchmark), and
``get-state`` still says ``device`` (see shared/ENVIRONMENT.md). So, for as long as a phone is in
use, :class:`LivenessProbe` asks it a trivial question (``echo``) on a second adb connection every
few seconds, each with its own short time-out. After ``misses`` unanswered probes in a row it sets
:attr:`LivenessProbe.frozen`; every call of a device from
:meth:`~tflite_deploy.adb.device.AdbDevice.stopped_by` that event then ends within half a second
and closes its connection. :meth:`LivenessProbe.fault_of` tells a call's own time-out (the phone
answers: the command was slow) from a frozen phone.

The defaults find a frozen phone 15 to 20 s after it froze. ``TFLITE_DEPLOY_LIVENESS`` =
``INTERVAL,TIMEOUT,MISSES`` (seconds, seconds, count) tunes them for a lab (or a test).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Mapping, Optional

from tflite_deploy.adb.device import AdbDevice
from tflite_deploy.errors import DeviceError, UserError

PROBE_INTERVAL_S = 5.0  # between the starts of two probes
PROBE_TIMEOUT_S = 5.0   # an `echo` on a busy phone answers in well under a second
PROBE_MISSES = 3        # in a row: one slow answer is not a frozen phone
ENV = "TFLITE_DEPLOY_LIVENESS"


def probe_settings(environ: Optional[Mapping[str, str]] = None) -> tuple[float, float, int]:
    """(interval, timeout, misses): the defaults, or ``TFLITE_DEPLOY_LIVENESS=INTERVAL,TIMEOUT,MISSES``."""
    text = (os.environ if environ is None else environ).get(ENV, "").strip()
    if not text:
        return PROBE_INTERVAL_S, PROBE_TIMEOUT_S, PROBE_MISSES
    parts = text.split(",")
    try:
        interval, timeout, misses = float(parts[0]), float(parts[1]), int(parts[2])
        if len(parts) != 3 or interval <= 0 or timeout <= 0 or misses < 1:
            raise ValueError
    except (ValueError, IndexError):
        raise UserError(f"{ENV}={text!r}: give INTERVAL,TIMEOUT,MISSES (seconds, seconds, a count >= 1), "
                        f"e.g. {PROBE_INTERVAL_S:g},{PROBE_TIMEOUT_S:g},{PROBE_MISSES}.") from None
    return interval, timeout, misses


class LivenessProbe:
    """``with LivenessProbe(dev) as probe: dev.stopped_by(probe.frozen).shell(...)``."""

    def __init__(self, dev: AdbDevice, interval: Optional[float] = None, timeout: Optional[float] = None,
                 misses: Optional[int] = None) -> None:
        d_interval, d_timeout, d_misses = probe_settings()
        self.dev = dev
        self.interval = d_interval if interval is None else interval
        self.timeout = d_timeout if timeout is None else timeout
        self.misses = d_misses if misses is None else misses
        self.frozen = threading.Event()
        self.frozen_at: Optional[float] = None  # time.monotonic() when it was declared frozen
        self.last_error: Optional[str] = None
        self._answered_at = 0.0  # start (monotonic) of the latest probe that was answered
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"liveness-{dev.serial}", daemon=True)

    def __enter__(self) -> "LivenessProbe":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(self.timeout + 1)

    @property
    def max_delay(self) -> float:
        """The longest a frozen phone can go unnoticed."""
        return self.interval + self.misses * self.timeout

    def fault_of(self, error: DeviceError) -> str:
        """The fault a failed call counts as: ``frozen`` if the probe found the phone frozen, also when the
        call's own time-out came first (then this waits for the probe's verdict); else the call's own."""
        if error.reason != "timeout" or self.frozen.is_set():
            return "frozen" if self.frozen.is_set() else (error.reason or "failed")
        asked = time.monotonic()
        with self._changed:  # frozen, or an answer to a probe sent after the call gave up
            self._changed.wait_for(lambda: self.frozen.is_set() or self._answered_at >= asked
                                   or not self._thread.is_alive(), timeout=self.max_delay + self.timeout)
        return "frozen" if self.frozen.is_set() else "timeout"

    def describe(self) -> str:
        return (f"Android device {self.dev.serial} stopped answering: {self.misses} liveness probes in a row "
                f"(`echo` on a second adb connection, {self.timeout:g} s each) went unanswered "
                f"({self.last_error or 'no answer'}). The phone is frozen or hung; "
                "unplug it or reboot it (`adb reboot`).")

    def _watch(self) -> None:
        missed, wait = 0, self.interval
        try:
            while not self._stop.wait(wait):
                started = time.monotonic()
                try:
                    ok = self.dev.shell(["echo", "alive"], timeout=self.timeout).stdout.strip() == "alive"
                    self.last_error = None if ok else "an unexpected answer"
                except DeviceError as e:
                    ok, self.last_error = False, f"the last probe: {e.reason or 'failed'}"
                missed = 0 if ok else missed + 1
                with self._changed:
                    if ok:
                        self._answered_at = started
                    elif missed >= self.misses:
                        self.frozen_at = time.monotonic()
                        self.frozen.set()
                    self._changed.notify_all()
                if self.frozen.is_set():
                    return
                # probes start one interval apart: after a miss that took its whole time-out, at once
                wait = max(0.0, self.interval - (time.monotonic() - started))
        finally:
            with self._changed:
                self._changed.notify_all()
