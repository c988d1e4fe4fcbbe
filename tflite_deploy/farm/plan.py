"""The farm's plan file (YAML) read into a frozen, typed :class:`Plan`.

Every problem in a plan is found before any work starts and reported at once, each with the plan
file's line, in one :class:`PlanError`. The file is read with PyYAML's ``compose`` (a node tree
that keeps each node's line), then walked key by key. See the README's "farm" section for an
example with every key.

Whether a dataset fits a model's input is checked only where that is cheap without TensorFlow
(``.tflite``, ``.keras`` and ``.h5`` files carry their input shape in plain data); a SavedModel's
is left to :data:`ShapeProbe` hooks the caller may pass (e.g. one that loads the model with TF).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import yaml

from tflite_deploy import recipes as recipes_mod
from tflite_deploy.adb import AdbServer, parse_target
from tflite_deploy.datasets.base import PREPROCESS_KEYS, Preprocess, preprocess_value
from tflite_deploy.errors import DatasetError, UserError
from tflite_deploy.farm.plan_bench import read_bench
from tflite_deploy.farm.shapes import cheap_input_shape
from tflite_deploy.vocabulary import DEVICE_DELEGATES, HOST_DELEGATES, NAME_RULE, TASKS, is_valid_name

_DEFINE_HINT = "Define your own inline or in recipe_files."

DEFAULT_CACHE = "~/.cache/tflite-deploy/farm"

TOP_KEYS = ("models", "datasets", "recipes", "recipe_files", "targets", "delegates", "threads",
            "runs", "warmup", "repeats", "bench", "tag", "baseline", "thresholds", "cache")
MODEL_KEYS = ("path", "dataset", "preprocess", "task")
DATASET_KEYS = ("spec", "preprocess")
TARGET_FILTER_KEYS = ("all", "server", "min_sdk", "abi")
THRESHOLD_KEYS = ("min_effect", "max_accuracy_drop")


class PlanError(UserError):
    """A plan file with problems; ``problems`` holds ``(line, message)`` pairs, line 1-based."""

    def __init__(self, path: Path, problems: Sequence[tuple[int, str]]) -> None:
        self.path = path
        self.problems = tuple(sorted(problems))
        lines = "\n".join(f"  line {ln}: {msg}" for ln, msg in self.problems)
        n = len(self.problems)
        super().__init__(f"Plan file {path} has {n} problem{'s' if n != 1 else ''}; nothing was run:\n{lines}")


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    spec: str  # what open_dataset takes: digits, photos, a folder or .npz/.npy (absolute), with :train/:test
    preprocess: Optional[Preprocess] = None


@dataclass(frozen=True)
class ModelSpec:
    name: str
    path: Path
    dataset: Optional[DatasetSpec] = None
    preprocess: Optional[Preprocess] = None  # the model's own, else its dataset's
    task: str = "auto"  # what its eval cells judge (vocabulary.TASKS); auto: from the dataset's targets


@dataclass(frozen=True)
class TargetSpec:
    """``host``, one device (``adb:SERIAL`` / ``adb://HOST:PORT/SERIAL``), or ``all`` with filters."""

    kind: str  # "host" | "device" | "all"
    serial: Optional[str] = None
    server: Optional[AdbServer] = None  # None: the adb server from the environment
    min_sdk: Optional[int] = None
    abi: Optional[str] = None

    @property
    def name(self) -> str:
        """The target string results carry: ``host``, ``adb:SERIAL``, ``adb://HOST:PORT/SERIAL``."""
        if self.kind == "host":
            return "host"
        if self.kind == "all":
            return "all" if self.server is None else f"all@{self.server}"
        return f"adb:{self.serial}" if self.server is None else f"adb://{self.server}/{self.serial}"

    def accepts(self, sdk: Optional[int], abis: Sequence[str]) -> bool:
        """Whether a device with this SDK level and ABIs passes this entry's filters."""
        if self.min_sdk is not None and (sdk is None or sdk < self.min_sdk):
            return False
        return self.abi is None or self.abi in abis


@dataclass(frozen=True)
class Thresholds:
    min_effect: float = 0.05  # a latency change smaller than this fraction is "no change"
    max_accuracy_drop: Optional[float] = None  # percentage points; None: accuracy is reported only


@dataclass(frozen=True)
class Plan:
    path: Path
    models: tuple[ModelSpec, ...]
    recipes: tuple[Any, ...]  # tflite_deploy.recipes.Recipe
    targets: tuple[TargetSpec, ...] = (TargetSpec("host"),)
    delegates: tuple[str, ...] = ("xnnpack",)
    threads: tuple[int, ...] = (1,)
    runs: int = 50
    warmup: int = 5
    repeats: int = 1
    bench: tuple[tuple[str, Any], ...] = ()  # BenchOptions fields: binary, runtime, time-out, ... (plan_bench)
    tag: str = "farm"
    baseline: Optional[str] = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    cache: Path = Path(DEFAULT_CACHE).expanduser()
    datasets: tuple[DatasetSpec, ...] = ()


#: ``probe(model_path) -> (input_shape_with_batch, dtype)`` or None when it cannot tell cheaply.
ShapeProbe = Callable[[Path], Optional[tuple[tuple[Optional[int], ...], str]]]
#: ``check(dataset, preprocessing, input_shape, dtype, where)``: raise UserError when it does not fit.
FitCheck = Callable[[DatasetSpec, Optional[Preprocess], tuple, str, str], None]


# ----------------------------------------------------------------------------------- the walker
class _Walk:
    """Collects problems while reading a node tree; every reader returns a value or None."""

    def __init__(self, loader: yaml.SafeLoader, base: Path) -> None:
        self.loader = loader
        self.base = base
        self.problems: list[tuple[int, str]] = []

    def bad(self, node: yaml.Node, where: str, msg: str) -> None:
        self.problems.append((node.start_mark.line + 1, f"{where}: {msg}" if where else msg))

    def value(self, node: yaml.Node) -> Any:
        return self.loader.construct_object(node, deep=True)

    def mapping(self, node: yaml.Node, where: str, allowed: Sequence[str]) -> Optional[dict[str, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            self.bad(node, where, f"must be a mapping of keys ({', '.join(allowed)}), not {_kind(node)}")
            return None
        out: dict[str, yaml.Node] = {}
        for k, v in node.value:
            key = str(self.value(k))
            if key in out:
                self.bad(k, where, f"key {key!r} appears twice")
            elif allowed and key not in allowed:
                self.bad(k, where, f"unknown key {key!r}; allowed: {', '.join(allowed)}")
            else:
                out[key] = v
        return out

    def named(self, node: yaml.Node, where: str) -> Optional[list[tuple[str, yaml.Node]]]:
        """A mapping from user-chosen names to entries."""
        if not isinstance(node, yaml.MappingNode):
            self.bad(node, where, f"must map names to entries, not {_kind(node)}")
            return None
        seen: set[str] = set()
        out = []
        for k, v in node.value:
            name = str(self.value(k))
            if name in seen:
                self.bad(k, where, f"{name!r} appears twice")
                continue
            seen.add(name)
            out.append((name, v))
        return out

    def string(self, node: yaml.Node, where: str) -> Optional[str]:
        v = self.value(node) if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(v, str) or not v.strip():
            self.bad(node, where, f"must be a non-empty text, not {_shown(self, node)}")
            return None
        return v

    def integer(self, node: yaml.Node, where: str, minimum: int = 1) -> Optional[int]:
        v = self.value(node) if isinstance(node, yaml.ScalarNode) else None
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            self.bad(node, where, f"must be a whole number >= {minimum}, not {_shown(self, node)}")
            return None
        return v

    def number(self, node: yaml.Node, where: str, lo: float, hi: float) -> Optional[float]:
        v = self.value(node) if isinstance(node, yaml.ScalarNode) else None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (lo <= v <= hi) or math.isnan(v):
            self.bad(node, where, f"must be a number from {lo:g} to {hi:g}, not {_shown(self, node)}")
            return None
        return float(v)

    def items(self, node: yaml.Node, where: str) -> list[yaml.Node]:
        """A list, or one scalar standing for a list of one."""
        if isinstance(node, yaml.SequenceNode):
            if not node.value:
                self.bad(node, where, "must not be empty")
            return list(node.value)
        if isinstance(node, yaml.ScalarNode):
            return [node]
        self.bad(node, where, f"must be a list, not {_kind(node)}")
        return []

    def path(self, node: yaml.Node, where: str, what: str = "file") -> Optional[Path]:
        text = self.string(node, where)
        if text is None:
            return None
        p = Path(text).expanduser()
        p = p if p.is_absolute() else self.base / p
        if not p.exists():
            self.bad(node, where, f"{what} {text!r} does not exist (looked at {p})")
            return None
        return p


def _kind(node: yaml.Node) -> str:
    return {yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list"}.get(type(node), "a single value")


def _shown(w: _Walk, node: yaml.Node) -> str:
    return repr(w.value(node)) if isinstance(node, yaml.ScalarNode) else _kind(node)


# ---------------------------------------------------------------------------------- the reader
def load_plan(path: str | Path, *, shape_probe: Optional[ShapeProbe] = None,
              fit_check: Optional[FitCheck] = None) -> Plan:
    """Read and validate a plan file; raise :class:`PlanError` listing every problem found.

    ``shape_probe`` gives a model's input shape (default :func:`cheap_input_shape`, no TensorFlow);
    ``fit_check`` checks a dataset against it (default :func:`check_dataset_fits`).
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(f"Plan file {p} does not exist.")
    text = p.read_text(encoding="utf-8", errors="replace")
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise PlanError(p, [(line, f"not valid YAML: {getattr(e, 'problem', None) or e}")]) from None
    finally:
        loader.dispose()
    w = _Walk(loader, p.resolve().parent)
    if root is None:
        raise PlanError(p, [(1, "the file is empty; a plan needs at least models and recipes")])
    top = w.mapping(root, "", TOP_KEYS)
    if top is None:
        raise PlanError(p, w.problems)
    for required in ("models", "recipes"):
        if required not in top:
            w.bad(root, "", f"the required key {required!r} is missing")

    datasets = _datasets(w, top.get("datasets"))
    models = _models(w, top.get("models"), datasets)
    recipe_files = [(f, n) for n in (w.items(top["recipe_files"], "recipe_files") if "recipe_files" in top else [])
                    if (f := w.path(n, "recipe_files", "recipe file")) is not None]
    recipes = _recipes(w, top.get("recipes"), recipe_files)
    targets = _targets(w, top.get("targets"))
    delegates = _delegates(w, top.get("delegates"))
    kw: dict[str, Any] = {}
    if "threads" in top:
        kw["threads"] = tuple(t for n in w.items(top["threads"], "threads") if (t := w.integer(n, "threads")))
    for key, minimum in (("runs", 1), ("warmup", 0), ("repeats", 1)):
        if key in top and (v := w.integer(top[key], key, minimum)) is not None:
            kw[key] = v
    for key in ("tag", "baseline"):
        if key in top and (v := w.string(top[key], key)) is not None:
            kw[key] = v
    if "bench" in top:
        kw["bench"] = read_bench(w, top["bench"])
    if "thresholds" in top:
        kw["thresholds"] = _thresholds(w, top["thresholds"])
    if "cache" in top and (c := w.string(top["cache"], "cache")) is not None:
        cp = Path(c).expanduser()
        kw["cache"] = cp if cp.is_absolute() else w.base / cp
    _check_fits(w, models, shape_probe or cheap_input_shape, fit_check or check_dataset_fits)
    if w.problems:
        raise PlanError(p, w.problems)
    return Plan(path=p.resolve(), models=tuple(m for m, _ in models), recipes=tuple(recipes),
                targets=targets, delegates=delegates, datasets=tuple(datasets.values()), **kw)


def _preprocess(w: _Walk, node: yaml.Node, where: str) -> Optional[Preprocess]:
    m = w.mapping(node, where, PREPROCESS_KEYS)
    if m is None:
        return None
    kw: dict[str, Any] = {}
    for key, value in m.items():  # each setting on its own line, every wrong one listed
        try:
            kw[key] = preprocess_value(key, w.value(value))
        except DatasetError as e:
            w.bad(value, f"{where}.{key}", str(e))
    if len(kw) < len(m):
        return None
    try:  # settings that do not fit together (three means for grayscale)
        return Preprocess(**kw)
    except DatasetError as e:
        w.bad(node, where, str(e))
        return None


def _datasets(w: _Walk, node: Optional[yaml.Node]) -> dict[str, DatasetSpec]:
    out: dict[str, DatasetSpec] = {}
    for name, entry in (w.named(node, "datasets") or []) if node is not None else []:
        where = f"datasets.{name}"
        if isinstance(entry, yaml.ScalarNode):
            spec_node, pre = entry, None
        else:
            m = w.mapping(entry, where, DATASET_KEYS)
            if m is None:
                continue
            if "spec" not in m:
                w.bad(entry, where, "the key 'spec' (a bundled set, a folder or a .npz/.npy file) is missing")
                continue
            spec_node = m["spec"]
            pre = _preprocess(w, m["preprocess"], f"{where}.preprocess") if "preprocess" in m else None
        spec = _dataset_spec(w, spec_node, where)
        if spec is not None:
            out[name] = DatasetSpec(name, spec, pre)
    return out


_BUNDLED = ("digits", "photos")


def _dataset_spec(w: _Walk, node: yaml.Node, where: str) -> Optional[str]:
    """A dataset spec with its path made absolute and checked to exist (splits kept)."""
    text = w.string(node, where)
    if text is None:
        return None
    base, _, part = text.rpartition(":")
    if part not in ("train", "test"):
        base, part = text, ""
    if base in _BUNDLED:
        return text
    p = Path(base).expanduser()
    p = p if p.is_absolute() else w.base / p
    if not p.exists():
        w.bad(node, where, f"dataset {base!r} is neither a bundled set ({', '.join(_BUNDLED)}) nor an "
                           f"existing folder or .npz/.npy file (looked at {p})")
        return None
    return f"{p}:{part}" if part else str(p)


def _models(w: _Walk, node: Optional[yaml.Node], datasets: Mapping[str, DatasetSpec]
            ) -> list[tuple[ModelSpec, yaml.Node]]:
    out = []
    for name, entry in (w.named(node, "models") or []) if node is not None else []:
        where = f"models.{name}"
        if not is_valid_name(name):
            w.bad(entry, where, f"a model name uses {NAME_RULE}")
        if isinstance(entry, yaml.ScalarNode):
            path = w.path(entry, where, "model")
            if path is not None:
                out.append((ModelSpec(name, path), entry))
            continue
        m = w.mapping(entry, where, MODEL_KEYS)
        if m is None:
            continue
        if "path" not in m:
            w.bad(entry, where, "the key 'path' (the model file or SavedModel folder) is missing")
            continue
        path = w.path(m["path"], f"{where}.path", "model")
        ds = None
        if "dataset" in m:
            ref = w.string(m["dataset"], f"{where}.dataset")
            if ref in datasets:
                ds = datasets[ref]
            elif ref is not None:
                spec = _dataset_spec(w, m["dataset"], f"{where}.dataset")
                ds = DatasetSpec(ref, spec) if spec else None
        pre = _preprocess(w, m["preprocess"], f"{where}.preprocess") if "preprocess" in m else None
        task = w.string(m["task"], f"{where}.task") if "task" in m else "auto"
        if task is not None and task not in TASKS:
            w.bad(m["task"], f"{where}.task", f"task must be one of {', '.join(TASKS)}, not {task!r}")
        if path is not None:
            out.append((ModelSpec(name, path, ds, pre or (ds.preprocess if ds else None), task or "auto"), entry))
    return out


def _recipes(w: _Walk, node: Optional[yaml.Node], recipe_files: Sequence[tuple[Path, yaml.Node]]) -> list[Any]:
    if node is None:
        return []
    known: dict[str, Any] = dict(recipes_mod.PRESETS)
    for f, f_node in recipe_files:
        try:
            known.update(recipes_mod.load_recipe_file(f))
        except UserError as e:
            w.bad(f_node, "recipe_files", str(e))
    out: list[Any] = []
    for item in w.items(node, "recipes"):
        if isinstance(item, yaml.MappingNode):  # an inline recipe: {name: ..., base: ..., ...}
            data = w.value(item)
            name = data.pop("name", None)
            if not isinstance(name, str):
                w.bad(item, "recipes", "an inline recipe needs a 'name'")
                continue
            try:
                r = recipes_mod.from_mapping(name, data, known, "inline recipe")
            except UserError as e:
                w.bad(item, "recipes", str(e))
                continue
            known[name] = r
        else:
            name = w.string(item, "recipes")
            if name is None:
                continue
            try:
                r = known[name] if name in known else recipes_mod.resolve([name], [], define_hint=_DEFINE_HINT)[0]
            except UserError as e:
                w.bad(item, "recipes", str(e))
                continue
        if any(x.name == r.name for x in out):
            w.bad(item, "recipes", f"recipe {r.name!r} is listed twice")
            continue
        out.append(r)
    return out


def _targets(w: _Walk, node: Optional[yaml.Node]) -> tuple[TargetSpec, ...]:
    if node is None:
        return (TargetSpec("host"),)
    out: list[TargetSpec] = []
    for item in w.items(node, "targets"):
        t = _target(w, item)
        if t is None:
            continue
        if t in out:
            w.bad(item, "targets", f"target {t.name!r} is listed twice")
            continue
        out.append(t)
    return tuple(out)


def _target(w: _Walk, item: yaml.Node) -> Optional[TargetSpec]:
    if isinstance(item, yaml.MappingNode):  # {all: true, server: HOST:PORT, min_sdk: 29, abi: arm64-v8a}
        m = w.mapping(item, "targets", TARGET_FILTER_KEYS)
        if m is None:
            return None
        if "all" not in m or w.value(m["all"]) is not True:
            w.bad(item, "targets", "a filtered entry reads {all: true, min_sdk: N, abi: NAME, server: HOST:PORT}")
            return None
        kw: dict[str, Any] = {}
        if "min_sdk" in m:
            kw["min_sdk"] = w.integer(m["min_sdk"], "targets.min_sdk")
        if "abi" in m:
            kw["abi"] = w.string(m["abi"], "targets.abi")
        if "server" in m:
            text = w.string(m["server"], "targets.server")
            if text is not None:
                try:
                    kw["server"] = parse_target(f"adb://{text}/").server
                except UserError:
                    w.bad(m["server"], "targets.server", f"{text!r} is not an adb server address HOST:PORT")
        return TargetSpec("all", **kw)
    text = w.string(item, "targets")
    if text is None:
        return None
    text = text.strip()
    if text == "host":
        return TargetSpec("host")
    if text == "all":
        return TargetSpec("all")
    if not text.startswith("adb"):
        if any(c.isspace() or c in "/'\"" for c in text):
            w.bad(item, "targets", f"{text!r} is not a target: write host, all, a device serial, adb:SERIAL "
                                   "or adb://HOST:PORT/SERIAL")
            return None
        text = f"adb:{text}"
    try:
        dt = parse_target(text)
    except UserError as e:
        w.bad(item, "targets", str(e))
        return None
    if dt.serial is None:
        w.bad(item, "targets", f"{text!r} names no device: give its serial (or use all)")
        return None
    return TargetSpec("device", serial=dt.serial, server=dt.server if text.startswith("adb://") else None)


def _delegates(w: _Walk, node: Optional[yaml.Node]) -> tuple[str, ...]:
    if node is None:
        return ("xnnpack",)
    known = tuple(dict.fromkeys(HOST_DELEGATES + DEVICE_DELEGATES))
    out: list[str] = []
    for item in w.items(node, "delegates"):
        name = w.string(item, "delegates")
        if name is None:
            continue
        if name not in known:
            w.bad(item, "delegates", f"unknown delegate {name!r}; known: {', '.join(known)} "
                                     f"(host: {', '.join(HOST_DELEGATES)}; devices: {', '.join(DEVICE_DELEGATES)})")
        elif name not in out:
            out.append(name)
    return tuple(out)


def _thresholds(w: _Walk, node: yaml.Node) -> Thresholds:
    m = w.mapping(node, "thresholds", THRESHOLD_KEYS) or {}
    kw: dict[str, Any] = {}
    if "min_effect" in m and (v := w.number(m["min_effect"], "thresholds.min_effect", 0.0, 1.0)) is not None:
        kw["min_effect"] = v
    if "max_accuracy_drop" in m and (
            v := w.number(m["max_accuracy_drop"], "thresholds.max_accuracy_drop", 0.0, 100.0)) is not None:
        kw["max_accuracy_drop"] = v
    return Thresholds(**kw)


# --------------------------------------------------------------------- does the dataset fit?
def _check_fits(w: _Walk, models: Sequence[tuple[ModelSpec, yaml.Node]], probe: ShapeProbe,
                check: FitCheck) -> None:
    for model, node in models:
        if model.dataset is None:
            continue
        try:
            found = probe(model.path)
            if found is not None:
                check(model.dataset, model.preprocess, found[0], found[1], f"model {model.name} ({model.path.name})")
        except UserError as e:
            w.bad(node, f"models.{model.name}", str(e))
        except Exception as e:  # a dataset that cannot be read at all: say so, keep listing
            w.bad(node, f"models.{model.name}", f"dataset {model.dataset.spec!r} could not be read: {e}")


def check_dataset_fits(ds: DatasetSpec, pre: Optional[Preprocess], input_shape: tuple, dtype: str,
                       where: str) -> None:
    """Open the dataset (no TensorFlow) and check one sample against the model's input."""
    from tflite_deploy.datasets import open_dataset

    dataset = open_dataset(ds.spec, pre)
    if len(dataset) == 0:
        raise UserError(f"Dataset {ds.spec!r} has no samples (an empty folder, or a split of too few).")
    if dataset.input_names:  # arrays by input name: matched and checked by name when the cell converts
        return
    dataset.check_fits(input_shape, dtype, where)


# --------------------------------------------------------------------- targets, resolved
def resolve_targets(plan: Plan, list_devices: Callable[[Optional[AdbServer]], Sequence[Any]]
                    ) -> tuple[TargetSpec, ...]:
    """Concrete targets: ``all`` entries replaced by the usable devices that pass their filters.

    ``list_devices(server)`` returns :class:`tflite_deploy.adb.DeviceInfo`-like objects (``serial``,
    ``usable``, ``sdk``, ``abis``); the lead wires it to :func:`tflite_deploy.adb.list_devices`.
    """
    out: list[TargetSpec] = []
    for t in plan.targets:
        if t.kind != "all":
            if t not in out:
                out.append(t)
            continue
        for d in list_devices(t.server):
            if d.usable and t.accepts(d.sdk, d.abis):
                concrete = TargetSpec("device", serial=d.serial, server=t.server)
                if concrete not in out:
                    out.append(concrete)
    return tuple(out)
