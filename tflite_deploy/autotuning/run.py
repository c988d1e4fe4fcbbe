"""The autotune verb: plain candidates, then (where full integer misses the budget) the float-layer search.

The judge is ``eval``'s task rule: top-1 points for classifiers, the MAE's increase for regression;
models with several inputs are fed by name throughout.

1. Plain candidates (int8 per-channel and per-tensor, int16x8, float16, dynamic by default) are
   converted exactly as ``convert`` would and judged on the held-out split.
2. If no int8 full-integer candidate has the upper end of its drop's 95% interval within
   ``max_drop``, one calibration (:class:`~.session.QuantizeSession`) ranks the layers by their
   per-layer error and each trial re-quantizes with the top-k layers kept float; bisection
   (:func:`~.search.fewest_float_layers`) finds the fewest k within the budget.
   Trials already judged by an earlier run into the same ``out_dir`` are reused (:mod:`.resume`).
3. With ``allow_training``, when no int8 PTQ candidate met the budget, one QAT trial from the best.
4. Survivors (within budget) are measured for latency; the best one on the objective is written
   with a recipe file that remakes it, and every trial goes to ``on_trial`` (the store).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from tflite_deploy.autotuning import output
from tflite_deploy.autotuning.records import AutotuneResult, Trial, choose
from tflite_deploy.autotuning.search import fewest_float_layers
from tflite_deploy.conversion.workers import failure_message
from tflite_deploy.datasets import Dataset, Preprocess, open_dataset
from tflite_deploy.datasets.inputs import sample_count
from tflite_deploy.errors import UserError
from tflite_deploy.progress import ProgressCallback, report
from tflite_deploy.recipes import PRESETS, Recipe
from tflite_deploy.result import Result

OBJECTIVES = ("size", "latency")
#: The plain candidates, in the order they are tried.
PLAIN_RECIPES: tuple[Recipe, ...] = (
    PRESETS["int8"],
    dataclasses.replace(PRESETS["int8"], name="int8-per-tensor", per_channel=False,
                        description="Full integer, one scale per weight tensor."),
    PRESETS["int16x8"], PRESETS["float16"], PRESETS["dynamic"],
)
Measure = Callable[[list[Path]], list[Result]]


class _Stop(Exception):
    """The trial or time budget is spent: keep what was found."""


def data_roles(data: str | Dataset, calibration: str | Dataset | None,
               preprocess: Optional[Preprocess] = None) -> tuple[Dataset, Dataset]:
    """(evaluation, calibration) datasets, never the same samples: ``digits`` evaluates on
    ``digits:test`` and calibrates on ``digits:train``; ``X:test`` calibrates on ``X:train``.
    ``preprocess`` applies to specs given as text (image folders, photos)."""
    if calibration is None:
        if not isinstance(data, str):
            raise UserError("autotune needs calibration data apart from the evaluation data: pass calibration= "
                            "(--calibration) when data is a Dataset object.")
        base, _, part = data.rpartition(":")
        if part == "train":
            raise UserError(f"--data {data} is a training split: autotune judges on held-out samples. Give "
                            f"--data {base}:test (calibrated on {data}) or --data {base}.")
        if part != "test":
            base = data
            data = f"{data}:test"
        calibration = f"{base}:train"
    if isinstance(data, str) and isinstance(calibration, str) and data == calibration:
        raise UserError(f"--calibration {calibration} is the evaluation data too: the drop would be measured on "
                        "the samples that set the ranges. Use two splits (e.g. digits:train and digits:test).")
    ev = open_dataset(data, preprocess) if isinstance(data, str) else data
    cal = open_dataset(calibration, preprocess) if isinstance(calibration, str) else calibration
    return ev, cal


def check_options(max_drop: float, objective: str, max_trials: Optional[int], time_budget: Optional[float],
                  train_epochs: int = 2) -> None:
    if not (isinstance(train_epochs, int) and train_epochs >= 1):
        raise UserError(f"--train-epochs (train_epochs=) is a whole number of QAT epochs, 1 or more, not "
                        f"{train_epochs!r}.")
    if not (isinstance(max_drop, (int, float)) and max_drop >= 0 and np.isfinite(max_drop)):
        raise UserError(f"--max-drop (max_drop=) is what you can afford to lose, 0 or more: top-1 points for a "
                        f"classifier (1.0 = one percentage point), the MAE's increase in the targets' units for a "
                        f"regression model; not {max_drop!r}.")
    if objective not in OBJECTIVES:
        raise UserError(f"--objective (objective=) is one of {', '.join(OBJECTIVES)}, not {objective!r}.")
    if max_trials is not None and max_trials < 0:
        raise UserError(f"--max-trials (max_trials=) counts search trials: 0 or more, not {max_trials}.")
    if time_budget is not None and time_budget <= 0:
        raise UserError(f"--time-budget (time_budget=) is a positive number of seconds, not {time_budget:g}.")


def autotune(source: Any, eval_ds: Dataset, cal_ds: Dataset, max_drop: float, out_dir: str | Path, *,
             objective: str = "size", recipes: Sequence[Recipe] = PLAIN_RECIPES, max_trials: Optional[int] = None,
             time_budget: Optional[float] = None, limit: Optional[int] = None, measure: Optional[Measure] = None,
             target: str = "host", on_trial: Optional[Callable[[Trial, str], None]] = None,
             progress: Optional[ProgressCallback] = None, resume: Optional[bool] = None,
             allow_training: bool = False, train_epochs: int = 2) -> AutotuneResult:
    """Search ``recipes`` and int8 with float layers for the best variant whose drop's upper 95% end
    is within ``max_drop`` points; write it to ``out_dir`` with ``autotune.yaml``. See the module docs.

    ``allow_training``: when no int8 full-integer candidate meets the budget, one more trial fine-tunes
    the Keras model with QAT (``train_epochs`` on the calibration split, never the held-out one) from
    the best PTQ configuration, converts it fully int8 (whole-model QAT) and judges it the same way.

    ``resume``: None reuses the finished trials an earlier run left in ``out_dir`` for the same model
    and data (:mod:`.resume`), True does so and refuses when there are none, False starts afresh."""
    from tflite_deploy.autotuning.judge import Judge
    from tflite_deploy.sources.common import calibration_samples, source_meta
    from tflite_deploy.sources.tf_loader import versions

    check_options(max_drop, objective, max_trials, time_budget, train_epochs)
    started = time.perf_counter()
    out = Path(out_dir)
    base = next((r for r in recipes if r.activations == "int8"), PRESETS["int8"])
    calibration = calibration_samples(source, [*recipes, base], cal_ds)
    assert calibration is not None
    samples = calibration[0]
    if len(getattr(source, "inputs", ())) > 1:  # by input name, as calibration feeds them
        eval_ds.check_inputs(source.inputs, f"model {source.path}")
    else:
        eval_ds.check_fits(source.input_shape, source.input_dtype, f"model {source.path}")
    log = _trial_log(out, source, eval_ds, samples, len(eval_ds) if limit is None else min(limit, len(eval_ds)),
                     resume)
    report(progress, "autotune", 0, None, f"Reference outputs on {eval_ds.name} ...")
    judge = Judge(source, eval_ds, limit)
    if log.available:
        report(progress, "autotune", 0, None, f"Resuming: {log.available} finished trial(s) of this model and "
                                              f"data in {log.path} can be reused ...")
    trials: list[Trial] = []
    kept: dict[int, bytes] = {}   # within-budget candidates' bytes, by trial index
    stopped: Optional[str] = None
    ranking: list[str] = []

    def spend(search: bool) -> None:
        if time_budget is not None and time.perf_counter() - started > time_budget:
            raise _Stop("time budget")
        new_search = [t for t in trials if t.stage == "search" and not t.reused]  # reused trials cost nothing
        if search and max_trials is not None and len(new_search) >= max_trials:
            raise _Stop("max trials")

    def record(stage: str, recipe: Recipe, make: Callable[[], bytes]) -> Trial:
        found = log.get(stage, recipe, len(trials), max_drop)
        if found is None:
            spend(search=stage == "search")
        t0 = time.perf_counter()
        data: Optional[bytes] = None
        if found is not None:
            trial, data = found.trial, found.data
        else:
            try:
                data = make()
                v = judge.judge(data)
                trial = Trial(len(trials), stage, recipe, len(data), v.drop, v.drop_ci95, v.accuracy,
                              time.perf_counter() - t0, v.drop_ci95[1] <= max_drop)
            except Exception as e:  # a recipe the model cannot take is one failed row; the search goes on
                trial = Trial(len(trials), stage, recipe, seconds=time.perf_counter() - t0, error=failure_message(e))
            log.add(trial, data)
        if trial.within_budget and data is not None:
            kept[trial.index] = data
        trials.append(trial)
        best = choose(trials, "size")
        report(progress, "autotune", len(trials), None, _line(trial, best), trial)
        if on_trial:
            on_trial(trial, judge.task)
        return trial

    try:
        for r in recipes:
            record("plain", r, lambda r=r: _converted(source, r, samples))
        full_int = [t for t in trials if t.recipe.activations == "int8" and t.error is None]
        if not any(t.within_budget for t in full_int):
            sessions: list[Any] = []  # calibrated once, and only when a trial is not in the log already

            def session() -> Any:
                if not sessions:
                    from tflite_deploy.autotuning.session import QuantizeSession

                    report(progress, "autotune", len(trials), None, f"Calibrating once for {base.summary()} and "
                                                                    "ranking layers by their quantization error ...")
                    sessions.append(QuantizeSession(source, base, samples))
                return sessions[0]

            ranking = log.ranking(base) or []
            if not ranking:
                spend(search=True)
                ranking = [e.tensor_name for e in session().ranking()]
                log.add_ranking(base, ranking)

            def passes(k: int) -> Optional[bool]:
                recipe = dataclasses.replace(base, name=f"{base.name}-float{k}", float_layers=tuple(ranking[:k]),
                                             description=f"{base.summary()}, the {k} most sensitive layer(s) float")
                try:
                    return record("search", recipe, lambda: session().quantize(ranking[:k])).within_budget
                except _Stop as s:
                    nonlocal stopped
                    stopped = str(s)
                    return None

            if ranking:
                fewest_float_layers(len(ranking), passes)
    except _Stop as s:
        stopped = str(s)
    except KeyboardInterrupt:
        stopped = "interrupted"
    warnings: list[str] = []
    try:
        if allow_training and stopped in (None, "max trials"):  # max trials bounds the search, not this trial
            _train_from_best_ptq(trials, record, source, cal_ds, samples, train_epochs, judge.task, warnings,
                                 progress)
    except _Stop as s:
        stopped = str(s)
    except KeyboardInterrupt:
        stopped = "interrupted"
    finally:
        judge.close()

    if log.other_context:
        warnings.append(f"{log.other_context} line(s) of {log.path} are from a run on another model, data or tool "
                        "version: not reused.")
    latency_target = None
    if kept and not stopped == "interrupted":
        trials, latency_target, measured = _measure(trials, kept, out, source, measure, target, progress)
        warnings += measured
    chosen = choose(trials, objective)
    result = AutotuneResult(
        model=str(source.path), max_drop=max_drop, objective=objective, eval_data=eval_ds.name,
        calibration_data=calibration[1], eval_samples=judge.samples, reference_accuracy=judge.reference_accuracy,
        labels=judge.label_source, task=judge.task, trials=tuple(trials), quantizable_layers=len(ranking),
        ranking=tuple(ranking), chosen=chosen, latency_target=latency_target, stopped=stopped, warnings=tuple(warnings))
    meta = {"source": source_meta(source), "versions": versions(),
            "calibration": {"dataset": calibration[1], "samples_available": sample_count(samples)}}
    if chosen is not None:
        recipe = output.chosen_recipe(chosen.recipe, _describe(chosen, result))
        art = output.write_chosen(out, source.name, recipe, kept[chosen.index],
                                  {**meta, "autotune": {"trial": chosen.index, "drop": chosen.drop,
                                                        "drop_ci95": list(chosen.drop_ci95 or ()),
                                                        "max_drop": max_drop, "eval_data": eval_ds.name}},
                                  time.perf_counter() - started)
        rfile = output.write_recipe_file(out, recipe, str(source.path), calibration[1])
        result = dataclasses.replace(result, artifact=str(art.path), recipe_file=str(rfile), recipe_name=recipe.name)
    out.mkdir(parents=True, exist_ok=True)
    output.write_log(out, result.to_dict())
    return result


def _train_from_best_ptq(trials: list[Trial], record: Callable[[str, Recipe, Callable[[], bytes]], Trial],
                         source: Any, cal_ds: Dataset, samples: Any, epochs: int, task: str, warnings: list[str],
                         progress: Optional[ProgressCallback]) -> None:
    """When no int8 full-integer PTQ candidate met the budget: one QAT trial from the best of them (the
    lowest upper end of the drop: its granularity and I/O), trained and converted as ``convert`` runs a
    recipe's QAT step. Always whole-model QAT, fully int8: TF-MOT cannot leave out layers named by
    their TFLite tensors, and the converter cannot keep layers float in a QAT model (selective
    quantization needs the calibrated model, and a fake-quant one fails in TF 2.21's debugger), so
    the best PTQ's float layers are quantized too; a warning says so."""
    ptq = [t for t in trials if t.recipe.activations == "int8" and t.error is None and not t.recipe.optimize]
    if not ptq or any(t.within_budget for t in ptq):
        return
    if task != "classification":
        warnings.append("--allow-training: QAT fine-tunes with a classification loss; a regression model is not "
                        "trained (no QAT trial).")
        return
    from tflite_deploy.recipes import OptimizeStep

    best = min(ptq, key=lambda t: (t.drop_high, len(t.float_layers), t.size_bytes or 0))
    recipe = dataclasses.replace(best.recipe, name=f"{best.recipe.name}-qat", float_layers=(), optimize=(
        OptimizeStep("qat", epochs=epochs),), description=f"{best.recipe.summary()} after {epochs} epoch(s) of "
                                                          "whole-model QAT, fully int8")
    report(progress, "autotune", len(trials), None, f"No int8 PTQ candidate met the budget: QAT from "
                                                    f"{best.recipe.name}, {epochs} epoch(s) on {cal_ds.name} ...")
    record("qat", recipe, lambda: _trained(source, recipe, cal_ds, samples))
    if best.float_layers:
        warnings.append(f"QAT trained the whole model and converts it fully int8: the {len(best.float_layers)} "
                        f"layer(s) {best.recipe.name} keeps float are quantized too (TF-MOT cannot leave out "
                        "layers named by TFLite tensors, nor can the converter keep them float in a QAT model).")


def _trained(source: Any, recipe: Recipe, cal_ds: Dataset, samples: Any) -> bytes:
    """QAT on the calibration (training) split as ``convert`` runs a recipe's optimize step, then the int8
    conversion of the trained model; Ctrl-C in training stays Ctrl-C (not a failed trial)."""
    from tflite_deploy.optimization.training import TrainingInterrupted, apply_steps

    try:
        trained, _ = apply_steps(source, recipe, cal_ds)
    except TrainingInterrupted:
        raise KeyboardInterrupt from None
    return _converted(trained, recipe, samples)


def _trial_log(out: Path, source: Any, eval_ds: Dataset, samples: Any, eval_samples: int,
               resume: Optional[bool]) -> Any:
    """The finished trials in ``out`` under this model, data and tool versions (see :mod:`.resume`)."""
    from tflite_deploy.autotuning.resume import TrialLog, context_key
    from tflite_deploy.datasets.base import ArrayDataset
    from tflite_deploy.sources.tf_loader import versions

    ctx = context_key(source.sha256, eval_ds.fingerprint(), ArrayDataset(samples).fingerprint(), eval_samples,
                      versions())
    log = TrialLog(out, ctx, enabled=resume is not False)
    if resume and not log.available:
        why = (f"its {log.other_context} trial line(s) are from another model, data or tool version"
               if log.other_context else "it holds no finished trials")
        raise UserError(f"resume=True: nothing to resume in {out}: {why}. Leave it out to start a new search.",
                        param="resume")
    return log


def _converted(source: Any, recipe: Recipe, samples: np.ndarray) -> bytes:
    """A plain candidate exactly as ``convert`` makes it, with the same refusal of a full-integer recipe
    whose file is not fully integer (so the recipe file remakes whatever autotune chooses)."""
    from tflite_deploy.conversion.tf_converter import convert_bytes
    from tflite_deploy.tflite.checks import check_full_integer

    data = convert_bytes(source, recipe, samples)
    check_full_integer(data, recipe, source.path)
    return data


def _measure(trials: list[Trial], kept: dict[int, bytes], out: Path, source: Any, measure: Optional[Measure],
             target: str, progress: Optional[ProgressCallback]) -> tuple[list[Trial], str, list[str]]:
    """Write the survivors to OUT/candidates/ and measure their latency (host, or the device path)."""
    from tflite_deploy.artifact import save_artifact

    paths = {i: save_artifact(out / "candidates", source.name, trials[i].recipe.name, data,
                              {"recipe": trials[i].recipe.to_dict()}, trials[i].seconds).path
             for i, data in kept.items()}
    report(progress, "autotune", len(trials), None,
           f"Measuring the latency of {len(paths)} survivor(s) on {target} ...")
    if measure is None:
        from tflite_deploy.benchmark.host import bench_host
        from tflite_deploy.benchmark.options import BenchOptions

        def measure(ps: list[Path]) -> list[Result]:
            return bench_host(ps, BenchOptions(runs=30, warmup=3, min_seconds=0.3).for_host())
    results = measure(list(paths.values()))
    by_path = {str(Path(r.artifact)): r for r in results}
    warnings = []
    updated = list(trials)
    for i, p in paths.items():
        r = by_path.get(str(p))
        # the median where the runner gives it (host; the newest benchmark_model), else its mean
        typical = r.latency.p50_ms if r is not None and r.ok and r.latency and r.latency.p50_ms is not None else \
            r.latency.mean_ms if r is not None and r.ok and r.latency else None
        if typical is not None:
            updated[i] = dataclasses.replace(trials[i], latency_ms=typical)
        else:
            why = (r.error or r.status) if r is not None else "not measured"
            warnings.append(f"{p.name}: no latency on {target} ({why}).")
    return updated, target, warnings


def _line(trial: Trial, best: Optional[Trial]) -> str:
    """One progress line: the trial just judged and the best within budget so far."""
    if trial.error or trial.drop_ci95 is None:
        now = f"{trial.recipe.name}: failed"
    else:
        now = f"{trial.recipe.name}: drop {trial.drop:.2f} [{trial.drop_ci95[0]:.2f}, {trial.drop_ci95[1]:.2f}]"
        now += " (reused)" if trial.reused else ""
    so_far = f"best so far {best.recipe.name} ({(best.size_bytes or 0) / 1000:.1f} KB)" if best else \
        "nothing within budget yet"
    return f"trial {trial.index + 1} {now}; {so_far}"


def _describe(t: Trial, r: AutotuneResult) -> str:
    lo, hi = t.drop_ci95 or (float("nan"), float("nan"))
    what = "top-1 drop" if r.task == "classification" else "MAE increase"
    unit = " points" if r.task == "classification" else ""
    return (f"autotune ({r.objective}, max drop {r.max_drop:g}): {t.recipe.summary()}; {what} {t.drop:.2f}"
            f"{unit} [95% {lo:.2f}, {hi:.2f}] on {r.eval_data} ({r.eval_samples} samples)")
