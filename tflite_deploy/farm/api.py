"""The public API's farm functions, ``farm_run`` and ``farm_nightly`` (``tflite_deploy`` re-exports them).

They sit above :mod:`tflite_deploy.farm.run` because a farm run is itself a client of
:mod:`tflite_deploy.api` (every cell is an ``api.convert`` / ``evaluate`` / ``bench`` call), so
they cannot live in ``api.py``. Both take the run's :class:`~tflite_deploy.farm.run.FarmSettings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional, Union

if TYPE_CHECKING:
    from tflite_deploy.farm.run import FarmRun, FarmSettings, Nightly
    from tflite_deploy.progress import ProgressCallback

PathLike = Union[str, Path]


def farm_run(plan: PathLike, out: PathLike, settings: Optional["FarmSettings"] = None,
             progress: Optional["ProgressCallback"] = None) -> "FarmRun":
    """Run (or resume) every cell of the plan file ``plan`` (convert, evaluate, bench per model × recipe ×
    target × delegate) on a Dask cluster, each outcome recorded as it completes; ``out`` holds the run
    records with ``settings.use_store`` False. ``settings`` (a :class:`~tflite_deploy.farm.run.FarmSettings`:
    store, resume, tag, host slots, scheduler, ...; default: the default store, an embedded cluster).
    Returns a :class:`~tflite_deploy.farm.run.FarmRun` (``.failed``: the cells that failed or did not run)."""
    from tflite_deploy.farm.run import FarmSettings, run_plan

    return run_plan(plan, out, settings or FarmSettings(), progress)


def farm_nightly(plan: PathLike, out: PathLike, settings: Optional["FarmSettings"] = None,
                 progress: Optional["ProgressCallback"] = None) -> "Nightly":
    """:func:`farm_run`, then compare with the plan's baseline tag (else the previous run with this run's
    tag) and write ``out/report-RUN.html``. Returns a :class:`~tflite_deploy.farm.run.Nightly`
    (``.regressions``: slower, less accurate or failed cells, and accuracy drops past the plan's limit)."""
    from tflite_deploy.farm.run import FarmSettings, nightly

    return nightly(plan, out, settings or FarmSettings(), progress)
