"""``rlspoof detect``: score arbitrary audio files, whole or in windows.

Scores are the policy's log-odds ``logit[bonafide] - logit[spoof]`` (see ``scoring``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from rlspoof.data.audio import AUDIO_EXTENSIONS, load_audio, window_starts
from rlspoof.data.manifest import BONAFIDE
from rlspoof.data.text_files import numbered_lines, open_text
from rlspoof.errors import AudioError, DataError, RlspoofError
from rlspoof.evaluation.scoring import (
    NON_FINITE_SCORE,
    check_batch_size,
    policy_scores,
    regular_file,
)
from rlspoof.models.inference import Scorer

#: Smallest ``detect`` hop: one encoder frame (10-20 ms). A finer hop re-scores the same audio
#: over and over (``--hop 0.0001`` on a 10 s clip asked for 23 GiB).
MIN_HOP_SECONDS = 0.01
#: Most windows one file may be cut into (4 s windows at the default 2 s hop: 5.5 hours).
MAX_WINDOWS = 10_000


def collect_audio_paths(inputs: list[str | Path]) -> list[Path]:
    """Files as given, folders searched recursively, ``.txt``/``.lst`` files read as path lists.

    A folder yields every entry with an audio extension, regular file or not: ``load_audio``
    then reports a FIFO or device as a bad file instead of blocking on it. A path given here
    must exist (a typo is a usage error); a path in a list may not (it is reported as a bad
    file, like a bad file in a folder).
    """
    paths: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            paths += sorted(p for p in item.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
        elif item.suffix.lower() in (".txt", ".lst"):
            with open_text(regular_file(item), "utf-8-sig") as handle:
                lines = [text.strip() for _, text in numbered_lines(handle, item)]
            paths += [Path(line) if Path(line).is_absolute() else item.parent / line
                      for line in lines if line and not line.startswith("#")]
        elif not item.exists() and not item.is_symlink():  # a typo, not a bad file in a scan
            raise DataError("no such file or folder", item)
        else:
            paths.append(item)
    return paths


def check_windows(window_seconds: float, hop_seconds: float, sample_rate: int) -> tuple[int, int]:
    """``--window`` and ``--hop`` in samples, refused when they cannot cut audio sensibly:
    not positive and finite, a hop below ``MIN_HOP_SECONDS``, or a hop beyond the window (the
    audio between windows would go unscored)."""
    for option, value in (("--window", window_seconds), ("--hop", hop_seconds)):
        if not (math.isfinite(value) and value > 0):
            raise RlspoofError(f"{option} must be a positive number of seconds, got {value}")
    if hop_seconds < MIN_HOP_SECONDS:
        raise RlspoofError(f"--hop must be at least {MIN_HOP_SECONDS} s (one encoder frame), "
                           f"got {hop_seconds}")
    if hop_seconds > window_seconds:
        raise RlspoofError(f"--hop ({hop_seconds} s) must not exceed --window ({window_seconds} s): "
                           "the audio between windows would go unscored")
    return round(window_seconds * sample_rate), round(hop_seconds * sample_rate)


def detect_files(policy: Scorer, paths: list[Path], window_seconds: float = 4.0,
                 hop_seconds: float = 2.0, threshold: float = 0.0, strict: bool = False,
                 batch_size: int = 16) -> tuple[list[dict], list[dict]]:
    """Per-file score, decision and P(bonafide); long files are scored in overlapping windows
    and the file score is the mean window log-odds. ``policy`` is a ``SpoofPolicy`` or an
    exported graph's ``OnnxDetector``: anything with ``sample_rate`` and ``score``.

    A bad file (unusable audio, more than ``MAX_WINDOWS`` windows, a non-finite score) is
    reported in the second list, or raised if ``strict``; the good files are always scored.
    """
    if not math.isfinite(threshold):
        raise RlspoofError(f"--threshold must be a finite log-odds value, got {threshold}")
    check_batch_size(batch_size)
    window, hop = check_windows(window_seconds, hop_seconds, policy.sample_rate)
    rows, errors = [], []
    for path in paths:
        try:
            wave = load_audio(path, policy.sample_rate)
            n_windows = 1 if len(wave) <= window else math.ceil((len(wave) - window) / hop) + 1
            if n_windows > MAX_WINDOWS:
                raise AudioError(path, f"{len(wave) / policy.sample_rate:.0f} s would make {n_windows} "
                                       f"windows (at most {MAX_WINDOWS}); use a larger --hop")
            pieces = [wave[s : s + window] for s in window_starts(len(wave), window, hop)]  # views
            window_scores = policy_scores(policy, pieces, batch_size)
            score = float(np.mean(window_scores))
            if not math.isfinite(score):
                raise AudioError(path, NON_FINITE_SCORE)
        except AudioError as exc:
            if strict:
                raise
            errors.append({"path": str(path), "error": exc.reason})
            continue
        rows.append({
            "path": str(path),
            "score": score,
            "decision": BONAFIDE if score > threshold else "spoof",
            "p_bonafide": 0.5 * (1.0 + math.tanh(score / 2)),  # the logistic; exp(-score) overflows
            "window_scores": [round(float(s), 6) for s in window_scores],
        })
    return rows, errors
