"""Session fixtures of the models users ship besides image classifiers (issue 27), each converted once:
the Embedding + LSTM classifier, the BERT-like model, the Keras 3 two-in two-out model, the regression
MLP. A plugin (tests/conftest.py) so every test module shares one conversion of each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support import any_models as am


def _by_recipe(arts) -> dict:
    failed = [a for a in arts if a.failed]
    assert not failed, [a.reason for a in failed]
    return {a.recipe: a for a in arts}


@pytest.fixture(scope="session")
def lstm(tmp_path_factory) -> dict:
    """The Embedding + LSTM classifier (dynamic batch) converted float32, dynamic and int8 (calibrated on tokens)."""
    from tflite_deploy.conversion.run import convert
    from tflite_deploy.recipes import PRESETS

    root = tmp_path_factory.mktemp("lstm")
    model = am.lstm_classifier(root / "lstm.keras")
    ids, y, data = am.token_npz(root)
    arts = convert(model, [PRESETS[r] for r in ("float32", "dynamic", "int8")], str(data), root / "out")
    return {"model": model, "data": data, "ids": ids, "y": y, "arts": _by_recipe(arts), "root": root}


def _named_inputs_case(root: Path, name: str, build, arrays: dict) -> dict:
    """A model with inputs by name, its .npz of named arrays, and its float32 and int8 conversions."""
    from tflite_deploy.conversion.run import convert
    from tflite_deploy.recipes import PRESETS

    model = build(root / f"{name}.keras")
    data = root / f"{name}.npz"
    np.savez(data, **arrays)
    arts = convert(model, [PRESETS[r] for r in ("float32", "int8")], str(data), root / "out")
    return {"model": model, "data": data, "arrays": arrays, "arts": _by_recipe(arts), "root": root}


@pytest.fixture(scope="session")
def bert(tmp_path_factory) -> dict:
    return _named_inputs_case(tmp_path_factory.mktemp("bert"), "bert", am.bert_like, am.bert_data(40))


@pytest.fixture(scope="session")
def two_out(tmp_path_factory) -> dict:
    return _named_inputs_case(tmp_path_factory.mktemp("two"), "two", am.two_in_two_out, am.two_in_data(40))


@pytest.fixture(scope="session")
def mlp(tmp_path_factory) -> dict:
    from tflite_deploy.conversion.run import convert
    from tflite_deploy.recipes import PRESETS

    root = tmp_path_factory.mktemp("mlp")
    model, x, y = am.regression_mlp(root / "mlp.keras")
    data = root / "diabetes.npz"
    np.savez(data, features=x, y=y)
    arts = convert(model, [PRESETS[r] for r in ("float32", "int8")], str(data), root / "out")
    return {"model": model, "data": data, "x": x, "y": y, "arts": _by_recipe(arts)}
