"""Where a checkpoint puts a set's utterances: pooled embeddings, a 2-D PCA view, one number.

Post-training (SFT, GRPO, hybrid) changes the detector's scores; this module shows what it did
to the representation behind them. :func:`embedding_report` embeds one manifest with several
checkpoints (typically "before" and "after"), projects each onto its own first two principal
components, draws one row per checkpoint (``rlspoof.reports.embeddings.plot_embeddings``) and
writes a Fisher-style :func:`class_separation` per checkpoint, which is comparable between them.
Bad user input (a set without one of the classes, an empty manifest) raises
:class:`~rlspoof.errors.RlspoofError` so the CLI prints one line.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from rlspoof.data.dataset import ProgressFn, SpoofDataset
from rlspoof.data.manifest import BONAFIDE, SPOOF, UNKNOWN, Manifest
from rlspoof.errors import RlspoofError
from rlspoof.evaluation.scoring import duration_chunks
from rlspoof.models.inference import run_batched
from rlspoof.reports.embeddings import Panel, plot_embeddings

__all__ = [
    "class_separation",
    "embed_manifest",
    "embedding_report",
    "pca_2d",
    "subsample_per_attack",
]



@torch.no_grad()
def embed_manifest(
    policy, manifest: Manifest, batch_size: int = 16, crop_seconds: float | None = None,
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """Pooled utterance embeddings (N x ``policy.pooling.out_dim``, float64), in manifest order.

    These are the head's inputs (:meth:`SpoofPolicy.embed`), i.e. what the classifier sees.
    Audio goes through :class:`SpoofDataset` in eval mode (first ``crop_seconds``, or whole
    clips), rows are read in length order so batches pad little (as ``score_manifest``), and the
    policy runs in eval mode (no dropout) and is put back in the mode it was in.
    ``progress(done, total)`` is called after each batch.
    """
    dataset = SpoofDataset(manifest, sample_rate=policy.sample_rate, crop_seconds=crop_seconds,
                           train=False)
    out = np.empty((len(manifest), policy.pooling.out_dim), dtype=np.float64)
    for done, idx in duration_chunks(manifest, batch_size):
        waves = [dataset[i]["input_values"].numpy() for i in idx]
        out[idx] = run_batched(policy, waves, policy.embed, batch_size=batch_size,
                               progress=progress and (lambda n, _, d=done: progress(d + n, len(manifest))))
    return out


def pca_2d(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Projection on the first two principal components and their explained-variance ratios.

    Each component's sign is fixed (its largest-|loading| entry is positive), so the same
    embeddings always give the same picture rather than a randomly mirrored one. With fewer
    than two non-trivial components (N < 3 or D < 2) the missing ones are zeros.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"embeddings must be a non-empty N x D array, got shape {x.shape}")
    # By hand rather than sklearn.decomposition.PCA: it is two lines of numpy, and scikit-learn
    # is only a dev dependency (tests), not something the toolkit installs to run.
    centred = x - x.mean(axis=0)
    _, singular, components = np.linalg.svd(centred, full_matrices=False)
    k = min(2, components.shape[0])
    components = components[:k]
    top = np.argmax(np.abs(components), axis=1)
    components *= np.where(components[np.arange(k), top] < 0, -1.0, 1.0)[:, None]
    points = np.zeros((x.shape[0], 2))
    points[:, :k] = centred @ components.T
    total = float(np.sum(singular**2))
    ratio = np.zeros(2)
    if total > 0:
        ratio[:k] = singular[:k] ** 2 / total
    return points, ratio


def class_separation(embeddings: np.ndarray, labels: Sequence[str]) -> float:
    """Distance between the bonafide and spoof means over the within-class spread.

    ``||mean_bonafide - mean_spoof|| / sqrt(s2)``, where ``s2`` is the per-dimension variance
    averaged over dimensions and over the two classes (each class weighs the same, so the
    usually larger spoof class does not decide the spread alone). Computed in the full
    embedding space, not the 2-D picture, whose axes differ from model to model.

    Why: a scatter plot suggests but does not measure. This is one number that says whether
    post-training made the classes more separable, and it is comparable before/after: dividing
    by the spread makes it independent of the embedding's overall scale, which fine-tuning
    changes freely. 0 = same means; larger = more separable. Compare models on the same rows
    and embedding size (as a checkpoint and its post-trained version are): with few rows,
    sampling noise alone gives about ``sqrt(D * (1/n_bonafide + 1/n_spoof))``.
    Raises :class:`RlspoofError` if either class is missing.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray([str(label) for label in labels])
    if x.ndim != 2 or x.shape[0] != labels.size:
        raise ValueError(f"need an N x D array and N labels, got {x.shape} and {labels.size}")
    unknown = sorted(set(labels.tolist()) - {BONAFIDE, SPOOF})
    if unknown:
        raise RlspoofError(f"labels must be {BONAFIDE!r} or {SPOOF!r}, got {unknown}")
    bona, spoof = x[labels == BONAFIDE], x[labels == SPOOF]
    if len(bona) == 0 or len(spoof) == 0:
        raise RlspoofError(
            f"class separation needs both bonafide and spoof rows "
            f"(got {len(bona)} bonafide, {len(spoof)} spoof)"
        )
    distance = float(np.linalg.norm(bona.mean(axis=0) - spoof.mean(axis=0)))
    spread = 0.5 * (float(bona.var(axis=0).mean()) + float(spoof.var(axis=0).mean()))
    if spread == 0.0:
        return 0.0 if distance == 0.0 else float("inf")
    return distance / float(np.sqrt(spread))


def subsample_per_attack(manifest: Manifest, max_per_attack: int | None, seed: int = 0) -> Manifest:
    """At most ``max_per_attack`` rows per attack (bonafide rows count as attack ``"-"``).

    Keeps a big evaluation set's picture readable and cheap while every attack (and bonafide)
    keeps a presence; a seeded draw per group, rows kept in manifest order.
    """
    if max_per_attack is None:
        return manifest
    if max_per_attack < 1:
        raise RlspoofError(f"max_per_attack must be >= 1, got {max_per_attack}")
    groups: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(manifest):
        groups[UNKNOWN if row.label == BONAFIDE else row.attack].append(i)
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for key in sorted(groups):  # sorted: the draws do not depend on which attack comes first
        idx = groups[key]
        keep += idx if len(idx) <= max_per_attack else rng.choice(idx, max_per_attack,
                                                                  replace=False).tolist()
    return Manifest([manifest[i] for i in sorted(keep)], manifest.root, manifest.origin)


def _finite_or_none(value: float) -> float | None:
    """JSON has no Infinity; a perfectly separated zero-spread set is written as null."""
    return value if np.isfinite(value) else None


def embedding_report(
    models: Mapping[str, object], manifest: Manifest, out_dir: str | Path,
    max_per_attack: int | None = None, seed: int = 0, progress=None, batch_size: int = 16,
    crop_seconds: float | None = None, set_name: str | None = None,
) -> dict:
    """Embed ``manifest`` with every model, write ``embeddings.png`` and ``embeddings.json``.

    ``models`` maps a name to a :class:`~rlspoof.models.SpoofPolicy` (e.g. ``{"before": ...,
    "after": ...}``); all see the same (optionally subsampled) rows. ``progress`` is, as for
    :func:`rlspoof.evaluation.evaluate_sets`, a factory ``progress(description)`` giving a
    context manager that yields ``update(done, total)`` (e.g. ``rlspoof.cli.console.progress_bar``).
    ``set_name`` names the set in the figure title (default: the manifest's file name).
    Returns what the JSON holds: per model ``n``, ``class_separation`` and
    ``explained_variance_ratio``, and whether the rows come from the synthetic corpus.
    """
    from rlspoof.data.synth.corpus import is_synthetic

    if not models:
        raise RlspoofError("no models to embed")
    rows = subsample_per_attack(manifest, max_per_attack, seed)
    if len(rows) == 0:
        raise RlspoofError(f"manifest {manifest.origin or '<in memory>'} has no rows to embed")
    labels = [row.label for row in rows]
    class_separation(np.zeros((len(rows), 1)), labels)  # a missing class fails before any work
    attacks = [UNKNOWN if row.label == BONAFIDE else row.attack for row in rows]
    synthetic = is_synthetic([rows])
    report: dict = {"synthetic": synthetic, "n_rows": len(rows), "max_per_attack": max_per_attack,
                    "seed": seed, "models": {}}
    panels: list[Panel] = []
    for name, policy in models.items():
        embeddings = _embed(policy, rows, name, batch_size, crop_seconds, progress)
        separation = class_separation(embeddings, labels)
        points, ratio = pca_2d(embeddings)
        report["models"][name] = {
            "n": len(rows),
            "class_separation": _finite_or_none(separation),
            "explained_variance_ratio": [float(r) for r in ratio],
        }
        panels.append((f"{name}: separation {separation:.2f}\n"
                       f"(PC1 {100 * ratio[0]:.0f}%, PC2 {100 * ratio[1]:.0f}% of the variance)",
                       points, labels, attacks))
    out = Path(out_dir)
    set_name = set_name or (Path(manifest.origin).stem if manifest.origin else "set")
    title = f"Utterance embeddings on {set_name}, PCA per model"
    plot_embeddings(panels, out / "embeddings.png",
                    title + (" (synthetic corpus)" if synthetic else ""))
    (out / "embeddings.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _embed(policy, rows: Manifest, name: str, batch_size: int, crop_seconds: float | None,
           progress) -> np.ndarray:
    if progress is None:
        return embed_manifest(policy, rows, batch_size, crop_seconds)
    with progress(f"embedding {name}") as update:
        return embed_manifest(policy, rows, batch_size, crop_seconds, update)
