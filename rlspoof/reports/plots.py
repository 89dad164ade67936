"""PNG figures for comparing SFT / GRPO / hybrid runs.

Every function takes plain in-memory inputs (arrays, dicts as the metric and trainer code
produce them), writes exactly one PNG and returns its :class:`~pathlib.Path`. No function reads
files, so the figures can be re-made from any source (score TSVs, ``metrics.json``,
``trainer_state.json``) and unit-tested without one.

Design choices:

* **No pyplot.** Figures are built as :class:`matplotlib.figure.Figure` objects and rendered by
  the Agg canvas. pyplot keeps a global registry of open figures and picks a backend for the
  whole process; a library that draws from a training or evaluation job must touch neither
  (a forgotten ``plt.close`` leaks memory over many calls, and an interactive backend can fail
  on a headless node). A figure nobody references is freed by the garbage collector; we also
  clear it after saving so its artists go at once.
* **One style.** :data:`STYLE` is applied with :func:`matplotlib.rc_context` around building
  *and* saving each figure, so the caller's rcParams are neither used nor changed. Every
  figure is saved at 120 dpi with a tight layout.
* **Stable method colours.** The usual method names (``pretrained``, ``sft``, ``grpo``,
  ``hybrid``) always get the same colour, so a method looks the same in every figure of a
  report; other names take the remaining palette colours in the order given.
* **Scores** follow the package convention: higher = more bonafide; labels are ints
  (0 = bonafide, 1 = spoof) or the strings ``"bonafide"`` / ``"spoof"``. EER values from the
  metric code are fractions and are shown in percent.
* **Clear errors.** Empty input, mismatched lengths and a class with no scores raise
  ``ValueError`` naming the method, instead of an empty or misleading picture.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from scipy.special import ndtri  # = scipy.stats.norm.ppf, without importing scipy.stats (~2 s)

from rlspoof.metrics.eer import BONAFIDE_ID, SPOOF_ID, as_label_ids, det_curve
from rlspoof.metrics.forgetting import ROLES

__all__ = [
    "STYLE",
    "DPI",
    "det_curves",
    "score_histograms",
    "training_curves",
    "forgetting_bars",
    "metric_heatmap",
]

#: Resolution of every saved figure.
DPI = 120

#: rcParams shared by all figures (applied with ``matplotlib.rc_context``).
STYLE: dict[str, Any] = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linestyle": "-",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "savefig.dpi": DPI,
    "figure.dpi": DPI,
}

# Tableau 10. Known method names are pinned so that colours agree across figures.
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)  # fmt: skip
_KNOWN_COLORS = {
    "pretrained": "#7f7f7f",
    "baseline": "#7f7f7f",
    "before": "#7f7f7f",
    "sft": PALETTE[0],
    "grpo": PALETTE[1],
    "hybrid": PALETTE[4],
}

#: Hatch per suite role in :func:`forgetting_bars` (target plain, old striped, ood dotted).
_ROLE_HATCH = {"target": "", "old": "///", "ood": ".."}
#: Tick-label / background tint per role.
_ROLE_COLOR = {"target": "#2f6f3f", "old": "#9a3324", "ood": "#4b4b8f"}

#: DET axis ticks (percent), as in the NIST / ASVspoof DET plots.
_DET_TICKS = (0.1, 0.5, 1, 2, 5, 10, 20, 40)
_DET_EXTRA_TICKS = (60, 80, 90, 95, 99)  # percent
_DET_MIN, _DET_MAX = 0.0005, 0.5  # axis range as rates (0.05 % .. 50 %)
_DET_CLIP = 1e-6  # rates of exactly 0 / 1 map to +-inf on the normal-deviate scale

#: Above this many DET points a curve is thinned before drawing (the picture does not change
#: at 120 dpi, the PNG size and drawing time do).
_DET_MAX_POINTS = 20_000

_SEED_RUN = re.compile(r"^(?P<method>.+)/seed(?P<seed>\d+)$")


# --------------------------------------------------------------------------- helpers


def _colors(names: Sequence[str]) -> dict[str, str]:
    """Colour per name: pinned colours for known method names, palette order for the rest."""
    out: dict[str, str] = {}
    used = set()
    for name in names:
        pinned = _KNOWN_COLORS.get(name.lower())
        if pinned is not None:
            out[name] = pinned
            used.add(pinned)
    free = [c for c in PALETTE if c not in used] or list(PALETTE)
    i = 0
    for name in names:
        if name not in out:
            out[name] = free[i % len(free)]
            i += 1
    return out


def new_figure(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize, layout="tight")
    FigureCanvasAgg(fig)  # attaches itself as fig.canvas; no pyplot involved
    return fig


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as PNG at :data:`DPI` (parent folders created), then free its artists."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=DPI, format="png")
    finally:
        fig.clear()
    return path


def _grid(n: int, max_cols: int) -> tuple[int, int]:
    ncols = min(n, max_cols)
    return math.ceil(n / ncols), ncols


def _check_methods(data: Mapping, what: str) -> list[str]:
    if not isinstance(data, Mapping):
        raise ValueError(
            f"{what} must be a mapping of method name -> data, got {type(data).__name__}"
        )
    if not data:
        raise ValueError(f"{what} is empty: give at least one method")
    names = list(data)
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"method names must be non-empty strings, got {name!r}")
    return names


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
    names = _check_methods(curves, "curves")
    split = {name: _split_scores(name, curves[name]) for name in names}
    colors = _colors(names)

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
    names = _check_methods(scores_by_method, "scores_by_method")
    split = {name: _split_scores(name, scores_by_method[name]) for name in names}
    colors = {"bonafide": PALETTE[4], "spoof": PALETTE[2]}

    nrows, ncols = _grid(len(names), 3)
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


# --------------------------------------------------------------------------- training curves


def _number(value: Any) -> float | None:
    """A finite float, or None for anything else (strings, bools, None, NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _series(history: Sequence[Mapping], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of ``key``, sorted by step; entries without a numeric step are skipped."""
    points = []
    for entry in history:
        if not isinstance(entry, Mapping) or key not in entry:
            continue
        step, value = _number(entry.get("step")), _number(entry[key])
        if step is not None and value is not None:
            points.append((step, value))
    points.sort(key=lambda p: p[0])
    arr = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def training_curves(
    histories: Mapping[str, list[dict]],
    path: str | Path,
    keys: Sequence[str] = ("loss", "reward", "kl", "eval_eer"),
    title: str = "Training curves",
) -> Path:
    """One panel per logged quantity, one line per run, against the optimisation step.

    ``histories`` maps run name -> the ``log_history`` list of a transformers
    ``trainer_state.json`` (dicts with ``"step"`` and logged values; training and evaluation
    entries are separate dicts, so each key is collected from whichever entries have it).
    A key is drawn only if some run logged it as a number at a numeric step - SFT logs no
    ``reward``/``kl``, and a run without evaluation has no ``eval_eer`` - so a missing key is
    skipped, not an error. Keys must match exactly (``"loss"`` does not pick up the final
    ``"train_loss"`` summary).

    Runs named ``"method/seedN"`` are grouped: every seed of a method gets the method's colour
    as a thin line, with one legend entry per method, so seed spread is visible without a
    legend per seed. Other run names get their own colour and a normal line.

    Raises ``ValueError`` if ``histories`` or ``keys`` is empty, a history is not a list of
    dicts, or none of ``keys`` was logged by any run.
    """
    names = _check_methods(histories, "histories")
    keys = list(keys)
    if not keys:
        raise ValueError("keys is empty: name at least one logged quantity")
    for name in names:
        history = histories[name]
        if isinstance(history, (str, bytes, Mapping)) or not isinstance(history, Sequence):
            raise ValueError(
                f"run {name!r}: history must be a list of log dicts (trainer_state.json "
                f"'log_history'), got {type(history).__name__}"
            )

    series = {
        key: {name: _series(histories[name], key) for name in names} for key in dict.fromkeys(keys)
    }
    present = [key for key, runs in series.items() if any(s.size for s, _ in runs.values())]
    if not present:
        raise ValueError(
            f"none of the keys {keys} was logged (as a number, with a step) by any run"
        )

    groups: dict[str, str] = {}  # run -> colour group (method for "method/seedN")
    seeded: dict[str, bool] = {}
    for name in names:
        match = _SEED_RUN.match(name)
        groups[name] = match.group("method") if match else name
        seeded[name] = match is not None
    colors = _colors(list(dict.fromkeys(groups.values())))

    nrows, ncols = _grid(len(present), 2)
    with matplotlib.rc_context(STYLE):
        fig = new_figure((4.2 * ncols, 2.9 * nrows + 0.4))
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax, key in zip(axes, present, strict=False):
            labelled: set[str] = set()
            for name in names:
                steps, values = series[key][name]
                if steps.size == 0:
                    continue
                group = groups[name]
                label = group if group not in labelled else None
                labelled.add(group)
                if seeded[name]:
                    kwargs = {"lw": 0.8, "alpha": 0.75}
                else:
                    kwargs = {"lw": 1.6}
                marker = "o" if steps.size == 1 else None  # a single eval point is still seen
                ax.plot(
                    steps, values, color=colors[group], label=label, marker=marker, ms=3, **kwargs
                )
            ax.set_title(key)
            ax.set_xlabel("step")
            ax.set_ylabel(key)
            ax.legend(loc="best")
        for ax in axes[len(present) :]:
            ax.set_visible(False)
        fig.suptitle(title)
        return save_figure(fig, path)


# --------------------------------------------------------------------------- forgetting


_METRIC_LABELS = {
    "eer": "EER",
    "min_dcf": "minDCF",
    "act_dcf": "actDCF",
    "cllr": "Cllr",
    "min_cllr": "minCllr",
}


def forgetting_bars(
    report: Mapping[str, Mapping[str, Any]],
    path: str | Path,
    metric: str = "eer",
    title: str | None = None,
) -> Path:
    """Grouped bars of ``delta = after - before`` per evaluation set, one bar per method.

    ``report`` maps method name -> the dict returned by
    :func:`rlspoof.metrics.forgetting.forgetting_report` for that method (all against the same
    starting checkpoint and suite). Since the report only accepts lower-is-better metrics, a
    bar above the zero line always means "worse than before fine-tuning": up on an ``old`` set
    is forgetting, down on the ``target`` set is learning. EER deltas are fractions in the
    report and are drawn in percentage points.

    Sets are grouped by role (target, then old, then ood, keeping the suite order within a
    role); the role shows as the bar hatch, the tick-label colour and a light background band,
    and bars are coloured by method. Raises ``ValueError`` for an empty report, a metric a
    method's report lacks, a set missing from one method, or a set given two different roles.
    """
    names = _check_methods(report, "report")
    roles: dict[str, str] = {}
    for name in names:
        rep = report[name]
        if not isinstance(rep, Mapping) or not {"sets", "roles"} <= set(rep):
            raise ValueError(
                f"method {name!r}: expected a forgetting_report() dict with 'sets' and 'roles'"
            )
        if metric not in rep.get("metrics", ()):
            raise ValueError(
                f"method {name!r}: metric {metric!r} not in its report "
                f"(has: {list(rep.get('metrics', ()))})"
            )
        for set_name, role in rep["roles"].items():
            if role not in ROLES:
                raise ValueError(f"method {name!r}: set {set_name!r} has unknown role {role!r}")
            if roles.setdefault(set_name, role) != role:
                raise ValueError(
                    f"set {set_name!r} has role {roles[set_name]!r} in one report and "
                    f"{role!r} in method {name!r}'s"
                )
    if not roles:
        raise ValueError("the reports have no sets")
    sets = [s for role in ROLES for s in roles if roles[s] == role]

    scale = 100.0 if metric == "eer" else 1.0
    unit = " (pp)" if metric == "eer" else ""
    deltas = np.empty((len(names), len(sets)))
    for i, name in enumerate(names):
        table = report[name]["sets"]
        for j, set_name in enumerate(sets):
            if set_name not in table:
                raise ValueError(
                    f"method {name!r} has no set {set_name!r} (its sets: {list(table)}); "
                    f"compare methods on the same suite"
                )
            try:
                value = float(table[set_name][metric]["delta"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(
                    f"method {name!r}, set {set_name!r}: no numeric {metric!r} delta"
                ) from exc
            if not math.isfinite(value):
                raise ValueError(f"method {name!r}, set {set_name!r}: delta is {value}")
            deltas[i, j] = scale * value

    colors = _colors(names)
    n_m, n_s = len(names), len(sets)
    width = 0.8 / n_m
    x = np.arange(n_s)
    label = _METRIC_LABELS.get(metric, metric)
    with matplotlib.rc_context(STYLE):
        fig = new_figure((max(4.0, 0.35 * n_m * n_s + 1.8), 3.6))
        ax = fig.add_subplot()
        ax.grid(False, axis="x")
        for j, set_name in enumerate(sets):  # background band per role
            ax.axvspan(j - 0.5, j + 0.5, color=_ROLE_COLOR[roles[set_name]], alpha=0.06, lw=0)
        annotate = n_m * n_s <= 24
        for i, name in enumerate(names):
            offset = (i - (n_m - 1) / 2) * width
            bars = ax.bar(
                x + offset,
                deltas[i],
                width=width * 0.92,
                color=colors[name],
                edgecolor="white",
                lw=0.5,
                hatch=[_ROLE_HATCH[roles[s]] for s in sets],
                label=name,
            )
            if annotate:
                digits = 1 if metric == "eer" else 3
                # round first and add 0.0 so a rounding-error delta shows "+0.0", not "-0.0"
                texts = [f"{round(v, digits) + 0.0:+.{digits}f}" for v in deltas[i]]
                ax.bar_label(bars, labels=texts, fontsize=6, padding=1)
        ax.axhline(0.0, color="0.2", lw=0.8)
        ax.set_xticks(x, sets)
        for tick, set_name in zip(ax.get_xticklabels(), sets, strict=True):
            tick.set_color(_ROLE_COLOR[roles[set_name]])
        ax.set_xlim(-0.5, n_s - 0.5)
        ax.margins(y=0.12)
        ax.set_ylabel(f"Δ {label}{unit}, + = worse")
        ax.set_title(title or f"Change in {label} after fine-tuning")
        role_handles = [
            Patch(facecolor="white", edgecolor=_ROLE_COLOR[r], hatch=_ROLE_HATCH[r], label=r)
            for r in ROLES
            if r in roles.values()
        ]
        method_legend = ax.legend(loc="upper left", title="method")
        ax.add_artist(method_legend)
        ax.legend(handles=role_handles, loc="upper right", title="role")
        return save_figure(fig, path)


# --------------------------------------------------------------------------- heatmap


def metric_heatmap(
    matrix: np.ndarray,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    path: str | Path,
    title: str = "",
    fmt: str = "{:.1f}",
    cmap: str = "viridis_r",
    cbar_label: str | None = None,
) -> Path:
    """Annotated heatmap of a 2-D table, e.g. a continual-learning matrix ``R[i, j]`` (stage
    ``i`` evaluated on task ``j``) or a method × set EER table.

    Values are drawn as given (convert EER fractions to percent first if ``fmt`` expects it).
    NaN cells are left blank and annotated "–" so a table with missing entries (an
    unevaluated stage/task pair) still plots. The default colour map ``viridis_r`` makes low
    (good, for error metrics) values light; pass ``cmap="viridis"`` for higher-is-better tables.
    Cell text switches between black and white with the cell's brightness. Raises
    ``ValueError`` for a matrix that is not 2-D or is empty, labels whose count does not match
    its shape, infinite values, or a ``fmt`` that cannot format a float.
    """
    arr = np.asarray(matrix, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"matrix must be 2-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"matrix is empty (shape {arr.shape})")
    row_labels, col_labels = [str(r) for r in row_labels], [str(c) for c in col_labels]
    if len(row_labels) != arr.shape[0] or len(col_labels) != arr.shape[1]:
        raise ValueError(
            f"matrix has shape {arr.shape} but got {len(row_labels)} row labels and "
            f"{len(col_labels)} column labels"
        )
    if np.isinf(arr).any():
        raise ValueError("matrix contains infinite values")
    try:
        fmt.format(1.0)
    except (IndexError, KeyError, ValueError) as exc:
        raise ValueError(f"fmt {fmt!r} cannot format a float: {exc}") from exc
    if cmap not in matplotlib.colormaps:
        raise ValueError(f"unknown colour map {cmap!r}")

    n_r, n_c = arr.shape
    finite = np.isfinite(arr)
    with matplotlib.rc_context(STYLE):
        fig = new_figure((max(3.0, 0.8 * n_c + 2.2), max(2.2, 0.45 * n_r + 1.3)))
        ax = fig.add_subplot()
        ax.grid(False)
        vmin = float(arr[finite].min()) if finite.any() else 0.0
        vmax = float(arr[finite].max()) if finite.any() else 1.0
        colormap = matplotlib.colormaps[cmap].with_extremes(bad="0.92")  # a copy: no global edit
        image = ax.imshow(
            np.ma.masked_invalid(arr), cmap=colormap, vmin=vmin, vmax=vmax, aspect="auto"
        )
        cbar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        if cbar_label:
            cbar.set_label(cbar_label)
        span = vmax - vmin
        for i in range(n_r):
            for j in range(n_c):
                if not finite[i, j]:
                    ax.text(j, i, "–", ha="center", va="center", color="0.4", fontsize=8)
                    continue
                rgba = image.cmap(image.norm(arr[i, j]) if span > 0 else 0.5)
                luminance = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2]
                ax.text(
                    j,
                    i,
                    fmt.format(arr[i, j]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="black" if luminance > 0.5 else "white",
                )
        ax.set_xticks(
            np.arange(n_c),
            col_labels,
            rotation=30 if n_c > 4 else 0,
            ha="right" if n_c > 4 else "center",
        )
        ax.set_yticks(np.arange(n_r), row_labels)
        for spine in ax.spines.values():
            spine.set_visible(False)
        if title:
            ax.set_title(title)
        return save_figure(fig, path)
