"""Calibration and fusion: raw scores -> LLRs by prior-weighted logistic regression."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rlspoof.errors import RlspoofError
from rlspoof.evaluation import ScoredSet
from rlspoof.evaluation.calibration import (
    CALIBRATION_FILE,
    ScoreCalibration,
    calibrated_decisions,
    effective_spoof_prior,
    fit_calibration,
    join_systems,
    spoof_posterior,
)
from rlspoof.metrics.dcf import DCFParams
from rlspoof.metrics.report import score_metrics


def _trials(n_bona: int, n_spoof: int, seed: int):
    """Scores whose true LLR is known: bonafide ~ N(+1, 1), spoof ~ N(-1, 1), so LLR = 2x."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(1, 1, n_bona), rng.normal(-1, 1, n_spoof)])
    return x, ["bonafide"] * n_bona + ["spoof"] * n_spoof


def test_the_fit_recovers_the_true_llr_of_a_miscalibrated_score():
    x, labels = _trials(20000, 20000, 0)
    raw = 5.0 * x + 3.0  # overconfident and shifted: LLR = 2x = 0.4 * raw - 1.2
    cal = fit_calibration(raw, labels, fit_prior=0.5)
    assert cal.weights[0] == pytest.approx(0.4, abs=0.01)
    assert cal.bias == pytest.approx(-1.2, abs=0.03)
    assert cal.fitted_on == {"n_bonafide": 20000, "n_spoof": 20000}


@pytest.mark.parametrize("prior", [0.05, 0.345, 0.5])
def test_the_map_does_not_learn_the_class_balance_or_the_prior(prior):
    """A well-specified calibration is the same LLR map whatever the set's class counts and
    whatever prior it is weighted for (the prior only moves where errors cost most)."""
    x, labels = _trials(16000, 4000, 1)
    cal = fit_calibration(x, labels, fit_prior=prior)
    assert cal.weights[0] == pytest.approx(2.0, abs=0.1)
    assert cal.bias == pytest.approx(0.0, abs=0.1)


def test_calibration_lowers_actdcf_and_cllr_on_held_out_trials():
    x, labels = _trials(2000, 2000, 2)
    raw = 4.0 * x + 6.0  # most spoofs land above the Bayes threshold: actDCF is poor
    held_x, held_labels = _trials(2000, 2000, 3)
    held_raw = 4.0 * held_x + 6.0
    cal = fit_calibration(raw, labels)
    before = score_metrics(held_raw, held_labels)
    after = score_metrics(cal.llr(held_raw), held_labels)
    assert after["act_dcf"] < before["act_dcf"] - 0.2
    assert after["cllr"] < before["cllr"] and after["cllr"] == pytest.approx(after["min_cllr"], abs=0.05)
    assert after["eer"] == pytest.approx(before["eer"])  # a monotone map keeps the ranking


def test_effective_prior_and_posterior():
    assert effective_spoof_prior(DCFParams()) == pytest.approx(0.5 / 1.45)
    assert spoof_posterior(np.array([0.0]), 0.05)[0] == pytest.approx(0.05)
    # LLR log(19) in favour of bonafide cancels 19:1 prior odds of spoof
    assert spoof_posterior(np.array([math.log(19.0)]), 0.95)[0] == pytest.approx(0.5)
    assert np.all(np.isfinite(spoof_posterior(np.array([-1e6, 1e6]), 0.5)))


def test_bayes_decisions_follow_the_prior_and_costs():
    cal = ScoreCalibration(weights=(1.0,), bias=0.0, fit_prior=0.5)
    rows = [{"score": s, "p_bonafide": 0.5} for s in (-1.0, -0.5, 0.5)]
    params = DCFParams()  # Bayes threshold -ln(1.9) = -0.642
    calibrated_decisions(rows, cal, params)
    assert [r["decision"] for r in rows] == ["spoof", "bonafide", "bonafide"]
    assert all("p_bonafide" not in r for r in rows)
    assert rows[0]["p_spoof"] == pytest.approx(spoof_posterior(np.array([-1.0]), 0.05)[0])
    strict = [{"score": -0.5}]
    calibrated_decisions(strict, cal, DCFParams(p_spoof=0.5, c_miss=1, c_fa=10))  # threshold ln 10
    assert strict[0]["decision"] == "spoof"


def test_save_load_and_a_broken_file(tmp_path):
    assert ScoreCalibration.load(tmp_path) is None
    cal = fit_calibration(*_trials(50, 50, 4), fitted_on={"manifest": "dev.csv"})
    cal.save(tmp_path)
    assert ScoreCalibration.load(tmp_path) == cal
    (tmp_path / CALIBRATION_FILE).write_text(json.dumps({"kind": "linear_llr", "weights": [1.0]}))
    with pytest.raises(RlspoofError, match="not a calibration rlspoof wrote.*rlspoof calibrate"):
        ScoreCalibration.load(tmp_path)
    (tmp_path / CALIBRATION_FILE).write_text(json.dumps(
        {"kind": "linear_llr", "weights": [float("nan")], "bias": 0, "fit_prior": 0.5, "systems": ["s"]}))
    with pytest.raises(RlspoofError, match="non-finite"):
        ScoreCalibration.load(tmp_path)


def test_bad_fits_are_refused():
    with pytest.raises(RlspoofError, match="at least 2 bonafide and 2 spoof"):
        fit_calibration([1.0, 2.0, 3.0], ["bonafide", "bonafide", "spoof"])
    with pytest.raises(RlspoofError, match=r"prior P\(spoof\) must be in \(0, 1\)"):
        fit_calibration(*_trials(5, 5, 0), fit_prior=1.0)
    with pytest.raises(RlspoofError, match="finite"):
        fit_calibration([math.nan, 1, 2, 3], ["bonafide", "bonafide", "spoof", "spoof"])
    cal = ScoreCalibration(weights=(1.0, 2.0), bias=0.0, fit_prior=0.5, systems=("a", "b"))
    with pytest.raises(RlspoofError, match="maps 2 system"):
        cal.llr([1.0, 2.0])


def test_fusion_of_two_complementary_systems_beats_each():
    """Two systems that each see one half of the evidence: fused, they see all of it."""
    rng = np.random.default_rng(5)
    n = 3000
    labels = ["bonafide"] * n + ["spoof"] * n
    sign = np.r_[np.ones(n), -np.ones(n)]
    a, b = sign + rng.normal(0, 1.5, 2 * n), sign + rng.normal(0, 1.5, 2 * n)
    fusion = fit_calibration(np.c_[a, b], labels, systems=("a", "b"))
    assert fusion.weights[0] == pytest.approx(fusion.weights[1], rel=0.15)
    eer = {name: score_metrics(s, labels)["eer"] for name, s in
           {"a": a, "b": b, "fused": fusion.llr(np.c_[a, b])}.items()}
    assert eer["fused"] < min(eer["a"], eer["b"]) - 0.03


def test_join_systems_matches_trials_by_id_and_refuses_mismatches():
    a = ScoredSet("a", ["u1", "u2", "u3"], [1.0, 2.0, 3.0], ["bonafide", "spoof", "spoof"], ["-", "x", "y"])
    b = ScoredSet("b", ["u3", "u1", "u2"], [30.0, 10.0, 20.0], ["spoof", "bonafide", "spoof"], ["y", "-", "x"])
    first, matrix = join_systems({"a": a, "b": b})
    assert first.utt_ids == ["u1", "u2", "u3"]
    np.testing.assert_array_equal(matrix, [[1, 10], [2, 20], [3, 30]])
    short = ScoredSet("c", ["u1", "u2"], [1.0, 2.0], ["bonafide", "spoof"], ["-", "x"])
    with pytest.raises(RlspoofError, match="'c' does not hold the same trials.*1 missing.*u3"):
        join_systems({"a": a, "c": short})
    relabelled = ScoredSet("d", ["u1", "u2", "u3"], [0.0] * 3, ["bonafide", "bonafide", "spoof"], ["-"] * 3)
    with pytest.raises(RlspoofError, match="disagree on the label of u2"):
        join_systems({"a": a, "d": relabelled})
