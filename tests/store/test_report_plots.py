"""The latency plot stays light and readable with a host run's many thousand samples."""

from __future__ import annotations

import numpy as np

from tflite_deploy.reporting import plots
from tflite_deploy.reporting.render import svg_of


def test_many_samples_with_far_outliers_make_a_small_log_scaled_plot() -> None:
    rng = np.random.default_rng(0)
    # microsecond invokes with a tail of scheduler hiccups 100x slower, as a 3 s host run gives
    samples = {"xnnpack": {f"m.{r}": list(np.concatenate([rng.lognormal(np.log(0.004), 0.2, 50_000),
                                                         rng.uniform(0.05, 0.8, 3_000)]))
                           for r in ("float32", "int8")}}
    fig = plots.latency_distributions(samples, "Latency")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and "log scale" in ax.get_xlabel()
    svg = svg_of(fig, "latency")
    assert "<image" in svg  # the outlier dots: one embedded image ...
    assert len(svg) < 150_000  # ... not an SVG element per dot (over 400 kB)


def test_a_narrow_spread_keeps_a_linear_axis() -> None:
    rng = np.random.default_rng(0)
    samples = {"xnnpack": {"m.float32": list(rng.normal(3.6, 0.05, 200))}}
    ax = plots.latency_distributions(samples, "Latency").axes[0]
    assert ax.get_xscale() == "linear" and ax.get_xlabel() == "latency per invoke (ms)"
