"""What an autotune run found: every trial, the Pareto front, the chosen variant (plain records, no TF)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from tflite_deploy.recipes import Recipe
from tflite_deploy.result import Result


@dataclass(frozen=True)
class Trial:
    """One candidate made and judged: a plain recipe, or the search's int8 with some layers kept float.

    ``drop`` is the top-1 drop against the float model in points (reference minus variant) on the
    held-out split, or for a regression model the MAE's increase (variant minus reference, the targets'
    units); ``drop_ci95`` its paired-bootstrap 95% interval; the budget judges ``drop_ci95[1]``.
    """

    index: int
    stage: str                       # "plain" (a preset converted as `convert` would), "search" or "qat"
    recipe: Recipe
    size_bytes: Optional[int] = None
    drop: Optional[float] = None
    drop_ci95: Optional[tuple[float, float]] = None
    accuracy: Optional[float] = None
    seconds: float = 0.0
    within_budget: bool = False
    latency_ms: Optional[float] = None
    error: Optional[str] = None
    reused: bool = False             # judged by an earlier run in the same OUT (resume), not made again

    @property
    def float_layers(self) -> tuple[str, ...]:
        return self.recipe.float_layers

    @property
    def drop_high(self) -> float:
        """The upper end of the drop's interval (infinite for a failed trial: never preferred)."""
        return self.drop_ci95[1] if self.drop_ci95 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "stage": self.stage, "recipe": self.recipe.name,
                "summary": self.recipe.summary(), "float_layers": list(self.float_layers),
                "size_bytes": self.size_bytes, "drop": self.drop,
                "drop_ci95": list(self.drop_ci95) if self.drop_ci95 else None, "accuracy": self.accuracy,
                "seconds": round(self.seconds, 3), "within_budget": self.within_budget,
                "latency_ms": self.latency_ms, "error": self.error, "reused": self.reused,
                "recipe_fields": self.recipe.to_dict()}


@dataclass(frozen=True)
class AutotuneResult:
    """The whole search: ``chosen`` is None when nothing met the budget (then ``closest`` says how near)."""

    model: str
    max_drop: float
    objective: str
    eval_data: str
    calibration_data: str
    eval_samples: int
    reference_accuracy: float
    labels: str                      # "dataset" or "float model's top-1" (unlabelled data)
    trials: tuple[Trial, ...]
    quantizable_layers: int          # layers the sensitivity ranking covered (0 when no search ran)
    task: str = "classification"     # or "regression": accuracy is then the MAE, the drop its increase
    ranking: tuple[str, ...] = ()    # layer names, most sensitive first
    chosen: Optional[Trial] = None
    artifact: Optional[str] = None   # the chosen .tflite written
    recipe_file: Optional[str] = None
    recipe_name: Optional[str] = None
    latency_target: Optional[str] = None
    stopped: Optional[str] = None    # why the search stopped early: "max trials", "time budget", "interrupted"
    warnings: tuple[str, ...] = ()
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def search_trials(self) -> tuple[Trial, ...]:
        return tuple(t for t in self.trials if t.stage == "search")

    @property
    def reused(self) -> int:
        """Trials taken from an earlier run in the same OUT (resume) rather than made again."""
        return sum(t.reused for t in self.trials)

    @property
    def met(self) -> bool:
        return self.chosen is not None

    @property
    def pareto(self) -> tuple[Trial, ...]:
        """Candidates within budget that no other within-budget candidate beats on size, latency and
        drop together; when none is within budget, the front of all judged candidates (size, drop)."""
        within = [t for t in self.trials if t.within_budget]
        return pareto_front(within or [t for t in self.trials if t.error is None])

    @property
    def closest(self) -> tuple[Trial, ...]:
        """The judged candidates nearest the budget (lowest upper end of the drop), three at most."""
        judged = sorted((t for t in self.trials if t.error is None), key=lambda t: (t.drop_high, t.size_bytes or 0))
        return tuple(judged[:3])

    def summary(self) -> dict[str, Any]:
        """What the store keeps beside the trials: the budget, the front and the chosen trial (by index)."""
        return {"max_drop": self.max_drop, "objective": self.objective, "chosen": self.chosen.index if self.chosen
                else None, "pareto": [t.index for t in self.pareto], "search_trials": len(self.search_trials),
                "quantizable_layers": self.quantizable_layers, "eval_data": self.eval_data}

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "max_drop": self.max_drop, "objective": self.objective, "task": self.task,
                "eval_data": self.eval_data, "calibration_data": self.calibration_data,
                "eval_samples": self.eval_samples, "reference_accuracy": self.reference_accuracy,
                "labels": self.labels, "met": self.met, "quantizable_layers": self.quantizable_layers,
                "search_trials": len(self.search_trials), "reused_trials": self.reused,
                "ranking": list(self.ranking),
                "trials": [t.to_dict() for t in self.trials], "pareto": [t.index for t in self.pareto],
                "closest": [t.index for t in self.closest], "chosen": self.chosen.index if self.chosen else None,
                "artifact": self.artifact, "recipe_file": self.recipe_file, "recipe_name": self.recipe_name,
                "latency_target": self.latency_target, "stopped": self.stopped, "warnings": list(self.warnings),
                **self.notes}


def _keys(t: Trial) -> tuple[float, ...]:
    lat = t.latency_ms if t.latency_ms is not None else float("nan")
    return (float(t.size_bytes or 0), lat, t.drop_high)


def dominates(a: Trial, b: Trial) -> bool:
    """``a`` is no worse than ``b`` on every measured axis and better on one (unmeasured latency is skipped)."""
    pairs = [(x, y) for x, y in zip(_keys(a), _keys(b)) if x == x and y == y]  # NaN: not measured on both
    return all(x <= y for x, y in pairs) and any(x < y for x, y in pairs)


def pareto_front(trials: Sequence[Trial]) -> tuple[Trial, ...]:
    front = [t for t in trials if not any(dominates(o, t) for o in trials if o is not t)]
    return tuple(sorted(front, key=lambda t: (t.size_bytes or 0, t.drop_high)))


def choose(trials: Sequence[Trial], objective: str) -> Optional[Trial]:
    """The within-budget candidate best on the objective (size, or latency where measured), ties by drop."""
    within = [t for t in trials if t.within_budget]
    if not within:
        return None
    if objective == "latency" and all(t.latency_ms is not None for t in within):
        return min(within, key=lambda t: (t.latency_ms, t.size_bytes or 0, t.drop_high))
    return min(within, key=lambda t: (t.size_bytes or 0, t.drop_high))


def trial_result(trial: Trial, model: str, max_drop: float, task: str = "classification") -> Result:
    """A trial as a store record (kind ``autotune``): the variant it judged need not exist as a file.
    Metrics are named as ``eval`` names them: ``top1``/``top1_drop`` or, for regression, ``mae``/``mae_change``."""
    names = ("top1", "top1_drop", "top1_drop_ci95") if task == "classification" else \
        ("mae", "mae_change", "mae_change_ci95")
    return Result(kind="autotune", artifact=f"{model}.{trial.recipe.name}", runner="autotune", delegate="-",
                  recipe=trial.recipe.name, status="failed" if trial.error else "ok", error=trial.error,
                  settings={"stage": trial.stage, "max_drop": max_drop, "reused": trial.reused,
                            "float_layers": list(trial.float_layers), "recipe": trial.recipe.to_dict(), "size_bytes": trial.size_bytes},
                  metrics={"trial": trial.index, names[0]: trial.accuracy, names[1]: trial.drop,
                           names[2]: list(trial.drop_ci95) if trial.drop_ci95 else None,
                           "within_budget": trial.within_budget, "seconds": round(trial.seconds, 3)})


def chosen_result(r: AutotuneResult) -> Result:
    """The chosen file as a store record (kind ``convert``, runner ``autotune``) carrying the search's summary."""
    from pathlib import Path

    from tflite_deploy.artifact import read_sidecar

    side = read_sidecar(Path(r.artifact or "")) or {}
    tfl = side.get("tflite") or {}
    return Result(kind="convert", artifact=str(r.artifact), runner="autotune", delegate="-", recipe=r.recipe_name,
                  artifact_sha256=tfl.get("sha256"),
                  settings={"size_bytes": tfl.get("size_bytes"), "gzip_bytes": tfl.get("gzip_bytes"),
                            "autotune": r.summary()},
                  metrics={"seconds": side.get("seconds")})
