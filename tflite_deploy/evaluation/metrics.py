"""Metrics per task, all paired: every variant is judged on the samples its reference saw.

Output agreement (SQNR, max abs error, MSE, cosine, non-finite values) needs no targets; class
labels give top-1/top-k and the paired drop; float targets give MAE and RMSE and the paired change
of the MAE. Every interval is a bootstrap over samples (:func:`paired_bootstrap_mean`).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def agreement(ref: np.ndarray, var: np.ndarray) -> dict[str, float]:
    """How close a variant's outputs are to the reference's, sample by sample."""
    r = ref.reshape(len(ref), -1).astype(np.float64)
    v = var.reshape(len(var), -1).astype(np.float64)
    err = v - r
    noise = float(np.sum(err ** 2))
    signal = float(np.sum(r ** 2))
    norms = np.linalg.norm(r, axis=1) * np.linalg.norm(v, axis=1)
    cos = np.where(norms > 0, np.sum(r * v, axis=1) / np.where(norms > 0, norms, 1), 1.0)
    out = {
        "mse": float(np.mean(err ** 2)),
        "max_abs_error": float(np.max(np.abs(err))),
        "cosine": float(np.mean(cos)),
        "sqnr_db": float("inf") if noise == 0 else float(10 * np.log10(signal / noise)) if signal else float("-inf"),
        "nonfinite": int(np.sum(~np.isfinite(v))),
    }
    if r.shape[1] > 1:
        out["label_agreement"] = float(np.mean(r.argmax(1) == v.argmax(1)))
    return out


def topk_correct(values: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    k = min(k, values.shape[1])
    top = np.argpartition(-values, k - 1, axis=1)[:, :k]
    return (top == labels[:, None]).any(axis=1)


def paired_bootstrap_mean(ref: np.ndarray, var: np.ndarray, resamples: int = 2000,
                          seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``ref - var`` per sample and its 95% interval (resampling sample indices)."""
    n = len(ref)
    rng = np.random.default_rng(seed)
    diff = ref.astype(np.float64) - var.astype(np.float64)
    means = np.zeros(resamples)  # zeros, not empty: a slot the loop missed would be a visible 0, not stale memory
    for start in range(0, resamples, 250):  # chunks keep memory flat for large sets
        idx = rng.integers(0, n, size=(min(250, resamples - start), n))
        means[start:start + len(idx)] = diff[idx].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(diff.mean()), float(lo), float(hi)


def paired_bootstrap(ref_correct: np.ndarray, var_correct: np.ndarray, resamples: int = 2000,
                     seed: int = 0) -> tuple[float, float, float]:
    """Accuracy drop (reference minus variant, in points) and its 95% interval."""
    mean, lo, hi = paired_bootstrap_mean(ref_correct, var_correct, resamples, seed)
    return 100 * mean, 100 * lo, 100 * hi


def bootstrap_interval(correct: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    c = correct.astype(np.float64)
    idx = rng.integers(0, len(c), size=(resamples, len(c)))
    lo, hi = np.percentile(c[idx].mean(axis=1), [2.5, 97.5])
    return 100 * float(lo), 100 * float(hi)


def accuracy(values: np.ndarray, labels: np.ndarray, top_k: int, resamples: int) -> dict[str, Any]:
    correct = values.argmax(1) == labels
    out: dict[str, Any] = {"top1": 100 * float(correct.mean()),
                           "top1_ci95": list(bootstrap_interval(correct, resamples))}
    if values.shape[1] > top_k:
        out[f"top{top_k}"] = 100 * float(topk_correct(values, labels, top_k).mean())
    return out


def abs_errors(values: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Mean absolute error per sample (over the output's values)."""
    v = values.reshape(len(values), -1).astype(np.float64)
    t = targets.reshape(len(targets), -1).astype(np.float64)
    return np.mean(np.abs(v - t), axis=1)


def regression(values: np.ndarray, targets: np.ndarray, resamples: int = 2000) -> dict[str, Any]:
    """MAE (with its 95% interval over samples: what compare judges a reference row on) and RMSE."""
    v = values.reshape(len(values), -1).astype(np.float64)
    t = targets.reshape(len(targets), -1).astype(np.float64)
    mae, lo, hi = paired_bootstrap_mean(abs_errors(values, targets), np.zeros(len(v)), resamples)
    return {"mae": mae, "mae_ci95": [lo, hi], "rmse": float(np.sqrt(np.mean((v - t) ** 2)))}


def regression_change(ref: np.ndarray, var: np.ndarray, targets: np.ndarray, resamples: int) -> dict[str, Any]:
    """The variant's MAE minus the reference's (positive: worse), with its paired 95% interval."""
    mean, lo, hi = paired_bootstrap_mean(abs_errors(var, targets), abs_errors(ref, targets), resamples)
    return {"mae_change": mean, "mae_change_ci95": [lo, hi]}
