"""Keep native libraries' chatter (TensorFlow, LiteRT) off the user's terminal."""

from __future__ import annotations

import os
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
