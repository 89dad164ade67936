"""Everything that runs a trained model to measure it, and the comparison built on it.

* :mod:`~rlspoof.evaluation.scoring`: score evaluation sets (``rlspoof eval``), score files;
* :mod:`~rlspoof.evaluation.detect`: score arbitrary files, whole or in windows (``detect``);
* :mod:`~rlspoof.evaluation.compare`: methods x seeds from one checkpoint (``rlspoof compare``);
* :mod:`~rlspoof.evaluation.embeddings`: pooled embeddings, PCA and class separation (``embed``);
* :mod:`~rlspoof.evaluation.probe`: the linear probe of an encoder's features.

The metrics themselves are pure functions in :mod:`rlspoof.metrics`; figures and markdown are
in :mod:`rlspoof.reports`.
"""

from __future__ import annotations

from rlspoof.evaluation.detect import (
    MAX_WINDOWS,
    MIN_HOP_SECONDS,
    check_windows,
    collect_audio_paths,
    detect_files,
)
from rlspoof.evaluation.scoring import (
    DETECT_CALIBRATED_CSV_HEADER,
    DETECT_CSV_HEADER,
    NON_FINITE_SCORE,
    SCORE_FILE_HEADER,
    ScoredSet,
    check_name,
    evaluate_sets,
    is_plain_name,
    read_score_file,
    read_scores,
    score_manifest,
    set_metrics,
    write_score_file,
)

__all__ = [
    "DETECT_CALIBRATED_CSV_HEADER",
    "DETECT_CSV_HEADER",
    "MAX_WINDOWS",
    "MIN_HOP_SECONDS",
    "NON_FINITE_SCORE",
    "SCORE_FILE_HEADER",
    "ScoredSet",
    "check_name",
    "check_windows",
    "collect_audio_paths",
    "detect_files",
    "evaluate_sets",
    "is_plain_name",
    "read_score_file",
    "read_scores",
    "score_manifest",
    "set_metrics",
    "write_score_file",
]
