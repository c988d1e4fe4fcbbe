"""A plan expanded into cells: the units of work the farm schedules, stores and resumes.

Three stages, one cell each:

- **convert**: model × recipe. Its artifact lives in a cache folder under a content key (sha256 of
  the model's bytes, the recipe's JSON and the converter's tool versions), so an unchanged model is
  not converted again, in this run or the next.
- **eval**: model × recipe accuracy on the host, for models that name a dataset.
- **bench**: artifact × target × delegate × threads. A device cell holds the Dask resource
  ``phone-SERIAL`` so only one cell runs on a phone at a time; host cells hold ``host``.

Every cell has a stable ``cell_id`` (readable, and carrying the artifact key), so a resumed run
skips the cells whose ids are already finished.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Optional

from tflite_deploy.datasets.base import Preprocess
from tflite_deploy.farm.plan import DatasetSpec, ModelSpec, Plan, TargetSpec
from tflite_deploy.hashing import sha256_file
from tflite_deploy.vocabulary import DEVICE_DELEGATES, HOST_DELEGATES

STAGES = ("convert", "eval", "bench")
HOST_RESOURCE = "host"
#: Packages whose versions change what the converter writes: part of every artifact key.
CONVERTER_PACKAGES = ("tensorflow", "tf_keras", "tensorflow-model-optimization", "ai-edge-litert",
                      "ai-edge-quantizer", "tflite-deploy")


def phone_resource(serial: str) -> str:
    """The Dask resource a worker advertises for an attached phone (one cell at a time on it)."""
    return f"phone-{serial}"


def tool_versions(packages: Iterable[str] = CONVERTER_PACKAGES) -> dict[str, Optional[str]]:
    """Installed versions, read from package metadata (no import, so no TensorFlow)."""
    out: dict[str, Optional[str]] = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def artifact_key(model_sha256: str, recipe: Any, versions: dict[str, Optional[str]]) -> str:
    """The content key of one converted artifact."""
    doc = {"model": model_sha256, "recipe": recipe.to_dict(), "tools": versions}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Cell:
    """One unit of farm work. ``needs`` are cell ids that must finish first (its convert cell)."""

    cell_id: str
    stage: str
    model: ModelSpec
    recipe: Any  # tflite_deploy.recipes.Recipe
    key: str  # artifact key (content hash)
    artifact: Path  # the converted .tflite in the cache
    target: str = "host"
    delegate: Optional[str] = None
    threads: Optional[int] = None
    runs: int = 50
    warmup: int = 5
    repeats: int = 1
    needs: tuple[str, ...] = ()
    resource: Optional[str] = HOST_RESOURCE
    isolate: bool = True  # run in a child process: a crash there is a failed cell, not a dead worker

    @property
    def dataset(self) -> Optional[DatasetSpec]:
        return self.model.dataset

    @property
    def preprocess(self) -> Optional[Preprocess]:
        return self.model.preprocess


@dataclass(frozen=True)
class Stages:
    convert: tuple[Cell, ...]
    eval: tuple[Cell, ...]
    bench: tuple[Cell, ...]
    skipped: tuple[str, ...] = field(default=())  # target × delegate pairs that cannot run, and why

    @property
    def cells(self) -> tuple[Cell, ...]:
        """Every cell, dependencies first."""
        return self.convert + self.eval + self.bench

    def by_id(self) -> dict[str, Cell]:
        return {c.cell_id: c for c in self.cells}


class ArtifactCache:
    """Converted artifacts by content key: ``ROOT/ab/abcdef.../MODEL.RECIPE.tflite`` (+ sidecar)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str, model: str, recipe: str) -> Path:
        return self.root / key[:2] / key / f"{model}.{recipe}.tflite"

    def has(self, cell: Cell) -> bool:
        # convert writes the .tflite atomically (temp name + rename): if it is there, it is whole
        return cell.artifact.is_file()


def expand(plan: Plan, targets: Iterable[TargetSpec], cache: Optional[ArtifactCache] = None,
           versions: Optional[dict[str, Optional[str]]] = None) -> Stages:
    """The plan's cells for concrete ``targets`` (``all`` already resolved, see ``resolve_targets``)."""
    cache = cache or ArtifactCache(plan.cache)
    versions = tool_versions() if versions is None else versions
    targets = tuple(targets)
    if any(t.kind == "all" for t in targets):
        raise ValueError("expand() takes concrete targets: resolve 'all' with plan.resolve_targets first")
    converts, evals, benches, skipped = [], [], [], []
    for t in targets:
        allowed = HOST_DELEGATES if t.kind == "host" else DEVICE_DELEGATES
        for d in plan.delegates:
            if d not in allowed:
                skipped.append(f"{t.name} × {d}: {'host' if t.kind == 'host' else 'a device'} takes "
                               f"{', '.join(allowed)}")
    for model in plan.models:
        model_sha = sha256_file(model.path)
        for recipe in plan.recipes:
            key = artifact_key(model_sha, recipe, versions)
            base = f"{model.name}/{recipe.name}@{key[:12]}"
            common = dict(model=model, recipe=recipe, key=key, artifact=cache.path(key, model.name, recipe.name))
            conv = Cell(f"convert/{base}", "convert", **common)
            converts.append(conv)
            if model.dataset is not None:
                evals.append(Cell(f"eval/{base}", "eval", needs=(conv.cell_id,), **common))
            for t in targets:
                on_host = t.kind == "host"
                allowed = HOST_DELEGATES if on_host else DEVICE_DELEGATES
                for d in (d for d in plan.delegates if d in allowed):
                    for th in plan.threads:
                        benches.append(Cell(
                            f"bench/{base}/{t.name}/{d}/t{th}", "bench", target=t.name, delegate=d, threads=th,
                            runs=plan.runs, warmup=plan.warmup, repeats=plan.repeats, needs=(conv.cell_id,),
                            resource=HOST_RESOURCE if on_host else phone_resource(t.serial or ""),
                            isolate=on_host, **common))
    return Stages(tuple(converts), tuple(evals), tuple(benches), tuple(skipped))


def pending(stages: Stages, finished: Iterable[str], cache: Optional[ArtifactCache] = None
            ) -> tuple[list[Cell], set[str]]:
    """The cells still to run, and the ids that count as done without running.

    Done: ids in ``finished`` (a resumed run's finished cells), and convert cells whose artifact is
    already in the cache. A cell's ``needs`` on a done cell are met.
    """
    done = set(finished)
    for c in stages.convert:
        if c.cell_id not in done and cache is not None and cache.has(c):
            done.add(c.cell_id)
    return [c for c in stages.cells if c.cell_id not in done], done
