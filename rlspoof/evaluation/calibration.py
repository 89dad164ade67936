"""Score calibration and fusion: raw detector scores -> log-likelihood ratios.

A policy's score is the log-odds its head learnt on its training mixture, whose class balance
and costs are not the deployment's, so it is no likelihood ratio: its actDCF and Cllr are worse
than its minDCF and minCllr say they could be, and "what does a score of 2 mean?" has no answer.
The standard repair (Brümmer and du Preez, 2006; the BOSARIS toolkit's linear calibration and
fusion) is an affine map fitted by prior-weighted logistic regression on a labelled set::

    llr = bias + sum_k weight_k * score_k        (natural log, positive = bonafide)

With one system it calibrates; with several, matched trial by trial, it fuses. The regression
is scikit-learn's (``LogisticRegression`` with per-trial weights that give the bonafide trials
total weight ``1 - prior`` and the spoofs ``prior``); the fitted logit minus the prior
log-odds is the LLR, so the map holds at any prior. Decisions at a prior and costs then use
the Bayes threshold (``DCFParams.bayes_threshold``), the one that minimises the expected cost
when the LLRs are calibrated.

The map is stored as JSON beside a policy's weights (``calibration.json``): ``detect`` then
reports a calibrated P(spoof) and decides at the Bayes threshold, and ``eval`` reports actDCF
and Cllr before and after.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rlspoof.data.manifest import BONAFIDE, SPOOF
from rlspoof.errors import RlspoofError
from rlspoof.evaluation.scoring import ScoredSet
from rlspoof.metrics.dcf import DCFParams

CALIBRATION_FILE = "calibration.json"
#: Inverse L2 strength of the regression. Nearly unregularised, as calibration should be, but
#: finite: on a set the scores separate perfectly an unregularised fit has no optimum.
REGULARISATION_C = 1e4


def effective_spoof_prior(params: DCFParams = DCFParams()) -> float:
    """The P(spoof) at which a 0/1-cost decision equals the DCF's decision (0.345 for the
    ASVspoof 5 costs): the prior a calibration for that application is fitted at."""
    fa, miss = params.c_fa * params.p_spoof, params.c_miss * (1 - params.p_spoof)
    return fa / (fa + miss)


@dataclass(frozen=True)
class ScoreCalibration:
    """``llr = bias + weights . scores``: K systems' raw scores to one natural-log LLR."""

    weights: tuple[float, ...]
    bias: float
    fit_prior: float  # P(spoof) the regression weighted the classes for
    systems: tuple[str, ...] = ("score",)
    fitted_on: dict = field(default_factory=dict)  # what set, how many trials of each class

    def llr(self, scores: Sequence[float] | np.ndarray) -> np.ndarray:
        """LLRs for ``scores``: shape (N,) for one system, (N, K) for K."""
        x = np.asarray(scores, dtype=np.float64)
        x = x[:, None] if x.ndim == 1 else x
        if x.ndim != 2 or x.shape[1] != len(self.weights):
            raise RlspoofError(f"calibration maps {len(self.weights)} system(s) "
                               f"({', '.join(self.systems)}); got scores of shape {np.shape(scores)}")
        return x @ np.asarray(self.weights) + self.bias

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / CALIBRATION_FILE
        path.write_text(json.dumps({"kind": "linear_llr", **asdict(self)}, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> ScoreCalibration | None:
        """The calibration stored in ``folder``, or None when it has none."""
        path = Path(folder) / CALIBRATION_FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            if data.pop("kind") != "linear_llr":
                raise ValueError("kind is not linear_llr")
            cal = cls(weights=tuple(float(w) for w in data["weights"]), bias=float(data["bias"]),
                      fit_prior=float(data["fit_prior"]), systems=tuple(data["systems"]),
                      fitted_on=dict(data.get("fitted_on", {})))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RlspoofError(f"{path}: not a calibration rlspoof wrote ({exc}); delete it or "
                               "fit it again with `rlspoof calibrate`") from None
        if not all(math.isfinite(v) for v in (*cal.weights, cal.bias)) or not 0 < cal.fit_prior < 1:
            raise RlspoofError(f"{path}: non-finite weights or a prior outside (0, 1)")
        return cal


def fit_calibration(scores: Sequence[float] | np.ndarray, labels: Sequence[str],
                    fit_prior: float | None = None, systems: Sequence[str] = ("score",),
                    fitted_on: dict | None = None) -> ScoreCalibration:
    """Prior-weighted logistic regression of the class on the scores (shape (N,) or (N, K)).

    ``fit_prior`` is P(spoof) (default: the ASVspoof 5 costs' effective prior, 0.345); the
    classes weigh ``1 - fit_prior`` and ``fit_prior`` in total whatever their counts, so the
    map does not learn the set's class balance.
    """
    from sklearn.linear_model import LogisticRegression

    prior = effective_spoof_prior() if fit_prior is None else float(fit_prior)
    if not 0 < prior < 1:
        raise RlspoofError(f"the calibration prior P(spoof) must be in (0, 1), got {prior}")
    x = np.asarray(scores, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    is_bona = np.array([label == BONAFIDE for label in labels])
    n_bona, n_spoof = int(is_bona.sum()), int((~is_bona).sum())
    if x.shape[0] != is_bona.size:
        raise RlspoofError(f"{x.shape[0]} scores but {is_bona.size} labels")
    if n_bona < 2 or n_spoof < 2:
        raise RlspoofError(f"calibration needs at least 2 bonafide and 2 spoof trials; got "
                           f"{n_bona} and {n_spoof}")
    if not np.all(np.isfinite(x)):
        raise RlspoofError("calibration scores must be finite")
    weights = np.where(is_bona, (1 - prior) / n_bona, prior / n_spoof) * is_bona.size
    model = LogisticRegression(C=REGULARISATION_C, max_iter=1000)
    model.fit(x, is_bona.astype(int), sample_weight=weights)
    prior_log_odds = math.log((1 - prior) / prior)  # of bonafide, as the weights set it
    return ScoreCalibration(
        weights=tuple(float(w) for w in model.coef_[0]),
        bias=float(model.intercept_[0]) - prior_log_odds,
        fit_prior=prior, systems=tuple(systems),
        fitted_on={**(fitted_on or {}), "n_bonafide": n_bona, "n_spoof": n_spoof},
    )


def spoof_posterior(llr: np.ndarray, p_spoof: float) -> np.ndarray:
    """P(spoof | audio) at prior ``p_spoof`` from bonafide-vs-spoof LLRs."""
    log_odds_bona = np.asarray(llr, dtype=np.float64) + math.log((1 - p_spoof) / p_spoof)
    return 1.0 / (1.0 + np.exp(np.clip(log_odds_bona, -700, 700)))


def join_systems(systems: dict[str, ScoredSet]) -> tuple[ScoredSet, np.ndarray]:
    """Several systems' scores of one set, matched trial by trial: (the first system's trials
    in its order, with its labels and attacks; an (N, K) score matrix). Every system must hold
    the same trials with the same labels: fusing across different sets means nothing."""
    names = list(systems)
    first = systems[names[0]]
    index = {name: dict(zip(s.utt_ids, range(len(s.utt_ids)), strict=True)) for name, s in systems.items()}
    columns = []
    for name in names:
        other = systems[name]
        missing = [u for u in first.utt_ids if u not in index[name]]
        extra = len(other.utt_ids) - (len(first.utt_ids) - len(missing))
        if missing or extra:
            shown = ", ".join(missing[:3]) or "-"
            raise RlspoofError(f"system {name!r} does not hold the same trials as {names[0]!r}: "
                               f"{len(missing)} missing (e.g. {shown}), {extra} extra")
        rows = [index[name][u] for u in first.utt_ids]
        bad = next((k for k, i in enumerate(rows) if other.labels[i] != first.labels[k]), None)
        if bad is not None:
            raise RlspoofError(f"systems {names[0]!r} and {name!r} disagree on the label of "
                               f"{first.utt_ids[bad]}")
        columns.append([other.scores[i] for i in rows])
    return first, np.asarray(columns, dtype=np.float64).T


def calibrated_decisions(rows: list[dict], calibration: ScoreCalibration, params: DCFParams) -> None:
    """``detect`` rows of a calibrated policy: each gains its LLR and P(spoof) at the prior of
    ``params``, and its decision becomes the Bayes decision for that prior and those costs
    (bonafide when the LLR exceeds ``params.bayes_threshold``). The raw P(bonafide), the
    head's own and uncalibrated, is dropped so that no uncalibrated probability is shown."""
    if not rows:
        return
    llrs = calibration.llr([row["score"] for row in rows])
    posteriors = spoof_posterior(llrs, params.p_spoof)
    for row, llr, p_spoof in zip(rows, llrs, posteriors, strict=True):
        row.pop("p_bonafide", None)
        row.update(llr=float(llr), p_spoof=float(p_spoof),
                   decision=BONAFIDE if llr > params.bayes_threshold else SPOOF)
