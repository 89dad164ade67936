"""Drift metrics: W1 on scores, sliced W1 on embeddings, permutation p-values, alerts.

Checked against known distances: W1 between N(0, 1) and N(mu, 1) is |mu|; a sample and its
translate by t are exactly |t| apart in 1-D, and exactly mean_k |<u_k, t>| apart in sliced W1,
whose expectation over uniform unit u is |t| * E|u_1| = |t| * G(D/2) / (sqrt(pi) G((D+1)/2)).
Sample sizes and permutation counts are kept small so the file runs in well under a second.
"""

from __future__ import annotations

import functools
import json
import math

import numpy as np
import pytest
from scipy import stats

from rlspoof.metrics.drift import (
    DriftResult,
    calibrate_threshold,
    detect_drift,
    permutation_pvalue,
    score_drift,
    sliced_wasserstein,
)


def mean_abs_unit_coordinate(dim: int) -> float:
    """E|u_1| for u uniform on the unit sphere of R^dim (1 for dim 1, 2/pi for 2, 1/2 for 3)."""
    return math.exp(math.lgamma(dim / 2) - math.lgamma((dim + 1) / 2)) / math.sqrt(math.pi)


def test_mean_abs_unit_coordinate_hand_values():
    assert mean_abs_unit_coordinate(1) == pytest.approx(1.0)
    assert mean_abs_unit_coordinate(2) == pytest.approx(2 / math.pi)
    assert mean_abs_unit_coordinate(3) == pytest.approx(0.5)


# --------------------------------------------------------------------------- score_drift


def test_score_drift_hand_values():
    assert score_drift([0.0, 1.0], [2.0, 3.0]) == pytest.approx(2.0)
    # half of the mass moves by 2: 0 -> 0 and 0 -> 2
    assert score_drift([0.0], [0.0, 2.0]) == pytest.approx(1.0)
    assert score_drift([1.5, -2.0, 0.25], [1.5, -2.0, 0.25]) == 0.0


@pytest.mark.parametrize("t", [-3.0, 0.7, 10.0])
def test_score_drift_of_a_translate_is_the_shift(t):
    x = np.random.default_rng(1).standard_t(3, 200)
    assert score_drift(x, x + t) == pytest.approx(abs(t), rel=1e-9)


@pytest.mark.parametrize(("mu", "seed"), [(0.0, 0), (0.5, 1), (-1.5, 2), (2.0, 3)])
def test_score_drift_between_gaussians_is_the_mean_shift(mu, seed):
    n, m = 400, 600
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0.0, 1.0, n), rng.normal(mu, 1.0, m)
    # the estimation error is ~ the sd of the difference of means, sqrt(1/n + 1/m); 5 sigma
    assert score_drift(a, b) == pytest.approx(abs(mu), abs=5 * math.sqrt(1 / n + 1 / m))


@pytest.mark.parametrize("seed", range(3))
def test_score_drift_properties(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 1, rng.integers(1, 50)), rng.gamma(2.0, 1.0, rng.integers(1, 50))
    d = score_drift(a, b)
    assert d == pytest.approx(score_drift(b, a))
    assert d >= abs(a.mean() - b.mean()) - 1e-12  # W1 bounds the shift of the mean
    assert score_drift(list(a), tuple(b)) == d


@pytest.mark.parametrize(
    ("ref", "inc", "match"),
    [
        ([], [1.0], "reference is empty"),
        ([1.0], [], "incoming is empty"),
        ([1.0, np.nan], [1.0], "non-finite"),
        ([1.0], [np.inf], "non-finite"),
        (["a"], [1.0], "must be numbers"),
        (np.zeros((3, 2)), np.zeros(3), "sliced_wasserstein"),
        (1.0, [1.0], "1-D"),
    ],
)
def test_score_drift_rejects_bad_input(ref, inc, match):
    with pytest.raises(ValueError, match=match):
        score_drift(ref, inc)


# --------------------------------------------------------------------------- sliced W1


def test_sliced_in_one_dimension_is_score_drift():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 50), rng.exponential(1.0, 70)
    # every unit direction in R^1 is +-1, and W1 is invariant to a sign flip of both samples
    assert sliced_wasserstein(a[:, None], b[:, None], n_projections=5) == pytest.approx(
        score_drift(a, b), rel=1e-12
    )
    assert sliced_wasserstein(a[:, None], a[:, None] + 2.5) == pytest.approx(2.5, rel=1e-12)


@pytest.mark.parametrize("dim", [2, 3, 8])
def test_sliced_of_a_translate_is_mean_abs_projection_of_the_shift(dim):
    rng = np.random.default_rng(dim)
    cloud = rng.normal(size=(60, dim))
    t = rng.normal(size=dim) * 2.0
    n_proj = 512
    got = sliced_wasserstein(cloud, cloud + t, n_projections=n_proj, seed=5)
    expected = np.linalg.norm(t) * mean_abs_unit_coordinate(dim)
    # Monte-Carlo error over directions: sd(|<u, t>|) <= |t| sqrt(E u_1^2) = |t| / sqrt(dim)
    tol = 5 * np.linalg.norm(t) / math.sqrt(dim * n_proj)
    assert got == pytest.approx(expected, abs=tol)
    # the cloud's shape does not matter, only the shift: a different cloud, same directions
    other = rng.standard_t(2, size=(30, dim))
    assert sliced_wasserstein(other, other + t, n_projections=n_proj, seed=5) == pytest.approx(
        got, rel=1e-9
    )


def test_sliced_never_exceeds_exact_wasserstein():
    nd = getattr(stats, "wasserstein_distance_nd", None)
    if nd is None:
        pytest.skip("scipy.stats.wasserstein_distance_nd needs scipy >= 1.13")
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(20, 3)), rng.normal(0.5, 1.5, size=(25, 3))
    assert sliced_wasserstein(a, b, n_projections=64) <= nd(a, b) + 1e-9


def test_sliced_basic_properties():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(40, 4)), rng.normal(1.0, 1.0, size=(30, 4))
    d = sliced_wasserstein(a, b, n_projections=32, seed=1)
    assert d == sliced_wasserstein(a, b, n_projections=32, seed=1)  # seed -> same directions
    assert d == pytest.approx(sliced_wasserstein(b, a, n_projections=32, seed=1))
    assert d > 0
    assert sliced_wasserstein(a, a.copy(), n_projections=8) == 0.0


@pytest.mark.parametrize(
    ("a", "b", "kwargs", "exc", "match"),
    [
        (np.zeros((4, 3)), np.zeros((4, 2)), {}, ValueError, "dimensions differ"),
        (np.zeros(4), np.zeros((4, 1)), {}, ValueError, r"\(N, D\)"),
        (np.zeros((0, 3)), np.zeros((4, 3)), {}, ValueError, "empty"),
        (np.full((2, 2), np.nan), np.zeros((4, 2)), {}, ValueError, "non-finite"),
        (np.zeros((4, 2)), np.zeros((4, 2)), {"n_projections": 0}, ValueError, ">= 1"),
        (np.zeros((4, 2)), np.zeros((4, 2)), {"n_projections": 2.0}, TypeError, "int"),
    ],
)
def test_sliced_rejects_bad_input(a, b, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        sliced_wasserstein(a, b, **kwargs)


# --------------------------------------------------------------------------- p-values


def test_pvalue_of_a_shift_is_the_minimum_and_never_below_it():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 60), rng.normal(1.5, 1, 80)
    n = 99
    p = permutation_pvalue(a, b, n_permutations=n)
    assert p == pytest.approx(1 / (n + 1))  # no reshuffle comes close to the real split
    assert permutation_pvalue(a, b, n_permutations=n) == p  # seeded


@pytest.mark.parametrize("seed", range(3))
def test_pvalue_under_the_null_is_a_valid_probability(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 1, 40), rng.normal(0, 1, 50)
    n = 49
    p = permutation_pvalue(a, b, n_permutations=n, seed=seed)
    assert 1 / (n + 1) <= p <= 1.0
    assert round(p * (n + 1)) == pytest.approx(p * (n + 1))  # (1 + count) / (1 + n)


def test_pvalue_of_identical_samples_is_one():
    x = np.random.default_rng(0).normal(size=30)
    assert permutation_pvalue(x, x.copy(), n_permutations=19) == 1.0


def test_pvalue_is_exact_for_tiny_samples():
    # 3 + 3 values have C(6, 3) = 20 splits; only the observed one and its mirror reach W1 = 3
    assert permutation_pvalue([0, 1, 2], [3, 4, 5], n_permutations=200) == pytest.approx(2 / 20)


def test_pvalue_on_embeddings_with_sliced_statistic():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(30, 4))
    b = rng.normal(size=(30, 4)) + np.array([3.0, 0.0, 0.0, 0.0])
    stat = functools.partial(sliced_wasserstein, n_projections=16)
    n = 39
    assert permutation_pvalue(a, b, stat, n_permutations=n) == pytest.approx(1 / (n + 1))
    assert permutation_pvalue(a, a.copy(), stat, n_permutations=9) == 1.0


def test_pvalue_rejects_bad_input():
    with pytest.raises(ValueError, match="sliced_wasserstein"):
        permutation_pvalue(np.zeros((5, 2)), np.ones((5, 2)))  # default statistic is 1-D
    with pytest.raises(ValueError, match="do not match"):
        permutation_pvalue(np.zeros((5, 2)), np.ones((5, 3)), sliced_wasserstein)
    with pytest.raises(ValueError, match="n_permutations"):
        permutation_pvalue([0.0, 1.0], [2.0], n_permutations=0)
    with pytest.raises(ValueError, match="1-D scores or"):
        permutation_pvalue(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))


# --------------------------------------------------------------------------- detect_drift


def _scores(n, mu, seed):
    return np.random.default_rng(seed).normal(mu, 1.0, n)


def test_no_alert_on_same_distribution_with_calibrated_threshold():
    ref, inc = _scores(300, 0.0, 0), _scores(300, 0.0, 1)
    threshold = calibrate_threshold(ref, n_splits=40)
    res = detect_drift(ref, inc, threshold=threshold, alpha=0.01, n_permutations=49)
    assert res.distance < threshold
    assert res.distance == pytest.approx(0.0, abs=5 * math.sqrt(2 / 300))
    assert not res.alert
    assert res.p_value is not None and res.p_value >= 0.01


def test_alert_on_shifted_distribution():
    ref, inc = _scores(300, 0.0, 0), _scores(200, 0.8, 1)
    threshold = calibrate_threshold(ref, n_splits=40)
    n = 49
    res = detect_drift(ref, inc, threshold=threshold, alpha=0.05, n_permutations=n)
    assert res.alert
    assert res.distance > threshold
    assert res.distance == pytest.approx(0.8, abs=5 * math.sqrt(1 / 300 + 1 / 200))
    assert res.p_value == pytest.approx(1 / (n + 1))
    assert (res.kind, res.n_reference, res.n_incoming) == ("score", 300, 200)
    # each criterion alerts on its own
    assert detect_drift(ref, inc, threshold=threshold).alert
    assert detect_drift(ref, inc, alpha=0.05, n_permutations=n).alert


def test_without_threshold_or_alpha_it_only_measures():
    ref, inc = _scores(100, 0.0, 0), _scores(100, 5.0, 1)
    res = detect_drift(ref, inc)
    assert res.distance > 4.0
    assert (res.alert, res.threshold, res.p_value) == (False, None, None)


def test_threshold_is_strict():
    res = detect_drift([0.0, 1.0], [2.0, 3.0], threshold=2.0)
    assert res.distance == pytest.approx(2.0)
    assert not res.alert
    assert detect_drift([0.0, 1.0], [2.0, 3.0], threshold=1.999).alert


def test_detect_drift_on_embeddings():
    rng = np.random.default_rng(0)
    ref, same = rng.normal(size=(120, 6)), rng.normal(size=(120, 6))
    shifted = rng.normal(size=(80, 6)) + 0.8
    kw = {"n_projections": 16}
    threshold = calibrate_threshold(ref, n_splits=20, **kw)
    calm = detect_drift(ref, same, threshold=threshold, **kw)
    assert calm.kind == "embedding" and not calm.alert
    drift = detect_drift(ref, shifted, threshold=threshold, alpha=0.05, n_permutations=19, **kw)
    assert drift.alert and drift.p_value == pytest.approx(1 / 20)
    # the shift (0.8, ..., 0.8) has norm 0.8 sqrt(6); sliced W1 is at least its mean projection
    assert drift.distance > 0.5 * 0.8 * math.sqrt(6) * mean_abs_unit_coordinate(6)
    assert (drift.n_reference, drift.n_incoming) == (120, 80)


def test_drift_result_to_dict_is_json_ready():
    res = detect_drift(
        _scores(50, 0, 0), _scores(40, 1, 1), threshold=0.1, alpha=0.5, n_permutations=9
    )
    d = res.to_dict()
    assert set(d) == {
        "distance",
        "threshold",
        "p_value",
        "alert",
        "n_reference",
        "n_incoming",
        "kind",
    }
    assert json.loads(json.dumps(d)) == d
    assert DriftResult(**d) == res


@pytest.mark.parametrize(
    ("ref", "inc", "kwargs", "match"),
    [
        (np.zeros(5), np.zeros((5, 1)), {}, "do not match"),
        (np.zeros((5, 2)), np.zeros((5, 3)), {}, "do not match"),
        ([], [1.0], {}, "empty"),
        ([1.0], [np.nan], {}, "non-finite"),
        ([1.0], [2.0], {"threshold": -0.1}, "threshold"),
        ([1.0], [2.0], {"threshold": np.inf}, "threshold"),
        ([1.0], [2.0], {"alpha": 0.0}, "alpha"),
        ([1.0], [2.0], {"alpha": 1.0}, "alpha"),
        ([1.0], [2.0], {"n_permutations": 0}, "n_permutations"),
    ],
)
def test_detect_drift_rejects_bad_input(ref, inc, kwargs, match):
    with pytest.raises(ValueError, match=match):
        detect_drift(ref, inc, **kwargs)


# --------------------------------------------------------------------------- calibration


def test_calibrated_threshold_controls_false_alerts_on_small_batches():
    """With ``n_incoming`` set to the batch size, the q-quantile threshold is crossed by about
    ``1 - q`` of undrifted batches; halves (the default) would set it far too low."""
    ref = _scores(400, 0.0, 0)
    t_batch = calibrate_threshold(ref, n_splits=100, quantile=0.9, n_incoming=50)
    t_halves = calibrate_threshold(ref, n_splits=100, quantile=0.9)
    assert t_halves < t_batch  # noise ~ sqrt(1/n_a + 1/n_b)
    rng = np.random.default_rng(1)
    null = np.array([score_drift(ref, rng.normal(0, 1, 50)) for _ in range(100)])
    rate_batch, rate_halves = np.mean(null > t_batch), np.mean(null > t_halves)
    assert 0.0 < rate_batch <= 0.25  # nominal 1 - q = 0.1
    assert rate_halves > max(0.2, 2 * rate_batch)


def test_calibrate_threshold_basics():
    ref = _scores(100, 0.0, 0)
    t = calibrate_threshold(ref, n_splits=30)
    assert t == calibrate_threshold(ref, n_splits=30)  # seeded
    assert 0 < t < calibrate_threshold(ref, n_splits=30, quantile=1.0)
    # W1 scales with the scores, so the threshold is in score units
    assert calibrate_threshold(3.0 * ref, n_splits=30) == pytest.approx(3.0 * t)


@pytest.mark.parametrize(
    ("ref", "kwargs", "exc", "match"),
    [
        ([1.0], {}, ValueError, "at least 2"),
        ([1.0, 2.0, 3.0], {"n_incoming": 3}, ValueError, "smaller than"),
        ([1.0, 2.0, 3.0], {"quantile": 0.0}, ValueError, "quantile"),
        ([1.0, 2.0, 3.0], {"quantile": 1.5}, ValueError, "quantile"),
        ([1.0, 2.0, 3.0], {"n_splits": 0}, ValueError, "n_splits"),
        ([1.0, 2.0, 3.0], {"n_splits": 2.5}, TypeError, "n_splits"),
        ([1.0, np.nan, 3.0], {}, ValueError, "non-finite"),
    ],
)
def test_calibrate_threshold_rejects_bad_input(ref, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        calibrate_threshold(ref, **kwargs)


def test_scipy_is_the_1d_reference():
    a, b = _scores(30, 0, 0), _scores(20, 1, 1)
    assert score_drift(a, b) == stats.wasserstein_distance(a, b)
