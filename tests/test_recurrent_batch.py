"""Recurrent models (issue 27): a GRU text classifier with a dynamic batch, and ``--batch N`` where the
converter needs a static batch (default 1). Every figure is checked against a plain LiteRT loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support import any_models as am
from tflite_deploy.errors import UserError

pytestmark = pytest.mark.slow

LIMIT = 58  # not a multiple of 4: the batch-4 variant's last chunk is short (padded, then dropped)


@pytest.fixture(scope="session")
def gru(tmp_path_factory) -> dict:
    """The Embedding + GRU classifier (dynamic batch): float32 and dynamic at the default batch and at 4."""
    from tflite_deploy.conversion.run import convert
    from tflite_deploy.recipes import PRESETS

    root = tmp_path_factory.mktemp("gru")
    model = am.gru_classifier(root / "gru.keras")
    ids, y, data = am.token_npz(root)
    recipes = [PRESETS[r] for r in ("float32", "dynamic", "int8")]
    default = convert(model, recipes, str(data), root / "b1")
    four = convert(model, recipes[:2], str(data), root / "b4", batch=4)
    return {"model": model, "data": data, "ids": ids, "y": y, "root": root,
            "b1": {a.recipe: a for a in default}, "b4": {a.recipe: a for a in four}}


def _batched_loop(path: Path, ids: np.ndarray, batch: int) -> np.ndarray:
    """The model run ``batch`` rows at a time by hand, a short last chunk filled with zeros (token 0)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    got = []
    for i in range(0, len(ids), batch):
        chunk = ids[i:i + batch]
        it.set_tensor(inp["index"], np.concatenate([chunk, np.zeros((batch - len(chunk), ids.shape[1]), np.int32)]))
        it.invoke()
        got.append(it.get_tensor(out["index"])[:len(chunk)].copy())
    return np.concatenate(got)


def test_a_gru_converts_float_at_batch_1_by_default_and_refuses_int8_clearly(gru):
    from tflite_deploy.tflite.reader import inspect_model

    for recipe in ("float32", "dynamic"):
        art = gru["b1"][recipe]
        assert not art.failed, art.reason
        assert art.meta["fixed_batch"] == 1 and any("fixed batch of 1" in w for w in art.meta["warnings"])
        report = inspect_model(art.path)
        assert report.inputs[0].shape == (1, am.SEQ) and report.inputs[0].dtype == "int32"
        # no fused GRU op in TFLite: a WHILE loop of builtins, every op float (8 units: no weight big enough
        # for dynamic-range quantization, so the dynamic variant is float too)
        assert "WHILE" in report.op_histogram and "GRU" not in " ".join(report.op_histogram)
        assert not report.quantization.activation_dtypes.get("int8")
    int8 = gru["b1"]["int8"]
    assert int8.failed and "SIGSEGV" in int8.reason and "gru (GRU)" in int8.reason and "unroll=True" in int8.reason


def test_int8_of_a_gru_is_refused_before_the_converter_could_take_the_process_down(gru, tmp_path):
    from tflite_deploy.conversion.run import convert
    from tflite_deploy.recipes import PRESETS

    # jobs=1 converts in this process: without the refusal the converter's SIGSEGV would end pytest here
    (failure,) = convert(gru["model"], [PRESETS["int16x8"]], str(gru["data"]), tmp_path, jobs=1)
    assert failure.failed and "WHILE loop" in failure.reason and not list(tmp_path.glob("*.tflite"))


def test_batch_4_fixes_the_batch_and_eval_matches_a_direct_loop(gru):
    import tf_keras as keras

    from tflite_deploy.evaluation.run import evaluate
    from tflite_deploy.tflite.reader import inspect_model

    b4 = gru["b4"]["float32"]
    assert not b4.failed, b4.reason
    assert b4.meta["fixed_batch"] == 4 and any("fixed batch of 4" in w for w in b4.meta["warnings"])
    assert inspect_model(b4.path).inputs[0].shape == (4, am.SEQ)
    ids, y = gru["ids"][:LIMIT], gru["y"][:LIMIT]
    ref = keras.models.load_model(gru["model"]).predict(ids, verbose=0)
    results = evaluate(gru["model"], [gru["b1"]["float32"].path, b4.path, gru["b4"]["dynamic"].path],
                       str(gru["data"]), limit=LIMIT, cache=False)
    assert results[0].metrics["top1"] == pytest.approx(100 * np.mean(ref.argmax(1) == y))
    assert results[0].metrics["top1"] > 60  # the model learned its rule
    direct = [next(iter(am.direct_outputs(gru["b1"]["float32"].path, {"tokens": ids}).values())),
              _batched_loop(b4.path, ids, 4), _batched_loop(gru["b4"]["dynamic"].path, ids, 4)]
    for r, d in zip(results[1:], direct):
        assert len(d) == LIMIT
        assert r.metrics["top1"] == pytest.approx(100 * np.mean(d.argmax(1) == y))
        assert r.metrics["max_abs_error"] == pytest.approx(float(np.max(np.abs(d - ref))), rel=1e-4, abs=1e-6)
        assert r.metrics["max_abs_error"] < 1e-4  # float variants of one model


def test_batch_is_checked_and_named(gru, digits_keras, tmp_path):
    from tflite_deploy import api

    for bad in (0, -2):
        with pytest.raises(UserError, match=f"batch must be a whole number of 1 or more, not {bad}") as e:
            api.convert(gru["model"], ["float32"], None, tmp_path, batch=bad)
        assert e.value.param == "batch"
    with pytest.raises(UserError, match="batch applies to Keras and SavedModel models") as e:
        api.convert(gru["b1"]["float32"].path, ["dynamic"], None, tmp_path, batch=2)
    assert e.value.param == "batch" and not list(tmp_path.iterdir())


def test_convert_cli_takes_batch(gru, tmp_path):
    from typer.testing import CliRunner

    from tflite_deploy.cli import app
    from tflite_deploy.tflite.reader import inspect_model

    r = CliRunner().invoke(app, ["convert", str(gru["model"]), "-r", "float32", "--batch", "3", "--out",
                                 str(tmp_path), "--no-store"])
    assert r.exit_code == 0, r.output
    assert inspect_model(tmp_path / "gru.float32.tflite").inputs[0].shape == (3, am.SEQ)
    r = CliRunner().invoke(app, ["convert", str(gru["model"]), "-r", "float32", "--batch", "0", "--out",
                                 str(tmp_path / "no"), "--no-store"])
    assert r.exit_code != 0 and "--batch" in r.output and "Traceback" not in r.output


def test_the_suggested_way_to_int8_an_unrolled_gru_works(gru, tmp_path):
    """What the refusal suggests: the GRU unrolled (no WHILE loop) converts to full-integer int8."""
    import tf_keras as keras

    from tflite_deploy.conversion.run import convert
    from tflite_deploy.recipes import PRESETS
    from tflite_deploy.tflite.reader import inspect_model

    loaded = keras.models.load_model(gru["model"])
    config = loaded.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "GRU":
            layer["config"]["unroll"] = True
    unrolled = keras.Model.from_config(config)
    unrolled.set_weights(loaded.get_weights())
    unrolled.save(tmp_path / "gru_unrolled.keras")
    (art,) = convert(tmp_path / "gru_unrolled.keras", [PRESETS["int8"]], str(gru["data"]), tmp_path / "out", jobs=1)
    assert not art.failed, art.reason
    q = inspect_model(art.path).quantization
    ops = inspect_model(art.path).op_histogram
    assert q.kind == "int8" and not q.float_ops and q.activation_dtypes.get("int8", 0) > 0
    assert "WHILE" not in ops and ops.get("FULLY_CONNECTED", 0) >= am.SEQ  # one step per token, unrolled
    direct = next(iter(am.direct_outputs(art.path, {"tokens": gru["ids"]}).values()))
    ref = loaded.predict(gru["ids"], verbose=0)
    assert np.mean(direct.argmax(1) == ref.argmax(1)) > 0.9  # int8 keeps the float model's answers

    from tflite_deploy.evaluation.run import evaluate

    (_, result) = evaluate(tmp_path / "gru_unrolled.keras", [art.path], str(gru["data"]), cache=False)
    assert result.metrics["top1"] == pytest.approx(100 * np.mean(direct.argmax(1) == gru["y"]))
    assert result.metrics["max_abs_error"] == pytest.approx(float(np.max(np.abs(direct - ref))), rel=1e-4, abs=1e-6)


def test_bench_of_the_batch_4_gru_feeds_valid_token_ids(gru):
    from tflite_deploy.benchmark.host import bench_host
    from tflite_deploy.benchmark.options import BenchOptions
    from tflite_deploy.tflite.runtime import TfliteModel

    m = TfliteModel(gru["b4"]["float32"].path)
    assert m.value_ranges() == {"tokens": (0, am.VOCAB - 1)}
    m.fill_random_input()
    ids = m.interpreter.get_tensor(m.input["index"])
    assert ids.shape == (4, am.SEQ) and ids.min() >= 0 and ids.max() <= am.VOCAB - 1
    (r,) = bench_host([gru["b4"]["float32"].path], BenchOptions(runs=5, warmup=1, min_seconds=0.0))
    assert r.ok and r.latency.count >= 5
