"""The one record every measuring command writes: a :class:`Result`.

Host and device benchmarks, and evaluations, all produce ``Result`` objects with the same JSON
shape, so a results store can take them as they are. Times are milliseconds, memory megabytes.
A field that a runner cannot measure is ``None``, never a made-up zero.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

SCHEMA = "tflite-deploy/result/1"


@dataclass(frozen=True)
class LatencyStats:
    """Summary of a series of timings in milliseconds.

    ``samples_ms`` holds every sample when the runner gives them (host); a device's benchmark_model
    only prints a summary, so there it is empty and percentiles it does not print are ``None``.
    ``std_ms`` is the sample standard deviation (ddof=1) for host runs; benchmark_model prints a
    population one, rounded down to whole microseconds, and parsed results keep that.
    """

    count: int
    mean_ms: Optional[float] = None
    std_ms: Optional[float] = None
    min_ms: Optional[float] = None
    max_ms: Optional[float] = None
    p50_ms: Optional[float] = None
    p90_ms: Optional[float] = None
    p99_ms: Optional[float] = None
    first_ms: Optional[float] = None
    samples_ms: tuple[float, ...] = ()

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float]) -> "LatencyStats":
        import numpy as np

        if len(samples_ms) == 0:
            return cls(count=0)
        a = np.asarray(samples_ms, dtype=np.float64)
        return cls(
            count=int(a.size),
            mean_ms=float(a.mean()),
            std_ms=float(a.std(ddof=1)) if a.size > 1 else 0.0,
            min_ms=float(a.min()),
            max_ms=float(a.max()),
            p50_ms=float(np.percentile(a, 50)),
            p90_ms=float(np.percentile(a, 90)),
            p99_ms=float(np.percentile(a, 99)),
            first_ms=float(a[0]),
            samples_ms=tuple(float(x) for x in a),
        )

    @property
    def cv(self) -> Optional[float]:
        """Coefficient of variation (σ / mean), the noise indicator."""
        if self.mean_ms and self.std_ms is not None and self.mean_ms > 0:
            return self.std_ms / self.mean_ms
        return None


@dataclass(frozen=True)
class DelegateCoverage:
    """How much of the graph a delegate took, as the runner reported it."""

    requested: str
    applied: Optional[bool] = None  # None: the runner did not say
    fully: Optional[bool] = None
    delegate_kernels: Optional[int] = None
    message: str = ""


@dataclass(frozen=True)
class Result:
    """One measurement: artifact × target × delegate × settings → numbers."""

    kind: str  # "bench" or "eval"
    artifact: str  # path or name of the .tflite measured
    target: str = "host"  # "host", "adb:SERIAL", "adb://HOST:PORT/SERIAL"
    runner: str = "litert-python"  # "litert-python", "benchmark_model", "benchmark_apk", "log"
    delegate: str = "xnnpack"
    status: str = "ok"  # "ok", "failed", "unavailable"
    error: Optional[str] = None
    # a device run that failed for the phone's sake, not the model's: the adb fault ("closed",
    # "offline", "frozen", ... see tflite_deploy.adb.faults), so a farm can retry or mark the phone lost
    fault: Optional[str] = None
    settings: dict[str, Any] = field(default_factory=dict)
    artifact_sha256: Optional[str] = None
    recipe: Optional[str] = None
    init_ms: Optional[float] = None
    first_ms: Optional[float] = None
    warmup: Optional[LatencyStats] = None
    latency: Optional[LatencyStats] = None
    init_memory_mb: Optional[float] = None
    peak_memory_mb: Optional[float] = None
    coverage: Optional[DelegateCoverage] = None
    device: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    raw_log: str = ""
    created_at: str = field(
        default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    )
    tool_version: str = field(default_factory=lambda: _tool_version())
    schema: str = SCHEMA

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return _clean(self)

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_dict(), **kw)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Result":
        d = dict(d)
        if d.get("schema", SCHEMA) != SCHEMA:
            raise ValueError(f"unknown result schema {d.get('schema')!r}, expected {SCHEMA!r}")
        for key, typ in (("warmup", LatencyStats), ("latency", LatencyStats)):
            if d.get(key) is not None:
                v = dict(d[key])
                v["samples_ms"] = tuple(v.get("samples_ms", ()))
                d[key] = typ(**v)
        if d.get("coverage") is not None:
            d["coverage"] = DelegateCoverage(**d["coverage"])
        d["warnings"] = tuple(d.get("warnings", ()))
        return cls(**d)


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _clean(obj: Any) -> Any:
    """A dataclass as a JSON-safe dict (like ``dataclasses.asdict``): NaN/inf become None, tuples lists.

    Walks the fields itself instead of ``asdict`` + a second pass: the results store serialises
    every Result, and ``asdict`` deep-copies each raw sample one call at a time.
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, int)):
        return obj
    names = _FIELD_NAMES.get(type(obj))
    if names is None and dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        names = _FIELD_NAMES[type(obj)] = tuple(f.name for f in dataclasses.fields(obj))
    if names is not None:
        return {k: _clean(getattr(obj, k)) for k in names}
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [v if type(v) is float and math.isfinite(v) else _clean(v) for v in obj]
    return obj


def _tool_version() -> str:
    from tflite_deploy import __version__

    return __version__


def dump_results(results: Sequence[Result]) -> str:
    """The JSON document a measuring command prints with ``--json``."""
    return json.dumps({"schema": SCHEMA, "results": [r.to_dict() for r in results]}, indent=2)
