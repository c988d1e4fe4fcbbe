"""Line prefixes and numbers shared by both tools' parsers: what is stripped before a line is read.

A capture mixes several loggers: ``adb logcat`` (threadtime, Android Studio, brief), TFLite's own
``INFO: text``, LiteRT's ``LITERT_LOG`` (``INFO: [file.h:94] text``; on Android also logcat with the
tag ``litert``) and absl (``I0000 00:00:1758455104.504065   62590 file.cc:51] text``).
:func:`split_prefix` peels them off and returns the level letter and the message.

Every pattern here is written so a run of characters can be split only one way: no quadratic
backtracking on a garbled capture (tests/test_parse.py times pathological lines).
"""

from __future__ import annotations

import math
import re
from typing import Optional

# A number as C++ iostreams / printf print int64 and double: "119375", "34825.1", "1.78988e+06", "nan".
NUM = r"(?:[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|-?nan|-?inf)"

# `adb logcat` (threadtime, the default): "05-31 10:38:42.607 22206 22206 E tflite  : text"
_LOGCAT_THREADTIME = re.compile(
    r"^\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+\s+\d+\s+\d+\s+(?P<level>[VDIWEF])\s+(?P<tag>[^:\s]+)\s*:\s?(?P<msg>.*)$"
)
# Android Studio's logcat copy: "2019-06-02 13:59:36.044 6836-6836/com.example I/tflite: text"
_LOGCAT_STUDIO = re.compile(
    r"^\d{4}-\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+\s+\d+-\d+/\S*\s+(?P<level>[VDIWEF])/(?P<tag>[^:\s]+)\s*:\s?(?P<msg>.*)$"
)
# `adb logcat -v brief`: "I/tflite  ( 1234): text"
_LOGCAT_BRIEF = re.compile(r"^(?P<level>[VDIWEF])/(?P<tag>[^(:\s]+)\s*(?:\(\s*\d+\)\s*)?:\s?(?P<msg>.*)$")
# the tags the tools log under: TFLite's "tflite", LiteRT's "litert", absl's "native" on Android
_TOOL_TAGS = ("tflite", "litert", "native")
# TFLite's own logger and LiteRT's minimal logger: "INFO: text", "WARNING: text"
_TFLITE_LEVEL = re.compile(r"^(?P<level>INFO|WARNING|WARN|ERROR|VERBOSE|DEBUG|FATAL):\s?(?P<msg>.*)$")
# LiteRT's LITERT_LOG adds the source file and line: "[./litert/tools/benchmark_litert_model.h:73] "
LITERT_SOURCE = re.compile(r"^\[(?P<file>[^\[\]\s:]+):(?P<line>\d+)\] ?")
# absl logging (LiteRT's C++ runtime): "I0000 00:00:1758455104.504065   62590 accelerator_registry.cc:51] text"
# (seconds since the epoch when absl was not initialised, so \d+ seconds, not two digits)
_ABSL = re.compile(r"^(?P<level>[IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ (?P<file>[^\s:\]]+):\d+\] ?(?P<msg>.*)$")


def split_prefix(line: str) -> Optional[tuple[Optional[str], str, bool]]:
    """(level letter or None, message, whether a LiteRT-only prefix was seen); None for a foreign line.

    A foreign line is another logcat tag's (the app's UI, the GPU driver): not the tool's.
    """
    line = line.rstrip()
    level = None
    litert = False
    for pattern in (_LOGCAT_THREADTIME, _LOGCAT_STUDIO, _LOGCAT_BRIEF):
        m = pattern.match(line)
        if m:
            if not m["tag"].startswith(_TOOL_TAGS):
                return None
            litert = m["tag"].startswith("litert")
            level, line = m["level"], m["msg"]
            break
    m = _TFLITE_LEVEL.match(line.lstrip())
    if m:
        level = level if level in ("E", "F") else m["level"][0]
        line = m["msg"]
    m = _ABSL.match(line.lstrip())
    if m:
        level = level if level in ("E", "F") else m["level"]
        line, litert = m["msg"], True
    m = LITERT_SOURCE.match(line)
    if m:
        line, litert = line[m.end():], True
    return level, line, litert


def num(text: str) -> Optional[float]:
    """A printed number; NaN and infinities (an empty Stat's avg) become None."""
    try:
        x = float(text)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def us_to_ms(text: str) -> Optional[float]:
    return ms(num(text))


def ms(us: Optional[float]) -> Optional[float]:
    # the tool prints at most 6 significant digits: rounding drops float noise, not information
    return round(us / 1000.0, 9) if us is not None else None


def names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def delegate_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())
