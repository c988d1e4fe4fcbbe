"""Keep native libraries' chatter (TensorFlow, LiteRT) off the user's terminal."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def captured_native_stderr() -> Iterator[list[str]]:
    """Capture what TensorFlow's C++ code writes straight to file descriptor 2.

    The converter prints MLIR diagnostics and calibration chatter there; a successful run should
    print none of it, and a failed one should be able to quote it. The captured text is appended to
    the yielded list when the block ends.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        captured: list[str] = []
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            captured.append(tmp.read().decode("utf-8", errors="replace"))


_exit_patterns: list[str] = []


def drop_at_exit(pattern: str) -> None:
    """Drop lines matching ``pattern`` (grep -E) that native code writes to fd 2 as the process ends.

    LiteRT's tensor-buffer code keeps an environment in a static object, created on the first buffer
    write and destroyed by the C++ runtime after Python has finished, printing ``DestroyAccelerator``
    INFO lines: no Python code runs then to capture them. So at exit (atexit, before those
    destructors) fd 2 is handed to a ``grep -v`` that passes every other line on to the real stderr.
    """
    if not _exit_patterns:
        atexit.register(_filter_stderr_from_now_on)
    if pattern not in _exit_patterns:
        _exit_patterns.append(pattern)


def _filter_stderr_from_now_on() -> None:
    grep = shutil.which("grep")
    if grep is None:
        return
    try:
        sys.stderr.flush()
        args = [grep, "-v", "--line-buffered", *(a for p in _exit_patterns for a in ("-e", p)), "-E"]
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=2, stderr=subprocess.DEVNULL)
        os.dup2(proc.stdin.fileno(), 2)  # the filter ends when this process closes its last copy at exit
        proc.stdin.close()
    except (OSError, ValueError):
        pass
