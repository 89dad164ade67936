"""Figures of a comparison's runs: training curves per method, forgetting per set, and the
metric heatmap of methods x sets (the look and the shared helpers: :mod:`rlspoof.reports.style`)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.patches import Patch

from rlspoof.metrics.forgetting import ROLES
from rlspoof.reports.style import (
    ROLE_COLOR,
    ROLE_HATCH,
    STYLE,
    check_methods,
    grid_shape,
    method_colors,
    new_figure,
    save_figure,
)

__all__ = ["forgetting_bars", "metric_heatmap", "training_curves"]


_SEED_RUN = re.compile(r"^(?P<method>.+)/seed(?P<seed>\d+)$")


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
    names = check_methods(histories, "histories")
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
    colors = method_colors(list(dict.fromkeys(groups.values())))

    nrows, ncols = grid_shape(len(present), 2)
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
    names = check_methods(report, "report")
    roles = _set_roles(report, names, metric)
    sets = [s for role in ROLES for s in roles if roles[s] == role]
    scale = 100.0 if metric == "eer" else 1.0
    deltas = scale * _delta_table(report, names, sets, metric)

    colors = method_colors(names)
    n_m, n_s = len(names), len(sets)
    width = 0.8 / n_m
    x = np.arange(n_s)
    label = _METRIC_LABELS.get(metric, metric)
    unit = " (pp)" if metric == "eer" else ""
    with matplotlib.rc_context(STYLE):
        fig = new_figure((max(4.0, 0.35 * n_m * n_s + 1.8), 3.6))
        ax = fig.add_subplot()
        ax.grid(False, axis="x")
        for j, set_name in enumerate(sets):  # background band per role
            ax.axvspan(j - 0.5, j + 0.5, color=ROLE_COLOR[roles[set_name]], alpha=0.06, lw=0)
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
                hatch=[ROLE_HATCH[roles[s]] for s in sets],
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
            tick.set_color(ROLE_COLOR[roles[set_name]])
        ax.set_xlim(-0.5, n_s - 0.5)
        ax.margins(y=0.12)
        ax.set_ylabel(f"Δ {label}{unit}, + = worse")
        ax.set_title(title or f"Change in {label} after fine-tuning")
        role_handles = [
            Patch(facecolor="white", edgecolor=ROLE_COLOR[r], hatch=ROLE_HATCH[r], label=r)
            for r in ROLES
            if r in roles.values()
        ]
        method_legend = ax.legend(loc="upper left", title="method")
        ax.add_artist(method_legend)
        ax.legend(handles=role_handles, loc="upper right", title="role")
        return save_figure(fig, path)


def _set_roles(report: Mapping[str, Mapping[str, Any]], names: list[str],
               metric: str) -> dict[str, str]:
    """Set name -> role, the same in every method's report (else ``ValueError``)."""
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
    return roles


def _delta_table(report: Mapping[str, Mapping[str, Any]], names: list[str], sets: list[str],
                 metric: str) -> np.ndarray:
    """``(methods, sets)`` deltas of ``metric``, every one finite (else ``ValueError``)."""
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
            deltas[i, j] = value
    return deltas


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
    arr = _checked_matrix(matrix, row_labels, col_labels, fmt, cmap)
    row_labels, col_labels = [str(r) for r in row_labels], [str(c) for c in col_labels]
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


def _checked_matrix(matrix, row_labels: Sequence[str], col_labels: Sequence[str], fmt: str,
                    cmap: str) -> np.ndarray:
    """``matrix`` as a float 2-D array, or ``ValueError`` naming what cannot be drawn."""
    arr = np.asarray(matrix, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"matrix must be 2-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"matrix is empty (shape {arr.shape})")
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
    return arr
