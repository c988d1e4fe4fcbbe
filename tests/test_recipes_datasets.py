"""Recipes (presets and user files) and datasets (bundled, image folder, npz), on real data."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import REPO
from tflite_deploy.datasets import Preprocess, open_dataset
from tflite_deploy.errors import DatasetError, RecipeError
from tflite_deploy.recipes import PRESETS, Recipe, load_recipe_file, resolve


def test_presets_are_data_not_names():
    assert set(PRESETS) == {"float32", "dynamic", "int8", "int8-io", "float16", "int16x8"}
    same_as_int8 = Recipe("my-int8", weights="int8", activations="int8")
    assert {k: v for k, v in same_as_int8.to_dict().items() if k not in ("name", "description")} == \
        {k: v for k, v in PRESETS["int8"].to_dict().items() if k not in ("name", "description")}
    assert not PRESETS["dynamic"].needs_calibration and PRESETS["int16x8"].needs_calibration


def test_yaml_and_toml_recipe_files(tmp_path):
    (tmp_path / "r.yaml").write_text(
        "recipes:\n  int8-pt:\n    base: int8\n    per_channel: false\n"
        "  int8-pt-head:\n    base: int8-pt\n    float_layers: [logits]\n")
    (tmp_path / "r.toml").write_text('[recipes.fp16]\nweights = "float16"\ndescription = "mine"\n')
    y = load_recipe_file(tmp_path / "r.yaml")
    assert y["int8-pt"].per_channel is False and y["int8-pt"].activations == "int8"
    assert y["int8-pt-head"].per_channel is False and y["int8-pt-head"].float_layers == ("logits",)
    t = load_recipe_file(tmp_path / "r.toml")
    assert t["fp16"].weights == "float16" and t["fp16"].description == "mine"
    assert [r.name for r in resolve(["int8-pt", "float32"], [tmp_path / "r.yaml"])] == ["int8-pt", "float32"]


@pytest.mark.parametrize("text, message", [
    ("recipes:\n  x:\n    base: int8\n    per_chanel: false\n", "unknown key.*per_chanel"),
    ("recipes:\n  x:\n    base: nope\n", "base 'nope'"),
    ("recipes:\n  x:\n    weights: float16\n    activations: int8\n", "need int8 weights"),
    ("recipes:\n  x:\n    base: dynamic\n    io: int8\n", "needs integer activations"),
    ("recipe:\n  x: {}\n", "top-level table 'recipes'"),
    ("recipes: [unclosed\n", "not valid YAML"),
    ("recipes:\n  'a b':\n    base: int8\n", "letters, digits"),
])
def test_bad_recipe_files_are_named(tmp_path, text, message):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(RecipeError, match=message) as e:
        load_recipe_file(f)
    assert str(f) in str(e.value)


def test_unknown_recipe_lists_the_known_ones():
    with pytest.raises(RecipeError, match="Unknown recipe 'int4'.*int8-io"):
        resolve(["int4"])


def test_digits_split_is_fixed_and_disjoint():
    train, test = open_dataset("digits:train"), open_dataset("digits:test")
    assert len(train) + len(test) == 1797 and len(test) == 359
    whole = open_dataset("digits")
    train_x, test_x = train.take(), test.take()
    assert not any((test_x[0] == train_x).all(axis=(1, 2, 3)))
    assert train_x.min() >= 0 and train_x.max() <= 1 and whole.num_classes == 10
    np.testing.assert_array_equal(open_dataset("digits:test").labels, test.labels)  # same every time


def test_image_folder_reads_real_pngs_with_labels_from_folders():
    folder = REPO / "datasets" / "digits-png"
    ds = open_dataset(str(folder), Preprocess(color="grayscale", scale=1 / 255))
    assert len(ds) == 100 and ds.class_names == [str(i) for i in range(10)]
    assert ds.sample_shape == (8, 8, 1)
    # The PNGs hold the same handwriting as the bundled set (0..16 levels written as 0..255).
    sk_index = int(ds.paths[0].stem.split("_sk")[1])
    np.testing.assert_allclose(ds.sample(0), open_dataset("digits").sample(sk_index), atol=1 / 255 + 1e-6)
    assert list(np.bincount(ds.labels)) == [10] * 10
    big = open_dataset(str(folder), Preprocess(size=(32, 32), color="rgb", layout="NCHW"))
    assert big.sample_shape == (3, 32, 32)


def test_npz_and_npy(tmp_path):
    x = np.random.default_rng(0).random((20, 8, 8, 1), dtype=np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(20) % 10)
    np.save(tmp_path / "d.npy", x)
    ds = open_dataset(str(tmp_path / "d.npz"))
    assert len(ds) == 20 and ds.num_classes == 10
    assert open_dataset(str(tmp_path / "d.npy")).labels is None
    batches = list(ds.batches(8))
    assert [len(b[0]) for b in batches] == [8, 8, 4] and batches[-1][1].tolist() == [6, 7, 8, 9]


def test_bad_datasets(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        open_dataset(str(tmp_path / "missing"))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match="unsupported file type"):
        open_dataset(str(tmp_path / "notes.txt"))
    np.savez(tmp_path / "bad.npz", x=np.zeros((4, 8, 8, 1)), y=np.zeros((3,), np.int64))
    with pytest.raises(DatasetError, match="one whole number per sample"):
        open_dataset(str(tmp_path / "bad.npz"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images found"):
        open_dataset(str(tmp_path / "empty"))
    ds = open_dataset("digits")
    with pytest.raises(DatasetError, match=r"shape \(8, 8, 1\).*\(224, 224, 3\)"):
        ds.check_fits((None, 224, 224, 3), "float32", "model m.keras")
    ds.check_fits((None, 8, 8, 1), "float32", "model m.keras")
    ds.check_fits((-1, 8, 8, 1), "float32", "model m.keras")


# ------------------------------------------------------------- preprocessing: parsed once, for the CLI and plans
@pytest.mark.parametrize("settings,expected", [
    (dict(size="224,224", mean="0.5,0.5,0.5", std="0.25", layout="nchw"),
     Preprocess(size=(224, 224), mean=(0.5, 0.5, 0.5), std=(0.25,), layout="NCHW")),
    (dict(size="96"), Preprocess(size=(96, 96))),  # one number: square
    (dict(size=[96, 128], mean=[0.5, 0.5, 0.5], std=0.5, scale=1, color="RGB"),  # a plan's YAML values
     Preprocess(size=(96, 128), mean=(0.5, 0.5, 0.5), std=(0.5,), scale=1.0)),
])
def test_preprocess_from_cli_text_and_plan_values(settings, expected):
    assert Preprocess.from_settings(**settings) == expected
    assert Preprocess.from_settings() is None  # nothing given: the dataset's own


def test_preprocess_grayscale_with_three_means_is_refused():
    with pytest.raises(DatasetError, match="^mean=0.5,0.5,0.5 has 3 values, but grayscale images have 1") as e:
        Preprocess.from_settings(mean="0.5,0.5,0.5", color="grayscale")
    assert e.value.param == "mean"  # the API names its parameter; the CLI shows --mean (test_cli_plumbing)


@pytest.mark.parametrize("settings,message", [
    (dict(size="224x224"), "--size takes HEIGHT,WIDTH or one number (positive whole numbers), not '224x224'"),
    (dict(size=[96, 96, 3]), "--size takes HEIGHT,WIDTH or one number"),
    (dict(size="0,4"), "--size takes HEIGHT,WIDTH"),
    (dict(mean="a,b"), "--mean takes a number or one per channel (separated by commas), not 'a,b'"),
    (dict(std="0.5,0"), "--std must not contain 0"),
    (dict(scale=0), "--scale takes a positive number, not 0"),
    (dict(layout="HWC"), "--layout takes NHWC or NCHW, not 'HWC'"),
    (dict(color="bgr"), "--color takes rgb or grayscale, not 'bgr'"),
])
def test_bad_preprocess_settings_name_the_flag(settings, message):
    with pytest.raises(DatasetError) as e:
        Preprocess.from_settings(**settings)
    assert str(e.value).startswith(message), str(e.value)
