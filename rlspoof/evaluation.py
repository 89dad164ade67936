"""Scoring audio with a trained policy: evaluation sets (``rlspoof eval``) and files (``detect``).

Scores are the policy's log-odds ``logit[bonafide] - logit[spoof]``: higher = more bonafide,
the ASVspoof convention, and directly usable as LLRs for actDCF and Cllr.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rlspoof.data.audio import AUDIO_EXTENSIONS, load_audio, sliding_windows
from rlspoof.data.manifest import BONAFIDE, Manifest
from rlspoof.errors import AudioError, DataError, RlspoofError
from rlspoof.metrics.report import bootstrap_ci, grouped_metrics, score_metrics
from rlspoof.models import SpoofPolicy

ProgressFn = Callable[[int, int], None]


@dataclass
class ScoredSet:
    name: str
    utt_ids: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    attacks: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def score_manifest(policy: SpoofPolicy, manifest: Manifest, name: str = "set", batch_size: int = 16,
                   max_seconds: float | None = None, skip_bad: bool = False,
                   progress: ProgressFn | None = None) -> ScoredSet:
    """Score every row; rows are read in length order so batches pad little (length bucketing)."""
    order = sorted(range(len(manifest)), key=lambda i: manifest[i].duration or 0.0)
    limit = None if max_seconds is None else int(max_seconds * policy.sample_rate)
    result = ScoredSet(name)
    chunk = batch_size * 8
    for start in range(0, len(order), chunk):
        rows, waves = [], []
        for i in order[start : start + chunk]:
            row = manifest[i]
            try:
                wave = load_audio(manifest.audio_path(row), policy.sample_rate)
            except AudioError as exc:
                if not skip_bad:
                    raise
                result.skipped.append((row.utt_id, str(exc)))
                continue
            rows.append(row)
            waves.append(wave[:limit] if limit else wave)
        scores = policy.score(waves, batch_size=batch_size) if waves else []
        for row, score in zip(rows, scores, strict=True):
            result.utt_ids.append(row.utt_id)
            result.scores.append(float(score))
            result.labels.append(row.label)
            result.attacks.append(row.attack)
        if progress:
            progress(min(start + chunk, len(order)), len(order))
    return result


def write_score_file(scored: ScoredSet, path: str | Path) -> Path:
    """ASVspoof 5 style: tab-separated, header ``filename cm-score``, plus label and attack."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["filename", "cm-score", "label", "attack"])
        for row in zip(scored.utt_ids, scored.scores, scored.labels, scored.attacks, strict=True):
            writer.writerow([row[0], f"{row[1]:.6f}", row[2], row[3]])
    return path


def read_score_file(path: str | Path, name: str | None = None) -> ScoredSet:
    """A score file written by :func:`write_score_file` (for reports that re-read old runs)."""
    path = Path(path)
    result = ScoredSet(name or path.stem)
    with path.open(newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader, None)
        if header != ["filename", "cm-score", "label", "attack"]:
            raise DataError(f"not an rlspoof score file (header {header})", path, 1)
        for line, row in enumerate(reader, start=2):
            try:
                utt_id, score, label, attack = row
                result.scores.append(float(score))
            except ValueError:
                raise DataError(f"malformed score line {row}", path, line) from None
            result.utt_ids.append(utt_id)
            result.labels.append(label)
            result.attacks.append(attack)
    return result


def set_metrics(scored: ScoredSet, n_boot: int = 1000, seed: int = 0) -> dict:
    """Pooled metrics with a bootstrap CI on EER, and per-attack EER/minDCF tables."""
    scores = np.asarray(scored.scores)
    labels = scored.labels
    if BONAFIDE not in labels or all(label == BONAFIDE for label in labels):
        raise RlspoofError(f"set {scored.name!r} needs both bonafide and spoof rows to be evaluated")
    pooled = score_metrics(scores, labels)
    low, high = bootstrap_ci(scores, labels, metric="eer", n_boot=n_boot, seed=seed)
    pooled["eer_ci95"] = [low, high]
    return {
        "pooled": pooled,
        "per_attack": grouped_metrics(scores, labels, scored.attacks, pooled=False),
        "skipped": [{"utt_id": u, "reason": r} for u, r in scored.skipped],
    }


def evaluate_sets(policy: SpoofPolicy, sets: dict[str, Manifest], out_dir: str | Path,
                  batch_size: int = 16, max_seconds: float | None = None, skip_bad: bool = False,
                  progress_factory=None) -> dict:
    """Score each named set, write ``scores/<name>.tsv`` and ``metrics.json``; return the metrics."""
    out = Path(out_dir)
    results = {}
    for name, manifest in sets.items():
        if progress_factory:
            with progress_factory(f"scoring {name}") as update:
                scored = score_manifest(policy, manifest, name, batch_size, max_seconds, skip_bad, update)
        else:
            scored = score_manifest(policy, manifest, name, batch_size, max_seconds, skip_bad)
        write_score_file(scored, out / "scores" / f"{name}.tsv")
        results[name] = set_metrics(scored)
    (out / "metrics.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


# --- detect: score arbitrary files --------------------------------------------------------------


def collect_audio_paths(inputs: list[str | Path]) -> list[Path]:
    """Files as given, folders searched recursively, ``.txt``/``.lst`` files read as path lists."""
    paths: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            paths += sorted(p for p in item.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
        elif item.suffix.lower() in (".txt", ".lst"):
            lines = [line.strip() for line in item.read_text().splitlines()]
            paths += [Path(line) if Path(line).is_absolute() else item.parent / line
                      for line in lines if line and not line.startswith("#")]
        else:
            paths.append(item)
    return paths


def detect_files(policy: SpoofPolicy, paths: list[Path], window_seconds: float = 4.0,
                 hop_seconds: float = 2.0, threshold: float = 0.0, strict: bool = False,
                 batch_size: int = 16) -> tuple[list[dict], list[dict]]:
    """Per-file score, decision and P(bonafide); long files are scored in overlapping windows
    and the file score is the mean window log-odds. Bad files are reported (or raised if strict).
    """
    window = int(window_seconds * policy.sample_rate)
    hop = int(hop_seconds * policy.sample_rate)
    rows, errors = [], []
    for path in paths:
        try:
            wave = load_audio(path, policy.sample_rate)
        except AudioError as exc:
            if strict:
                raise
            errors.append({"path": str(path), "error": exc.reason})
            continue
        pieces = [wave] if len(wave) <= window else list(sliding_windows(wave, window, hop))
        window_scores = policy.score(pieces, batch_size=batch_size)
        score = float(np.mean(window_scores))
        rows.append({
            "path": str(path),
            "score": score,
            "decision": BONAFIDE if score > threshold else "spoof",
            "p_bonafide": 1.0 / (1.0 + math.exp(-score)),
            "window_scores": [round(float(s), 6) for s in window_scores],
        })
    return rows, errors
