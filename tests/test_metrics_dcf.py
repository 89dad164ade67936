"""minDCF / actDCF / accuracy with the ASVspoof 5 cost model, checked against a brute force.

Decision rule everywhere (as in ``det_curve``): accept as bonafide if score > threshold, so
FRR(t) = P(bona <= t) and FAR(t) = P(spoof > t). The brute force below loops over every unique
score as threshold plus -inf ("accept everything"); these are all the achievable operating
points, so its minimum is the exact minDCF, ties included.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlspoof.metrics import DCFParams, accuracy_at, act_dcf, compute_eer, min_dcf

ASV5 = DCFParams()


def brute_force_dcf(bona, spoof, params=ASV5) -> tuple[np.ndarray, np.ndarray]:
    """(dcf, thresholds) over -inf and every unique score, rule "accept if score > t"."""
    bona, spoof = np.asarray(bona, float), np.asarray(spoof, float)
    thresholds = np.concatenate([[-np.inf], np.unique(np.concatenate([bona, spoof]))])
    dcf = []
    for t in thresholds:
        frr = np.mean(bona <= t)
        far = np.mean(spoof > t)
        cost = params.c_miss * frr * (1 - params.p_spoof) + params.c_fa * far * params.p_spoof
        dcf.append(cost / min(params.c_miss * (1 - params.p_spoof), params.c_fa * params.p_spoof))
    return np.array(dcf), thresholds


def brute_force_min_dcf(bona, spoof, params=ASV5) -> float:
    return float(brute_force_dcf(bona, spoof, params)[0].min())


def asvspoof_package_act_dcf(bona, spoof, params=ASV5) -> float:
    """actDCF as the ASVspoof 5 package states it: miss if score < t, false alarm if >= t."""
    t = -math.log(params.c_miss * (1 - params.p_spoof) / (params.c_fa * params.p_spoof))
    miss = np.mean(np.asarray(bona) < t)
    fa = np.mean(np.asarray(spoof) >= t)
    cost = params.c_miss * (1 - params.p_spoof) * miss + params.c_fa * params.p_spoof * fa
    return float(cost / min(params.c_fa * params.p_spoof, params.c_miss * (1 - params.p_spoof)))


def _cases():
    rng = np.random.default_rng(42)
    yield "random", rng.normal(1.0, 1.0, 300), rng.normal(0.0, 1.2, 500)
    yield "random_small", rng.normal(0.5, 1.0, 7), rng.normal(0.0, 1.0, 13)
    yield "unbalanced", rng.normal(2.0, 1.0, 40), rng.normal(0.0, 1.0, 2000)
    yield "tied", np.round(rng.normal(1, 1, 400), 1), np.round(rng.normal(0, 1, 250), 1)
    yield "all_tied", np.full(30, 0.2), np.full(20, 0.2)
    yield "separated", rng.uniform(2, 3, 50), rng.uniform(-1, 1, 60)
    yield "inverted", rng.uniform(-1, 1, 50), rng.uniform(2, 3, 60)


CASES = list(_cases())


# --------------------------------------------------------------------------- parameters


def test_params_asvspoof5_values():
    p = DCFParams()
    assert (p.p_spoof, p.c_miss, p.c_fa) == (0.05, 1, 10)
    assert p.cost_ratio == pytest.approx(1.9)
    assert p.normaliser == pytest.approx(0.5)
    assert p.bayes_threshold == pytest.approx(-math.log(1.9))
    assert p.bayes_threshold == pytest.approx(-0.6419, abs=1e-4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.p_spoof = 0.5  # type: ignore[misc]


@pytest.mark.parametrize("kwargs", [{"p_spoof": 0.0}, {"p_spoof": 1.0}, {"c_fa": 0.0}])
def test_params_reject_degenerate_costs(kwargs):
    with pytest.raises(ValueError):
        DCFParams(**kwargs)


# --------------------------------------------------------------------------- minDCF


@pytest.mark.parametrize("name,bona,spoof", CASES, ids=[c[0] for c in CASES])
def test_min_dcf_matches_brute_force(name, bona, spoof):
    value, thr = min_dcf(bona, spoof)
    assert value == pytest.approx(brute_force_min_dcf(bona, spoof), abs=1e-12)
    # The returned threshold is achievable: actDCF there is exactly minDCF.
    assert act_dcf(bona, spoof, threshold=thr) == pytest.approx(value, abs=1e-12)
    assert 0.0 <= value <= 1.0


@pytest.mark.parametrize("params", [DCFParams(0.5, 1, 1), DCFParams(0.01, 2, 3), DCFParams(0.3)])
def test_min_dcf_other_cost_models(params):
    rng = np.random.default_rng(7)
    bona, spoof = np.round(rng.normal(1, 1, 200), 1), rng.normal(0, 1, 300)
    value, thr = min_dcf(bona, spoof, params)
    assert value == pytest.approx(brute_force_min_dcf(bona, spoof, params), abs=1e-12)
    assert act_dcf(bona, spoof, params, threshold=thr) == pytest.approx(value, abs=1e-12)
    assert value <= 1.0


def test_trivial_systems_cost_one_and_one_point_nine():
    bona, spoof = np.array([0.0, 1.0]), np.array([0.5, 2.0])
    assert act_dcf(bona, spoof, threshold=-10.0) == pytest.approx(1.0)  # accept all: FAR 1
    assert act_dcf(bona, spoof, threshold=10.0) == pytest.approx(1.9)  # reject all: FRR 1


def test_perfectly_separated_is_zero():
    value, thr = min_dcf([2.0, 3.0, 4.0], [-1.0, 0.0, 1.5])
    assert value == 0.0
    assert 1.5 <= thr < 2.0


def test_inverted_and_all_equal_give_one():
    # No threshold does better than accepting everything (cost 1).
    assert min_dcf([-1.0, 0.0], [1.0, 2.0, 3.0])[0] == pytest.approx(1.0)
    assert min_dcf(np.full(5, 0.3), np.full(9, 0.3))[0] == pytest.approx(1.0)


def test_known_small_example():
    # bona 0.2 0.4 0.5 / spoof 0.1 0.3 0.6; cost = 1.9 * FRR + FAR:
    # t=-inf: 1 | t=0.1: 0 + 2/3 | t=0.2: 1.9/3 + 2/3 | t=0.3: 1.9/3 + 1/3 | ... -> min 2/3 at 0.1.
    value, thr = min_dcf([0.2, 0.4, 0.5], [0.1, 0.3, 0.6])
    assert value == pytest.approx(2 / 3)
    assert thr == pytest.approx(0.1)


# --------------------------------------------------------------------------- actDCF


@pytest.mark.parametrize("name,bona,spoof", CASES, ids=[c[0] for c in CASES])
def test_act_dcf_at_least_min_dcf(name, bona, spoof):
    m = min_dcf(bona, spoof)[0]
    assert act_dcf(bona, spoof) >= m - 1e-12
    for t in np.linspace(-4, 4, 17):
        assert act_dcf(bona, spoof, threshold=t) >= m - 1e-12


def test_act_dcf_default_threshold_is_minus_ln_beta():
    rng = np.random.default_rng(3)
    bona, spoof = rng.normal(1, 2, 500), rng.normal(-1, 2, 700)
    t = -math.log(1.9)
    assert act_dcf(bona, spoof) == act_dcf(bona, spoof, threshold=t)
    frr, far = np.mean(bona <= t), np.mean(spoof > t)
    assert act_dcf(bona, spoof) == pytest.approx(1.9 * frr + far, abs=1e-12)
    # Continuous scores never hit the threshold exactly: same as the ASVspoof 5 package.
    assert act_dcf(bona, spoof) == pytest.approx(asvspoof_package_act_dcf(bona, spoof), abs=1e-12)


def test_act_dcf_tie_at_threshold_uses_greater_than():
    # A score exactly at the threshold is rejected (score > t accepts), like det_curve.
    assert act_dcf([0.0], [0.0], threshold=0.0) == pytest.approx(1.9)  # bona rejected
    assert act_dcf([0.0], [-1.0], threshold=0.0) == pytest.approx(1.9)
    assert act_dcf([1.0], [0.0], threshold=0.0) == 0.0  # spoof at t rejected -> no FA


def test_act_dcf_well_calibrated_llrs_close_to_min_dcf():
    # Gaussian LLRs: s ~ N(+-m, 2m) are their own log-likelihood ratios -> Bayes threshold is
    # (nearly) optimal, so actDCF is close to minDCF.
    rng = np.random.default_rng(11)
    m = 2.0
    bona, spoof = rng.normal(m, np.sqrt(2 * m), 20000), rng.normal(-m, np.sqrt(2 * m), 20000)
    assert act_dcf(bona, spoof) - min_dcf(bona, spoof)[0] < 0.03
    # A shifted (miscalibrated) copy has the same minDCF and a much worse actDCF.
    assert min_dcf(bona + 3, spoof + 3)[0] == pytest.approx(min_dcf(bona, spoof)[0])
    assert act_dcf(bona + 3, spoof + 3) > act_dcf(bona, spoof) + 0.2


# --------------------------------------------------------------------------- accuracy


def test_accuracy_at():
    bona, spoof = [0.5, 2.0, -1.0], [-2.0, 0.0, 1.0, -0.5]
    # threshold 0: bona correct 2/3, spoof correct 3/4 (0.0 is not > 0) -> 5/7.
    assert accuracy_at(bona, spoof) == pytest.approx(5 / 7)
    assert accuracy_at(bona, spoof, threshold=-5) == pytest.approx(3 / 7)
    assert accuracy_at(bona, spoof, threshold=5) == pytest.approx(4 / 7)


# --------------------------------------------------------------------------- properties

_score = st.integers(-20, 20).map(lambda k: k / 4)
_scores = st.lists(_score, min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(_scores, _scores, st.sampled_from([ASV5, DCFParams(0.5, 1, 1), DCFParams(0.2, 3, 1)]))
def test_min_dcf_properties(bona_list, spoof_list, params):
    bona, spoof = np.array(bona_list), np.array(spoof_list)
    value, thr = min_dcf(bona, spoof, params)
    assert value == pytest.approx(brute_force_min_dcf(bona, spoof, params), abs=1e-12)
    assert act_dcf(bona, spoof, params, threshold=thr) == pytest.approx(value, abs=1e-12)
    assert 0.0 <= value <= 1.0 + 1e-12
    assert act_dcf(bona, spoof, params) >= value - 1e-12
    # Order-only: strictly increasing transforms keep minDCF.
    assert min_dcf(np.exp(bona), np.exp(spoof), params)[0] == pytest.approx(value, abs=1e-12)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "fn,name",
    [
        (lambda b, s: min_dcf(b, s), "minDCF"),
        (lambda b, s: act_dcf(b, s), "actDCF"),
        (lambda b, s: accuracy_at(b, s), "accuracy"),
    ],
)
def test_empty_class_raises(fn, name):
    with pytest.raises(ValueError, match=f"no bonafide scores: {name} needs both classes"):
        fn([], [0.1, 0.2])
    with pytest.raises(ValueError, match=f"no spoof scores: {name} needs both classes"):
        fn([0.1], np.array([]))


@pytest.mark.parametrize("fn", [min_dcf, act_dcf, accuracy_at])
def test_non_finite_raises(fn):
    with pytest.raises(ValueError, match="non-finite"):
        fn([0.1, np.nan], [0.2])


def test_nan_threshold_raises():
    with pytest.raises(ValueError, match="NaN"):
        act_dcf([0.1], [0.2], threshold=float("nan"))


def test_min_dcf_consistent_with_eer_curve():
    # minDCF's operating point is on the same DET curve: at the EER threshold the cost is
    # 1.9 * FRR + FAR, never below minDCF.
    rng = np.random.default_rng(5)
    bona, spoof = rng.normal(1, 1, 1000), rng.normal(0, 1, 1000)
    _, eer_thr = compute_eer(bona, spoof)
    assert act_dcf(bona, spoof, threshold=eer_thr) >= min_dcf(bona, spoof)[0]
