"""Terminal output of ``autotune``: the trials, the Pareto front, the chosen variant or the closest misses."""

from __future__ import annotations

from typing import Any, Optional, Sequence

from rich.console import Console
from rich.table import Table

from tflite_deploy.render.verbs import fmt_bytes, ms


def _drop(t: Any, max_drop: float) -> str:
    if t.error:
        return "[red]failed[/]"
    lo, hi = t.drop_ci95
    colour = "green" if hi <= max_drop else "red"
    return f"[{colour}]{t.drop:+.2f} ({lo:+.2f} … {hi:+.2f})[/]"


def _table(trials: Sequence[Any], r: Any, title: str, mark: Optional[int] = None) -> Table:
    t = Table(title=title, title_justify="left")
    drop = "drop, points (95% CI)" if r.task == "classification" else "MAE increase (95% CI)"
    for c in ("#", "candidate", "what it is", "size", f"latency ({r.latency_target or 'host'})", drop):
        t.add_column(c, justify="left" if c in ("candidate", "what it is") else "right")
    for tr in trials:
        name = f"[bold]{tr.recipe.name}[/] ←" if tr.index == mark else tr.recipe.name
        t.add_row(str(tr.index + 1), name, tr.recipe.summary(), fmt_bytes(tr.size_bytes), ms(tr.latency_ms),
                  _drop(tr, r.max_drop))
    return t


def autotune_report(r: Any, console: Console, verbose: bool = False) -> None:
    """The search in three parts: every trial (or the search trials only), the front, the verdict."""
    if r.task == "classification":
        ref, budget = f"top-1 {r.reference_accuracy:.2f}%", f"the drop's upper 95% end ≤ {r.max_drop:g} points"
    else:
        ref = f"MAE {r.reference_accuracy:.4g} (regression)"
        budget = f"the MAE increase's upper 95% end ≤ {r.max_drop:g} (the targets' units)"
    console.print(f"Reference [bold]{r.model}[/]: {ref} on [bold]{r.eval_data}[/] "
                  f"({r.eval_samples} samples, labels: {r.labels}); calibrated on {r.calibration_data}. "
                  f"Budget: {budget}.", highlight=False)
    console.print(_table(r.trials, r, "Trials", r.chosen.index if r.chosen else None))
    search = r.search_trials
    if r.quantizable_layers:
        console.print(f"Search: {len(search)} trial(s) over {r.quantizable_layers} quantizable layers, one "
                      f"calibration; most sensitive first: {', '.join(_short(n) for n in r.ranking[:3])}",
                      highlight=False)
    console.print(_table(r.pareto, r, "Pareto front (size, latency, drop)" if r.met else
                         "Front of the candidates judged (none within budget)"))
    if r.reused:
        console.print(f"Resumed: {r.reused} of the {len(r.trials)} trials were reused from an earlier run in the "
                      f"same --out (same model, data and tool versions), {len(r.trials) - r.reused} made now.",
                      highlight=False)
    if r.stopped == "interrupted":
        console.print("[yellow]The search was interrupted: the finished trials are kept.[/] Run the same command "
                      "again to resume (they are reused, not made again).", highlight=False)
    elif r.stopped:
        console.print(f"[yellow]The search stopped early ({r.stopped}): what was found so far is kept.[/] "
                      "Run again with a larger --max-trials / --time-budget to search further (the finished "
                      "trials are reused).", highlight=False)
    for w in r.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    if r.chosen is not None:
        c = r.chosen
        console.print(f"Chosen ({r.objective}): [bold]{c.recipe.name}[/] {c.recipe.summary()}, "
                      f"{fmt_bytes(c.size_bytes)}, {_what(r)} {c.drop:+.2f}{_unit(r)} "
                      f"(95% CI {c.drop_ci95[0]:+.2f} … {c.drop_ci95[1]:+.2f}) -> [bold]{r.artifact}[/]",
                      highlight=False)
        console.print(f"Remake it: tflite-deploy convert {r.model} -f {r.recipe_file} -r {r.recipe_name} "
                      f"--data {r.calibration_data}", highlight=False, soft_wrap=True)
    else:
        closest = ", ".join(f"{t.recipe.name} {t.drop:+.2f} (upper {t.drop_high:+.2f})" for t in r.closest)
        console.print(f"[bold red]Nothing met the budget of {r.max_drop:g}{_unit(r)}.[/] Closest: {closest}.",
                      highlight=False)
        for t in (t for t in r.trials if t.stage == "qat"):  # the training the user allowed: its outcome, by name
            outcome = f"failed: {t.error}" if t.error else \
                f"{_what(r)} {t.drop:+.2f}{_unit(r)} (upper {t.drop_high:+.2f}), not within the budget either"
            console.print(f"QAT tried ({t.recipe.name}, {t.recipe.description}): {outcome}.", highlight=False)


def _what(r: Any) -> str:
    return "drop" if r.task == "classification" else "MAE increase"


def _unit(r: Any) -> str:
    return " points" if r.task == "classification" else ""


def _short(name: str, width: int = 48) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"
