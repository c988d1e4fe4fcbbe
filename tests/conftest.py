"""Shared fixtures: a digits CNN trained once per session on real data, and its converted variants."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
REPO = Path(__file__).resolve().parents[1]
# Measuring commands record into the results store by default (./tflite-deploy.db): never into the repo
# from a test. One throw-away store for the session; subprocesses inherit it. Tests that read it name their own.
os.environ["TFLITE_DEPLOY_STORE"] = str(Path(tempfile.mkdtemp(prefix="tflite-deploy-test-store-")) / "tflite-deploy.db")
# The reference-output cache of `eval` (tflite_deploy.evaluation.reference): one throw-away folder per session.
os.environ["TFLITE_DEPLOY_CACHE"] = tempfile.mkdtemp(prefix="tflite-deploy-test-cache-")
# adb fixtures: a private adb server per test and fake devices (tests/support/fixtures.py); the issue-27
# models (LSTM, BERT-like, two in two out, regression MLP) converted once (tests/support/any_model_fixtures.py)
pytest_plugins = ["tests.support.fixtures", "tests.support.any_model_fixtures"]


@pytest.fixture(scope="session")
def digits_keras(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tf_keras CNN trained on digits:train, saved as .keras (about 98% on digits:test)."""
    from tflite_deploy.sources import zoo

    path = tmp_path_factory.mktemp("model") / "digits_cnn.keras"
    zoo.train_digits_cnn(epochs=30).save(path)
    return path


@pytest.fixture(scope="session")
def digits_variants(digits_keras: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every preset converted from the digits CNN through our API: {recipe name: Artifact}."""
    from tflite_deploy.conversion.run import convert
    from tflite_deploy.recipes import PRESETS

    out = tmp_path_factory.mktemp("variants")
    arts = convert(digits_keras, list(PRESETS.values()), "digits:train", out)
    return {a.recipe: a for a in arts}
