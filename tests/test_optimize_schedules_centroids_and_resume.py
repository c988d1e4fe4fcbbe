"""optimize features the README claims, checked where they act: the pruning
schedule and the centroid initialisation read from the training model's own variables, pcqat in the
written files, and --resume through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tflite_deploy.cli import app
from tflite_deploy.envelope import items_of
from tflite_deploy.recipes import OptimizeStep

runner = CliRunner()
QUICK = dict(baseline=False, eval_data=None)


def _variables(model, word):
    return [v.numpy() for v in model.weights if word in v.name]


def _first_step(digits_keras, tmp_path, technique, when="batch", **kw):
    """The named variables of the model being trained, read at the start of training (``when="begin"``)
    or after its sixth batch; training is then stopped (the run ends with TrainingInterrupted)."""
    import tf_keras

    from tflite_deploy.optimization import TrainingInterrupted, optimize

    seen = {}

    class Probe(tf_keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            if when == "begin":
                seen["centroids"] = _variables(self.model, "cluster_centroids")
                raise KeyboardInterrupt

        def on_train_batch_end(self, batch, logs=None):
            if batch == 5:  # masks are updated every few steps (scaled to the run): past two updates
                seen["masks"] = _variables(self.model, "mask")
                raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        optimize(digits_keras, OptimizeStep(technique, epochs=1, **kw), "digits", tmp_path, callbacks=[Probe()],
                 **QUICK)
    return seen


def test_constant_schedule_prunes_from_the_first_step_polynomial_ramps(digits_keras, tmp_path):
    def zeros(masks):
        return float(np.mean(np.concatenate([m.ravel() for m in masks]) == 0))

    const = _first_step(digits_keras, tmp_path / "c", "prune", sparsity=0.5, schedule="constant")["masks"]
    ramp = _first_step(digits_keras, tmp_path / "p", "prune", sparsity=0.5, schedule="polynomial")["masks"]
    assert const and ramp
    assert zeros(const) == pytest.approx(0.5, abs=0.02)  # the target at once
    assert zeros(ramp) < 0.3  # starts from 0% and ramps up over 70% of the run


def test_centroid_initialisations_differ_as_documented(digits_keras, tmp_path):
    cents = {init: _first_step(digits_keras, tmp_path / init, "cluster", when="begin", clusters=8,
                               init=init)["centroids"]
             for init in ("linear", "density", "random", "kmeans++")}
    for init, cs in cents.items():
        assert cs and all(c.size == 8 for c in cs), init

    def evenly_spaced(c):
        d = np.diff(np.sort(c.ravel()))
        return np.allclose(d, d.mean(), rtol=1e-3)

    assert all(evenly_spaced(c) for c in cents["linear"])  # linear: evenly between min and max
    for init in ("density", "random", "kmeans++"):
        assert not all(evenly_spaced(c) for c in cents[init]), init
    firsts = {init: np.sort(cs[0].ravel()) for init, cs in cents.items()}
    for a in firsts:
        for b in firsts:
            if a < b:
                assert not np.allclose(firsts[a], firsts[b]), (a, b)
    r = runner.invoke(app, ["optimize", "x.keras", "-t", "cluster", "-d", "digits", "--init", "bogus"])
    assert r.exit_code != 0


@pytest.mark.slow
def test_pcqat_keeps_sparsity_and_clusters_through_qat(digits_keras, tmp_path):
    from tflite_deploy.optimization import optimize, verify_tflite

    r = optimize(digits_keras, OptimizeStep("pcqat", epochs=1, sparsity=0.5, clusters=8), "digits", tmp_path, **QUICK)
    assert [s.kind for s in r.stages] == ["prune", "cluster", "qat"]
    v = verify_tflite(r.files["optimized-int8"]["path"])
    ks = v.select(r.clustered_layers)
    assert ks
    for k in ks:  # conv kernels per channel, QAT's per-tensor dense kernels whole
        assert k.dtype == "int8" and k.unique_values <= 8 + 1, (k.tensor, k.unique_values)  # + the zero
    assert abs(100 * v.sparsity(r.pruned_layers) - 50) <= 3


def test_resume_through_the_cli(digits_keras, tmp_path):
    import tf_keras

    from tflite_deploy.optimization import TrainingInterrupted, optimize

    class StopAfterFirstEpoch(tf_keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        optimize(digits_keras, OptimizeStep("prune", epochs=2, sparsity=0.5), "digits", tmp_path,
                 callbacks=[StopAfterFirstEpoch()])
    args = ["optimize", str(digits_keras), "-t", "prune", "-d", "digits", "-e", "2", "-o", str(tmp_path),
            "--sparsity", "0.5"]
    r = runner.invoke(app, args)
    assert r.exit_code != 0 and "--resume" in r.stderr  # an unfinished run is not overwritten
    r = runner.invoke(app, args + ["--resume", "--json"])
    assert r.exit_code == 0, r.output
    ((stage,),) = [d["stages"] for d in items_of(json.loads(r.stdout), "optimize")]
    assert stage["resumed_from"] == 1 and stage["epochs_run"] == 1
