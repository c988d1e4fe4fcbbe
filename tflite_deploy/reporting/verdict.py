"""Is NEW faster, slower or the same as BASE? Pure functions over numbers, no store, no I/O.

Latency moves between processes far more than inside one: measured here, six separate runs of the
same int8 MobileNetV2 spread 6% while each run's own samples put its median within ±0.5%, and a
small CNN moved 20% between two processes. A test over one run's samples would call that noise a
regression. So a verdict rests on:

* per-repeat medians (``bench --repeat K``: K independent interpreter instances / benchmark_model
  runs): with at least 3 on each side, a one-sided Mann-Whitney test, and an effect larger than the
  repeats' own spread can explain;
* the cell's history under the same tag: how far past runs strayed from their median is a noise
  band a change must exceed;
* a minimum effect size (default 5%); with fewer than 3 repeats a side, a conservative band
  (default 15%) stands in for the missing spread.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

FASTER, SLOWER, NO_CHANGE, NOT_COMPARABLE = "faster", "slower", "no change", "not comparable"
INSTRUCTIONS_EFFECT = 0.005  # instruction counts (callgrind) repeat across processes far tighter than time
NOW_FLOAT = "now computes in float"  # an artifact whose ops fell back to float (reporting/size_verdict.py)
MIN_REPEATS = 3
SINGLE_RUN_BAND = 0.15  # a change one-repeat runs must exceed: the 6-20% between-process noise
MIN_HISTORY = 3


@dataclass(frozen=True)
class LatencyVerdict:
    verdict: str
    ratio: Optional[float] = None  # new / base (median of per-repeat medians)
    threshold: Optional[float] = None  # relative change the verdict needed, e.g. 0.08
    p_value: Optional[float] = None
    basis: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def history_band(past: Sequence[float], confidence: float = 0.975) -> Optional[float]:
    """How much two runs of a cell differ by chance, judged from its past runs' p50s (relative).

    The standard deviation of the log p50 over past runs, times √2 (a difference of two runs) and
    Student's t for that few runs. None with fewer than 3 past runs.
    """
    v = np.log(np.asarray([x for x in past if x and x > 0], dtype=np.float64))
    if v.size < MIN_HISTORY:
        return None
    return float(math.expm1(t_quantile(confidence, int(v.size - 1)) * math.sqrt(2) * v.std(ddof=1)))


def repeat_band(base: Sequence[float], new: Sequence[float], confidence: float = 0.995) -> float:
    """The change the repeats' own spread can explain, as a relative change.

    The pooled standard deviation of log per-repeat medians over both sides, times 1.25 (a median is
    ~25% noisier than a mean under normal noise), gives the standard error of the log ratio of
    medians; Student's t at ``confidence`` (one-sided) covers how poorly 3-5 repeats estimate it.
    Measured on synthetic runs (tests/store/test_verdict.py): about 1% false alarms, and a 20%
    slowdown found in 5 of 6 cases with 5 repeats of 5% noise each.
    """
    lb, ln = np.log(np.asarray(base, float)), np.log(np.asarray(new, float))
    dof = lb.size + ln.size - 2
    pooled = math.sqrt((np.sum((lb - lb.mean()) ** 2) + np.sum((ln - ln.mean()) ** 2)) / dof)
    se = 1.25 * pooled * math.sqrt(1 / lb.size + 1 / ln.size)
    return float(math.expm1(t_quantile(confidence, dof) * se))


@functools.lru_cache(maxsize=256)
def _u_tail_counts(m: int, n: int) -> tuple:
    """For samples of m and n values: how many of the C(m+n, m) orderings give U >= u, for each u."""
    # f[i][j][u]: orderings of i and j values with statistic u; built one size at a time
    prev = [np.zeros(1, dtype=object) + 1 for _ in range(n + 1)]  # i = 0: one ordering, U = 0
    for i in range(1, m + 1):
        cur = [np.zeros(1, dtype=object) + 1]  # j = 0
        for j in range(1, n + 1):
            a = np.zeros(i * j + 1, dtype=object)
            a[: len(cur[j - 1])] += cur[j - 1]  # the largest value is from the second sample
            a[j: j + len(prev[j])] += prev[j]  # the largest is from the first: it beats all j
            cur.append(a)
        prev = cur
    counts = prev[n]
    return tuple(np.cumsum(counts[::-1])[::-1])


def mann_whitney_p(base: Sequence[float], new: Sequence[float], slower: bool) -> float:
    """One-sided Mann-Whitney p-value that new is slower (``slower``) or faster than base.

    Exact (all orderings counted) for up to 30 values a side, ties counted as half; a normal
    approximation beyond. Written out because a scipy.stats call costs ~3 ms, and compare runs
    one per cell (1,000 cells in tools/bench_store.py).
    """
    x = np.asarray(new, float) if slower else np.asarray(base, float)
    y = np.asarray(base, float) if slower else np.asarray(new, float)
    m, n = x.size, y.size
    u = float(np.sum(x[:, None] > y[None, :]) + 0.5 * np.sum(x[:, None] == y[None, :]))
    if m <= 30 and n <= 30:
        tail = _u_tail_counts(m, n)
        k = min(math.ceil(u), m * n)
        return float(tail[k] / tail[0])
    mu, sigma = m * n / 2, math.sqrt(m * n * (m + n + 1) / 12)
    return float(0.5 * math.erfc((u - 0.5 - mu) / sigma / math.sqrt(2)))


@functools.lru_cache(maxsize=256)
def t_quantile(p: float, dof: int) -> float:
    """Student's t quantile (cached: compare asks for the same few per cell)."""
    from scipy.special import stdtrit

    return float(stdtrit(dof, p))


def latency_verdict(base: Sequence[float], new: Sequence[float], history: Sequence[float] = (), *,
                    min_effect: float = 0.05, alpha: float = 0.05,
                    single_run_band: float = SINGLE_RUN_BAND) -> LatencyVerdict:
    """Verdict for one cell from per-repeat medians (ms) of each side and the cell's past p50s."""
    base = [float(x) for x in base if x is not None and x > 0 and math.isfinite(x)]
    new = [float(x) for x in new if x is not None and x > 0 and math.isfinite(x)]
    if not base or not new:
        side = "base" if not base else "new"
        return LatencyVerdict(NOT_COMPARABLE, basis=f"no latency on {side}")
    ratio = float(np.median(new) / np.median(base))
    effect = abs(math.log(ratio))
    hist = history_band(history)
    parts = [f"min effect {min_effect:.0%}"]
    thr = min_effect
    if hist is not None:
        parts.append(f"history band {hist:.1%} over {len(history)} past runs")
        thr = max(thr, hist)
    p = None
    if len(base) >= MIN_REPEATS and len(new) >= MIN_REPEATS:
        spread = repeat_band(base, new)
        parts.append(f"repeat spread {spread:.1%}")
        thr = max(thr, spread)
        p = mann_whitney_p(base, new, slower=ratio > 1)
        parts.append(f"Mann-Whitney p={p:.3f} on {len(base)}+{len(new)} repeats")
        significant = p <= alpha
    else:
        if hist is None:
            parts.append(f"single-run band {single_run_band:.0%} ({len(base)}+{len(new)} repeats; "
                         f"use --repeat {MIN_REPEATS} or more)")
            thr = max(thr, single_run_band)
        significant = True
    changed = significant and effect > math.log1p(thr)
    verdict = (SLOWER if ratio > 1 else FASTER) if changed else NO_CHANGE
    return LatencyVerdict(verdict, ratio, thr, p, "; ".join(parts))


def sign_test_p(ratios: Sequence[float], slower: bool) -> float:
    """One-sided exact sign-test p-value that the ratios (new/base) lie above 1 (``slower``) or below it."""
    n = len(ratios)
    k = sum(1 for r in ratios if (r > 1 if slower else r < 1)) + 0.5 * sum(1 for r in ratios if r == 1)
    k = math.ceil(k)
    return float(sum(math.comb(n, i) for i in range(k, n + 1)) / 2 ** n)


def paired_verdict(base: Sequence[float], new: Sequence[float], *, min_effect: float = 0.05,
                   alpha: float = 0.05) -> LatencyVerdict:
    """Verdict for medians measured in pairs, base and new alternating in one process (``compare --confirm``).

    Load that drifts over seconds moves both halves of a pair alike, so each pair's ratio cancels it
    where two separate series would not. Slower (faster) when an exact sign test finds the ratios
    above (below) 1 at ``alpha`` and their median is beyond ``min_effect``.
    """
    pairs = [(b, n) for b, n in zip(base, new) if b and n and b > 0 and n > 0]
    if len(pairs) < MIN_REPEATS:
        return LatencyVerdict(NOT_COMPARABLE, basis=f"{len(pairs)} measured pairs; need {MIN_REPEATS}")
    ratios = [n / b for b, n in pairs]
    ratio = float(np.median(ratios))
    p = sign_test_p(ratios, slower=ratio > 1)
    changed = p <= alpha and abs(math.log(ratio)) > math.log1p(min_effect)
    verdict = (SLOWER if ratio > 1 else FASTER) if changed else NO_CHANGE
    return LatencyVerdict(verdict, ratio, min_effect, p,
                          f"min effect {min_effect:.0%}; sign test p={p:.3f} on {len(pairs)} interleaved pairs")


@dataclass(frozen=True)
class AccuracyVerdict:
    verdict: str  # "worse", "better", "no change", "not comparable"
    change: Optional[float] = None  # top-1 points, new minus base
    basis: str = ""


def accuracy_verdict(base_top1: Optional[float], new_top1: Optional[float],
                     base_drop_ci: Optional[Sequence[float]] = None,
                     new_drop_ci: Optional[Sequence[float]] = None,
                     base_top1_ci: Optional[Sequence[float]] = None,
                     new_top1_ci: Optional[Sequence[float]] = None) -> AccuracyVerdict:
    """Worse/better only when the 95% intervals do not overlap (drop intervals first, else top-1's)."""
    if base_top1 is None or new_top1 is None:
        return AccuracyVerdict(NOT_COMPARABLE, basis="no accuracy on " + ("base" if base_top1 is None else "new"))
    change = float(new_top1 - base_top1)
    if base_drop_ci and new_drop_ci:
        # a larger drop is worse: compare the intervals of the drop
        if new_drop_ci[0] > base_drop_ci[1]:
            return AccuracyVerdict("worse", change, "drop intervals do not overlap")
        if new_drop_ci[1] < base_drop_ci[0]:
            return AccuracyVerdict("better", change, "drop intervals do not overlap")
        return AccuracyVerdict(NO_CHANGE, change, "drop intervals overlap")
    if base_top1_ci and new_top1_ci:
        if new_top1_ci[1] < base_top1_ci[0]:
            return AccuracyVerdict("worse", change, "top-1 intervals do not overlap")
        if new_top1_ci[0] > base_top1_ci[1]:
            return AccuracyVerdict("better", change, "top-1 intervals do not overlap")
        return AccuracyVerdict(NO_CHANGE, change, "top-1 intervals overlap")
    return AccuracyVerdict(NO_CHANGE if change == 0 else NOT_COMPARABLE, change, "no intervals stored")


def regression_verdict(base_mae: Optional[float], new_mae: Optional[float],
                       base_change_ci: Optional[Sequence[float]] = None,
                       new_change_ci: Optional[Sequence[float]] = None,
                       base_mae_ci: Optional[Sequence[float]] = None,
                       new_mae_ci: Optional[Sequence[float]] = None) -> AccuracyVerdict:
    """A regression model's accuracy: worse when its MAE rose beyond noise, i.e. the 95% intervals of
    the MAE change against the float model (else of the MAE itself) do not overlap. ``change``: the
    MAE, new minus base (positive: worse)."""
    if base_mae is None or new_mae is None:
        return AccuracyVerdict(NOT_COMPARABLE, basis="no MAE on " + ("base" if base_mae is None else "new"))
    change = float(new_mae - base_mae)
    # both intervals grow with a worse model, like the top-1 drop's: the same overlap rule
    for lo_hi, what in (((base_change_ci, new_change_ci), "MAE change"), ((base_mae_ci, new_mae_ci), "MAE")):
        b, n = lo_hi
        if b and n:
            if n[0] > b[1]:
                return AccuracyVerdict("worse", change, f"{what} intervals do not overlap")
            if n[1] < b[0]:
                return AccuracyVerdict("better", change, f"{what} intervals do not overlap")
            return AccuracyVerdict(NO_CHANGE, change, f"{what} intervals overlap")
    return AccuracyVerdict(NO_CHANGE if change == 0 else NOT_COMPARABLE, change, "no intervals stored")


def size_verdict(base_bytes: Optional[int], new_bytes: Optional[int], min_effect: float = 0.01) -> str:
    """Sizes are exact: larger/smaller past a small tolerance (default 1%)."""
    if not base_bytes or not new_bytes:
        return NOT_COMPARABLE
    r = new_bytes / base_bytes
    return "larger" if r > 1 + min_effect else "smaller" if r < 1 - min_effect else NO_CHANGE


AGREEMENT_DROPPED = "agreement dropped"  # a delegate's outputs on a phone left the host's (eval --device)


def agreement_verdict(base: Optional[float], base_n: Optional[int], new: Optional[float], new_n: Optional[int],
                      base_bad: bool = False, new_bad: bool = False, z: float = 1.96) -> str:
    """Did a delegate's top-1 agreement with the host drop? ``dropped`` when the new run diverged (NaN/Inf, or
    beyond its thresholds) and the base did not, or when the agreement fell by more than the two samples'
    95% interval of a difference of proportions can explain; ``rose`` the other way; else ``no change``."""
    if new_bad and not base_bad:
        return "dropped"
    if base_bad and not new_bad:
        return "rose"
    if base is None or new is None or not base_n or not new_n:
        return NOT_COMPARABLE
    se = math.sqrt(base * (1 - base) / base_n + new * (1 - new) / new_n)
    diff = new - base
    # both at 100% (or 0%) leave no spread: one sample in a hundred is then the smallest change seen
    bound = z * se if se > 0 else 0.5 / max(base_n, new_n)
    return "dropped" if diff < -bound else "rose" if diff > bound else NO_CHANGE
