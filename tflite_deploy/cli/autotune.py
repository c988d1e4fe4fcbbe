"""The ``autotune`` command: options -> :func:`tflite_deploy.api.autotune` -> the renderer; exit 1 when
nothing meets the budget, 130 when interrupted (what was found is still written and shown)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from tflite_deploy import api
from tflite_deploy.cli._common import (AdbServer, JsonFlag, NoStore, RunTag, StoreTo, console, progress_bars,
                                       quiet_python_warnings, store_target, user_errors)
from tflite_deploy.envelope import dumps


def register(app: typer.Typer) -> None:
    app.command(name="autotune")(autotune)


@user_errors
def autotune(
    model: Path = typer.Argument(..., help="A .keras/.h5 file or a SavedModel folder (a classifier or a "
                                 "regression model; several inputs are fed by name)."),
    data: str = typer.Option(..., "--data", "-d", help="Labelled data: `digits` judges on digits:test and "
                             "calibrates on digits:train; X:test calibrates on X:train."),
    max_drop: float = typer.Option(..., "--max-drop", help="What you can afford to lose: top-1 points for a "
                                   "classifier; for a regression model (float targets) the MAE's increase, in the "
                                   "targets' units. The upper end of its 95% interval must be within it."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Folder for the chosen .tflite, autotune.yaml, "
                                 "autotune.json and candidates/."),
    objective: str = typer.Option("size", "--objective", help="size or latency (of the survivors on --target)."),
    target: str = typer.Option("host", "--target", help="host, or an Android device SERIAL for the latency."),
    calibration: Optional[str] = typer.Option(None, "--calibration", help="Calibration data (default: the "
                                              ":train split of --data)."),
    recipe: List[str] = typer.Option([], "--recipe", "-r", help="Plain candidates (repeat; default int8, "
                                     "int8 per-tensor, int16x8, float16, dynamic)."),
    max_trials: Optional[int] = typer.Option(None, "--max-trials", help="At most this many search trials made "
                                             "in this run (trials reused from --out do not count)."),
    time_budget: Optional[float] = typer.Option(None, "--time-budget", help="Stop searching after this many "
                                                "seconds (what was found is kept)."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", help="Judge on at most this many samples."),
    resume: Optional[bool] = typer.Option(None, "--resume/--fresh", help="Reuse the finished trials an earlier "
                                          "run left in --out for the same model and data (the default when there "
                                          "are any; --resume refuses when there are none), or start afresh."),
    allow_training: bool = typer.Option(False, "--allow-training", help="When no int8 PTQ candidate meets the "
                                        "budget, try QAT from the best one (a Keras classifier; trains on the "
                                        "calibration split, never on the held-out one)."),
    train_epochs: int = typer.Option(2, "--train-epochs", help="QAT epochs for --allow-training."),
    adb_server: AdbServer = None,
    benchmark_binary: Optional[Path] = typer.Option(
        None, "--benchmark-binary", envvar="TFLITE_DEPLOY_BENCHMARK_BINARY",
        help="TFLite's benchmark_model for a --target device (as for bench)."),
    as_json: JsonFlag = False,
    store: StoreTo = None, tag: RunTag = None, no_store: NoStore = False,
) -> None:
    """The smallest (or fastest) variant within an accuracy budget: plain recipes, then int8 with the
    fewest most sensitive layers kept float (one calibration, bisection), with the drop's 95% interval."""
    from tflite_deploy.render.autotune import autotune_report

    quiet_python_warnings()
    err = console(stderr=True)
    with progress_bars(as_json) as progress:
        def show(e):  # type: ignore[no-untyped-def]
            if e.stage == "autotune" and e.item is not None and not as_json:  # a trial judged: keep its line
                err.print(f"[dim]{e.message}[/]", highlight=False)
            progress(e)

        result = api.autotune(model, data, max_drop, out_dir, calibration=calibration, objective=objective,
                              recipes=recipe or None, max_trials=max_trials, time_budget=time_budget, limit=limit,
                              target=target, adb_server=adb_server, benchmark_binary=benchmark_binary,
                              progress=show, resume=resume, allow_training=allow_training,
                              train_epochs=train_epochs,
                              store=store_target(store, no_store), tag=tag)
    if as_json:
        print(dumps("autotune", [result.to_dict()]))
    else:
        autotune_report(result, console())
    if result.stopped == "interrupted":
        from tflite_deploy.errors import Interrupted

        kept = len(result.trials) - result.reused
        raise Interrupted(f"{len(result.trials)} finished trial(s) kept in {out_dir} ({kept} new): run the same "
                          "command again to resume from them")
    raise typer.Exit(0 if result.met else 1)
