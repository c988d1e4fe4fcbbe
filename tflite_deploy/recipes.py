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

from tflite_deploy.errors import RecipeError

WEIGHT_TYPES = ("float32", "float16", "int8", "int4")
#: Blockwise weight quantization (AI Edge Quantizer, .tflite sources): values per block; 0 is none.
BLOCK_SIZES = (0, 32, 64, 128, 256)
ACTIVATION_TYPES = ("float32", "int8", "int16")
IO_TYPES = ("float32", "int8", "uint8", "int16")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


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
    optimize: tuple[Mapping[str, Any], ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
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
        d["optimize"] = [dict(s) for s in self.optimize]
        return d


def _validate(r: Recipe) -> None:
    def bad(msg: str) -> RecipeError:
        return RecipeError(f"Recipe {r.name!r}: {msg}")

    if not _NAME_RE.match(r.name or ""):
        raise bad("a recipe name uses letters, digits and . _ + - only (it becomes part of a file name)")
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
    values["optimize"] = tuple(values.get("optimize", ()))
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


def resolve(names: Iterable[str], recipe_files: Iterable[str | Path] = ()) -> list[Recipe]:
    """Turn recipe names into recipes, looking in user files first, then presets."""
    available: dict[str, Recipe] = dict(PRESETS)
    for f in recipe_files:
        available.update(load_recipe_file(f))
    out = []
    for n in names:
        if n not in available:
            # optimization recipes are names, not presets: prune50-int8, cluster16-int8, qat-int8, ...
            from tflite_deploy.optimize.techniques import recipe_from_name

            made = recipe_from_name(n)
            if made is None:
                raise RecipeError(f"Unknown recipe {n!r}. Available: {', '.join(available)}, and optimization "
                                  "recipes such as qat-int8, prune50-int8, cluster16-int8, pqat50-int8, "
                                  "cqat16-int8. Define your own in a YAML/TOML file and pass it with --recipes-file.")
            available[n] = made
        out.append(available[n])
    return out
