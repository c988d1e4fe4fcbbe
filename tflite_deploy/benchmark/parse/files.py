"""Logs captured elsewhere (``parse-log``): benchmark_model output or a logcat dump, read from files."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from tflite_deploy.benchmark.parse.log import parse_benchmark_log
from tflite_deploy.benchmark.parse.result import to_result
from tflite_deploy.errors import UserError
from tflite_deploy.result import Result


def read_log_files(logs: Sequence[str | Path], *, delegate: str, target: str) -> list[Result]:
    """One bench Result per log file (the model is the log's ``Graph``, else the file); every file is
    read before any Result is returned, so a missing one leaves nothing half done."""
    results = []
    for f in map(Path, logs):
        if not f.is_file():
            raise UserError(f"Log {f} does not exist.")
        log = parse_benchmark_log(f.read_bytes())
        graph = log.params.get("Graph") or str(f)
        threads = log.params.get("Num threads") or log.params.get("#threads used for CPU inference")
        results.append(to_result(log, artifact=graph, target=target, delegate=delegate, runner="log",
                                 settings={"log_file": str(f), "threads": int(threads) if threads and
                                           threads.isdigit() else None}))
    return results
