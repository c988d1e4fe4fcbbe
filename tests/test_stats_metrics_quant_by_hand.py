"""The pure numbers, checked by hand: timing statistics and warnings (benchmark/stats.py), accuracy
metrics and bootstraps (evaluation/run.py), quantize math (tflite/quant.py). Written against
mutmut's survivors (tools/mutation.py).

Each expected value is computed here independently (by hand or with numpy directly), never with
the function under test: a test that calls the code to get its expected value cannot fail.
"""

from __future__ import annotations

import numpy as np
import pytest

from tflite_deploy.benchmark.stats import (
    FIRST_RUN_FACTOR,
    NOISY_CV,
    OUTLIER_SHARE,
    OUTLIER_Z,
    outlier_count,
    timing_warnings,
)
from tflite_deploy.evaluation.run import agreement, bootstrap_interval, paired_bootstrap, topk_correct
from tflite_deploy.tflite.quant import Quantization, dequantize, quantize
from tflite_deploy.result import LatencyStats


# ------------------------------------------------------------------------------ bench/stats.py
def test_thresholds_are_the_documented_ones():
    assert (NOISY_CV, OUTLIER_Z, OUTLIER_SHARE, FIRST_RUN_FACTOR) == (0.10, 14.0, 0.02, 3.0)


def test_outlier_count_by_hand():
    # median 10, MAD 1 (|x - 10| = 0,1,1,... ): modified Z = 0.6745 (x - 10) / 1
    base = [9.0, 10.0, 11.0] * 10
    # 0.6745 * 11 = 7.4 (not an outlier), 0.6745 * 21 = 14.16 (just over 14), 0.6745 * 20.7 = 13.96 (just under)
    assert outlier_count(np.array(base + [21.0])) == 0
    assert outlier_count(np.array(base + [31.0])) == 1
    assert outlier_count(np.array(base + [30.7])) == 0
    # only slow outliers count: a sample far *below* the median is not one
    assert outlier_count(np.array(base + [-100.0])) == 0
    assert outlier_count(np.array(base + [31.0, 40.0, 500.0])) == 3


def test_outlier_exactly_at_the_threshold_is_not_one():
    # median 0, MAD 1: x = 14 / 0.6745 has a modified Z of exactly 14.0 (checked in float64 here)
    x = 14 / 0.6745
    a = np.array([-1.0, 0.0, 1.0] * 10 + [x])
    assert 0.6745 * (x - np.median(a)) / np.median(np.abs(a - np.median(a))) == 14.0
    assert outlier_count(a) == 0
    assert outlier_count(np.array([-1.0, 0.0, 1.0] * 10 + [x + 1e-9])) == 1


def test_outlier_count_with_zero_mad_uses_a_tiny_floor():
    # MAD = 0: any sample above the median is infinitely far out, so it counts; equal ones do not
    assert outlier_count(np.array([5.0] * 20 + [5.0001])) == 1
    assert outlier_count(np.array([5.0] * 21)) == 0


def _stats(samples):
    return LatencyStats.from_samples(samples)


def test_clean_series_has_no_warning():
    samples = [10.0 + 0.01 * (i % 5) for i in range(100)]
    assert timing_warnings(_stats(samples), first_ms=10.0) == []
    assert timing_warnings(_stats(samples), first_ms=None) == []


def test_outlier_warning_needs_more_than_two_percent_and_more_than_one():
    quiet = [10.0, 10.1, 9.9, 10.05, 9.95] * 40  # 200 runs, MAD about 0.05
    one = timing_warnings(_stats(quiet[:-1] + [50.0]), None)
    assert not any("outliers" in w for w in one)  # 1 of 200: not worth a warning
    four = quiet[:-4] + [50.0] * 4  # 4 of 200 = 2%: not more than 2%
    assert not any("outliers" in w for w in timing_warnings(_stats(four), None))
    five = quiet[:-5] + [50.0] * 5  # 5 of 200 > 2%
    (w,) = [w for w in timing_warnings(_stats(five), None) if "outliers" in w]
    assert w == ("5 of 200 runs are statistical outliers (far slower than the median): another program may "
                 "be competing for the CPU. Use p50 rather than the mean, or measure on a quiet machine.")
    # with few runs, two outliers (> max(1, 2% of 20)) warn
    small = [10.0, 10.1, 9.9, 10.05, 9.95] * 4
    two = small[:-2] + [50.0, 50.0]
    assert any(w.startswith("2 of 20 runs") for w in timing_warnings(_stats(two), None))


def test_spread_warning_at_the_threshold():
    def with_cv(cv):
        # two values a ± d: mean a, sample std d*sqrt(2*n/(2n-1))... use many pairs, compute cv directly
        s = _stats([10.0 - cv * 10, 10.0 + cv * 10] * 50)
        return s, timing_warnings(s, None)

    s, w = with_cv(0.12)
    assert s.cv > 0.10 and any(x.startswith("The spread is large (σ is 12% of the mean)") for x in w)
    s, w = with_cv(0.09)
    assert s.cv < 0.10 and not any("spread" in x for x in w)
    # exactly at 10%: not above it
    exact = LatencyStats(count=2, mean_ms=10.0, std_ms=1.0)
    assert timing_warnings(exact, None) == []
    assert timing_warnings(LatencyStats(count=2, mean_ms=10.0, std_ms=1.01), None) != []


def test_first_run_warning_above_three_times_the_median():
    s = _stats([10.0] * 50)
    assert timing_warnings(s, 30.0) == []  # exactly 3x: not above
    (w,) = timing_warnings(s, 31.0)
    assert w == ("The first inference took 3.1x the median: a first-run effect (lazy initialisation, cold "
                 "caches), reported apart and excluded from the statistics.")
    (w,) = timing_warnings(s, 45.0)
    assert "4.5x" in w
    assert timing_warnings(s, 0.0) == []
    assert timing_warnings(LatencyStats(count=0), 100.0) == []


def test_outliers_need_a_count_and_samples():
    samples = tuple([10.0, 10.1, 9.9] * 20 + [90.0] * 5)
    assert timing_warnings(LatencyStats(count=0, samples_ms=samples), None) == []
    assert len(timing_warnings(LatencyStats(count=len(samples), samples_ms=samples), None)) == 1


def test_summary_without_samples_still_judges_spread_and_first_run():
    # a device's summary: no samples, so no outlier count, but σ/mean and the first run are known
    s = LatencyStats(count=50, mean_ms=10.0, std_ms=2.0, p50_ms=10.0)
    w = timing_warnings(s, 40.0)
    assert len(w) == 2 and "20% of the mean" in w[0] and "4.0x" in w[1]


def test_latency_percentiles_against_numpy():
    rng = np.random.default_rng(3)
    a = rng.gamma(2.0, 3.0, size=137)
    s = _stats(a)
    assert s.p50_ms == pytest.approx(np.percentile(a, 50))
    assert s.p90_ms == pytest.approx(np.percentile(a, 90))
    assert s.p99_ms == pytest.approx(np.percentile(a, 99))
    assert s.std_ms == pytest.approx(np.std(a, ddof=1))
    assert (s.mean_ms, s.min_ms, s.max_ms, s.first_ms) == pytest.approx((a.mean(), a.min(), a.max(), a[0]))


# ------------------------------------------------------------------------------ evaluate metrics
def test_agreement_by_hand():
    ref = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    var = np.array([[1.0, 0.5], [0.0, 2.0], [4.0, 3.0]])
    m = agreement(ref, var)
    err = np.array([[0, 0.5], [0, 0], [1, -1]])
    assert m["mse"] == pytest.approx((0.25 + 1 + 1) / 6)
    assert m["max_abs_error"] == 1.0
    cos = [1 / np.sqrt(1.25), 1.0, 24 / 25]
    assert m["cosine"] == pytest.approx(np.mean(cos))
    assert m["sqnr_db"] == pytest.approx(10 * np.log10(30 / 2.25))
    assert m["label_agreement"] == pytest.approx(2 / 3)
    assert m["nonfinite"] == 0  # NaN/Inf values in the variant's outputs (issue 27)
    assert set(m) == {"mse", "max_abs_error", "cosine", "sqnr_db", "label_agreement", "nonfinite"}
    del err


def test_agreement_edge_cases():
    same = np.array([[1.0, 2.0], [3.0, 4.0]])
    m = agreement(same, same.copy())
    assert m["sqnr_db"] == float("inf") and m["mse"] == 0 and m["cosine"] == pytest.approx(1.0)
    # a zero reference: no signal, so the SQNR is -inf; cosine of a zero vector counts as 1
    zero = np.zeros((2, 3))
    m = agreement(zero, np.ones((2, 3)))
    assert m["sqnr_db"] == float("-inf") and m["cosine"] == 1.0
    # one output per sample: no label agreement; 4-D outputs are flattened per sample
    assert "label_agreement" not in agreement(np.ones((4, 1)), np.ones((4, 1)))
    r = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2)
    v = r.copy()
    v[1, 0, 0, 0] += 2
    m = agreement(r, v)
    assert m["mse"] == pytest.approx(4 / 24) and m["max_abs_error"] == 2.0
    # the worst error wins whatever its sign
    assert agreement(np.array([[0.0, 0.0]]), np.array([[-3.0, 1.0]]))["max_abs_error"] == 3.0


def test_topk_correct_by_hand():
    values = np.array([[0.1, 0.5, 0.3, 0.1], [0.9, 0.05, 0.03, 0.02], [0.21, 0.2, 0.25, 0.35]])
    labels = np.array([2, 1, 0])
    assert topk_correct(values, labels, 1).tolist() == [False, False, False]
    assert topk_correct(values, labels, 2).tolist() == [True, True, False]
    assert topk_correct(values, labels, 3).tolist() == [True, True, True]  
    assert topk_correct(values, labels, 10).tolist() == [True, True, True]  # k capped at the classes
    assert topk_correct(values, np.array([1, 0, 3]), 1).tolist() == [True, True, True]


def test_paired_bootstrap_exact_cases():
    ref = np.array([1, 1, 1, 1, 0, 0, 1, 1], dtype=bool)
    # the same answers: drop 0 and a degenerate interval
    assert paired_bootstrap(ref, ref) == (0.0, 0.0, 0.0)
    # every sample one worse: every resample has the same mean, so the interval is the point
    ones = np.ones(40, dtype=bool)
    zeros = np.zeros(40, dtype=bool)
    assert paired_bootstrap(ones, zeros) == (100.0, 100.0, 100.0)
    assert paired_bootstrap(zeros, ones) == (-100.0, -100.0, -100.0)


def _normal_interval(diff):
    se = diff.std(ddof=0) / np.sqrt(len(diff))
    return 100 * (diff.mean() - 1.96 * se), 100 * (diff.mean() + 1.96 * se)


@pytest.mark.parametrize("resamples", [300, 2000, 2001])
def test_paired_bootstrap_matches_the_normal_approximation(resamples):
    # n = 4000 pairs: 10% lose a point, 4% gain one; the bootstrap interval of the mean of the
    # differences is close to mean ± 1.96 σ/√n (central limit theorem)
    rng = np.random.default_rng(11)
    n = 4000
    ref = rng.random(n) < 0.9
    var = ref.copy()
    flip = rng.random(n)
    var[(flip < 0.10) & ref] = False
    var[(flip > 0.96) & ~ref] = True
    diff = ref.astype(float) - var.astype(float)
    drop, lo, hi = paired_bootstrap(ref, var, resamples=resamples, seed=5)
    assert drop == pytest.approx(100 * diff.mean())
    nlo, nhi = _normal_interval(diff)
    width = nhi - nlo
    assert lo < drop < hi
    assert lo == pytest.approx(nlo, abs=0.15 * width) and hi == pytest.approx(nhi, abs=0.15 * width)


def test_paired_bootstrap_is_paired_and_seeded():
    # an unpaired bootstrap would see two 50% accuracies with a wide interval; paired differences
    # are all +1 or 0 here, so the interval stays on the positive side
    ref = np.array([True] * 60 + [False] * 40)
    var = np.array([False] * 10 + [True] * 50 + [False] * 40)
    drop, lo, hi = paired_bootstrap(ref, var, seed=1)
    assert drop == pytest.approx(10.0) and 0 <= lo < 10 < hi <= 20
    assert paired_bootstrap(ref, var, seed=1) == (drop, lo, hi)
    assert paired_bootstrap(ref, var, seed=2) != (drop, lo, hi)
    # the default is 2000 resamples with seed 0
    assert paired_bootstrap(ref, var) == paired_bootstrap(ref, var, resamples=2000, seed=0)


def test_bootstrap_interval_against_the_normal_approximation():
    rng = np.random.default_rng(4)
    c = rng.random(3000) < 0.8
    lo, hi = bootstrap_interval(c, resamples=2000, seed=3)
    p = c.mean()
    se = np.sqrt(p * (1 - p) / len(c))
    assert lo == pytest.approx(100 * (p - 1.96 * se), abs=0.2) and hi == pytest.approx(100 * (p + 1.96 * se), abs=0.2)
    assert bootstrap_interval(c) == bootstrap_interval(c, resamples=2000, seed=0)
    assert bootstrap_interval(np.ones(10, dtype=bool)) == (100.0, 100.0)
    assert bootstrap_interval(c, seed=3) != bootstrap_interval(c, seed=4)


# ------------------------------------------------------------------------------ quantize math
def test_quantize_per_tensor_by_hand():
    q = Quantization(scales=(0.5,), zero_points=(3,))
    x = np.array([0.0, 0.25, -0.25, 0.75, 1.0, -1.3, 100.0, -100.0], dtype=np.float32)
    # x/0.5 = 0, .5, -.5, 1.5, 2, -2.6, 200, -200 -> half away from zero: 0, 1, -1, 2, 2, -3 ; +3; clip
    out = quantize(x, q, "int8")
    assert out.dtype == np.int8
    assert out.tolist() == [3, 4, 2, 5, 5, 0, 127, -128]
    assert quantize(x, q).tolist() == out.tolist()  # int8 is the default


@pytest.mark.parametrize("dtype,lo,hi", [("uint8", 0, 255), ("int16", -32768, 32767), ("int8", -128, 127),
                                         ("int32", -(2 ** 31), 2 ** 31 - 1)])
def test_quantize_clips_to_the_dtype(dtype, lo, hi):
    q = Quantization(scales=(1.0,), zero_points=(0,))
    out = quantize(np.array([-1e12, -2.5, 2.5, 1e12]), q, dtype)
    assert out.dtype == np.dtype(dtype)
    assert out.tolist() == [lo, max(lo, -3), 3, hi]


def test_quantize_without_zero_points_and_errors():
    assert quantize([1.0, 2.0], Quantization(scales=(0.5,), zero_points=())).tolist() == [2, 4]
    with pytest.raises(ValueError, match="no scales"):
        quantize([1.0], Quantization(scales=(), zero_points=()))
    with pytest.raises(ValueError, match="not an integer dtype"):
        quantize([1.0], Quantization(scales=(1.0,), zero_points=(0,)), "float32")
    with pytest.raises(ValueError, match="no scales"):
        dequantize([1], Quantization(scales=(), zero_points=()))


def test_quantize_divides_in_float32_like_the_kernel():
    # 0.3 / 0.1 is 2.9999999999999996 in float64 but 3.0 in float32 (and 2.5 then rounds to 3)
    q = Quantization(scales=(0.1,), zero_points=(0,))
    assert quantize(np.array([0.3, 0.25], dtype=np.float32), q).tolist() == [3, 3]
    assert quantize(np.array([-0.25], dtype=np.float32), q).tolist() == [-3]


def test_per_axis_by_hand():
    q = Quantization(scales=(1.0, 0.5, 0.25), zero_points=(0, 1, -2), quantized_dimension=1)
    x = np.array([[1.0, 1.0, 1.0], [-2.0, 0.5, 0.0]], dtype=np.float32)
    out = quantize(x, q)
    assert out.tolist() == [[1, 3, 2], [-2, 2, -2]]
    back = dequantize(out, q)
    assert back.dtype == np.float32
    assert back.tolist() == [[1.0, 1.0, 1.0], [-2.0, 0.5, 0.0]]
    # along axis 0 the same scales mean something else
    q0 = Quantization(scales=(1.0, 0.5), zero_points=(0, 0), quantized_dimension=0)
    assert quantize(np.ones((2, 3)), q0).tolist() == [[1, 1, 1], [2, 2, 2]]
    # one zero point shared by every channel
    shared = Quantization(scales=(1.0, 2.0), zero_points=(5,), quantized_dimension=0)
    assert dequantize(np.array([[5, 7], [5, 7]], dtype=np.int8).T, shared).tolist() == [[0.0, 0.0], [4.0, 4.0]]
    # no zero points at all: 0 for every channel
    none = Quantization(scales=(1.0, 2.0), zero_points=(), quantized_dimension=1)
    assert dequantize(np.array([[3, 3]]), none).tolist() == [[3.0, 6.0]]


@pytest.mark.parametrize("axis", [-1, 2, 5])
def test_per_axis_axis_out_of_range(axis):
    q = Quantization(scales=(1.0, 2.0), zero_points=(0, 0), quantized_dimension=axis)
    with pytest.raises(ValueError, match=f"quantized dimension {axis} is out of range for a 2-D array"):
        dequantize(np.zeros((2, 2), dtype=np.int8), q)


def test_dequantize_by_hand():
    q = Quantization(scales=(0.02,), zero_points=(-5,))
    out = dequantize(np.array([-5, 0, 127, -128], dtype=np.int8), q)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0.0, 0.1, 2.64, -2.46], rtol=1e-6)
    # no overflow in int8 arithmetic: 127 - (-128) would wrap
    wide = Quantization(scales=(1.0,), zero_points=(-128,))
    assert dequantize(np.array([127], dtype=np.int8), wide).tolist() == [255.0]


# ------------------------------------------------------------------------------ survivors of a first run
def test_cosine_of_small_vectors_is_not_clamped():
    # norms multiply to 0.05 (< 1): the cosine must still be computed, not defaulted to 1
    m = agreement(np.array([[0.1, 0.2]]), np.array([[0.2, 0.1]]))
    assert m["cosine"] == pytest.approx(0.04 / 0.05)


def test_topk_correct_against_argsort_on_random_scores():
    rng = np.random.default_rng(8)
    values = rng.random((300, 10))
    labels = rng.integers(0, 10, size=300)
    ranks = np.argsort(-values, axis=1)
    for k in (1, 2, 3, 5, 9):
        expected = np.array([labels[i] in ranks[i, :k] for i in range(300)])
        np.testing.assert_array_equal(topk_correct(values, labels, k), expected, err_msg=f"k={k}")


def _resampled_interval(diff, resamples, seed):
    """The percentile bootstrap written directly with numpy: one draw of all the resample indices."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(diff), size=(resamples, len(diff)))
    lo, hi = np.percentile(diff[idx].mean(axis=1), [2.5, 97.5])
    return 100 * lo, 100 * hi


@pytest.mark.parametrize("resamples,seed", [(2000, 0), (300, 7), (999, 3)])
def test_bootstraps_equal_a_direct_numpy_resampling(resamples, seed):
    # numpy's generator gives the same stream whether the indices are drawn at once or in chunks,
    # so the chunked implementation must equal the direct one exactly. Continuous scores instead of
    # 0/1 answers: no ties among the resampled means, so any change of draws moves the percentiles.
    rng = np.random.default_rng(1)
    ref, var = rng.random(157), rng.random(157)
    diff = ref - var
    drop, lo, hi = paired_bootstrap(ref, var, resamples=resamples, seed=seed)
    assert (lo, hi) == pytest.approx(_resampled_interval(diff, resamples, seed), abs=1e-12)
    assert drop == pytest.approx(100 * diff.mean())
    assert bootstrap_interval(ref, resamples=resamples, seed=seed) == pytest.approx(
        _resampled_interval(ref, resamples, seed), abs=1e-12)


def test_bootstrap_defaults_are_2000_resamples_seed_0():
    rng = np.random.default_rng(2)
    ref, var = rng.random(80), rng.random(80)  # continuous: no ties (see above)
    assert paired_bootstrap(ref, var)[1:] == pytest.approx(_resampled_interval(ref - var, 2000, 0), abs=1e-12)
    assert bootstrap_interval(ref) == pytest.approx(_resampled_interval(ref, 2000, 0), abs=1e-12)


def test_bootstrap_resamples_every_sample_including_the_first():
    only_first = np.array([True] + [False] * 4)
    lo, hi = bootstrap_interval(only_first, resamples=500)
    assert lo == 0.0 and hi >= 40.0  # the first sample is drawn in some resamples


def test_quantize_error_messages_in_full():
    with pytest.raises(ValueError, match=r"^no scales: the tensor is not quantized$"):
        quantize([1.0], Quantization(scales=(), zero_points=()))
    with pytest.raises(ValueError, match=r"^no scales: the tensor is not quantized$"):
        dequantize([1], Quantization(scales=(), zero_points=()))
    with pytest.raises(ValueError, match=r"^cannot quantize to float32: not an integer dtype$"):
        quantize([1.0], Quantization(scales=(1.0,), zero_points=(0,)), "float32")


def test_quantize_takes_numpy_dtype_names_too():
    out = quantize([1.0, -2.0], Quantization(scales=(0.5,), zero_points=(0,)), "i2")
    assert out.dtype == np.int16 and out.tolist() == [2, -4]


def test_quantize_lists_in_float32_like_the_kernel():
    # 2.25 / 0.3: 7.4999995 in float32 (rounds to 7), 7.5 in float64 (would round to 8)
    q = Quantization(scales=(0.3,), zero_points=(0,))
    assert quantize([2.25], q).tolist() == [7]
    # 0.75 / 0.3: exactly 2.5 in float32 (rounds to 3), 2.4999999 with a float64 dividend (would give 2)
    assert quantize([0.75], q).tolist() == [3]
    assert quantize(np.array([2.25], dtype=np.float32), q).tolist() == [7]


def test_per_tensor_params_ignore_the_quantized_dimension():
    # one scale: the axis is irrelevant, even for a scalar or an axis beyond the array's rank
    q = Quantization(scales=(0.5,), zero_points=(1,), quantized_dimension=3)
    assert quantize(np.float32(1.0), q).reshape(-1).tolist() == [3]
    assert dequantize(np.array([[3, 5]], dtype=np.int8), q).tolist() == [[1.0, 2.0]]


@pytest.mark.parametrize("resamples", [1, 20, 251])
def test_every_bootstrap_resample_is_filled(resamples):
    # every resample of "always one worse" has mean 1: a slot the chunked loop skipped would stay 0
    # and, with few resamples, pull the 2.5th percentile below 100
    ones, zeros = np.ones(30, dtype=bool), np.zeros(30, dtype=bool)
    assert paired_bootstrap(ones, zeros, resamples=resamples) == (100.0, 100.0, 100.0)


@pytest.mark.parametrize("resamples", [251, 501, 750])
def test_chunked_bootstrap_equals_the_direct_one_at_chunk_edges(resamples):
    # positive continuous differences: every resampled mean is near 1.45, so one slot the chunks
    # missed (left at 0) or drew twice moves the 2.5th percentile
    rng = np.random.default_rng(3)
    ref, var = 1 + rng.random(90), 0.1 * rng.random(90)
    lo, hi = paired_bootstrap(ref, var, resamples=resamples, seed=4)[1:]
    assert (lo, hi) == pytest.approx(_resampled_interval(ref - var, resamples, 4), abs=1e-12)
