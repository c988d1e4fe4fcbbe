"""The plan's ``bench:`` key: every bench setting a nightly needs, so a cron line is just ``farm run PLAN``.

Each key is a :class:`tflite_deploy.api.BenchOptions` field under the name its ``bench`` flag has (in
snake case); values are checked with the plan file's line like every other key. ``--benchmark-binary``
on the command line still wins over ``benchmark_binary`` here.

``accuracy: {samples: N, min_agreement: 0.99, min_sqnr_db: 30}`` asks every device bench cell for its
accuracy on the phone too (``eval --device`` for that phone x delegate, on the model's dataset): it is no
BenchOptions field, and the farm's executor takes it out (:data:`ACCURACY`).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import yaml

from tflite_deploy.vocabulary import DEVICE_RUNTIMES

#: plan key -> (BenchOptions field, reader). Readers take (walker, node, where) and return a value or None.
BENCH_KEYS: dict[str, tuple[str, Callable[[Any, yaml.Node, str], Any]]] = {}


def _key(name: str, field: Optional[str] = None) -> Callable:
    def register(reader: Callable[[Any, yaml.Node, str], Any]) -> Callable:
        BENCH_KEYS[name] = (field or name, reader)
        return reader
    return register


def _choice(*choices: str) -> Callable[[Any, yaml.Node, str], Optional[str]]:
    def read(w: Any, node: yaml.Node, where: str) -> Optional[str]:
        v = w.string(node, where)
        if v is not None and v not in choices:
            w.bad(node, where, f"{v!r} is not one of {', '.join(choices)}")
            return None
        return v
    return read


def _flag(w: Any, node: yaml.Node, where: str) -> Optional[bool]:
    v = w.value(node) if isinstance(node, yaml.ScalarNode) else None
    if not isinstance(v, bool):
        w.bad(node, where, "must be true or false")
        return None
    return v


def _file(w: Any, node: yaml.Node, where: str) -> Optional[str]:
    p = w.path(node, where)
    return None if p is None else str(p)


_key("benchmark_binary", "tool")(_file)
_key("runtime")(_choice(*DEVICE_RUNTIMES))
_key("runner")(_choice("binary", "apk"))
_key("timeout")(lambda w, n, where: w.number(n, where, 1, 24 * 3600))  # seconds, one device run
_key("min_seconds")(lambda w, n, where: w.number(n, where, 0, 3600))
_key("gpu_precision")(_choice("fp16", "fp32"))
_key("nnapi_accelerator")(lambda w, n, where: w.string(n, where))
_key("cooldown")(lambda w, n, where: w.number(n, where, 0, 3600))  # seconds between two runs on a phone
_key("pin_big_cores")(_flag)
_key("model_cache")(_flag)
_key("op_profiling")(_flag)
_key("npu_dispatch_lib")(_file)
_key("npu_compiler_plugin")(_file)


ACCURACY = "accuracy"


@_key(ACCURACY)
def _accuracy(w: Any, node: yaml.Node, where: str) -> Optional[tuple[tuple[str, Any], ...]]:
    """On-device accuracy per device cell, as (evaluate_on_device keyword, value) pairs."""
    m = w.mapping(node, where, ("samples", "min_agreement", "min_sqnr_db"))
    if m is None:
        return None
    out: list[tuple[str, Any]] = [("samples", 100)]
    for key, value_node in m.items():
        if key == "samples":
            value = w.integer(value_node, f"{where}.samples", 1)
        elif key == "min_agreement":
            value = w.number(value_node, f"{where}.min_agreement", 0, 1)
        else:
            value = w.number(value_node, f"{where}.min_sqnr_db", -1000, 1000)
        if value is not None:
            out = [(k, v) for k, v in out if k != key] + [(key, value)]
    return tuple(out)


def read_bench(w: Any, node: yaml.Node) -> tuple[tuple[str, Any], ...]:
    """``bench:`` as (BenchOptions field, value) pairs, in the file's order; problems go to ``w``."""
    m = w.mapping(node, "bench", tuple(BENCH_KEYS))
    if m is None:
        return ()
    out = []
    for key, value_node in m.items():
        field, reader = BENCH_KEYS[key]
        value = reader(w, value_node, f"bench.{key}")
        if value is not None:
            out.append((field, value))
    return tuple(out)
