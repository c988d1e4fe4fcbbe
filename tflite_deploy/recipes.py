"""Recipes: named, serialisable descriptions of how a variant is made.

A recipe is data. Conversion code reads its fields (weights, activations, io, ...) and never
branches on a preset's name, so a user recipe that spells out the same fields as ``int8`` gives
exactly the same file.

User recipes live in a YAML or TOML file::

    # recipes.yaml
    recipes:
      int8-pt:            # the new recipe's name
        base: int8        # start from a preset (or another recipe defined earlier in the file)
        per_channel: false
      int8-head-float:
        base: int8
        float_layers: [logits]
        description: int8 body, float classifier head
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from tflite_deploy.errors import OptimizeStepError, RecipeError
from tflite_deploy.vocabulary import NAME_RULE, is_valid_name

WEIGHT_TYPES = ("float32", "float16", "int8", "int4")
#: Blockwise weight quantization (AI Edge Quantizer, .tflite sources): values per block; 0 is none.
BLOCK_SIZES = (0, 32, 64, 128, 256)
ACTIVATION_TYPES = ("float32", "int8", "int16")
IO_TYPES = ("float32", "int8", "uint8", "int16")

# ----------------------------------------------------------------------------- optimize steps
#: TF-MOT techniques a recipe can ask for, and whether each ends in QAT (then it converts to int8 only).
OPTIMIZE_TECHNIQUES: dict[str, bool] = {"qat": True, "prune": False, "cluster": False, "pqat": True,
                                        "cqat": True, "pcqat": True}
SCHEDULES = ("polynomial", "constant")
#: Centroid initialisations, by our name -> TF-MOT's CentroidInitialization member.
CENTROID_INITS = {"kmeans++": "KMEANS_PLUS_PLUS", "linear": "LINEAR", "density": "DENSITY_BASED",
                  "random": "RANDOM"}
DEFAULT_SPARSITY = 0.75
DEFAULT_CLUSTERS = 16
DEFAULT_EPOCHS = 2


def knob_problem(sparsity: Any, schedule: Any, clusters: Any, init: Any, epochs: Any, batch_size: Any,
                 learning_rate: Any) -> str | None:
    """What is wrong with a technique's settings, or None: the one check for recipes and ``optimize``."""
    if not (isinstance(sparsity, (int, float)) and 0.0 < sparsity < 1.0):
        return f"sparsity is a fraction between 0 and 1 (e.g. 0.75), not {sparsity!r}"
    if schedule not in SCHEDULES:
        return f"schedule is one of {', '.join(SCHEDULES)}, not {schedule!r}"
    if not isinstance(clusters, int) or isinstance(clusters, bool) or not 2 < clusters <= 256:
        return f"clusters is a whole number from 3 to 256, not {clusters!r}"
    if init not in CENTROID_INITS:
        return f"init is one of {', '.join(CENTROID_INITS)}, not {init!r}"
    if not isinstance(epochs, int) or epochs < 1:
        return f"epochs must be at least 1, not {epochs!r}"
    if not isinstance(batch_size, int) or batch_size < 1:
        return f"batch_size must be at least 1, not {batch_size!r}"
    if not (isinstance(learning_rate, (int, float)) and learning_rate > 0):
        return f"learning_rate must be positive, not {learning_rate!r}"
    return None


@dataclass(frozen=True)
class OptimizeStep:
    """One TF-MOT fine-tuning step: what a recipe applies before conversion, and the settings
    ``optimize()`` takes (the one record of a technique and its knobs; stages read the ones they need)."""

    technique: str
    sparsity: float = DEFAULT_SPARSITY          # prune: target fraction of zero weights
    schedule: str = "polynomial"                # prune: polynomial (0 -> target) or constant
    clusters: int = DEFAULT_CLUSTERS            # cluster: centroids per kernel
    init: str = "kmeans++"                      # cluster: centroid initialisation
    epochs: int = DEFAULT_EPOCHS                # per stage
    batch_size: int = 32                        # per replica
    learning_rate: float = 1e-3                 # Adam

    def __post_init__(self) -> None:
        if self.technique not in OPTIMIZE_TECHNIQUES:
            raise OptimizeStepError(f"optimize step needs technique: one of {', '.join(OPTIMIZE_TECHNIQUES)} "
                                    f"(got {self.technique!r}).")
        problem = knob_problem(self.sparsity, self.schedule, self.clusters, self.init, self.epochs,
                               self.batch_size, self.learning_rate)
        if problem:
            raise OptimizeStepError(f"optimize step {self.technique}: {problem}")

    @property
    def quantizes(self) -> bool:
        """QAT techniques train fake-quant ranges: they convert with a full-integer recipe only."""
        return OPTIMIZE_TECHNIQUES[self.technique]

    @classmethod
    def from_mapping(cls, step: Any, where: str) -> "OptimizeStep":
        """Parse a step table from a recipe file or sidecar; errors name the recipe and the key."""
        if not isinstance(step, Mapping):
            raise RecipeError(f"{where}: an optimize step is a table such as {{technique: prune, sparsity: 0.5}}")
        unknown = sorted(set(map(str, step)) - _STEP_KEYS)
        if unknown:
            raise RecipeError(f"{where}: optimize step has unknown key(s) {', '.join(unknown)}. "
                              f"Allowed: {', '.join(sorted(_STEP_KEYS))}.")
        try:
            return cls(**step)
        except TypeError:
            raise RecipeError(f"{where}: optimize step needs technique: one of {', '.join(OPTIMIZE_TECHNIQUES)}"
                              ) from None
        except RecipeError as e:
            raise RecipeError(f"{where}: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_STEP_KEYS = {f.name for f in dataclasses.fields(OptimizeStep)}


@dataclass(frozen=True)
class Recipe:
    """How one variant of a model is made.

    - ``weights``: storage type of the weights (float32, float16, int8, int4; int4 only through the
      AI Edge Quantizer, i.e. for a float ``.tflite`` source).
    - ``activations``: type the activations are computed in: float32 (with int8 weights this is
      dynamic-range quantization), int8 (full integer), int16 (16x8 quantization).
    - ``io``: type of the model's inputs and outputs (float32 keeps float I/O around an integer body).
    - ``per_channel``: one scale per output channel for conv/dense weights (int8 only).
    - ``calibration_samples``: how many dataset samples calibrate activation ranges.
    - ``float_layers`` / ``float_ops``: layers (by TFLite tensor/op name, as ``inspect`` shows) or op
      types (e.g. ``MEAN``) kept in float in a full-integer model: selective quantization.
    - ``allow_float_fallback``: let ops without an integer kernel stay float instead of failing.
    - ``weight_only``: weights stored quantized and dequantized before a float op (AI Edge
      Quantizer's weight-only mode) instead of dynamic-range integer kernels.
    - ``block_size``: blockwise weight scales (32, 64, 128 or 256 values per block; AI Edge
      Quantizer only); 0 uses ``per_channel``.
    - ``optimize``: optimization steps applied before conversion (filled by ``optimize``).
    """

    name: str
    weights: str = "float32"
    activations: str = "float32"
    io: str = "float32"
    per_channel: bool = True
    calibration_samples: int = 200
    float_layers: tuple[str, ...] = ()
    float_ops: tuple[str, ...] = ()
    allow_float_fallback: bool = False
    weight_only: bool = False
    block_size: int = 0
    optimize: tuple["OptimizeStep", ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        # API callers may give steps as mappings: parse them here, once
        steps = tuple(s if isinstance(s, OptimizeStep) else OptimizeStep.from_mapping(s, f"Recipe {self.name!r}")
                      for s in self.optimize)
        object.__setattr__(self, "optimize", steps)
        _validate(self)

    @property
    def needs_calibration(self) -> bool:
        """Full-integer recipes need a representative dataset."""
        return self.activations != "float32"

    @property
    def needs_aeq(self) -> bool:
        """Settings only the AI Edge Quantizer offers (the TF converter path refuses them)."""
        return self.weights == "int4" or self.weight_only or bool(self.block_size)

    @property
    def is_selective(self) -> bool:
        return bool(self.float_layers or self.float_ops)

    def summary(self) -> str:
        """A short description, e.g. 'int8, float I/O' or 'int8 weights, dynamic, per-tensor'."""
        if self.weights == "float32":
            parts = ["float32"]
        elif self.weights == "float16":
            parts = ["fp16 weights"]
        elif self.activations == "float32":
            parts = [f"{self.weights} weights, {'weight-only' if self.weight_only else 'dynamic'}"]
        else:
            act = "int8" if self.activations == "int8" else "int16x8"
            parts = [act, "float I/O" if self.io == "float32" else f"{self.io} I/O"]
        if self.block_size:
            parts.append(f"blocks of {self.block_size}")
        elif self.weights in ("int8", "int4") and not self.per_channel:
            parts.append("per-tensor")
        if self.is_selective:
            parts.append(f"{len(self.float_layers) + len(self.float_ops)} kept float")
        if self.allow_float_fallback:
            parts.append("float fallback")
        return ", ".join(parts)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Recipe":
        """Inverse of :meth:`to_dict` (lists back to tuples)."""
        return cls(**{**d, "float_layers": tuple(d.get("float_layers", ())),
                      "float_ops": tuple(d.get("float_ops", ())), "optimize": tuple(d.get("optimize", ()))})

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["float_layers"] = list(self.float_layers)
        d["float_ops"] = list(self.float_ops)
        d["optimize"] = [s.to_dict() for s in self.optimize]
        return d


def _validate(r: Recipe) -> None:
    def bad(msg: str) -> RecipeError:
        return RecipeError(f"Recipe {r.name!r}: {msg}")

    if not is_valid_name(r.name):
        raise bad(f"a recipe name uses {NAME_RULE}")
    if r.weights not in WEIGHT_TYPES:
        raise bad(f"weights must be one of {', '.join(WEIGHT_TYPES)}, not {r.weights!r}")
    if r.activations not in ACTIVATION_TYPES:
        raise bad(f"activations must be one of {', '.join(ACTIVATION_TYPES)}, not {r.activations!r}")
    if r.io not in IO_TYPES:
        raise bad(f"io must be one of {', '.join(IO_TYPES)}, not {r.io!r}")
    if r.weights == "int4" and r.activations != "float32":
        raise bad("int4 weights go with float32 activations (dynamic or weight_only); the AI Edge "
                  "Quantizer has no int4 full-integer mode for general models")
    if r.activations != "float32" and r.weights != "int8":
        raise bad(f"{r.activations} activations need int8 weights (weights is {r.weights!r})")
    if r.io != "float32" and r.activations == "float32":
        raise bad(f"{r.io} I/O needs integer activations; set activations to int8 or int16")
    if r.activations == "int8" and r.io not in ("float32", "int8", "uint8"):
        raise bad(f"an int8 model takes float32, int8 or uint8 I/O, not {r.io!r}")
    if r.activations == "int16" and r.io not in ("float32", "int16"):
        raise bad(f"an int16x8 model takes float32 or int16 I/O, not {r.io!r}")
    if not all(isinstance(v, bool) for v in (r.per_channel, r.allow_float_fallback, r.weight_only)):
        raise bad("per_channel, allow_float_fallback and weight_only are true or false")
    if r.weight_only and (r.weights not in ("int8", "int4") or r.activations != "float32"):
        raise bad("weight_only needs int8 or int4 weights and float32 activations")
    if r.block_size not in BLOCK_SIZES or isinstance(r.block_size, bool):
        raise bad(f"block_size must be one of {', '.join(map(str, BLOCK_SIZES))} (0: no blocks), "
                  f"not {r.block_size!r}")
    if r.block_size and (r.weights not in ("int8", "int4") or r.activations != "float32"):
        raise bad("block_size (blockwise weight scales) needs int8 or int4 weights and float32 activations")
    if not isinstance(r.calibration_samples, int) or r.calibration_samples < 1:
        raise bad(f"calibration_samples must be a positive whole number, not {r.calibration_samples!r}")
    if r.is_selective and r.activations == "float32":
        raise bad("float_layers/float_ops select layers to keep in float in a full-integer model; "
                  "this recipe has float activations, so every layer is float already")


_PRESETS: tuple[Recipe, ...] = (
    Recipe("float32", description="Plain conversion, no quantization: the accuracy reference."),
    Recipe("dynamic", weights="int8",
           description="Dynamic-range: int8 weights, activations quantized on the fly. No data needed."),
    Recipe("int8", weights="int8", activations="int8",
           description="Full integer with float I/O: int8 weights and activations, calibrated."),
    Recipe("int8-io", weights="int8", activations="int8", io="int8",
           description="Full integer with int8 inputs and outputs, for integer-only accelerators."),
    Recipe("float16", weights="float16",
           description="float16 weights: half the size; GPUs compute in fp16, CPUs upcast at load."),
    Recipe("int16x8", weights="int8", activations="int16",
           description="16-bit activations, 8-bit weights: more accurate than int8, "
                       "but no XNNPACK kernels (much slower on CPU)."),
)

PRESETS: dict[str, Recipe] = {r.name: r for r in _PRESETS}
_FIELDS = {f.name for f in dataclasses.fields(Recipe)}


def from_mapping(name: str, data: Mapping[str, Any], known: Mapping[str, Recipe], source: str) -> Recipe:
    """Build a recipe from a mapping, inheriting from ``base`` (a preset or an earlier recipe)."""
    if not isinstance(data, Mapping):
        raise RecipeError(f"{source}: recipe {name!r} must be a table of settings, not {type(data).__name__}")
    allowed_keys = (_FIELDS - {"name"}) | {"base"}
    unknown = sorted(set(map(str, data)) - allowed_keys)
    if unknown:
        allowed = ", ".join(sorted(allowed_keys))
        raise RecipeError(f"{source}: recipe {name!r} has unknown key(s) {', '.join(unknown)}. "
                          f"Allowed keys: {allowed}.")
    values: dict[str, Any] = {}
    base_name = data.get("base")
    if base_name is not None:
        if base_name not in known:
            raise RecipeError(f"{source}: recipe {name!r} has base {base_name!r}, which is not a preset "
                              f"or a recipe defined above it. Known: {', '.join(known)}.")
        values = dataclasses.asdict(known[base_name])
        values["description"] = ""
    values.update({k: v for k, v in data.items() if k != "base"})
    values["name"] = name
    for key in ("float_layers", "float_ops"):
        v = values.get(key, ())
        if isinstance(v, str) or not all(isinstance(x, str) for x in v):
            raise RecipeError(f"{source}: recipe {name!r}: {key} must be a list of names")
        values[key] = tuple(v)
    steps = values.get("optimize", ())
    if isinstance(steps, (str, Mapping)) or not isinstance(steps, (list, tuple)):
        raise RecipeError(f"{source}: recipe {name!r}: optimize is a list of steps such as "
                          "[{technique: prune, sparsity: 0.5}]")
    values["optimize"] = tuple(steps)
    try:
        return Recipe(**values)
    except RecipeError as e:
        raise RecipeError(f"{source}: {e}") from None


def load_recipe_file(path: str | Path) -> dict[str, Recipe]:
    """Read user recipes from YAML (.yaml/.yml) or TOML (.toml); top-level key ``recipes``."""
    p = Path(path)
    if not p.is_file():
        raise RecipeError(f"Recipe file {p} does not exist.")
    text = p.read_text(encoding="utf-8", errors="replace")
    try:
        if p.suffix.lower() == ".toml":
            import tomllib

            doc = tomllib.loads(text)
        elif p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            doc = yaml.safe_load(text)
        else:
            raise RecipeError(f"Recipe file {p}: use a .yaml, .yml or .toml file (got {p.suffix or 'no suffix'!r}).")
    except RecipeError:
        raise
    except Exception as e:  # a YAML/TOML syntax error: say where
        raise RecipeError(f"Recipe file {p} is not valid {p.suffix.lstrip('.').upper()}: {e}") from None
    if not isinstance(doc, Mapping) or set(doc) - {"recipes"} or not isinstance(doc.get("recipes"), Mapping):
        extra = sorted(set(doc) - {"recipes"}) if isinstance(doc, Mapping) else []
        hint = f" Unknown top-level key(s): {', '.join(map(str, extra))}." if extra else ""
        raise RecipeError(f"Recipe file {p} must have one top-level table 'recipes' mapping names to "
                          f"settings.{hint}")
    known: dict[str, Recipe] = dict(PRESETS)
    out: dict[str, Recipe] = {}
    for name, data in doc["recipes"].items():
        r = from_mapping(str(name), data, known, str(p))
        known[r.name] = out[r.name] = r
    return out


def resolve(names: Iterable[str], recipe_files: Iterable[str | Path] = (),
            define_hint: str = "Define your own in a YAML/TOML file given as recipe_files=FILE.") -> list[Recipe]:
    """Turn recipe names into recipes, looking in user files first, then presets.

    ``define_hint`` ends the message for an unknown name: where the caller lets a user define one."""
    available: dict[str, Recipe] = dict(PRESETS)
    for f in recipe_files:
        available.update(load_recipe_file(f))
    out = []
    for n in names:
        if n not in available:
            # optimization recipes are names, not presets: prune50-int8, cluster16-int8, qat-int8, ...
            made = recipe_from_name(n)
            if made is None:
                raise RecipeError(f"Unknown recipe {n!r}. Available: {', '.join(available)}, and optimization "
                                  "recipes such as qat-int8, prune50-int8, cluster16-int8, pqat50-int8, "
                                  "cqat16-int8. " + define_hint, param="recipe_files")
            available[n] = made
        out.append(available[n])
    return out


# ------------------------------------------------------------------------ optimize-made names
#: The shape of optimization recipe names, as ``tflite-deploy recipes`` lists them.
OPTIMIZE_NAME_PATTERNS: tuple[tuple[str, str], ...] = (
    ("qat-<preset>", "quantization-aware training, then an int8 preset (qat-int8)"),
    ("prune<percent>-<preset>", "magnitude pruning to <percent> zeros (default 75), then any preset (prune50-int8)"),
    ("cluster<n>-<preset>", "weight clustering to <n> values per kernel (default 16), then any preset "
                            "(cluster16-int8)"),
    ("pqat<percent>-<preset>", "prune, then sparsity-preserving QAT, then an int8 preset (pqat50-int8)"),
    ("cqat<n>-<preset>", "cluster, then cluster-preserving QAT, then an int8 preset (cqat16-int8)"),
    ("pcqat<percent>c<n>-<preset>", "prune, cluster keeping zeros, QAT keeping both (pcqat50c16-int8)"),
)
_OPT_NAME = re.compile(r"^(?P<tech>pcqat|pqat|cqat|qat|prune|cluster)(?P<num>\d+(?:\.\d+)?)?(?:c(?P<c>\d+))?"
                       r"-(?P<base>[A-Za-z0-9][A-Za-z0-9_.+-]*)$")


def recipe_from_name(name: str) -> Recipe | None:
    """A recipe for names like ``prune50-int8``, ``cluster16-int8``, ``qat-int8``, ``cqat16-int8``,
    ``pqat50-int8``, ``pcqat50c16-int8``: technique, its parameter, ``-``, then a preset to convert
    with. None when the name does not have that shape (``resolve`` then says it is unknown).

    The number is the sparsity in percent for prune/pqat, the number of clusters for cluster/cqat;
    pcqat takes both (``pcqat<sparsity>c<clusters>``). Without a number the defaults apply (75%, 16).
    """
    m = _OPT_NAME.match(name)
    if not m:
        return None
    tech, num, c, base = m["tech"], m["num"], m["c"], m["base"]
    if base not in PRESETS:
        raise RecipeError(f"Recipe {name!r}: {base!r} after the technique is not a preset to convert with; "
                          f"use one of {', '.join(PRESETS)} (e.g. {tech}{num or ''}-int8).")
    if c is not None and tech != "pcqat":
        raise RecipeError(f"Recipe {name!r}: only pcqat takes c<clusters> (e.g. pcqat50c16-int8).")
    knobs: dict[str, Any] = {}
    if num is not None:
        if tech == "qat":
            raise RecipeError(f"Recipe {name!r}: qat takes no number (qat-int8).")
        if tech in ("prune", "pqat", "pcqat"):
            knobs["sparsity"] = float(num) / 100
        else:
            if "." in num:
                raise RecipeError(f"Recipe {name!r}: the number of clusters is a whole number.")
            knobs["clusters"] = int(num)
    if c is not None:
        knobs["clusters"] = int(c)
    step = OptimizeStep.from_mapping({"technique": tech, **knobs}, f"Recipe {name!r}")
    basis = PRESETS[base]
    if step.quantizes and basis.activations != "int8":
        raise RecipeError(f"Recipe {name!r}: {tech} trains for int8 inference; convert it with int8 or int8-io, "
                          f"not {base}.")
    what = {"qat": "QAT", "prune": f"pruned to {step.sparsity:.0%}", "cluster": f"{step.clusters} clusters",
            "pqat": f"pruned to {step.sparsity:.0%}, then sparsity-preserving QAT",
            "cqat": f"{step.clusters} clusters, then cluster-preserving QAT",
            "pcqat": f"pruned to {step.sparsity:.0%}, {step.clusters} clusters, then QAT keeping both"}[tech]
    return dataclasses.replace(basis, name=name, optimize=(step,),
                               description=f"{what} (TF-MOT, trained on --data), then {base}: {basis.description}")
