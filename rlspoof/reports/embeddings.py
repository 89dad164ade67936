"""The embeddings figure: one row per checkpoint of 2-D points, coloured by label and by attack.

The points come from :mod:`rlspoof.evaluation.embeddings` (pooled embeddings, PCA per
checkpoint, and the report that writes this figure beside its numbers).

Figures follow :mod:`rlspoof.reports.style` (object API on the Agg canvas, :data:`STYLE`,
:data:`DPI`, the same palette and class colours). Bad plotting input raises ``ValueError``
like the other figure functions; bad user input (a set without one of the classes, an empty
manifest) raises :class:`~rlspoof.errors.RlspoofError` so the CLI prints one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np

from rlspoof.data.manifest import BONAFIDE, SPOOF, UNKNOWN
from rlspoof.reports.style import PALETTE, STYLE, new_figure, save_figure

__all__ = ["Panel", "plot_embeddings"]

#: ``(name, points (N, 2), labels, attacks)``: one row of :func:`plot_embeddings`.
Panel = tuple[str, np.ndarray, Sequence[str], Sequence[str]]

#: Class colours, as in :func:`rlspoof.reports.plots.score_histograms`.
_LABEL_COLORS = {BONAFIDE: PALETTE[4], SPOOF: PALETTE[2]}
#: Bonafide rows (attack "-") in the attack column: neutral, so the attacks stand out.
_BONAFIDE_GREY = "#7f7f7f"
#: Attack colours: the palette without its own grey (kept for bonafide).
_ATTACK_PALETTE = tuple(c for c in PALETTE if c != "#bab0ac")
#: Markers cycle once the colours run out, so >9 attacks stay distinguishable.
_ATTACK_MARKERS = ("o", "s", "^", "D", "v")


# --------------------------------------------------------------------------- statistics


# --------------------------------------------------------------------------- figure


def _check_panel(panel: Panel) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    try:
        name, points, labels, attacks = panel
    except (TypeError, ValueError) as exc:
        raise ValueError("a panel is (name, points, labels, attacks)") from exc
    points = np.asarray(points, dtype=np.float64)
    labels, attacks = np.asarray(labels, dtype=str), np.asarray(attacks, dtype=str)
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] == 0:
        raise ValueError(f"panel {name!r}: points must be a non-empty N x 2 array, got "
                         f"shape {points.shape}")
    if labels.size != len(points) or attacks.size != len(points):
        raise ValueError(f"panel {name!r}: {len(points)} points but {labels.size} labels and "
                         f"{attacks.size} attacks")
    if not np.isfinite(points).all():
        raise ValueError(f"panel {name!r}: non-finite points (NaN/Inf)")
    unknown = sorted(set(labels.tolist()) - set(_LABEL_COLORS))
    if unknown:
        raise ValueError(f"panel {name!r}: labels must be bonafide/spoof, got {unknown}")
    return str(name), points, labels, attacks


def _attack_styles(attacks: Sequence[str]) -> dict[str, tuple[str, str]]:
    """(colour, marker) per attack, the same in every row; bonafide ("-") grey, drawn first."""
    styles = {UNKNOWN: (_BONAFIDE_GREY, "o")}
    spoofed = sorted(set(attacks) - {UNKNOWN})
    for i, attack in enumerate(spoofed):
        n = len(_ATTACK_PALETTE)
        styles[attack] = (_ATTACK_PALETTE[i % n], _ATTACK_MARKERS[(i // n) % len(_ATTACK_MARKERS)])
    present = set(attacks)
    return {a: styles[a] for a in [UNKNOWN, *spoofed] if a in present}


def _scatter(ax, points: np.ndarray, groups: dict[str, np.ndarray], styles: dict, size: float,
             legend_title: str, front: str | None = None) -> None:
    """One scatter per group, in legend order; ``front`` is drawn above the others."""
    for group, mask in groups.items():
        color, marker = styles[group]
        label = f"{'bonafide' if group == UNKNOWN else group} (n={int(mask.sum())})"
        ax.scatter(points[mask, 0], points[mask, 1], s=size, c=color, marker=marker,
                   alpha=0.7, lw=0, label=label, zorder=3 if group == front else 2)
    ax.set_xlabel("PC1")
    ax.set_ylabel("PC2")
    # Outside the axes: points can be anywhere, and "best" placement is slow on many points.
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), title=legend_title,
              markerscale=max(1.0, 4.0 / np.sqrt(size)))


def plot_embeddings(panels: Sequence[Panel], out_path: str | Path, title: str | None = None) -> Path:
    """One row per panel: the 2-D points coloured by label (left) and by attack family (right).

    ``panels`` holds ``(name, points (N, 2), labels, attacks)``; the name titles the row.
    Labels are ``"bonafide"`` / ``"spoof"``; bonafide rows carry attack ``"-"`` and are grey in
    the attack column. Each row has its own axes (each model has its own PCA, so axes are not
    comparable across rows); attack colours are the same in every row. Writes one PNG and
    returns its path.
    """
    if not panels:
        raise ValueError("panels is empty: give at least one (name, points, labels, attacks)")
    checked = [_check_panel(panel) for panel in panels]
    styles = _attack_styles([a for _, _, _, attacks in checked for a in attacks])
    label_styles = {label: (color, "o") for label, color in _LABEL_COLORS.items()}
    with matplotlib.rc_context(STYLE):
        fig = new_figure((10.0, 3.6 * len(checked) + (0.4 if title else 0.0)))
        axes = fig.subplots(len(checked), 2, squeeze=False)
        for (ax_label, ax_attack), (name, points, labels, attacks) in zip(axes, checked,
                                                                          strict=True):
            size = float(np.clip(3000.0 / len(points), 3.0, 16.0))  # fewer points, bigger dots
            # the usually smaller bonafide class on top, so spoof points do not bury it
            by_label = {lab: labels == lab for lab in (BONAFIDE, SPOOF) if (labels == lab).any()}
            _scatter(ax_label, points, by_label, label_styles, size, "label", front=BONAFIDE)
            ax_label.set_title(name)
            by_attack = {a: attacks == a for a in styles if (attacks == a).any()}
            _scatter(ax_attack, points, by_attack, styles, size, "attack")
            ax_attack.set_title("by attack family")
        if title:
            fig.suptitle(title)
        return save_figure(fig, out_path)


# --------------------------------------------------------------------------- report


