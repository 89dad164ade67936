"""Forgetting measures, checked on hand-made suites and matrices with hand-computed values."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rlspoof.metrics.forgetting import (
    ROLES,
    SuiteSet,
    average_forgetting,
    backward_transfer,
    forgetting_report,
    forward_transfer,
)

# --------------------------------------------------------------------------- SuiteSet


def test_suite_set_accepts_valid_roles():
    for role in ROLES:
        assert SuiteSet("x", role).role == role


def test_suite_set_rejects_bad_role_naming_valid_ones():
    with pytest.raises(ValueError, match="valid roles are 'target', 'old', 'ood'"):
        SuiteSet("asv19", "train")


def test_suite_set_rejects_empty_name():
    with pytest.raises(ValueError, match="non-empty"):
        SuiteSet("", "old")


# --------------------------------------------------------------------------- forgetting_report

BEFORE = {
    "itw": {"eer": 0.20, "min_dcf": 0.50},  # target
    "asv19": {"eer": 0.05, "min_dcf": 0.10},  # old
    "asv21": {"eer": 0.02, "min_dcf": 0.08},  # old
    "fake_or_real": {"eer": 0.30, "min_dcf": 0.60},  # ood
}
AFTER = {
    "itw": {"eer": 0.10, "min_dcf": 0.30},  # improved
    "asv19": {"eer": 0.08, "min_dcf": 0.15},  # worse
    "asv21": {"eer": 0.01, "min_dcf": 0.08},  # eer better, min_dcf same
    "fake_or_real": {"eer": 0.30, "min_dcf": 0.60},  # unchanged
    "unused": {"eer": 0.99, "min_dcf": 0.99},  # not in the suite: ignored
}
ROLE_MAP = {"itw": "target", "asv19": "old", "asv21": "old", "fake_or_real": "ood"}


def test_report_hand_values():
    rep = forgetting_report(BEFORE, AFTER, ROLE_MAP)
    assert rep["metrics"] == ["eer", "min_dcf"]
    assert rep["roles"] == ROLE_MAP
    assert list(rep["sets"]) == list(ROLE_MAP)  # suite order, extra set dropped

    asv19 = rep["sets"]["asv19"]["eer"]
    assert asv19["before"] == 0.05 and asv19["after"] == 0.08
    assert asv19["delta"] == pytest.approx(0.03, abs=1e-12)
    assert rep["sets"]["itw"]["min_dcf"]["delta"] == pytest.approx(-0.20, abs=1e-12)

    eer = rep["summary"]["eer"]
    assert eer["target_gain"] == pytest.approx(0.10, abs=1e-12)
    # old deltas +0.03 and -0.01: the signed mean lets the improvement cancel part of the
    # forgetting; average_forgetting clips at 0 and does not.
    assert eer["old_mean_change"] == pytest.approx(0.01, abs=1e-12)
    assert eer["average_forgetting"] == pytest.approx(0.015, abs=1e-12)
    assert eer["ood_mean_change"] == 0.0
    assert (eer["n_target"], eer["n_old"], eer["n_ood"]) == (1, 2, 1)

    dcf = rep["summary"]["min_dcf"]
    assert dcf["target_gain"] == pytest.approx(0.20, abs=1e-12)
    assert dcf["old_mean_change"] == pytest.approx(0.025, abs=1e-12)
    assert dcf["average_forgetting"] == pytest.approx(0.025, abs=1e-12)
    assert dcf["ood_mean_change"] == 0.0


def test_report_is_plain_json():
    rep = forgetting_report(BEFORE, AFTER, ROLE_MAP, metrics=("eer",))
    assert json.loads(json.dumps(rep)) == rep
    assert type(rep["summary"]["eer"]["target_gain"]) is float


def test_report_accepts_suite_sets():
    suite = [SuiteSet(n, r) for n, r in ROLE_MAP.items()]
    assert forgetting_report(BEFORE, AFTER, suite) == forgetting_report(BEFORE, AFTER, ROLE_MAP)


def test_report_empty_role_gives_none():
    rep = forgetting_report(BEFORE, AFTER, {"itw": "target", "asv19": "old"}, metrics=("eer",))
    assert rep["summary"]["eer"]["ood_mean_change"] is None
    assert rep["summary"]["eer"]["n_ood"] == 0


def test_report_no_change_is_zero():
    rep = forgetting_report(BEFORE, BEFORE, ROLE_MAP)
    for row in rep["summary"].values():
        for key in ("target_gain", "old_mean_change", "average_forgetting", "ood_mean_change"):
            assert row[key] == 0.0


@pytest.mark.parametrize("side", ["before", "after"])
def test_report_missing_set_is_named(side):
    tables = {"before": dict(BEFORE), "after": dict(AFTER)}
    del tables[side]["asv21"]
    with pytest.raises(ValueError, match=rf"set 'asv21' is missing from '{side}'"):
        forgetting_report(tables["before"], tables["after"], ROLE_MAP)


def test_report_missing_metric_is_named():
    after = {**AFTER, "asv19": {"eer": 0.08}}
    with pytest.raises(ValueError, match=r"metric 'min_dcf' is missing for set 'asv19' in 'after'"):
        forgetting_report(BEFORE, after, ROLE_MAP)


@pytest.mark.parametrize("metric", ["accuracy", "auc", "eer_threshold"])
def test_report_rejects_non_error_metrics(metric):
    with pytest.raises(ValueError, match="lower-is-better"):
        forgetting_report(BEFORE, AFTER, ROLE_MAP, metrics=(metric,))


def test_report_rejects_bad_role_and_bad_values():
    with pytest.raises(ValueError, match="valid roles"):
        forgetting_report(BEFORE, AFTER, {"itw": "targte"})
    with pytest.raises(ValueError, match="empty"):
        forgetting_report(BEFORE, AFTER, {})
    with pytest.raises(ValueError, match="not finite"):
        forgetting_report(
            BEFORE, {**AFTER, "itw": {"eer": float("nan")}}, {"itw": "target"}, ("eer",)
        )
    with pytest.raises(ValueError, match="listed twice"):
        forgetting_report(BEFORE, AFTER, [SuiteSet("itw", "target"), SuiteSet("itw", "old")])


# --------------------------------------------------------------------------- CL matrices

# Error matrix (lower = better), stage i learns task i.
E = np.array(
    [
        [0.10, 0.40, 0.50],
        [0.20, 0.05, 0.45],
        [0.30, 0.15, 0.02],
    ]
)


def test_bwt_hand_value_and_direction_consistency():
    # errors: mean(R[i,i] - R[2,i]) = ((0.10 - 0.30) + (0.05 - 0.15)) / 2 = -0.15 (forgot)
    assert backward_transfer(E) == pytest.approx(-0.15, abs=1e-12)
    assert backward_transfer(1.0 - E, higher_is_better=True) == pytest.approx(-0.15, abs=1e-12)


def test_average_forgetting_hand_value_and_direction_consistency():
    # f_0 = 0.30 - min(0.10, 0.20) = 0.20; f_1 = 0.15 - min(0.40, 0.05) = 0.10
    assert average_forgetting(E) == pytest.approx(0.15, abs=1e-12)
    assert average_forgetting(1.0 - E, higher_is_better=True) == pytest.approx(0.15, abs=1e-12)


def test_forward_transfer_hand_value_and_direction_consistency():
    b = np.array([0.5, 0.5, 0.5])
    # errors: mean(b[i] - R[i-1,i]) = ((0.5 - 0.40) + (0.5 - 0.45)) / 2 = 0.075 (helped)
    assert forward_transfer(E, b) == pytest.approx(0.075, abs=1e-12)
    assert forward_transfer(1.0 - E, 1.0 - b, higher_is_better=True) == pytest.approx(
        0.075, abs=1e-12
    )


def test_average_forgetting_uses_best_earlier_stage_not_diagonal():
    R = np.array(
        [
            [0.20, 0.05, 0.50],  # task 1 already good before its own stage (zero-shot)
            [0.10, 0.08, 0.40],  # task 0 kept improving after its stage
            [0.25, 0.10, 0.03],
        ]
    )
    # f_0 = 0.25 - min(0.20, 0.10) = 0.15 (diagonal-only would give 0.05)
    # f_1 = 0.10 - min(0.05, 0.08) = 0.05 (diagonal-only would give 0.02)
    assert average_forgetting(R) == pytest.approx(0.10, abs=1e-12)
    # BWT only looks at the diagonal: ((0.20 - 0.25) + (0.08 - 0.10)) / 2 = -0.035
    assert backward_transfer(R) == pytest.approx(-0.035, abs=1e-12)


def test_no_forgetting_is_zero():
    # each task keeps its error once learned (columns constant from the diagonal down)
    R = np.array(
        [
            [0.10, 0.40, 0.50],
            [0.10, 0.05, 0.45],
            [0.10, 0.05, 0.02],
        ]
    )
    assert backward_transfer(R) == 0.0
    assert average_forgetting(R) == 0.0
    assert backward_transfer(1.0 - R, higher_is_better=True) == 0.0
    assert average_forgetting(1.0 - R, higher_is_better=True) == 0.0


def test_improvement_gives_positive_bwt_negative_forgetting():
    R = np.array([[0.30, 0.5], [0.10, 0.2]])  # T = 2: task 0 got better at stage 1
    assert backward_transfer(R) == pytest.approx(0.20, abs=1e-12)
    assert average_forgetting(R) == pytest.approx(-0.20, abs=1e-12)  # not clipped, as in RWalk


def test_random_matrices_error_vs_accuracy_agree():
    rng = np.random.default_rng(0)
    for T in (2, 3, 5):
        A = rng.uniform(size=(T, T))
        b = rng.uniform(size=T)
        assert backward_transfer(A, True) == pytest.approx(backward_transfer(1 - A), abs=1e-12)
        assert average_forgetting(A, True) == pytest.approx(average_forgetting(1 - A), abs=1e-12)
        assert forward_transfer(A, b, True) == pytest.approx(
            forward_transfer(1 - A, 1 - b), abs=1e-12
        )
        assert type(backward_transfer(A)) is float


@pytest.mark.parametrize("fn", [backward_transfer, average_forgetting])
@pytest.mark.parametrize(
    ("R", "match"),
    [
        (np.zeros((2, 3)), "square"),
        (np.zeros(4), "square"),
        (np.zeros((2, 2, 2)), "square"),
        (np.zeros((1, 1)), "T >= 2"),
        (np.array([[0.1, np.nan], [0.2, 0.3]]), "non-finite"),
        ([["a", "b"], ["c", "d"]], "numeric"),
    ],
)
def test_matrix_validation(fn, R, match):
    with pytest.raises(ValueError, match=match):
        fn(R)


def test_forward_transfer_baseline_validation():
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        forward_transfer(E, [0.5, 0.5])
    with pytest.raises(ValueError, match="non-finite"):
        forward_transfer(E, [0.5, np.inf, 0.5])
    with pytest.raises(ValueError, match="square"):
        forward_transfer(np.zeros((2, 3)), [0.5, 0.5])
