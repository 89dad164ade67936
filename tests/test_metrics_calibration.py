"""Cllr and minCllr (PAV), checked against naive formulas and their defining properties."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlspoof.metrics import cllr, min_cllr, pav_llrs


def naive_cllr(bona, spoof) -> float:
    bona, spoof = np.asarray(bona, float), np.asarray(spoof, float)
    return float(
        0.5 * (np.mean(np.log1p(np.exp(-bona))) + np.mean(np.log1p(np.exp(spoof)))) / np.log(2)
    )


def calibrated_gaussian_llrs(m: float, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """s ~ N(+m, 2m) (bonafide) and N(-m, 2m) (spoof): each score is its own exact LLR."""
    rng = np.random.default_rng(seed)
    sd = math.sqrt(2 * m)
    return rng.normal(m, sd, n), rng.normal(-m, sd, n)


# --------------------------------------------------------------------------- Cllr


@pytest.mark.parametrize("seed", range(4))
def test_cllr_matches_naive_formula(seed):
    rng = np.random.default_rng(seed)
    bona, spoof = rng.normal(1, 3, rng.integers(1, 30)), rng.normal(-1, 3, rng.integers(1, 30))
    assert cllr(bona, spoof) == pytest.approx(naive_cllr(bona, spoof), rel=1e-12)


def test_cllr_hand_value():
    # ln(1 + e^0) = ln 2 -> 1 bit; ln(1 + e^-ln3) = ln(4/3).
    assert cllr([math.log(3)], [-math.log(3)]) == pytest.approx(math.log2(4 / 3))
    assert cllr([0.0], [math.log(3)]) == pytest.approx(0.5 * (1 + 2))  # log2(4) = 2 bits


@pytest.mark.parametrize("n_bona,n_spoof", [(1, 1), (3, 1000), (1000, 7), (12345, 6789)])
def test_all_zero_scores_give_exactly_one(n_bona, n_spoof):
    assert cllr(np.zeros(n_bona), np.zeros(n_spoof)) == 1.0


def test_calibrated_well_separated_system_near_zero():
    bona, spoof = calibrated_gaussian_llrs(m=40.0, n=5000, seed=0)
    assert cllr(bona, spoof) < 0.01
    assert cllr([30.0, 50.0], [-40.0, -35.0]) < 1e-12


def test_calibrated_system_has_small_calibration_loss():
    bona, spoof = calibrated_gaussian_llrs(m=2.0, n=20000, seed=1)
    c, mc = cllr(bona, spoof), min_cllr(bona, spoof)
    assert 0 < mc <= c
    assert c - mc < 0.02
    # Scaling the LLRs by 3 (over-confident) or shifting them keeps minCllr, worsens Cllr.
    for bad_b, bad_s in ((3 * bona, 3 * spoof), (bona - 4, spoof - 4)):
        assert min_cllr(bad_b, bad_s) == pytest.approx(mc, abs=1e-12)
        assert cllr(bad_b, bad_s) > c + 0.1


def test_cllr_is_stable_for_huge_scores():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings from exp
        assert cllr([1e4], [-1e4]) == 0.0
        wrong = cllr([-1e4], [1e4])
    assert math.isfinite(wrong)
    assert wrong == pytest.approx(1e4 / math.log(2))


# --------------------------------------------------------------------------- minCllr


def test_min_cllr_hand_example():
    # Sorted: spoof 0, bona 1, spoof 2, bona 3 -> PAV posteriors 0, 1/2, 1/2, 1; prior odds 1.
    # LLRs -inf (clipped), 0, 0, +inf -> costs: bona (ln2, 0), spoof (0, ln2) -> 0.5 bit.
    assert min_cllr([1.0, 3.0], [0.0, 2.0]) == pytest.approx(0.5)
    bona_llr, spoof_llr = pav_llrs([1.0, 3.0], [0.0, 2.0])
    np.testing.assert_allclose(bona_llr, [0.0, 1000.0], atol=1e-12)
    np.testing.assert_allclose(spoof_llr, [-1000.0, 0.0], atol=1e-12)


def test_min_cllr_extremes():
    assert min_cllr([2.0, 3.0], [0.0, 1.0, 1.5]) == 0.0  # separated
    # No information (all equal / perfectly inverted): PAV pools everything, posterior = prior,
    # LLR = 0 -> 1 bit.
    assert min_cllr(np.full(30, 0.7), np.full(11, 0.7)) == pytest.approx(1.0, abs=1e-12)
    assert min_cllr([-3.0, -2.0, -1.0], [1.0, 2.0]) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_min_cllr_not_above_cllr_or_any_affine_calibration(seed):
    rng = np.random.default_rng(seed)
    bona = rng.normal(1.0, rng.uniform(0.5, 3), rng.integers(5, 300))
    spoof = rng.normal(-0.5, rng.uniform(0.5, 3), rng.integers(5, 300))
    mc = min_cllr(bona, spoof)
    assert mc <= cllr(bona, spoof) + 1e-12
    # Affine calibration a*s + b (a > 0) is one monotone map: it can never beat PAV.
    best_affine = min(
        cllr(a * bona + b, a * spoof + b)
        for a in (0.1, 0.3, 1.0, 3.0, 10.0)
        for b in np.linspace(-3, 3, 13)
    )
    assert mc <= best_affine + 1e-12


def test_pav_llrs_monotone_in_score_and_finite():
    rng = np.random.default_rng(9)
    bona, spoof = np.round(rng.normal(1, 1, 200), 1), np.round(rng.normal(0, 1, 300), 1)
    b_llr, s_llr = pav_llrs(bona, spoof)
    assert b_llr.size == bona.size and s_llr.size == spoof.size
    assert np.all(np.isfinite(b_llr)) and np.all(np.isfinite(s_llr))
    assert np.all(np.diff(b_llr) >= 0) and np.all(np.diff(s_llr) >= 0)


_score = st.integers(-24, 24).map(lambda k: k / 4)
_scores = st.lists(_score, min_size=1, max_size=30)


@settings(max_examples=150, deadline=None)
@given(_scores, _scores)
def test_min_cllr_properties(bona_list, spoof_list):
    bona, spoof = np.array(bona_list), np.array(spoof_list)
    mc = min_cllr(bona, spoof)
    assert 0.0 <= mc <= 1.0 + 1e-12  # never worse than the uninformative system
    assert mc <= cllr(bona, spoof) + 1e-12
    for transform in (np.exp, lambda x: x**3, lambda x: 7.0 * x - 2.0):
        assert min_cllr(transform(bona), transform(spoof)) == pytest.approx(mc, abs=1e-12)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "fn,name", [(cllr, "Cllr"), (min_cllr, "minCllr"), (pav_llrs, "PAV calibration")]
)
def test_empty_class_raises(fn, name):
    with pytest.raises(ValueError, match=f"no bonafide scores: {name} needs both classes"):
        fn([], [0.1])
    with pytest.raises(ValueError, match=f"no spoof scores: {name} needs both classes"):
        fn([0.1, 0.2], [])


@pytest.mark.parametrize("fn", [cllr, min_cllr])
def test_non_finite_raises(fn):
    with pytest.raises(ValueError, match="spoof scores contain 1 non-finite"):
        fn([0.1], [np.inf, 0.0])
