"""The one look of every rlspoof figure, and the helpers all figure modules share.

Every figure function takes plain in-memory inputs (arrays, dicts as the metric and trainer
code produce them), writes exactly one PNG and returns its :class:`~pathlib.Path`. No function
reads files, so the figures can be re-made from any source (score TSVs, ``metrics.json``,
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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["DPI", "PALETTE", "ROLE_COLOR", "ROLE_HATCH", "STYLE", "check_methods", "grid_shape",
           "method_colors", "new_figure", "save_figure"]


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


KNOWN_COLORS = {
    "pretrained": "#7f7f7f",
    "baseline": "#7f7f7f",
    "before": "#7f7f7f",
    "sft": PALETTE[0],
    "grpo": PALETTE[1],
    "hybrid": PALETTE[4],
}


#: Hatch per suite role in :func:`forgetting_bars` (target plain, old striped, ood dotted).
ROLE_HATCH = {"target": "", "old": "///", "ood": ".."}


#: Tick-label / background tint per role.
ROLE_COLOR = {"target": "#2f6f3f", "old": "#9a3324", "ood": "#4b4b8f"}


def method_colors(names: Sequence[str]) -> dict[str, str]:
    """Colour per name: pinned colours for known method names, palette order for the rest."""
    out: dict[str, str] = {}
    used = set()
    for name in names:
        pinned = KNOWN_COLORS.get(name.lower())
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


def grid_shape(n: int, max_cols: int) -> tuple[int, int]:
    ncols = min(n, max_cols)
    return math.ceil(n / ncols), ncols


def check_methods(data: Mapping, what: str) -> list[str]:
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
