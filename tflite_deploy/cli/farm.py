"""``tflite-deploy farm ...`` commands. ``register(app)`` adds them to the main Typer app.

Also runnable alone before that wiring: ``python -m tflite_deploy.cli.farm worker --scheduler ADDR``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Sequence

import typer

from tflite_deploy.cli._common import JsonFlag, RunTag, StoreFrom, console, user_errors


def adb_serials() -> list[str]:
    """Serials of the usable devices on the local adb server."""
    from tflite_deploy.adb import list_devices

    return [d.serial for d in list_devices(facts=False) if d.usable]


PlanArg = typer.Argument(..., help="The plan file (YAML).")
OutOption = typer.Option(Path("out/farm"), "--out", "-o", help="Folder for reports (and the run records with --no-store).")
ResumeOption = typer.Option(None, "--resume", help="Run only the cells run RUN_ID did not finish.")
# not _common's NoStore: a farm run without the store still records, in a folder (resume needs it)
NoStoreOption = typer.Option(False, "--no-store", help="Record cells in OUT/RUN_ID/cells.jsonl instead of the store.")
ToolOption = typer.Option(None, "--benchmark-binary", help="benchmark_model for the device cells.")
SchedulerOption = typer.Option(None, "--scheduler", help="A lab's Dask scheduler (tcp:// or tls://; TLS from "
                               "TFLITE_DEPLOY_TLS_CA/_CERT/_KEY). Default: an embedded cluster on this machine.")
HostSlotsOption = typer.Option(1, "--host-slots", min=1, help="Host cells (convert, eval, host bench) at a time.")


def register(app: typer.Typer, discover: Callable[[], Sequence[str]] = adb_serials) -> None:
    farm = typer.Typer(help="Run a plan of models × recipes × devices on a Dask cluster.", no_args_is_help=True)

    @farm.command("worker")
    @user_errors
    def worker(
        scheduler: str = typer.Option(..., "--scheduler", help="The farm scheduler: tcp://HOST:PORT, or tls://HOST:PORT in a lab."),
        phone: List[str] = typer.Option([], "--phone", help="Serial of an attached phone to offer (repeat). Default: every usable device adb lists."),
        host_slots: int = typer.Option(0, "--host-slots", min=0, help="Also take N host cells at a time (convert, eval, host bench)."),
        name: Optional[str] = typer.Option(None, "--name", help="Worker name shown by the scheduler (default: its address)."),
        listen: Optional[str] = typer.Option(None, "--listen-host", help="Address to listen on for other workers (default: the interface that reaches the scheduler)."),
        tls_ca: Optional[str] = typer.Option(None, "--tls-ca", help="Lab CA certificate (PEM); env TFLITE_DEPLOY_TLS_CA."),
        tls_cert: Optional[str] = typer.Option(None, "--tls-cert", help="This host's certificate (PEM); env TFLITE_DEPLOY_TLS_CERT."),
        tls_key: Optional[str] = typer.Option(None, "--tls-key", help="This host's private key (PEM); env TFLITE_DEPLOY_TLS_KEY."),
    ) -> None:
        """Serve this host's phones to a farm scheduler: one Dask resource phone-SERIAL=1 per phone."""
        from tflite_deploy.errors import UserError
        from tflite_deploy.farm.scheduler import start_worker
        from tflite_deploy.farm.security import security_from_options

        security = security_from_options(tls_ca, tls_cert, tls_key)
        if scheduler.startswith("tls://") != (security is not None):
            raise UserError(f"Scheduler {scheduler}: a tls:// address needs --tls-ca/--tls-cert/--tls-key, "
                            "and TLS certificates need a tls:// address.")
        start_worker(scheduler, phone or None, None if phone else discover, host_slots=host_slots,
                     security=security, name=name, listen_host=listen)

    @farm.command("run")
    @user_errors
    def run(
        plan: Path = PlanArg, out: Path = OutOption, resume: Optional[str] = ResumeOption, tag: RunTag = None,
        store: StoreFrom = None, no_store: bool = NoStoreOption,
        benchmark_binary: Optional[Path] = ToolOption, host_slots: int = HostSlotsOption,
        scheduler: Optional[str] = SchedulerOption, as_json: JsonFlag = False,
    ) -> None:
        """Convert, evaluate and benchmark every cell of a plan, one live row per device; every cell is
        stored as it completes. Exit code 1 when a cell failed or was not run."""
        _run(plan, out, resume, tag, store, no_store, benchmark_binary, host_slots, scheduler, as_json)

    @farm.command("nightly")
    @user_errors
    def nightly(
        plan: Path = PlanArg, out: Path = OutOption, resume: Optional[str] = ResumeOption, tag: RunTag = None,
        store: StoreFrom = None, benchmark_binary: Optional[Path] = ToolOption,
        host_slots: int = HostSlotsOption, scheduler: Optional[str] = SchedulerOption, as_json: JsonFlag = False,
    ) -> None:
        """farm run, then compare with the plan's baseline tag and write OUT/report-RUN.html.
        Exit code 1 on a regression or a cell that failed or was not run."""
        _nightly(plan, out, resume, tag, store, benchmark_binary, host_slots, scheduler, as_json)

    app.add_typer(farm, name="farm")


_started_runs: list[str] = []  # the id of the run this command started, for the Ctrl-C line


def resume_hint(run_id: Optional[str], argv: Optional[Sequence[str]] = None) -> str:
    """What Ctrl-C kept and how to go on: the same command with ``--resume RUN_ID``; finished cells are kept."""
    import shlex
    import sys

    if run_id is None:
        return "before the run started: nothing was recorded"
    args, skip = [], False
    for a in list(argv if argv is not None else sys.argv)[1:]:
        if skip or a == "--resume" or a.startswith("--resume="):
            skip = a == "--resume" and not skip
            continue
        args.append(a)
    command = " ".join(shlex.quote(a) for a in ["tflite-deploy", *args, "--resume", run_id])
    return f"resume with: {command} (finished cells are kept)"


def interrupted_line(run_id: Optional[str], argv: Optional[Sequence[str]] = None) -> str:
    """The one line the CLI prints for Ctrl-C in a farm command (``_common.user_errors`` prints it)."""
    return f"interrupted; {resume_hint(run_id, argv)}"


@contextlib.contextmanager
def _resumable() -> Iterator[None]:
    """Ctrl-C while a farm run works becomes errors.Interrupted naming how to resume it."""
    from tflite_deploy.errors import Interrupted

    _started_runs.clear()
    try:
        yield
    except KeyboardInterrupt as e:
        if isinstance(e, Interrupted):
            raise
        raise Interrupted(resume_hint(_started_runs[-1] if _started_runs else None)) from None


def _settings(store: Optional[str], no_store: bool, resume: Optional[str], tag: Optional[str], tool: Optional[Path],
              host_slots: int, err: Any, scheduler: Optional[str]) -> Any:
    import sys

    from tflite_deploy.errors import UserError
    from tflite_deploy.farm.run import FarmSettings
    from tflite_deploy.farm.security import security_from_options

    security = security_from_options(None, None, None) if scheduler else None
    if scheduler and scheduler.startswith("tls://") != (security is not None):
        raise UserError(f"--scheduler {scheduler}: a tls:// address needs TFLITE_DEPLOY_TLS_CA/_CERT/_KEY, "
                        "and TLS certificates need a tls:// address.")
    return FarmSettings(store=store, use_store=not no_store, resume=resume, tag=tag, argv=tuple(sys.argv),
                        host_slots=host_slots, scheduler=scheduler, security=security,
                        benchmark_tool=str(tool) if tool else None,
                        on_start=lambda run_id: (_started_runs.append(run_id),
                                                 err.print(f"farm run [bold]{run_id}[/] (resume with --resume {run_id})")))


def _cells(run: Any) -> list[dict]:
    return [{"run_id": run.run_id, **r.to_dict()} for r in run.ran.values()]


def _run(plan: Path, out_dir: Path, resume: Optional[str], tag: Optional[str], store: Optional[str], no_store: bool,
         tool: Optional[Path], host_slots: int, scheduler: Optional[str], as_json: bool = False) -> None:
    from tflite_deploy import farm_run
    from tflite_deploy.envelope import dumps
    from tflite_deploy.render import farm as view

    out, err = console(), console(stderr=True)
    with _resumable(), view.device_rows(err) as progress:
        done = farm_run(plan, out_dir, _settings(store, no_store, resume, tag, tool, host_slots, err, scheduler),
                        progress)
    if as_json:
        print(dumps("farm-run", _cells(done)))
    else:
        view.summary(done, out)
    if done.failed:
        raise typer.Exit(1)


def _nightly(plan: Path, out_dir: Path, resume: Optional[str], tag: Optional[str], store: Optional[str],
             tool: Optional[Path], host_slots: int, scheduler: Optional[str], as_json: bool = False) -> None:
    from tflite_deploy import farm_nightly
    from tflite_deploy.envelope import dumps
    from tflite_deploy.render import farm as view

    out, err = console(), console(stderr=True)
    with _resumable(), view.device_rows(err) as progress:
        night = farm_nightly(plan, out_dir, _settings(store, False, resume, tag, tool, host_slots, err, scheduler),
                             progress)
    if as_json:
        print(dumps("farm-nightly", [{
            "run_id": night.run.run_id, "report": str(night.report), "note": night.note,
            "regressions": len(night.regressions), "failed_cells": len(night.run.failed),
            "comparison": night.comparison.to_dict() if night.comparison is not None else None,
            "accuracy_breaches": [r.to_dict() for r in night.accuracy_breaches], "cells": _cells(night.run)}]))
    else:
        view.night(night, out)
    if night.regressions or night.run.failed:
        raise typer.Exit(1)


def main() -> None:
    app = typer.Typer(no_args_is_help=True)
    register(app)
    app()


if __name__ == "__main__":
    main()
