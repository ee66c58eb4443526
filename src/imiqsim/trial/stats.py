"""Interval estimates for trial endpoints."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as _st

Z95 = 1.959963984540054


def wilson_ci(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (good coverage for small n and extreme p)."""
    if n <= 0:
        return (float("nan"), float("nan"))
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def clopper_pearson_ci(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Exact (conservative) binomial interval; used for published figures."""
    if n <= 0:
        return (float("nan"), float("nan"))
    lo = 0.0 if k == 0 else _st.beta.ppf(alpha / 2, k, n - k + 1)
    hi = 1.0 if k == n else _st.beta.ppf(1 - alpha / 2, k + 1, n - k)
    return (float(lo), float(hi))


def newcombe_diff_ci(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float, float]:
    """Difference p1 - p2 with Newcombe's hybrid score interval (method 10) for independent arms."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_ci(k1, n1)
    l2, u2 = wilson_ci(k2, n2)
    d = p1 - p2
    lo = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return (d, lo, hi)


def median_ci(x: np.ndarray, alpha: float = 0.05) -> tuple[float, float, float]:
    """Sample median with a distribution-free order-statistic interval."""
    x = np.sort(np.asarray(x, dtype=float)[np.isfinite(x)])
    n = x.size
    if n == 0:
        return (float("nan"), float("nan"), float("nan"))
    med = float(np.median(x))
    lo_i = int(_st.binom.ppf(alpha / 2, n, 0.5))
    hi_i = int(n - lo_i)
    lo_i = min(max(lo_i - 1, 0), n - 1)
    hi_i = min(max(hi_i, 0), n - 1)
    return (med, float(x[lo_i]), float(x[hi_i]))


def proportion(flags: np.ndarray) -> dict:
    """``{"value", "ci95", "k", "n"}`` for a boolean array (NaN entries are excluded)."""
    f = np.asarray(flags, dtype=float)
    f = f[np.isfinite(f)]
    n = int(f.size)
    k = int(f.sum())
    if n == 0:
        return {"value": None, "ci95": [None, None], "k": 0, "n": 0}
    lo, hi = wilson_ci(k, n)
    return {"value": k / n, "ci95": [lo, hi], "k": k, "n": n}
