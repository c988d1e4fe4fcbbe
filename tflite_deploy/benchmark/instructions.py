"""Instructions per invoke, counted by valgrind's callgrind: a host cost that does not move with load.

Timings on a shared CI runner move by 5-20% between processes (another job, a CPU clocking down);
the number of instructions an invoke executes does not. Hardware counters are not available here
(``perf stat`` reports instructions "not supported"), so the count comes from callgrind, with
collection switched on and off around each ``invoke()`` by client requests (CALLGRIND_TOGGLE_COLLECT
in a four-line C library built once with the system's compiler): the kernels are counted, model
loading, Python start-up and everything else are not. LiteRT's shared libraries carry no symbols, so
``--toggle-collect`` cannot name the native Invoke; a toggle around an empty region is measured in
the same process and subtracted (the Python call path of the toggles themselves).

Needs ``valgrind`` (with ``/usr/include/valgrind/callgrind.h``) and ``cc``. Under callgrind an invoke
runs ~50x slower: keep ``invokes`` small (the count is exact; a few are enough).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from tflite_deploy.errors import UserError

REGION_C = """#include <valgrind/callgrind.h>
void td_toggle(void) { CALLGRIND_TOGGLE_COLLECT; }
void td_dump(const char *label) { CALLGRIND_DUMP_STATS_AT(label); }
int td_on_valgrind(void) { return RUNNING_ON_VALGRIND; }
"""
EMPTY_PAIRS = 20  # toggle pairs around nothing, dumped apart: the cost the invoke regions carry too


@dataclass(frozen=True)
class InstructionCount:
    model: str
    per_invoke: float        # instructions per invoke, the empty region's cost taken off
    invokes: int
    total: int               # instructions collected inside the toggled regions
    empty_region: float      # instructions of one toggle pair around nothing (subtracted)
    valgrind: str


def _tools() -> tuple[str, str]:
    vg, cc = shutil.which("valgrind"), shutil.which("cc") or shutil.which("gcc")
    if not vg or not cc or not Path("/usr/include/valgrind/callgrind.h").is_file():
        raise UserError("--measure instructions needs valgrind (with its callgrind.h header) and a C compiler: "
                        "apt-get install valgrind gcc.")
    return vg, cc


def region_library(cache: Optional[Path] = None) -> Path:
    """The toggle library, built once per source text into the cache folder (atomically)."""
    _, cc = _tools()
    folder = Path(cache or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tflite-deploy"
    folder.mkdir(parents=True, exist_ok=True)
    lib = folder / f"callgrind-region-{hashlib.sha256(REGION_C.encode()).hexdigest()[:12]}.so"
    if not lib.is_file():
        with tempfile.TemporaryDirectory(dir=folder) as tmp:  # built beside its name, then renamed: atomic
            src = Path(tmp) / "region.c"
            src.write_text(REGION_C)
            out = Path(tmp) / "region.so"
            done = subprocess.run([cc, "-O1", "-shared", "-fPIC", "-o", str(out), str(src)], capture_output=True,
                                  text=True, timeout=120)
            if done.returncode != 0:
                raise UserError(f"Could not build the callgrind toggle library: {done.stderr.strip()[:400]}")
            os.replace(out, lib)
    return lib


def count_instructions(model: str | Path, *, invokes: int = 3, threads: int = 1, delegate: str = "xnnpack",
                       timeout: float = 1800.0) -> InstructionCount:
    """Run ``model`` under callgrind in a child process and count the instructions of each invoke."""
    if invokes < 1:
        raise UserError(f"invokes={invokes}: at least 1.")
    model = Path(model)
    if not model.is_file():
        raise UserError(f"Model {model} does not exist.")
    vg, _ = _tools()
    lib = region_library()
    version = subprocess.run([vg, "--version"], capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cg.out"
        cmd = [vg, "--tool=callgrind", "--collect-atstart=no", f"--callgrind-out-file={out}",
               sys.executable, "-m", "tflite_deploy.benchmark._instructions_child", str(model), str(lib),
               str(invokes), str(threads), delegate, str(EMPTY_PAIRS)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        dumps = {}
        for f in Path(tmp).glob("cg.out*"):  # one file per CALLGRIND_DUMP_STATS_AT, named by its label
            text = f.read_text()
            label = re.search(r"^desc: Trigger: Client Request: (\w+)", text, flags=re.M)
            totals = re.search(r"^totals:\s+(\d+)", text, flags=re.M)
            if label and totals:
                dumps[label.group(1)] = int(totals.group(1))
    if done.returncode != 0 or not {"empty", "invokes"} <= set(dumps):
        raise UserError(f"{model}: the run under valgrind failed or counted nothing: "
                        f"{(done.stderr or done.stdout).strip()[-600:]}")
    empty = dumps["empty"] / EMPTY_PAIRS
    return InstructionCount(str(model), (dumps["invokes"] - empty * invokes) / invokes, invokes, dumps["invokes"],
                            empty, version)


def with_instructions(r: Any, invokes: int = 3) -> Any:
    """A host bench Result with ``metrics["instructions_per_invoke"]`` (and the count's facts) added."""
    from dataclasses import replace

    if not r.ok or not str(r.artifact).endswith(".tflite"):
        return r
    c = count_instructions(r.artifact, invokes=invokes, threads=r.settings.get("threads") or 1, delegate=r.delegate)
    return replace(r, metrics={**r.metrics, "instructions_per_invoke": round(c.per_invoke, 1),
                               "instructions": {"invokes": c.invokes, "toggle_pair": c.empty_region,
                                                "valgrind": c.valgrind}})
