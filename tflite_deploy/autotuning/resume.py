"""Resume after Ctrl-C: the finished trials an earlier run left in OUT, keyed by what defines them.

Each judged trial is appended to ``OUT/autotune-trials.jsonl`` as soon as it is judged (one line,
so Ctrl-C loses at most the trial under way) and its bytes go to ``OUT/.trials/`` (a resumed run
still writes and times the chosen variant without remaking it). A line is reused only under the
same *context* (the source file's sha256, the evaluation samples' and the calibration samples'
content hashes (a dataset's hash covers its split indices, so a changed split seed changes it),
the number of samples judged, the tool versions) and the same trial key (stage plus the recipe's
fields, ``float_layers`` being the denylist). The budget is not part of the key: a resumed run with
another ``--max-drop`` reuses the measurements and re-judges them. Failed trials are not reused
(they are retried), nor is anything from another model or data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Optional

from tflite_deploy.artifact import write_atomic
from tflite_deploy.autotuning.records import Trial
from tflite_deploy.recipes import Recipe

TRIALS_FILE = "autotune-trials.jsonl"
BYTES_DIR = ".trials"
FORMAT = 1


def _digest(doc: Any) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def context_key(source_sha256: str, eval_fingerprint: str, calibration_fingerprint: str, eval_samples: int,
                versions: dict[str, str]) -> str:
    return _digest({"format": FORMAT, "source": source_sha256, "eval": eval_fingerprint,
                    "calibration": calibration_fingerprint, "eval_samples": eval_samples, "versions": versions})


def trial_key(stage: str, recipe: Recipe) -> str:
    """What makes a trial's file and verdict: the stage and every recipe field but its name and description."""
    fields = {k: v for k, v in recipe.to_dict().items() if k not in ("name", "description")}
    return _digest({"stage": stage, "recipe": fields})


@dataclasses.dataclass(frozen=True)
class Reused:
    """A finished trial found in OUT: its measurements and the bytes it judged."""

    trial: Trial
    data: bytes


class TrialLog:
    """The trials of earlier runs in ``out`` under this ``context`` (:meth:`get`), and :meth:`add` per new one.

    ``enabled=False`` starts afresh: nothing is read, and the log is rewritten from this run's trials."""

    def __init__(self, out: Path, context: str, enabled: bool = True) -> None:
        self.out, self.context = Path(out), context
        self.path = self.out / TRIALS_FILE
        self._lines: dict[str, dict[str, Any]] = {}
        self.other_context = 0          # lines left by a run on another model, data or tool version
        if enabled and self.path.is_file():
            for line in self.path.read_text().splitlines():
                try:
                    doc = json.loads(line)
                except ValueError:      # a line cut short by a kill: that trial is simply redone
                    continue
                if doc.get("context") != context:
                    self.other_context += 1
                elif "key" in doc:
                    self._lines[doc["key"]] = doc
        elif not enabled:
            self.path.unlink(missing_ok=True)
        self.reused = 0

    @property
    def available(self) -> int:
        return len([d for d in self._lines.values() if "trial" in d])

    def get(self, stage: str, recipe: Recipe, index: int, max_drop: float) -> Optional[Reused]:
        doc = self._lines.get(trial_key(stage, recipe))
        if doc is None or "trial" not in doc:
            return None
        blob = self.out / BYTES_DIR / f"{doc['key']}.tflite"
        if not blob.is_file():
            return None
        t = doc["trial"]
        ci = tuple(t["drop_ci95"])
        trial = Trial(index, stage, recipe, t["size_bytes"], t["drop"], (ci[0], ci[1]), t["accuracy"], t["seconds"],
                      ci[1] <= max_drop, reused=True)
        self.reused += 1
        return Reused(trial, blob.read_bytes())

    def add(self, trial: Trial, data: Optional[bytes]) -> None:
        """Record a judged trial (failed ones are not kept: a resumed run tries them again)."""
        if trial.error is not None or data is None or trial.reused:
            return
        key = trial_key(trial.stage, trial.recipe)
        write_atomic(self.out / BYTES_DIR / f"{key}.tflite", data)
        t = {"size_bytes": trial.size_bytes, "drop": trial.drop, "drop_ci95": list(trial.drop_ci95 or ()),
             "accuracy": trial.accuracy, "seconds": round(trial.seconds, 3)}
        self._append({"context": self.context, "key": key, "recipe": trial.recipe.name, "trial": t})

    def ranking(self, base: Recipe) -> Optional[list[str]]:
        doc = self._lines.get(trial_key("ranking", base))
        return list(doc["ranking"]) if doc else None

    def add_ranking(self, base: Recipe, ranking: list[str]) -> None:
        self._append({"context": self.context, "key": trial_key("ranking", base), "ranking": ranking})

    def _append(self, doc: dict[str, Any]) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:  # one short line per trial: Ctrl-C can cut at most that line
            f.write(json.dumps(doc, sort_keys=True) + "\n")
        self._lines[doc["key"]] = doc
