"""recipes.py rule by rule: recipe files, inheritance, optimize steps, optimization names, and the
exact words of every error (a user reads them; mutation testing checks a test would notice a change).
Pure Python, no TensorFlow: milliseconds."""

from __future__ import annotations

import re

import pytest

from tflite_deploy.errors import RecipeError
from tflite_deploy.recipes import (
    OPTIMIZE_NAME_PATTERNS,
    PRESETS,
    OptimizeStep,
    Recipe,
    from_mapping,
    knob_problem,
    load_recipe_file,
    recipe_from_name,
    resolve,
)

PRESET_LIST = "float32, dynamic, int8, int8-io, float16, int16x8"
RECIPE_KEYS = ("activations, allow_float_fallback, base, block_size, calibration_samples, description, float_layers, "
               "float_ops, io, optimize, per_channel, weight_only, weights")
STEP_KEYS = "batch_size, clusters, epochs, init, learning_rate, schedule, sparsity, technique"
TECHNIQUES = "qat, prune, cluster, pqat, cqat, pcqat"


def message(fn, *args, **kwargs) -> str:
    with pytest.raises(RecipeError) as err:
        fn(*args, **kwargs)
    return str(err.value)


# ------------------------------------------------------------------------------ technique settings
GOOD = dict(sparsity=0.5, schedule="polynomial", clusters=16, init="kmeans++", epochs=2, batch_size=32,
            learning_rate=1e-3)


@pytest.mark.parametrize("change,problem", [
    (dict(sparsity=0.0), "sparsity is a fraction between 0 and 1 (e.g. 0.75), not 0.0"),
    (dict(sparsity=1.0), "sparsity is a fraction between 0 and 1 (e.g. 0.75), not 1.0"),
    (dict(sparsity="half"), "sparsity is a fraction between 0 and 1 (e.g. 0.75), not 'half'"),
    (dict(schedule="linear"), "schedule is one of polynomial, constant, not 'linear'"),
    (dict(clusters=2), "clusters is a whole number from 3 to 256, not 2"),
    (dict(clusters=257), "clusters is a whole number from 3 to 256, not 257"),
    (dict(clusters=True), "clusters is a whole number from 3 to 256, not True"),
    (dict(clusters=8.0), "clusters is a whole number from 3 to 256, not 8.0"),
    (dict(init="kmeans"), "init is one of kmeans++, linear, density, random, not 'kmeans'"),
    (dict(epochs=0), "epochs must be at least 1, not 0"),
    (dict(epochs=1.5), "epochs must be at least 1, not 1.5"),
    (dict(batch_size=0), "batch_size must be at least 1, not 0"),
    (dict(batch_size=8.0), "batch_size must be at least 1, not 8.0"),
    (dict(learning_rate=0), "learning_rate must be positive, not 0"),
    (dict(learning_rate=-0.1), "learning_rate must be positive, not -0.1"),
    (dict(learning_rate="fast"), "learning_rate must be positive, not 'fast'"),
])
def test_knob_problems_in_full(change, problem):
    assert knob_problem(**{**GOOD, **change}) == problem


@pytest.mark.parametrize("change", [
    dict(sparsity=0.01), dict(sparsity=0.99), dict(sparsity=1e-9), dict(schedule="constant"), dict(clusters=3),
    dict(clusters=256), dict(init="linear"), dict(init="density"), dict(init="random"), dict(epochs=1),
    dict(batch_size=1), dict(learning_rate=1e-9), dict(learning_rate=1),
])
def test_knobs_at_the_edges_are_accepted(change):
    assert knob_problem(**{**GOOD, **change}) is None


# ------------------------------------------------------------------------------ optimize steps
def test_optimize_step_defaults_and_dict():
    s = OptimizeStep("prune")
    assert s.to_dict() == {"technique": "prune", "sparsity": 0.75, "schedule": "polynomial", "clusters": 16,
                           "init": "kmeans++", "epochs": 2, "batch_size": 32, "learning_rate": 1e-3}
    assert OptimizeStep(**s.to_dict()) == s


@pytest.mark.parametrize("technique,quantizes", [("qat", True), ("prune", False), ("cluster", False),
                                                 ("pqat", True), ("cqat", True), ("pcqat", True)])
def test_which_techniques_end_in_qat(technique, quantizes):
    assert OptimizeStep(technique).quantizes is quantizes


def test_optimize_step_errors_in_full():
    assert message(OptimizeStep, "distill") == \
        f"optimize step needs technique: one of {TECHNIQUES} (got 'distill')."
    assert message(OptimizeStep, "prune", sparsity=2) == \
        "optimize step prune: sparsity is a fraction between 0 and 1 (e.g. 0.75), not 2"
    where = "Recipe 'r'"
    assert message(OptimizeStep.from_mapping, ["prune"], where) == \
        "Recipe 'r': an optimize step is a table such as {technique: prune, sparsity: 0.5}"
    assert message(OptimizeStep.from_mapping, {"technique": "prune", "sparsty": 0.5, "rate": 1}, where) == \
        f"Recipe 'r': optimize step has unknown key(s) rate, sparsty. Allowed: {STEP_KEYS}."
    assert message(OptimizeStep.from_mapping, {"sparsity": 0.5}, where) == \
        f"Recipe 'r': optimize step needs technique: one of {TECHNIQUES}"
    assert message(OptimizeStep.from_mapping, {"technique": "cluster", "clusters": 1}, where) == \
        "Recipe 'r': optimize step cluster: clusters is a whole number from 3 to 256, not 1"
    assert OptimizeStep.from_mapping({"technique": "cqat", "clusters": 8}, where) == OptimizeStep("cqat", clusters=8)


def test_recipe_parses_step_mappings_once():
    r = Recipe("r", weights="int8", activations="int8", optimize=({"technique": "pqat", "sparsity": 0.5},))
    assert r.optimize == (OptimizeStep("pqat", sparsity=0.5),)
    assert Recipe("r", optimize=(OptimizeStep("prune"),)).optimize == (OptimizeStep("prune"),)
    assert message(Recipe, "r", optimize=({"technique": "prune", "x": 1},)) == \
        f"Recipe 'r': optimize step has unknown key(s) x. Allowed: {STEP_KEYS}."


# ------------------------------------------------------------------------------ from_mapping
def test_from_mapping_without_base_takes_the_defaults():
    r = from_mapping("mine", {"weights": "float16"}, PRESETS, "f.yaml")
    assert r == Recipe("mine", weights="float16")


def test_from_mapping_inherits_everything_but_the_name_and_description():
    base = Recipe("b", weights="int8", activations="int8", io="uint8", per_channel=False, calibration_samples=7,
                  float_layers=("l",), float_ops=("MEAN",), allow_float_fallback=True,
                  optimize=(OptimizeStep("prune", sparsity=0.5),), description="the base")
    r = from_mapping("child", {"base": "b"}, {"b": base}, "f.yaml")
    assert r == Recipe("child", weights="int8", activations="int8", io="uint8", per_channel=False,
                       calibration_samples=7, float_layers=("l",), float_ops=("MEAN",), allow_float_fallback=True,
                       optimize=(OptimizeStep("prune", sparsity=0.5),), description="")
    r = from_mapping("child", {"base": "b", "description": "mine", "io": "int8"}, {"b": base}, "f.yaml")
    assert r.description == "mine" and r.io == "int8" and r.calibration_samples == 7
    # an explicit null base is no base
    assert from_mapping("c", {"base": None}, {"b": base}, "f.yaml") == Recipe("c")


def test_from_mapping_lists_become_tuples():
    r = from_mapping("m", {"base": "int8", "float_layers": ["a", "b"], "float_ops": ["MEAN"],
                           "optimize": [{"technique": "prune", "sparsity": 0.5}]}, PRESETS, "f.yaml")
    assert r.float_layers == ("a", "b") and r.float_ops == ("MEAN",)
    assert r.optimize == (OptimizeStep("prune", sparsity=0.5),)


@pytest.mark.parametrize("data,problem", [
    (["int8"], "recipe 'x' must be a table of settings, not list"),
    ("int8", "recipe 'x' must be a table of settings, not str"),
    ({"name": "y"}, f"recipe 'x' has unknown key(s) name. Allowed keys: {RECIPE_KEYS}."),
    ({"wieghts": "int8", "bias": 1}, f"recipe 'x' has unknown key(s) bias, wieghts. Allowed keys: {RECIPE_KEYS}."),
    ({"base": "int9"}, f"recipe 'x' has base 'int9', which is not a preset or a recipe defined above it. "
                       f"Known: {PRESET_LIST}."),
    ({"base": "int8", "float_layers": "logits"}, "recipe 'x': float_layers must be a list of names"),
    ({"base": "int8", "float_layers": ["a", 1]}, "recipe 'x': float_layers must be a list of names"),
    ({"base": "int8", "float_ops": "MEAN"}, "recipe 'x': float_ops must be a list of names"),
    ({"base": "int8", "float_ops": [None]}, "recipe 'x': float_ops must be a list of names"),
    ({"base": "int8", "optimize": "prune"}, "recipe 'x': optimize is a list of steps such as "
                                            "[{technique: prune, sparsity: 0.5}]"),
    ({"base": "int8", "optimize": {"technique": "prune"}}, "recipe 'x': optimize is a list of steps such as "
                                                           "[{technique: prune, sparsity: 0.5}]"),
    ({"base": "int8", "optimize": 3}, "recipe 'x': optimize is a list of steps such as "
                                      "[{technique: prune, sparsity: 0.5}]"),
    ({"weights": "int2"}, "Recipe 'x': weights must be one of float32, float16, int8, int4, not 'int2'"),
])
def test_from_mapping_errors_name_the_file_and_recipe(data, problem):
    assert message(from_mapping, "x", data, PRESETS, "my.yaml") == f"my.yaml: {problem}"


# ------------------------------------------------------------------------------ load_recipe_file
def test_recipe_files_by_suffix_any_case(tmp_path):
    (tmp_path / "a.TOML").write_text('[recipes.t]\nbase = "int8"\n')
    (tmp_path / "b.YML").write_text("recipes:\n  y:\n    base: dynamic\n")
    assert load_recipe_file(tmp_path / "a.TOML") == {"t": Recipe("t", weights="int8", activations="int8")}
    assert load_recipe_file(str(tmp_path / "b.YML")) == {"y": Recipe("y", weights="int8")}


def test_recipe_file_order_names_and_presets(tmp_path):
    f = tmp_path / "r.yaml"
    # a later recipe builds on an earlier one; a numeric YAML key is a name; presets are not returned;
    # a bad byte in a comment does not stop the file from loading
    f.write_bytes("recipes:\n  b: {base: int8}\n  8: {base: b, per_channel: false}\n"
                  "  a: {description: \"µ-model\"}  # \xff\n".encode("utf-8").replace(b"\xc3\xbf", b"\xff"))
    out = load_recipe_file(f)
    assert list(out) == ["b", "8", "a"]
    assert out["8"] == Recipe("8", weights="int8", activations="int8", per_channel=False)
    assert out["a"].description == "µ-model"


def test_recipe_file_errors_in_full(tmp_path):
    missing = tmp_path / "none.yaml"
    assert message(load_recipe_file, missing) == f"Recipe file {missing} does not exist."
    assert message(load_recipe_file, tmp_path) == f"Recipe file {tmp_path} does not exist."
    js = tmp_path / "r.json"
    js.write_text("{}")
    assert message(load_recipe_file, js) == f"Recipe file {js}: use a .yaml, .yml or .toml file (got '.json')."
    bare = tmp_path / "recipes"
    bare.write_text("recipes: {}\n")
    assert message(load_recipe_file, bare) == \
        f"Recipe file {bare}: use a .yaml, .yml or .toml file (got 'no suffix')."
    bad_toml = tmp_path / "r.toml"
    bad_toml.write_text("[recipes\n")
    assert message(load_recipe_file, bad_toml).startswith(f"Recipe file {bad_toml} is not valid TOML: ")
    bad_yml = tmp_path / "r.yml"
    bad_yml.write_text("recipes: [unclosed\n")
    assert message(load_recipe_file, bad_yml).startswith(f"Recipe file {bad_yml} is not valid YML: ")
    layout = "must have one top-level table 'recipes' mapping names to settings."
    for text, hint in [("", ""), ("- a\n", ""), ("recipes: [a]\n", ""), ("recipes: 3\n", ""),
                       ("recipes: {}\nzeta: 1\nalpha: 2\n", " Unknown top-level key(s): alpha, zeta."),
                       ("recipe: {}\n", " Unknown top-level key(s): recipe.")]:
        f = tmp_path / "layout.yaml"
        f.write_text(text)
        assert message(load_recipe_file, f) == f"Recipe file {f} {layout}{hint}", text
    f.write_text("recipes: {}\n")
    assert load_recipe_file(f) == {}


# ------------------------------------------------------------------------------ resolve
def test_resolve_user_files_first_later_files_win(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("recipes:\n  int8: {base: int8, per_channel: false}\n  mine: {weights: float16}\n")
    b.write_text("recipes:\n  mine: {base: dynamic}\n")
    assert resolve(["int8"], [a]) == [Recipe("int8", weights="int8", activations="int8", per_channel=False)]
    assert resolve(["mine"], [a, b]) == [Recipe("mine", weights="int8")]
    assert resolve(["mine", "float32", "mine"], [a]) == [Recipe("mine", weights="float16"), PRESETS["float32"],
                                                         Recipe("mine", weights="float16")]
    assert resolve([]) == []
    assert resolve(["int8"]) == [PRESETS["int8"]]


def test_resolve_makes_optimization_recipes_once_per_name():
    first, again, other = resolve(["prune50-int8", "prune50-int8", "qat-int8"])
    assert first == again == recipe_from_name("prune50-int8") and first.optimize == (OptimizeStep("prune", 0.5),)
    assert other.optimize == (OptimizeStep("qat"),)


def test_unknown_recipe_message_in_full(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("recipes:\n  mine: {base: int8}\n")
    tail = (" and optimization recipes such as qat-int8, prune50-int8, cluster16-int8, pqat50-int8, cqat16-int8. "
            "Define your own in a YAML/TOML file given as recipe_files=FILE.")
    assert message(resolve, ["int4"]) == f"Unknown recipe 'int4'. Available: {PRESET_LIST},{tail}"
    assert message(resolve, ["float32", "int4"], [f]) == f"Unknown recipe 'int4'. Available: {PRESET_LIST}, mine,{tail}"


# ------------------------------------------------------------------------------ optimization names
@pytest.mark.parametrize("name,step", [
    ("prune50-int8", OptimizeStep("prune", sparsity=0.5)),
    ("prune12.5-float32", OptimizeStep("prune", sparsity=0.125)),
    ("prune-float16", OptimizeStep("prune")),
    ("cluster8-dynamic", OptimizeStep("cluster", clusters=8)),
    ("cluster-int8", OptimizeStep("cluster")),
    ("qat-int8-io", OptimizeStep("qat")),
    ("pqat60-int8", OptimizeStep("pqat", sparsity=0.6)),
    ("cqat32-int8", OptimizeStep("cqat", clusters=32)),
    ("pcqat50c8-int8", OptimizeStep("pcqat", sparsity=0.5, clusters=8)),
    ("pcqat40-int8", OptimizeStep("pcqat", sparsity=0.4)),
])
def test_names_make_recipes(name, step):
    r = recipe_from_name(name)
    base = PRESETS[name.split("-", 1)[1]]
    assert r.optimize == (step,) and r.name == name
    assert {k: v for k, v in r.to_dict().items() if k not in ("name", "optimize", "description")} == \
        {k: v for k, v in base.to_dict().items() if k not in ("name", "optimize", "description")}


@pytest.mark.parametrize("name,what", [
    ("qat-int8", "QAT"),
    ("prune50-int8", "pruned to 50%"),
    ("cluster8-int8", "8 clusters"),
    ("pqat60-int8", "pruned to 60%, then sparsity-preserving QAT"),
    ("cqat32-int8", "32 clusters, then cluster-preserving QAT"),
    ("pcqat50c8-int8", "pruned to 50%, 8 clusters, then QAT keeping both"),
])
def test_name_descriptions(name, what):
    assert recipe_from_name(name).description == \
        f"{what} (TF-MOT, trained on --data), then int8: {PRESETS['int8'].description}"


@pytest.mark.parametrize("name", ["int8", "mine", "prune50", "prune50_int8", "prune50int8", "Prune50-int8",
                                  "xprune50-int8", "prune-", "qat--int8", "prunex-int8", "pcqatc8-int8x y"])
def test_names_of_another_shape_are_not_optimization_recipes(name):
    assert recipe_from_name(name) is None


@pytest.mark.parametrize("name,problem", [
    ("prune50-int4", f"'int4' after the technique is not a preset to convert with; use one of {PRESET_LIST} "
                     "(e.g. prune50-int8)."),
    ("qat-mine", f"'mine' after the technique is not a preset to convert with; use one of {PRESET_LIST} "
                 "(e.g. qat-int8)."),
    ("cqat16c8-int8", "only pcqat takes c<clusters> (e.g. pcqat50c16-int8)."),
    ("qat8-int8", "qat takes no number (qat-int8)."),
    ("cluster16.5-int8", "the number of clusters is a whole number."),
    ("cqat8.0-int8", "the number of clusters is a whole number."),
    ("prune100-int8", "optimize step prune: sparsity is a fraction between 0 and 1 (e.g. 0.75), not 1.0"),
    ("cluster2-int8", "optimize step cluster: clusters is a whole number from 3 to 256, not 2"),
    ("pcqat50c300-int8", "optimize step pcqat: clusters is a whole number from 3 to 256, not 300"),
    ("qat-float16", "qat trains for int8 inference; convert it with int8 or int8-io, not float16."),
    ("pqat50-int16x8", "pqat trains for int8 inference; convert it with int8 or int8-io, not int16x8."),
    ("cqat16-dynamic", "cqat trains for int8 inference; convert it with int8 or int8-io, not dynamic."),
])
def test_name_errors_in_full(name, problem):
    assert message(recipe_from_name, name) == f"Recipe {name!r}: {problem}"


def test_name_patterns_and_their_examples_work():
    for pattern, text in OPTIMIZE_NAME_PATTERNS:
        technique = re.match(r"[a-z]+", pattern).group()
        name = pattern.replace("<percent>c<n>", "50c16").replace("<percent>", "50").replace("<n>", "16") \
            .replace("<preset>", "int8")
        assert recipe_from_name(name).optimize[0].technique == technique, pattern
        example = re.search(r"\(([a-z0-9.-]+)\)$", text)
        assert example and recipe_from_name(example.group(1)).optimize[0].technique == technique, text


def test_preset_descriptions_are_sentences():
    for r in PRESETS.values():
        assert r.description.endswith(".") and len(r.description.split()) > 3, r.description


# ------------------------------------------------------------------------ recipe fields, one by one
@pytest.mark.parametrize("fields,message", [
    (dict(name="a b"), "Recipe 'a b': a recipe name uses letters, digits and . _ + - only, starting with a "
                       "letter or digit (it becomes part of a file name)"),
    (dict(name=""), "Recipe '': a recipe name uses letters"),
    (dict(weights="int2"), "Recipe 'r': weights must be one of float32, float16, int8, int4, not 'int2'"),
    (dict(weights="int8", activations="int4"), "Recipe 'r': activations must be one of float32, int8, int16, "
                                               "not 'int4'"),
    (dict(io="int4"), "Recipe 'r': io must be one of float32, int8, uint8, int16, not 'int4'"),
    (dict(weights="float16", activations="int8"), "Recipe 'r': int8 activations need int8 weights (weights is "
                                                  "'float16')"),
    (dict(weights="float32", activations="int16"), "Recipe 'r': int16 activations need int8 weights"),
    (dict(io="int8"), "Recipe 'r': int8 I/O needs integer activations; set activations to int8 or int16"),
    (dict(weights="int8", io="uint8"), "Recipe 'r': uint8 I/O needs integer activations"),
    (dict(weights="int8", activations="int8", io="int16"), "Recipe 'r': an int8 model takes float32, int8 or "
                                                           "uint8 I/O, not 'int16'"),
    (dict(weights="int8", activations="int16", io="int8"), "Recipe 'r': an int16x8 model takes float32 or int16 "
                                                           "I/O, not 'int8'"),
    (dict(weights="int8", activations="int16", io="uint8"), "Recipe 'r': an int16x8 model takes float32 or "
                                                            "int16 I/O, not 'uint8'"),
    (dict(per_channel="yes"), "Recipe 'r': per_channel, allow_float_fallback and weight_only are true or false"),
    (dict(allow_float_fallback=1), "Recipe 'r': per_channel, allow_float_fallback and weight_only are true or "
                                   "false"),
    (dict(weight_only=0), "Recipe 'r': per_channel, allow_float_fallback and weight_only are true or false"),
    (dict(calibration_samples=0), "Recipe 'r': calibration_samples must be a positive whole number, not 0"),
    (dict(calibration_samples=2.5), "Recipe 'r': calibration_samples must be a positive whole number, not 2.5"),
    (dict(float_ops=("MEAN",)), "Recipe 'r': float_layers/float_ops select layers to keep in float in a "
                                "full-integer model; this recipe has float activations, so every layer is "
                                "float already"),
    (dict(weights="int8", float_layers=("a",)), "Recipe 'r': float_layers/float_ops select layers"),
])
def test_recipe_validation_messages(fields, message):
    with pytest.raises(RecipeError) as err:
        Recipe(**{"name": "r", **fields})
    assert str(err.value).startswith(message), str(err.value)


@pytest.mark.parametrize("fields", [
    dict(name="a.b_c+d-1"), dict(weights="float16"), dict(weights="int8"),
    dict(weights="int8", activations="int8", io="uint8"), dict(weights="int8", activations="int8", io="int8"),
    dict(weights="int8", activations="int16", io="int16"), dict(weights="int8", activations="int16"),
    dict(calibration_samples=1), dict(weights="int8", activations="int8", float_layers=("a",)),
])
def test_valid_recipes_are_accepted(fields):
    r = Recipe(**{"name": "r", **fields})
    assert Recipe.from_dict(r.to_dict()) == r


def test_recipe_summaries():
    assert PRESETS["float32"].summary() == "float32"
    assert PRESETS["float16"].summary() == "fp16 weights"
    assert PRESETS["dynamic"].summary() == "int8 weights, dynamic"
    assert PRESETS["int8"].summary() == "int8, float I/O"
    assert PRESETS["int8-io"].summary() == "int8, int8 I/O"
    assert Recipe("x", weights="int8", activations="int16").summary() == "int16x8, float I/O"
    r = Recipe("x", weights="int8", activations="int8", io="uint8", per_channel=False, float_layers=("a",),
               float_ops=("MEAN", "SOFTMAX"), allow_float_fallback=True)
    assert r.summary() == "int8, uint8 I/O, per-tensor, 3 kept float, float fallback"
    assert Recipe("x", weights="int8", per_channel=False).summary() == "int8 weights, dynamic, per-tensor"
    assert Recipe("x", weights="float16", per_channel=False).summary() == "fp16 weights"


def test_recipe_dict_round_trip_and_flags():
    r = Recipe("x", weights="int8", activations="int8", io="int8", per_channel=False, calibration_samples=50,
               float_layers=("l1",), float_ops=("MEAN",), allow_float_fallback=True,
               optimize=({"technique": "prune", "sparsity": 0.5},), description="d")
    d = r.to_dict()
    assert d == {"name": "x", "weights": "int8", "activations": "int8", "io": "int8", "per_channel": False,
                 "calibration_samples": 50, "float_layers": ["l1"], "float_ops": ["MEAN"],
                 "allow_float_fallback": True, "weight_only": False, "block_size": 0,
                 "optimize": [{"technique": "prune", "sparsity": 0.5, "schedule": "polynomial", "clusters": 16,
                               "init": "kmeans++", "epochs": 2, "batch_size": 32, "learning_rate": 1e-3}],
                 "description": "d"}
    back = Recipe.from_dict(d)
    assert back == r and isinstance(back.float_ops, tuple) and isinstance(back.optimize, tuple)
    assert Recipe.from_dict({"name": "y"}) == Recipe("y")
    assert r.needs_calibration and r.is_selective
    assert not Recipe("y").needs_calibration and not Recipe("y").is_selective
    assert Recipe("y", weights="int8", activations="int8", float_ops=("MEAN",)).is_selective
