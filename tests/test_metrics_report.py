"""Metric tables, bootstrap CIs, the Trainer hook and the offline ``evaluate`` metric."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import numpy as np
import pytest

from rlspoof.metrics import (
    act_dcf,
    bootstrap_ci,
    cllr,
    compute_eer,
    compute_metrics_for_trainer,
    grouped_metrics,
    load_evaluate_metric,
    mean_ci,
    min_cllr,
    min_dcf,
    score_metrics,
)

KEYS = {"eer", "eer_threshold", "min_dcf", "act_dcf", "cllr", "min_cllr", "n_bonafide", "n_spoof"}


def _trials(n_bona=300, n_spoof=500, seed=0):
    rng = np.random.default_rng(seed)
    bona, spoof = rng.normal(1.5, 1.0, n_bona), rng.normal(-1.0, 1.5, n_spoof)
    scores = np.concatenate([bona, spoof])
    labels = np.array([0] * n_bona + [1] * n_spoof)
    perm = rng.permutation(scores.size)
    return scores[perm], labels[perm], bona, spoof


def _plain_metrics(bona, spoof) -> dict:
    eer, thr = compute_eer(bona, spoof)
    return {
        "eer": eer,
        "eer_threshold": thr,
        "min_dcf": min_dcf(bona, spoof)[0],
        "act_dcf": act_dcf(bona, spoof),
        "cllr": cllr(bona, spoof),
        "min_cllr": min_cllr(bona, spoof),
        "n_bonafide": len(bona),
        "n_spoof": len(spoof),
    }


# --------------------------------------------------------------------------- score_metrics


def test_score_metrics_matches_plain_functions():
    scores, labels, bona, spoof = _trials()
    out = score_metrics(scores, labels)
    assert set(out) == KEYS
    expected = _plain_metrics(bona, spoof)
    for key in KEYS:
        assert out[key] == pytest.approx(expected[key], abs=1e-12), key
    assert isinstance(out["n_bonafide"], int) and isinstance(out["eer"], float)
    strings = np.where(labels == 0, "bonafide", "spoof").tolist()
    assert score_metrics(scores, strings) == pytest.approx(out)


# --------------------------------------------------------------------------- grouped_metrics


def _attack_table():
    rng = np.random.default_rng(1)
    bona = rng.normal(2.0, 1.0, 200)
    easy = rng.normal(-3.0, 1.0, 80)  # A01
    hard = rng.normal(1.5, 1.0, 120)  # A02
    scores = np.concatenate([bona, easy, hard])
    labels = ["bonafide"] * 200 + ["spoof"] * 200
    attacks = ["-"] * 200 + ["A01"] * 80 + ["A02"] * 120
    return scores, labels, attacks, bona, easy, hard


def test_grouped_per_attack_uses_all_bonafide():
    scores, labels, attacks, bona, easy, hard = _attack_table()
    table = grouped_metrics(scores, labels, attacks)
    assert list(table) == ["pooled", "A01", "A02"]  # "-" has no spoofs: no row
    assert table["pooled"] == pytest.approx(score_metrics(scores, labels))
    for name, spoof in (("A01", easy), ("A02", hard)):
        row = table[name]
        assert row["n_bonafide"] == 200 and row["n_spoof"] == spoof.size
        assert row == pytest.approx(_plain_metrics(bona, spoof))
    assert table["A01"]["eer"] < table["A02"]["eer"]
    assert "pooled" not in grouped_metrics(scores, labels, attacks, pooled=False)


def test_grouped_by_source_uses_own_bonafide():
    rng = np.random.default_rng(2)
    b1, s1 = rng.normal(2, 1, 50), rng.normal(0, 1, 70)
    b2, s2 = rng.normal(0.5, 1, 40), rng.normal(0, 1, 30)
    scores = np.concatenate([b1, s1, b2, s2])
    labels = [0] * 50 + [1] * 70 + [0] * 40 + [1] * 30
    source = np.array(["corpusA"] * 120 + ["corpusB"] * 70)
    table = grouped_metrics(scores, labels, source)
    assert table["corpusA"] == pytest.approx(_plain_metrics(b1, s1))
    assert table["corpusB"] == pytest.approx(_plain_metrics(b2, s2))
    assert all(type(k) is str for k in table)  # plain keys, not np.str_


def test_grouped_errors():
    scores, labels, attacks, *_ = _attack_table()
    with pytest.raises(ValueError, match="400 scores but 3 groups"):
        grouped_metrics(scores, labels, ["A01", "A02", "-"])
    with pytest.raises(ValueError, match="named 'pooled'"):
        grouped_metrics(scores, labels, ["pooled" if a == "A01" else a for a in attacks])


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_contains_point_estimate_and_is_reproducible():
    scores, labels, bona, spoof = _trials(400, 400)
    for metric, point in (("eer", compute_eer(bona, spoof)[0]), ("cllr", cllr(bona, spoof))):
        low, high = bootstrap_ci(scores, labels, metric=metric, n_boot=200)
        assert low <= point <= high
        assert bootstrap_ci(scores, labels, metric=metric, n_boot=200) == (low, high)
    assert bootstrap_ci(scores, labels, n_boot=200, seed=1) != bootstrap_ci(
        scores, labels, n_boot=200, seed=0
    )


def test_bootstrap_narrows_with_more_trials():
    small = bootstrap_ci(*_trials(100, 100, seed=3)[:2], n_boot=200)
    large = bootstrap_ci(*_trials(4000, 4000, seed=3)[:2], n_boot=200)
    assert (large[1] - large[0]) < 0.5 * (small[1] - small[0])


def test_bootstrap_is_stratified_and_accepts_callables():
    scores, labels, bona, spoof = _trials(37, 91)
    sizes = set()

    def sizes_metric(b, s):
        sizes.add((b.size, s.size))
        return float(np.mean(b) - np.mean(s))

    low, high = bootstrap_ci(scores, labels, metric=sizes_metric, n_boot=50)
    assert sizes == {(37, 91)}
    assert low <= np.mean(bona) - np.mean(spoof) <= high
    for name in ("min_dcf", "act_dcf", "min_cllr"):
        lo, hi = bootstrap_ci(scores, labels, metric=name, n_boot=20)
        assert lo <= hi


def test_bootstrap_errors():
    scores, labels, *_ = _trials(20, 20)
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        bootstrap_ci(scores, labels, metric="auc")
    with pytest.raises(ValueError, match="alpha"):
        bootstrap_ci(scores, labels, alpha=1.5)


# --------------------------------------------------------------------------- Trainer hook


@dataclass
class FakeEvalPrediction:
    predictions: object
    label_ids: np.ndarray


def test_compute_metrics_for_trainer():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, 200)
    logits = rng.normal(0, 1, (200, 2))
    logits[labels == 0, 0] += 1.5  # bonafide logit first
    out = compute_metrics_for_trainer(FakeEvalPrediction(logits, labels))
    assert set(out) == {"eer", "min_dcf", "cllr"}
    score = logits[:, 0] - logits[:, 1]
    bona, spoof = score[labels == 0], score[labels == 1]
    assert out["eer"] == pytest.approx(compute_eer(bona, spoof)[0])
    assert out["min_dcf"] == pytest.approx(min_dcf(bona, spoof)[0])
    assert out["cllr"] == pytest.approx(cllr(bona, spoof))
    assert out["eer"] < 0.4
    # A plain (predictions, label_ids) pair and a tuple of model outputs work too.
    assert compute_metrics_for_trainer((logits, labels)) == out
    extra = (logits, np.zeros((200, 8)))
    assert compute_metrics_for_trainer(FakeEvalPrediction(extra, labels)) == out


def test_compute_metrics_for_trainer_errors():
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        compute_metrics_for_trainer(FakeEvalPrediction(np.zeros((4, 3)), np.array([0, 1, 0, 1])))
    with pytest.raises(ValueError, match="no spoof scores"):
        compute_metrics_for_trainer(FakeEvalPrediction(np.zeros((3, 2)), np.zeros(3, int)))


# --------------------------------------------------------------------------- evaluate module


def test_evaluate_metric_loads_offline_and_matches(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")

    def no_network(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)

    metric = load_evaluate_metric(keep_in_memory=True)
    assert type(metric).__name__ == "SpoofEER"
    scores, labels, bona, spoof = _trials(150, 250, seed=5)
    out = metric.compute(predictions=scores.tolist(), references=labels.tolist())
    expected = _plain_metrics(bona, spoof)
    assert set(out) == {"eer", "min_dcf", "act_dcf", "cllr"}
    for key in out:
        assert out[key] == pytest.approx(expected[key], abs=1e-12), key
    # Incremental use, as in an evaluation loop.
    for lo in range(0, scores.size, 100):
        metric.add_batch(predictions=scores[lo : lo + 100], references=labels[lo : lo + 100])
    assert metric.compute() == pytest.approx(out)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "fn",
    [
        lambda s, y: score_metrics(s, y),
        lambda s, y: grouped_metrics(s, y, ["g"] * len(s)),
        lambda s, y: bootstrap_ci(s, y, n_boot=5),
    ],
    ids=["score_metrics", "grouped_metrics", "bootstrap_ci"],
)
def test_empty_class_raises(fn):
    with pytest.raises(ValueError, match="no bonafide scores: .* needs both classes"):
        fn([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="no spoof scores: .* needs both classes"):
        fn([0.1, 0.2], ["bonafide", "bonafide"])


def test_paired_bootstrap_sees_a_small_consistent_gain_that_separate_intervals_miss():
    from rlspoof.metrics.report import paired_bootstrap_diff

    rng = np.random.default_rng(0)
    labels = np.array(["bonafide"] * 300 + ["spoof"] * 300)
    difficulty = rng.normal(0, 1, 600)  # shared by both systems: hard trials are hard for both
    base = np.where(labels == "bonafide", 1.0, -1.0) + 1.5 * difficulty
    better = base + np.where(labels == "bonafide", 0.3, -0.3)
    result = paired_bootstrap_diff(base, better, labels, n_boot=300, seed=1)
    eer_a = score_metrics(base, labels)["eer"]
    eer_b = score_metrics(better, labels)["eer"]
    assert result["diff"] == pytest.approx(eer_b - eer_a)
    assert result["low"] <= result["diff"] <= result["high"] < 0 and result["p_value"] < 0.05
    # identical systems: zero difference, p = 1
    same = paired_bootstrap_diff(base, base, labels, n_boot=50)
    assert same["diff"] == 0 and same["p_value"] == 1.0
    with pytest.raises(ValueError, match="different trials"):
        paired_bootstrap_diff(base, better[:10], labels)


def test_mean_ci_is_a_student_t_interval():
    out = mean_ci([1.0, 2.0, 3.0])
    assert out["mean"] == 2.0 and out["std"] == 1.0
    assert out["high"] - 2.0 == pytest.approx(4.302652729911275 / 3 ** 0.5)
    assert mean_ci([0.5])["low"] is None
