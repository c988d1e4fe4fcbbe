"""Child process for isolated cells: ``python -m tflite_deploy.farm._child CTRL_FD``.

It runs cell after cell (see :mod:`tflite_deploy.farm.children`): it reads ``JOB<TAB>OUT`` lines
on stdin and writes ``done`` on the control pipe after each, and leaves on end of input (the pool
closed it, or its parent is gone).

Each job reads ``(executor, cell)`` (cloudpickle) from JOB, runs it, writes ``(kind, payload)`` to
OUT: ``("ok", value)``, ``("transient", message)``, ``("lost", message)`` or ``("error", message)``.
If the executor kills the process, OUT is never written and the parent reports how the process
ended.
"""

from __future__ import annotations

import gc
import os
import pickle
import sys
from pathlib import Path


def main(job: str, out: str) -> None:
    import cloudpickle

    from tflite_deploy.farm.scheduler import ResourceLost, TransientError, _one_line

    executor, cell = pickle.loads(Path(job).read_bytes())
    try:
        result: tuple = ("ok", executor(cell))
    except TransientError as e:
        result = ("transient", str(e))
    except ResourceLost as e:
        result = ("lost", str(e))
    except Exception as e:
        result = ("error", _one_line(e))
    tmp = Path(out + ".tmp")
    tmp.write_bytes(cloudpickle.dumps(result))
    os.replace(tmp, out)  # whole or absent: the parent trusts its presence


def serve(ctrl_fd: int) -> None:
    ctrl = os.fdopen(ctrl_fd, "wb", buffering=0)
    while True:
        line = sys.stdin.readline()
        if not line:
            return  # the parent closed our input, or went away
        job, out = line.rstrip("\n").split("\t")
        main(job, out)
        _forget_models()
        ctrl.write(b"done\n")


def _forget_models() -> None:
    """Drop what one cell's Keras models left in the process, so the next cell starts clean."""
    keras = sys.modules.get("tf_keras")
    if keras is not None:
        keras.backend.clear_session()
    gc.collect()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
