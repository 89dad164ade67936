"""EER with the ASVspoof 5 conventions, checked against independent references.

References used here:
* ``sklearn.metrics.roc_curve`` on continuous scores (no ties): its operating points are the
  same as ours, so the EER agrees to within one step (1/n of the smaller class).
* A brute force over every unique threshold, with the rule "accept if score >= t":
  FRR(t) = P(bona < t), FAR(t) = P(spoof >= t). Without ties it reproduces our EER exactly.
  With ties the ASVspoof curve also contains points *inside* a tie group (bonafide first), so
  the EER is not the brute-force "mean at argmin"; it is within half a step of
  min_t max(FRR(t), FAR(t)) (the crossing lies on the upper corner of the tie group's step).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_curve

from rlspoof.metrics import compute_eer, compute_eer_from_labels, det_curve

# --------------------------------------------------------------------------- references


def sklearn_eer(bona: np.ndarray, spoof: np.ndarray) -> float:
    y = np.concatenate([np.ones(bona.size), np.zeros(spoof.size)])
    fpr, tpr, _ = roc_curve(y, np.concatenate([bona, spoof]), pos_label=1, drop_intermediate=False)
    fnr = 1.0 - tpr
    i = np.argmin(np.abs(fnr - fpr))
    return float((fnr[i] + fpr[i]) / 2)


def brute_force_rates(bona: np.ndarray, spoof: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FRR(t) = P(bona < t), FAR(t) = P(spoof >= t) for every unique score t, then t = +inf."""
    thresholds = np.append(np.unique(np.concatenate([bona, spoof])), np.inf)
    frr = np.array([np.mean(bona < t) for t in thresholds])
    far = np.array([np.mean(spoof >= t) for t in thresholds])
    return frr, far


def brute_force_eer(bona: np.ndarray, spoof: np.ndarray) -> float:
    frr, far = brute_force_rates(bona, spoof)
    i = np.argmin(np.abs(frr - far))
    return float((frr[i] + far[i]) / 2)


def half_step(bona: np.ndarray, spoof: np.ndarray) -> float:
    return 0.5 / min(bona.size, spoof.size)


# --------------------------------------------------------------------------- det_curve


def test_det_curve_shape_endpoints_and_monotone():
    rng = np.random.default_rng(0)
    bona, spoof = rng.normal(1, 1, 37), rng.normal(0, 1, 81)
    frr, far, thr = det_curve(bona, spoof)
    n = bona.size + spoof.size
    assert frr.shape == far.shape == thr.shape == (n + 1,)
    assert (frr[0], far[0], frr[-1], far[-1]) == (0.0, 1.0, 1.0, 0.0)
    assert np.all(np.diff(frr) >= 0) and np.all(np.diff(far) <= 0)
    assert thr[0] == pytest.approx(min(bona.min(), spoof.min()) - 0.001)
    np.testing.assert_array_equal(thr[1:], np.sort(np.concatenate([bona, spoof])))


def test_det_curve_rates_match_threshold_rule_without_ties():
    # Point i means "accept if score > thresholds[i]".
    rng = np.random.default_rng(1)
    bona, spoof = rng.normal(1, 1, 50), rng.normal(0, 1, 20)
    frr, far, thr = det_curve(bona, spoof)
    for i in range(thr.size):
        assert frr[i] == pytest.approx(np.mean(bona <= thr[i]))
        assert far[i] == pytest.approx(np.mean(spoof > thr[i]))


# --------------------------------------------------------------------------- EER values


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n_bona,n_spoof", [(1000, 1000), (200, 3000), (2500, 150), (7, 11)])
def test_gaussian_scores_match_sklearn_and_brute_force(seed, n_bona, n_spoof):
    rng = np.random.default_rng(seed)
    bona = rng.normal(1.5, 1.0, n_bona)
    spoof = rng.normal(0.0, 1.3, n_spoof)
    eer, thr = compute_eer(bona, spoof)
    assert abs(eer - sklearn_eer(bona, spoof)) <= 1.0 / min(n_bona, n_spoof)
    # No ties: the curve is exactly the brute-force one, so the EER is identical.
    assert eer == pytest.approx(brute_force_eer(bona, spoof), abs=1e-12)
    # The threshold realises the EER point under "accept if score > threshold".
    frr_t, far_t = np.mean(bona <= thr), np.mean(spoof > thr)
    assert eer == pytest.approx((frr_t + far_t) / 2, abs=1e-12)


def test_known_small_example():
    # sorted: s0.1 b0.2 s0.3 b0.4 b0.5 s0.6 -> frr 0,0,1/3,1/3,2/3,1,1 ; far 1,2/3,2/3,1/3,1/3,1/3,0
    eer, thr = compute_eer([0.2, 0.4, 0.5], [0.1, 0.3, 0.6])
    assert eer == pytest.approx(1 / 3)
    assert thr == pytest.approx(0.3)


def test_perfectly_separated_is_zero():
    eer, thr = compute_eer([2.0, 3.0, 4.0], [-1.0, 0.0, 1.0, 1.5])
    assert eer == 0.0
    assert 1.5 <= thr < 2.0


def test_perfectly_inverted_is_one():
    # Every bonafide sorts below every spoof: the curve walks (0, 1) -> (1, 1) -> (1, 0).
    # FRR reaches 1 while FAR is still 1, so |FRR - FAR| = 0 at (1, 1) and the ASVspoof EER is
    # exactly 1.0 (no threshold separates the classes the "right" way round).
    eer, _ = compute_eer([-1.0, 0.0, 1.0], [2.0, 3.0])
    assert eer == 1.0


def test_all_equal_scores_give_one_under_asvspoof_ties():
    # Ties put every bonafide first, so the curve goes through the corner (FRR, FAR) = (1, 1)
    # where |FRR - FAR| = 0: EER 1.0. A library ROC curve (or the unique-threshold brute force)
    # only has (0, 1) and (1, 0) and reports 0.5 - the pitfall of using a library ROC curve.
    bona, spoof = np.full(40, 0.3), np.full(25, 0.3)
    assert compute_eer(bona, spoof)[0] == 1.0
    assert brute_force_eer(bona, spoof) == 0.5
    assert sklearn_eer(bona, spoof) == 0.5


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n_bona,n_spoof", [(300, 211), (50, 900), (1200, 40)])
def test_heavily_tied_scores_against_brute_force(seed, n_bona, n_spoof):
    rng = np.random.default_rng(100 + seed)
    bona = np.round(rng.normal(1.0, 1.0, n_bona), 1)
    spoof = np.round(rng.normal(0.0, 1.0, n_spoof), 1)
    frr, far, _ = det_curve(bona, spoof)
    bf_frr, bf_far = brute_force_rates(bona, spoof)

    # 1) Every achievable operating point is on the DET curve, at the end of each tie group.
    sorted_scores = np.sort(np.concatenate([bona, spoof]))
    group_starts = np.flatnonzero(np.diff(sorted_scores, prepend=-np.inf) > 0)  # k lowest
    ends = np.append(group_starts, sorted_scores.size)
    np.testing.assert_allclose(frr[ends], bf_frr, atol=1e-12)
    np.testing.assert_allclose(far[ends], bf_far, atol=1e-12)

    # 2) Inside a tie group bonafide come first, so the crossing sits on the group's upper
    #    corner: the EER is min_t max(FRR(t), FAR(t)) to within half a step.
    eer, _ = compute_eer(bona, spoof)
    pessimistic = np.min(np.maximum(bf_frr, bf_far))
    assert abs(eer - pessimistic) <= half_step(bona, spoof) + 1e-12
    # ...and it never beats the best achievable operating point.
    assert eer >= np.max(np.minimum(bf_frr, bf_far)) - half_step(bona, spoof) - 1e-12


# --------------------------------------------------------------------------- labels API


def test_from_labels_ints_and_strings_agree():
    rng = np.random.default_rng(3)
    bona, spoof = rng.normal(1, 1, 30), rng.normal(0, 1, 45)
    scores = np.concatenate([bona, spoof])
    ints = np.array([0] * 30 + [1] * 45)
    perm = rng.permutation(scores.size)
    expected = compute_eer(bona, spoof)
    # Order of trials does not matter without ties.
    assert compute_eer_from_labels(scores[perm], ints[perm]) == pytest.approx(expected)
    strings = np.where(ints == 0, "bonafide", "spoof")
    assert compute_eer_from_labels(scores, strings.tolist()) == pytest.approx(expected)


def test_from_labels_rejects_bad_labels():
    with pytest.raises(ValueError, match="unknown label"):
        compute_eer_from_labels([0.1, 0.2, 0.3], [0, 1, 2])
    with pytest.raises(ValueError, match="unknown label 'fake'"):
        compute_eer_from_labels([0.1, 0.2], ["bonafide", "fake"])
    with pytest.raises(ValueError, match="2 scores but 3 labels"):
        compute_eer_from_labels([0.1, 0.2], [0, 1, 1])
    with pytest.raises(ValueError, match="no spoof scores"):
        compute_eer_from_labels([0.1, 0.2], ["bonafide", "bonafide"])


# --------------------------------------------------------------------------- errors


def test_empty_class_raises():
    with pytest.raises(ValueError, match="no bonafide scores: EER needs both classes"):
        compute_eer([], [0.1, 0.2])
    with pytest.raises(ValueError, match="no spoof scores: EER needs both classes"):
        compute_eer([0.1], np.array([]))
    with pytest.raises(ValueError, match="no bonafide scores"):
        det_curve([], [1.0])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_scores_raise(bad):
    with pytest.raises(ValueError, match="bonafide scores contain 1 non-finite"):
        compute_eer([0.1, bad], [0.2])
    with pytest.raises(ValueError, match="spoof scores contain 1 non-finite"):
        compute_eer([0.1], [bad, 0.2])


# --------------------------------------------------------------------------- properties

# Multiples of 1/4 in a small range: exact in float64, many ties, and exp / cube stay strictly
# increasing on them (a monotone transform that merged two values would change the ties).
_score = st.integers(-40, 40).map(lambda k: k / 4)
_scores = st.lists(_score, min_size=1, max_size=40)


def _argmin_is_ambiguous(bona, spoof) -> bool:
    frr, far, _ = det_curve(bona, spoof)
    gap = np.abs(frr - far)
    return int(np.sum(gap <= gap.min() + 1e-12)) > 1


@settings(max_examples=300, deadline=None)
@given(_scores, _scores)
def test_eer_properties(bona_list, spoof_list):
    bona, spoof = np.array(bona_list), np.array(spoof_list)
    eer, thr = compute_eer(bona, spoof)
    assert 0.0 <= eer <= 1.0
    assert min(bona.min(), spoof.min()) - 0.001 <= thr <= max(bona.max(), spoof.max())

    # Only the order (and ties) of the scores matter.
    for transform in (np.exp, lambda x: x**3, lambda x: 7.0 * x - 2.0):
        assert compute_eer(transform(bona), transform(spoof))[0] == pytest.approx(eer, abs=1e-12)

    # Swapping the classes and negating the scores walks the same curve backwards with FRR and
    # FAR exchanged (tie groups still pass through the same corner), so the EER is unchanged.
    # The one exception: two points equally close to the crossing (|d| = x on both sides) -
    # argmin takes the first, which differs between the two directions; then the two EERs
    # can differ by at most one step.
    swapped, _ = compute_eer(-spoof, -bona)
    if _argmin_is_ambiguous(bona, spoof):
        assert abs(swapped - eer) <= 1.0 / min(bona.size, spoof.size) + 1e-12
    else:
        assert swapped == pytest.approx(eer, abs=1e-12)
