"""Time units scaled to the numbers shown: a 0.8 µs model reads "0.84 µs", not "0.000837 ms"."""

from __future__ import annotations

from typing import Iterable, Optional

UNITS = ((1e-3, "µs"), (1.0, "ms"), (1e3, "s"))  # (milliseconds per unit, label)


def time_unit(values_ms: Iterable[Optional[float]]) -> tuple[float, str]:
    """(milliseconds per unit, label) for a set of values: the unit their median reads best in (1-999)."""
    vals = sorted(v for v in values_ms if v is not None and v > 0)
    if not vals:
        return 1.0, "ms"
    mid = vals[len(vals) // 2]
    return UNITS[0] if mid < 1.0 else UNITS[2] if mid >= 1000.0 else UNITS[1]


def fmt_time(ms: Optional[float], digits: int = 3) -> str:
    """One duration in its own best unit: 0.000837 -> "0.837 µs", 1830 -> "1.83 s"."""
    if ms is None:
        return "-"
    per, label = time_unit([ms])
    return f"{ms / per:.{digits}g} {label}"
