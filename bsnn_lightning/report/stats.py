"""The statistics the report states its verdicts with: means, paired differences, spreads, and their
uncertainty. Everything is deterministic (bootstrap and permutation use a fixed generator seed).

Verdict rule, fixed before any experiment was run: a claim that method A beats method B (by the measure
the claim names) **held** if the 95% interval of ``A - B`` lies above 0, **did not hold** if it lies
below 0, and is **unclear** if it contains 0. With a single seed no interval exists and the verdict is
**unclear (one seed)**.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

RESAMPLES = 2000
GENERATOR_SEED = 0


def describe(values: Sequence[float]) -> dict:
    """Mean, sample standard deviation, and the 95% t-interval of the mean (None with one value)."""
    x = np.asarray(values, dtype=float)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError(f"expected a non-empty 1-D sequence of numbers, got shape {list(x.shape)}")
    out = {"n": int(len(x)), "mean": float(x.mean()), "std": None, "ci95": None}
    if len(x) > 1:
        std = float(x.std(ddof=1))
        half = t_quantile(len(x) - 1) * std / math.sqrt(len(x))
        out.update(std=std, ci95=[float(x.mean() - half), float(x.mean() + half)])
    return out


def paired_difference(a: Sequence[float], b: Sequence[float]) -> dict:
    """``a - b`` over paired runs (same seed: same initial weights and data order), described."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"expected paired results of equal length, got {len(a)} and {len(b)}")
    return describe(a - b)


def spread(per_setting: Sequence[Sequence[float]]) -> float:
    """``max - min`` over settings of the mean over seeds."""
    means = [float(np.mean(v)) for v in per_setting]
    return max(means) - min(means)


def bootstrap_spread(per_setting: Sequence[Sequence[float]]) -> dict:
    """The spread and its 95% percentile bootstrap interval (seeds resampled within each setting).

    Note the spread of noisy means is biased upwards: even with no effect of the setting it is positive;
    :func:`permutation_spread` gives its distribution under "the setting has no effect".
    """
    runs = [np.asarray(v, dtype=float) for v in per_setting]
    observed = spread(runs)
    if min(len(r) for r in runs) < 2:
        return {"spread": observed, "ci95": None}
    rng = np.random.default_rng(GENERATOR_SEED)
    draws = np.empty(RESAMPLES)
    for i in range(RESAMPLES):
        means = [r[rng.integers(0, len(r), len(r))].mean() for r in runs]
        draws[i] = max(means) - min(means)
    return {"spread": observed, "ci95": [float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))]}


def bootstrap_spread_difference(first: Sequence[Sequence[float]], second: Sequence[Sequence[float]]) -> dict:
    """``spread(first) - spread(second)`` with its 95% percentile bootstrap interval."""
    a = [np.asarray(v, dtype=float) for v in first]
    b = [np.asarray(v, dtype=float) for v in second]
    observed = spread(a) - spread(b)
    if min(len(r) for r in a + b) < 2:
        return {"difference": observed, "ci95": None}
    rng = np.random.default_rng(GENERATOR_SEED)
    draws = np.empty(RESAMPLES)
    for i in range(RESAMPLES):
        ma = [r[rng.integers(0, len(r), len(r))].mean() for r in a]
        mb = [r[rng.integers(0, len(r), len(r))].mean() for r in b]
        draws[i] = (max(ma) - min(ma)) - (max(mb) - min(mb))
    return {"difference": observed, "ci95": [float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))]}


def permutation_spread(per_setting: Sequence[Sequence[float]]) -> dict:
    """How surprising the observed spread is if the setting had no effect at all.

    The runs of all settings are pooled and dealt back out at random (same group sizes); ``p`` is the
    fraction of deals whose spread reaches the observed one, ``null_mean`` the mean spread of the deals
    (what noise alone produces with this many seeds).
    """
    runs = [np.asarray(v, dtype=float) for v in per_setting]
    sizes = [len(r) for r in runs]
    pooled = np.concatenate(runs)
    observed = spread(runs)
    rng = np.random.default_rng(GENERATOR_SEED)
    cuts = np.cumsum(sizes)[:-1]
    hits, total = 0, 0.0
    for _ in range(RESAMPLES):
        groups = np.split(rng.permutation(pooled), cuts)
        value = spread(groups)
        total += value
        hits += value >= observed - 1e-12
    return {"p": (hits + 1) / (RESAMPLES + 1), "null_mean": total / RESAMPLES}


def verdict(interval: Sequence[float] | None) -> str:
    """The fixed rule (see the module docstring) applied to the 95% interval of "claimed better - other"."""
    if interval is None:
        return "unclear (one seed)"
    lo, hi = interval
    if lo > 0:
        return "held"
    if hi < 0:
        return "did not hold"
    return "unclear"


def t_quantile(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.975, df))
