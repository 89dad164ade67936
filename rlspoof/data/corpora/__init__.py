"""Corpus adapters: the on-disk layouts of public anti-spoofing corpora, read into manifests.

Every corpus ships its labels differently (whitespace protocols, CSVs, folder names). An adapter
reads one layout and returns rows whose paths are relative to the corpus root, so the rest of
rlspoof sees one format. A malformed protocol line is an error naming file and line, and a row
dropped for bad audio is listed in ``PrepareResult.skipped``: on a corpus of 100k files a
silent drop is a wrong EER that nobody can trace.
"""

from __future__ import annotations

from rlspoof.data.corpora import asvspoof, other  # noqa: F401  (importing an adapter registers it)
from rlspoof.data.corpora.antideepfake import ANTIDEEPFAKE_COLUMNS, write_antideepfake_csv
from rlspoof.data.corpora.registry import (
    CHECK_AUDIO,
    CORPORA,
    CorpusScan,
    Entry,
    PrepareResult,
    get_adapter,
    list_corpora,
    prepare_corpus,
    register_corpus,
)

__all__ = [
    "ANTIDEEPFAKE_COLUMNS",
    "CHECK_AUDIO",
    "CORPORA",
    "CorpusScan",
    "Entry",
    "PrepareResult",
    "get_adapter",
    "list_corpora",
    "prepare_corpus",
    "register_corpus",
    "write_antideepfake_csv",
]
