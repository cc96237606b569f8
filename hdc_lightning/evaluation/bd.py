"""Bjøntegaard deltas between two rate–distortion curves (BD-rate, BD-PSNR).

Method (Bjøntegaard, VCEG-M33, with the piecewise-cubic interpolation later adopted by
VCEG-AL22 and the JVET common test conditions):

* BD-rate: express log(rate) as a function of quality for each curve with a monotone
  piecewise-cubic Hermite interpolant (PCHIP), integrate both over the quality interval
  the two curves share, and turn the mean log-rate difference into a percentage:
  ``100 * (exp(mean(log R_test - log R_anchor)) - 1)``. Negative = the test codec needs
  fewer bits for the same quality.
* BD-PSNR (BD-quality): quality as a function of log(rate), integrated over the shared
  log-rate interval; the mean difference in the quality's unit (dB for PSNR).

Metrics where lower is better (LPIPS) are handled with ``higher_is_better=False``: the
quality is negated, so the sign conventions above still hold.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy.interpolate import PchipInterpolator

from hdc_lightning.errors import HDCError

MIN_POINTS = 2  # PCHIP needs two; four or more is the usual practice (and more meaningful)


class BDError(HDCError):
    """Two curves cannot be compared (too few points, not monotonic, no overlap)."""


def _prepare(name: str, rates: Sequence[float], quality: Sequence[float], higher_is_better: bool):
    r = np.asarray(rates, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    if r.ndim != 1 or r.shape != q.shape:
        raise BDError(f"curve '{name}': rates and quality must be 1-D lists of equal length")
    if len(r) < MIN_POINTS:
        raise BDError(f"curve '{name}': {len(r)} rate point(s), BD needs at least {MIN_POINTS}")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(q))):
        raise BDError(f"curve '{name}': contains non-finite values")
    if np.any(r <= 0):
        raise BDError(f"curve '{name}': rates must be positive (log-rate axis)")
    order = np.argsort(r, kind="stable")
    r, q = r[order], q[order]
    if not higher_is_better:
        q = -q
    for i in range(1, len(r)):
        if r[i] <= r[i - 1]:
            raise BDError(f"curve '{name}': two points share the rate {r[i]:.6g}; BD needs distinct rates")
        if q[i] <= q[i - 1]:
            shown = q if higher_is_better else -q
            raise BDError(
                f"curve '{name}': not monotonic — quality goes from {shown[i - 1]:.6g} to {shown[i]:.6g} "
                f"while the rate rises from {r[i - 1]:.6g} to {r[i]:.6g}; BD needs quality increasing with rate"
            )
    return np.log(r), q


def _mean_gap(x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, y2: np.ndarray, what: str) -> float:
    """Mean of (y2 - y1) over the x-interval both curves cover, each interpolated by PCHIP."""
    lo, hi = max(x1.min(), x2.min()), min(x1.max(), x2.max())
    if not hi > lo:
        raise BDError(f"the curves do not overlap in {what}; BD needs a shared interval")
    f1, f2 = PchipInterpolator(x1, y1), PchipInterpolator(x2, y2)
    return float((f2.integrate(lo, hi) - f1.integrate(lo, hi)) / (hi - lo))


def bd_rate(
    anchor_rates: Sequence[float],
    anchor_quality: Sequence[float],
    test_rates: Sequence[float],
    test_quality: Sequence[float],
    higher_is_better: bool = True,
    names: tuple[str, str] = ("anchor", "test"),
) -> float:
    """BD-rate of ``test`` against ``anchor`` in percent (negative = test saves bits)."""
    lr1, q1 = _prepare(names[0], anchor_rates, anchor_quality, higher_is_better)
    lr2, q2 = _prepare(names[1], test_rates, test_quality, higher_is_better)
    # Log-rate as a function of quality: x = quality, y = log-rate.
    gap = _mean_gap(q1, lr1, q2, lr2, "quality")
    return 100.0 * (math.exp(gap) - 1.0)


def bd_quality(
    anchor_rates: Sequence[float],
    anchor_quality: Sequence[float],
    test_rates: Sequence[float],
    test_quality: Sequence[float],
    higher_is_better: bool = True,
    names: tuple[str, str] = ("anchor", "test"),
) -> float:
    """BD-quality (BD-PSNR for PSNR, in dB) of ``test`` against ``anchor``; positive = better.

    For a lower-is-better metric the result is the mean *decrease* of that metric (so
    positive still means better).
    """
    lr1, q1 = _prepare(names[0], anchor_rates, anchor_quality, higher_is_better)
    lr2, q2 = _prepare(names[1], test_rates, test_quality, higher_is_better)
    return _mean_gap(lr1, q1, lr2, q2, "rate")


def bd_psnr(anchor_rates, anchor_psnr, test_rates, test_psnr, names=("anchor", "test")) -> float:
    """BD-PSNR in dB (positive = test is better at equal rate)."""
    return bd_quality(anchor_rates, anchor_psnr, test_rates, test_psnr, True, names)
