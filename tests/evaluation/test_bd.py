"""BD-rate / BD-PSNR against curves whose answer is known in closed form."""

import math

import numpy as np
import pytest

from hdc_lightning.evaluation.bd import BDError, bd_psnr, bd_quality, bd_rate

RATES = [0.1, 0.2, 0.4, 0.8]
PSNR = [27.0, 29.5, 31.6, 33.2]  # concave, increasing: a typical RD curve


@pytest.mark.parametrize("factor", [0.8, 1.25, 0.5])
def test_same_curve_at_scaled_rate_gives_that_percentage(factor):
    # Same quality at factor × the rate everywhere → BD-rate is exactly (factor - 1) · 100 %.
    test_rates = [r * factor for r in RATES]
    assert bd_rate(RATES, PSNR, test_rates, PSNR) == pytest.approx((factor - 1) * 100, abs=1e-9)


def test_same_curve_shifted_up_gives_that_bd_psnr():
    assert bd_psnr(RATES, PSNR, RATES, [p + 0.5 for p in PSNR]) == pytest.approx(0.5, abs=1e-9)
    assert bd_rate(RATES, PSNR, RATES, PSNR) == pytest.approx(0.0, abs=1e-9)


def test_point_order_does_not_matter_and_signs_are_consistent():
    shuffled = [2, 0, 3, 1]
    better = [p + 1.0 for p in PSNR]
    r = bd_rate(RATES, PSNR, [RATES[i] for i in shuffled], [better[i] for i in shuffled])
    assert r < 0  # better quality at equal rate = fewer bits at equal quality
    assert bd_psnr(RATES, PSNR, RATES, better) == pytest.approx(1.0)


def test_lower_is_better_metric():
    lp = [0.30, 0.22, 0.15, 0.10]
    # Same LPIPS at 0.8× the rate: 20 % saving; LPIPS lower by 0.02 → +0.02 "better".
    assert bd_rate(RATES, lp, [r * 0.8 for r in RATES], lp, higher_is_better=False) == pytest.approx(-20.0)
    assert bd_quality(RATES, lp, RATES, [v - 0.02 for v in lp], higher_is_better=False) == pytest.approx(0.02)


def test_piecewise_cubic_matches_a_known_integral():
    # Quality linear in log-rate: PCHIP reproduces lines exactly, so the BD-rate between
    # q = a + b·ln R and q = a + c + b·ln R is exp(-c/b) - 1 in closed form.
    a, b, c = 30.0, 4.0, 0.7
    rates = np.geomspace(0.05, 1.0, 5)
    q1 = a + b * np.log(rates)
    assert bd_rate(rates, q1, rates, q1 + c) == pytest.approx(100 * (math.exp(-c / b) - 1), rel=1e-9)


def test_too_few_points():
    with pytest.raises(BDError, match="1 rate point"):
        bd_rate([0.1], [30.0], RATES, PSNR)


def test_non_monotonic_curve_is_refused_with_the_offending_points():
    with pytest.raises(BDError, match="not monotonic.*29.5 to 29"):
        bd_rate(RATES, PSNR, RATES, [27.0, 29.5, 29.0, 33.0], names=("a", "bad"))


def test_duplicate_rates_and_no_overlap():
    with pytest.raises(BDError, match="share the rate"):
        bd_rate(RATES, PSNR, [0.1, 0.1, 0.4], [27, 28, 30])
    with pytest.raises(BDError, match="do not overlap"):
        bd_rate(RATES, PSNR, [1.0, 2.0], [40.0, 42.0])
    with pytest.raises(BDError, match="positive"):
        bd_psnr([0.0, 0.1], [20, 21], RATES, PSNR)
