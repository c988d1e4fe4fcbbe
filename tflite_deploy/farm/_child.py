"""Child process for an isolated cell: ``python -m tflite_deploy.farm._child JOB OUT``.

Reads ``(executor, cell)`` (cloudpickle) from JOB, runs it, writes ``(kind, payload)`` to OUT:
``("ok", value)``, ``("transient", message)``, ``("lost", message)`` or ``("error", message)``. If the executor kills the
process, OUT is never written and the parent reports how the process ended.
"""

from __future__ import annotations

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


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
