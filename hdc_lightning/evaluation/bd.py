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

Each figure comes with the interval it was integrated over and its overlap share (that
interval over the wider curve's range): a BD figure over a small overlap says little.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy.interpolate import PchipInterpolator

from hdc_lightning.errors import HDCError

MIN_POINTS = 2  # PCHIP needs two; four or more is the usual practice (and more meaningful)


class BDError(HDCError):
    """Two curves cannot be compared (too few points, not monotonic, no overlap)."""


def _prepare(name: str, rates: Sequence[float], quality: Sequence[float], higher_is_better: bool):
    try:
        r = np.asarray(rates, dtype=np.float64)
        q = np.asarray(quality, dtype=np.float64)
    except (TypeError, ValueError):
        raise BDError(f"curve '{name}': rates and quality must be lists of numbers") from None
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


class Gap(NamedTuple):
    """A BD figure with the interval it was integrated over and how much of the curves that is."""

    value: float
    interval: tuple[float, float]  # on the integration axis (quality, or log-rate)
    overlap: float  # shared interval / the wider curve's range, in (0, 1]


def _mean_gap(x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, y2: np.ndarray, what: str) -> Gap:
    """Mean of (y2 - y1) over the x-interval both curves cover, each interpolated by PCHIP."""
    lo, hi = max(x1.min(), x2.min()), min(x1.max(), x2.max())
    if not hi > lo:
        raise BDError(f"the curves do not overlap in {what}; BD needs a shared interval")
    f1, f2 = PchipInterpolator(x1, y1), PchipInterpolator(x2, y2)
    value = float((f2.integrate(lo, hi) - f1.integrate(lo, hi)) / (hi - lo))
    wider = max(x1.max() - x1.min(), x2.max() - x2.min())
    return Gap(value, (float(lo), float(hi)), float((hi - lo) / wider))


def bd_rate_detail(
    anchor_rates, anchor_quality, test_rates, test_quality, higher_is_better=True, names=("anchor", "test")
) -> Gap:
    """BD-rate in percent, the quality interval integrated over (in the metric's own units)."""
    lr1, q1 = _prepare(names[0], anchor_rates, anchor_quality, higher_is_better)
    lr2, q2 = _prepare(names[1], test_rates, test_quality, higher_is_better)
    # Log-rate as a function of quality: x = quality, y = log-rate.
    gap = _mean_gap(q1, lr1, q2, lr2, "quality")
    lo, hi = gap.interval if higher_is_better else (-gap.interval[1], -gap.interval[0])
    return Gap(100.0 * (math.exp(gap.value) - 1.0), (lo, hi), gap.overlap)


def bd_quality_detail(
    anchor_rates, anchor_quality, test_rates, test_quality, higher_is_better=True, names=("anchor", "test")
) -> Gap:
    """BD-quality, the rate interval (bpp) integrated over."""
    lr1, q1 = _prepare(names[0], anchor_rates, anchor_quality, higher_is_better)
    lr2, q2 = _prepare(names[1], test_rates, test_quality, higher_is_better)
    gap = _mean_gap(lr1, q1, lr2, q2, "rate")
    return Gap(gap.value, (math.exp(gap.interval[0]), math.exp(gap.interval[1])), gap.overlap)


def bd_rate(
    anchor_rates: Sequence[float],
    anchor_quality: Sequence[float],
    test_rates: Sequence[float],
    test_quality: Sequence[float],
    higher_is_better: bool = True,
    names: tuple[str, str] = ("anchor", "test"),
) -> float:
    """BD-rate of ``test`` against ``anchor`` in percent (negative = test saves bits)."""
    return bd_rate_detail(anchor_rates, anchor_quality, test_rates, test_quality, higher_is_better, names).value


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
    return bd_quality_detail(anchor_rates, anchor_quality, test_rates, test_quality, higher_is_better, names).value


def bd_psnr(anchor_rates, anchor_psnr, test_rates, test_psnr, names=("anchor", "test")) -> float:
    """BD-PSNR in dB (positive = test is better at equal rate)."""
    return bd_quality(anchor_rates, anchor_psnr, test_rates, test_psnr, True, names)


# ---- tables of curves (bd.json) ---------------------------------------------------------
# (metric, higher is better, name of its BD-quality figure)
BD_METRICS = (("psnr-rgb", True, "bd-psnr"), ("ms-ssim-rgb", True, "bd-ms-ssim"), ("lpips", False, "bd-lpips"))


def _figure(row: dict[str, Any], key: str, error_key: str, compute) -> None:
    """One BD figure into ``row`` with its interval and overlap, or its error as text."""
    try:
        gap = compute()
    except BDError as e:
        row[error_key] = str(e)
        return
    row[key], row[f"{key}.interval"], row[f"{key}.overlap"] = gap.value, list(gap.interval), round(gap.overlap, 4)


def bd_table(curves: Sequence[Any], anchor: Any) -> dict[str, Any]:
    """BD-rate and BD-quality of each curve against ``anchor`` (results Curves), each with the
    interval it integrates over (quality units for BD-rate, bpp for BD-quality) and the overlap
    share; a figure that cannot be computed leaves its error as text and the other one stands."""
    table: dict[str, Any] = {"anchor": anchor.name, "curves": {}}
    for curve in curves:
        if curve is anchor or curve.name == anchor.name:
            continue
        row: dict[str, Any] = {}
        for metric, higher, q_name in BD_METRICS:
            if not (curve.has(metric) and anchor.has(metric)):
                continue
            args = (
                anchor.results["bpp"],
                anchor.results[metric],
                curve.results["bpp"],
                curve.results[metric],
                higher,
                (anchor.name, curve.name),
            )
            _figure(row, f"bd-rate[{metric}]", f"error[{metric}]", lambda args=args: bd_rate_detail(*args))
            _figure(row, q_name, f"error[{q_name}]", lambda args=args: bd_quality_detail(*args))
        table["curves"][curve.name] = row
    return table


def check_anchor(anchor: Any) -> None:
    """Refuse, before any coding, an anchor curve that cannot give a single BD figure."""
    reasons = []
    for metric, higher, _ in BD_METRICS:
        if anchor.has(metric):
            try:
                _prepare(anchor.name, anchor.results["bpp"], anchor.results[metric], higher)
                return
            except BDError as e:
                reasons.append(f"{metric}: {e}")
    if not reasons:
        reasons.append(f"it has none of {', '.join(m for m, _, _ in BD_METRICS)}")
    raise BDError(f"{getattr(anchor, 'path', None) or anchor.name}: cannot be a BD anchor ({'; '.join(reasons)})")
