"""Score figures: DET curves and score histograms per method (PNG; the look and the helpers
shared by every figure module are :mod:`rlspoof.reports.style`).

Scores follow the package convention: higher = more bonafide; labels are ints (0 = bonafide,
1 = spoof) or the strings ``"bonafide"`` / ``"spoof"``. EER values are shown in percent.
Empty input, mismatched lengths and a class with no scores raise ``ValueError`` naming the
method, instead of an empty or misleading picture.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from scipy.special import ndtri  # = scipy.stats.norm.ppf, without importing scipy.stats (~2 s)

from rlspoof.metrics.eer import BONAFIDE_ID, SPOOF_ID, as_label_ids, det_curve
from rlspoof.reports.style import (
    PALETTE,
    STYLE,
    check_methods,
    grid_shape,
    method_colors,
    new_figure,
    save_figure,
)

__all__ = ["det_curves", "score_histograms"]


#: DET axis ticks (percent), as in the NIST / ASVspoof DET plots.
_DET_TICKS = (0.1, 0.5, 1, 2, 5, 10, 20, 40)
_DET_EXTRA_TICKS = (60, 80, 90, 95, 99)  # percent
_DET_MIN, _DET_MAX = 0.0005, 0.5  # axis range as rates (0.05 % .. 50 %)
_DET_CLIP = 1e-6  # rates of exactly 0 / 1 map to +-inf on the normal-deviate scale

#: Above this many DET points a curve is thinned before drawing (the picture does not change
#: at 120 dpi, the PNG size and drawing time do).
_DET_MAX_POINTS = 20_000


def _split_scores(method: str, item: Any) -> tuple[np.ndarray, np.ndarray]:
    """(bonafide scores, spoof scores) of one ``(scores, labels)`` pair, validated.

    Both classes are needed: a DET curve, an EER or a two-class histogram of a set with only
    one class would be undefined or silently misleading.
    """
    try:
        scores, labels = item
    except (TypeError, ValueError) as exc:
        raise ValueError(f"method {method!r}: expected a (scores, labels) pair") from exc
    try:
        score_arr = np.asarray(scores, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"method {method!r}: scores must be numbers: {exc}") from exc
    if score_arr.size == 0:
        raise ValueError(f"method {method!r}: no scores")
    try:
        ids = as_label_ids(labels, score_arr.size)
    except ValueError as exc:
        raise ValueError(f"method {method!r}: {exc}") from exc
    bad = int(np.count_nonzero(~np.isfinite(score_arr)))
    if bad:
        raise ValueError(f"method {method!r}: {bad} non-finite score(s) (NaN/Inf)")
    bona, spoof = score_arr[ids == BONAFIDE_ID], score_arr[ids == SPOOF_ID]
    if bona.size == 0 or spoof.size == 0:
        raise ValueError(
            f"method {method!r}: needs both bonafide and spoof scores "
            f"(got {bona.size} bonafide, {spoof.size} spoof)"
        )
    return bona, spoof


def _eer_point(
    frr: np.ndarray, far: np.ndarray, thresholds: np.ndarray
) -> tuple[int, float, float]:
    """(index, eer, threshold) with the same rule as :func:`rlspoof.metrics.eer.compute_eer`."""
    i = int(np.argmin(np.abs(frr - far)))
    return i, float(0.5 * (frr[i] + far[i])), float(thresholds[i])


def _thin(n: int, keep: int) -> np.ndarray:
    """Indices for drawing an ``n``-point curve: all of them, or an even subset incl. ``keep``."""
    if n <= _DET_MAX_POINTS:
        return np.arange(n)
    idx = np.linspace(0, n - 1, _DET_MAX_POINTS).round().astype(np.int64)
    return np.unique(np.append(idx, keep))


def _deviate(rate: np.ndarray | float) -> np.ndarray:
    return ndtri(np.clip(rate, _DET_CLIP, 1.0 - _DET_CLIP))


def _fmt_pct(p: float) -> str:
    return f"{p:g}"


# --------------------------------------------------------------------------- DET


def det_curves(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | Path,
    title: str = "DET curves",
) -> Path:
    """DET plot, one curve per method: miss rate (FRR) against false-alarm rate (FAR).

    ``curves`` maps method name -> ``(scores, labels)``. Rates come from
    :func:`rlspoof.metrics.eer.det_curve` (so curve and EER follow the ASVspoof tie rules) and
    are drawn on normal-deviate axes (probit, ``norm.ppf``): there two Gaussian score
    distributions give a straight line and the low-error region, where detectors differ,
    is spread out instead of squashed into a corner as on a ROC plot. Ticks are labelled in
    percent; the axes span 0.05 % to 50 % (more if an EER is larger). Each curve's EER point is
    marked and the legend reads ``"method (EER x.x%)"``; the dotted diagonal is FRR = FAR.
    """
    names = check_methods(curves, "curves")
    split = {name: _split_scores(name, curves[name]) for name in names}
    colors = method_colors(names)

    with matplotlib.rc_context(STYLE):
        # no set_aspect("equal"): it shrinks the axes after the tight layout has placed the legend
        # below them; the figure size keeps the axes close to square instead
        fig = new_figure((5.0, 5.3 + 0.2 * math.ceil(len(names) / 2)))
        ax = fig.add_subplot()
        worst = 0.0
        for name in names:
            frr, far, thresholds = det_curve(*split[name])
            i, eer, _ = _eer_point(frr, far, thresholds)
            worst = max(worst, frr[i], far[i])
            idx = _thin(frr.size, i)
            ax.plot(
                _deviate(far[idx]),
                _deviate(frr[idx]),
                color=colors[name],
                lw=1.5,
                label=f"{name} (EER {100 * eer:.1f}%)",
            )
            ax.plot(
                _deviate(far[i]),
                _deviate(frr[i]),
                marker="o",
                ms=5,
                mfc="white",
                mec=colors[name],
                mew=1.5,
                ls="none",
            )

        upper = _DET_MAX
        ticks = list(_DET_TICKS)
        if worst > _DET_MAX - 0.05:  # a weak system: widen the range to keep its EER point in
            upper = next((t / 100 for t in _DET_EXTRA_TICKS if t / 100 > worst + 0.03), 0.995)
            ticks += [t for t in _DET_EXTRA_TICKS if t / 100 <= upper]
        lo, hi = float(ndtri(_DET_MIN)), float(ndtri(upper))
        ax.plot([lo, hi], [lo, hi], color="0.6", ls=":", lw=1)
        pos = ndtri(np.array(ticks) / 100.0)
        labels = [_fmt_pct(t) for t in ticks]
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_ticks(pos, labels)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel("False alarm rate (spoof accepted) [%]")
        ax.set_ylabel("Miss rate (bonafide rejected) [%]")
        ax.set_title(title)
        # Below the axes: inside, any corner can hide a curve (good systems go bottom-left,
        # weak ones top-right), and "best" placement is slow on curves with many points.
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
        return save_figure(fig, path)


# --------------------------------------------------------------------------- histograms


def score_histograms(
    scores_by_method: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | Path,
    title: str = "Score distributions",
    bins: int = 50,
) -> Path:
    """One panel per method: bonafide and spoof score histograms with the EER threshold.

    ``scores_by_method`` maps method name -> ``(scores, labels)``. Within a panel both classes
    use the same bins (so the overlap is read bar against bar); panels do not share bins or
    x-axes, because different detectors' log-odds live on different scales. Histograms are
    densities: spoof trials usually outnumber bonafide ones many times over, and counts would
    hide the bonafide shape. The dashed line is the EER threshold (``accept if score >
    threshold``), i.e. where the two error rates meet; the legend gives class sizes.
    """
    if not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive int, got {bins!r}")
    names = check_methods(scores_by_method, "scores_by_method")
    split = {name: _split_scores(name, scores_by_method[name]) for name in names}
    colors = {"bonafide": PALETTE[4], "spoof": PALETTE[2]}

    nrows, ncols = grid_shape(len(names), 3)
    with matplotlib.rc_context(STYLE):
        fig = new_figure((3.6 * ncols, 2.8 * nrows + 0.4))
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax, name in zip(axes, names, strict=False):
            bona, spoof = split[name]
            frr, far, thresholds = det_curve(bona, spoof)
            _, eer, threshold = _eer_point(frr, far, thresholds)
            lo = min(bona.min(), spoof.min())
            hi = max(bona.max(), spoof.max())
            if hi <= lo:  # all scores equal: give the single bin some width
                lo, hi = lo - 0.5, hi + 0.5
            edges = np.linspace(lo, hi, bins + 1)
            for label, values in (("bonafide", bona), ("spoof", spoof)):
                ax.hist(
                    values,
                    bins=edges,
                    density=True,
                    histtype="stepfilled",
                    alpha=0.45,
                    color=colors[label],
                    edgecolor=colors[label],
                    label=f"{label} (n={values.size})",
                )
            ax.axvline(threshold, color="0.2", ls="--", lw=1, label=f"EER thr. {threshold:.2f}")
            ax.set_title(f"{name} (EER {100 * eer:.1f}%)")
            ax.set_xlabel("score (log-odds, + = bonafide)")
            ax.set_ylabel("density")
            ax.legend(loc="best")
        for ax in axes[len(names) :]:
            ax.set_visible(False)
        fig.suptitle(title)
        return save_figure(fig, path)


