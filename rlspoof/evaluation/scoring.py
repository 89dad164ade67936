"""Scoring evaluation sets with a trained policy (``rlspoof eval``), and score files.

Scores are the policy's log-odds ``logit[bonafide] - logit[spoof]``: higher = more bonafide,
the ASVspoof convention, and directly usable as LLRs for actDCF and Cllr.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rlspoof.data.audio import load_audio
from rlspoof.data.dataset import ProgressFn
from rlspoof.data.manifest import BONAFIDE, CORE_COLUMNS, Manifest
from rlspoof.data.text_files import csv_records, numbered_lines, open_text
from rlspoof.errors import AudioError, DataError, RlspoofError
from rlspoof.metrics.report import bootstrap_ci, grouped_metrics, score_metrics
from rlspoof.models import SpoofPolicy
from rlspoof.models.inference import Scorer
from rlspoof.models.policy import NonFiniteScoreError

#: Headers of the score files rlspoof writes; the score is the second column of both.
SCORE_FILE_HEADER = ["filename", "cm-score", "label", "attack"]  # eval: scores/<set>.tsv
DETECT_CSV_HEADER = ["path", "score", "decision", "p_bonafide", "n_windows"]  # detect --format csv
#: ``detect`` with a calibrated policy: its LLR and P(spoof) at the stated prior.
DETECT_CALIBRATED_CSV_HEADER = ["path", "score", "llr", "p_spoof", "decision", "n_windows"]
NON_FINITE_SCORE = "the model gave a non-finite score (NaN/Inf): NaN weights, or samples far beyond +-1?"


def is_plain_name(name: object) -> bool:
    """One plain path component: what a name may be when it becomes a file or folder name under
    an output folder (``../../x``, ``a/b`` or ``..`` would write outside it)."""
    return (isinstance(name, str) and name not in ("", ".", "..")
            and not any(c in name for c in "/\\\0"))


def check_name(name: str, option: str) -> str:
    """A set or model name becomes a file or folder name under ``--out``: anything but one plain
    path component (``../../x``, ``a/b``, ``..``) would write outside it, so it is refused."""
    if not is_plain_name(name):
        raise RlspoofError(f"{option} name {name!r} must be a plain file name (no '/', '\\' or '..'): "
                           "it names the results under --out")
    return name


def check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise RlspoofError(f"--batch-size must be >= 1, got {batch_size}")


def policy_scores(policy: Scorer, waves: list[np.ndarray], batch_size: int) -> np.ndarray:
    """Log-odds per wave, NaN where the policy could give no finite score: the caller reports
    those inputs and keeps the others (``policy.score`` raises for them, with every score)."""
    try:
        return policy.score(waves, batch_size=batch_size)
    except NonFiniteScoreError as exc:
        return exc.scores


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
    """Score every row; rows are read in length order so batches pad little (length bucketing).

    A row whose audio is unusable, or whose score is not finite (a NaN is no result, and would
    poison every metric), raises, or with ``skip_bad`` lands in ``skipped`` with the reason.
    """
    check_batch_size(batch_size)
    if max_seconds is not None and not (math.isfinite(max_seconds) and max_seconds > 0):
        raise RlspoofError(f"--max-seconds must be a positive number of seconds, got {max_seconds}")
    limit = None if max_seconds is None else int(max_seconds * policy.sample_rate)
    result = ScoredSet(name)
    for done, chunk in duration_chunks(manifest, batch_size):
        rows, waves = [], []
        for i in chunk:
            row = manifest[i]
            try:
                wave = load_audio(manifest.audio_path(row), policy.sample_rate)
            except AudioError as exc:
                if not skip_bad:
                    raise
                result.skipped.append((row.utt_id, str(exc)))
                continue
            rows.append(row)
            waves.append(wave[:limit])  # a clip cut below the receptive field is padded by score()
        scores = policy_scores(policy, waves, batch_size)
        for row, score in zip(rows, scores, strict=True):
            if not math.isfinite(score):
                if not skip_bad:
                    raise RlspoofError(f"{manifest.audio_path(row)}: {NON_FINITE_SCORE}")
                result.skipped.append((row.utt_id, NON_FINITE_SCORE))
                continue
            result.utt_ids.append(row.utt_id)
            result.scores.append(float(score))
            result.labels.append(row.label)
            result.attacks.append(row.attack)
        if progress:
            progress(done + len(chunk), len(manifest))
    return result


def duration_chunks(manifest: Manifest, batch_size: int,
                    batches_per_chunk: int = 8) -> Iterator[tuple[int, list[int]]]:
    """``(rows done before, row indices)``: the manifest in duration order, a few batches at a
    time. Scoring and embedding decode one chunk, run it and let it go, so a large corpus never
    sits in memory whole, and neighbours in duration order batch with little padding."""
    order = sorted(range(len(manifest)), key=lambda i: manifest[i].duration or 0.0)
    size = batch_size * batches_per_chunk
    for start in range(0, len(order), size):
        yield start, order[start:start + size]


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
    for (utt_id, _, label, attack), score in _score_table(path, [SCORE_FILE_HEADER]):
        result.utt_ids.append(utt_id)
        result.scores.append(score)
        result.labels.append(label)
        result.attacks.append(attack)
    return result


def read_scores(path: str | Path) -> list[float]:
    """The scores in any file rlspoof writes (what ``drift`` reads): an ``eval`` score file
    (TSV), or the CSV or JSON output of ``detect``. Errors name the file and line; every
    score is finite and there is at least one."""
    path = regular_file(Path(path))
    with open_text(path, "utf-8-sig") as handle:
        first = next((text for _, text in numbered_lines(handle, path) if text.strip()), "")
    if path.suffix.lower() == ".json" or first.lstrip().startswith(("{", "[")):
        scores = _detect_json_scores(path)
    else:
        scores = [score for _, score in _score_table(
            path, [SCORE_FILE_HEADER, DETECT_CSV_HEADER, DETECT_CALIBRATED_CSV_HEADER])]
    if not scores:
        raise DataError("no scores in the file", path)
    return scores


def regular_file(path: Path) -> Path:
    if not path.exists():
        raise DataError("file does not exist", path)
    if not path.is_file():  # a folder, or a FIFO that would block the read
        raise DataError("not a regular file", path)
    return path


def _finite(text: str, path: Path, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise DataError(f"malformed score line: score {text!r} is not a finite number", path, line)
    return value


def _score_table(path: Path, headers: list[list[str]]) -> Iterator[tuple[list[str], float]]:
    """(cells, score) per row of a table whose header is one of ``headers``, tab- or
    comma-separated by its first line; the score is the second column, checked finite."""
    regular_file(path)
    with open_text(path, "utf-8-sig") as handle:
        delimiter = "\t" if "\t" in handle.readline() else ","
        handle.seek(0)
        records = csv_records(handle, path, delimiter)
        line, header = next(records, (1, None))
        if header not in headers:
            wanted = " or ".join(" ".join(h) for h in headers)
            raise DataError(f"not an rlspoof score file: header {header}, expected {wanted}", path, line)
        for line, cells in records:
            if len(cells) != len(header):
                raise DataError(f"malformed score line {cells}: {len(header)} fields expected", path, line)
            yield cells, _finite(cells[1], path, line)


def _detect_json_scores(path: Path) -> list[float]:
    """The ``score`` of each entry of ``results`` in ``detect --format json`` output."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DataError(f"not valid JSON ({exc})", path) from None
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        raise DataError('not rlspoof detect JSON output (no "results" list)', path)
    scores = []
    for i, entry in enumerate(results):
        score = entry.get("score") if isinstance(entry, dict) else None
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise DataError(f"results[{i}]: score {score!r} is not a finite number", path)
        scores.append(float(score))
    return scores


def has_column(manifest: Manifest, column: str) -> bool:
    return column in CORE_COLUMNS or any(column in row.extra for row in manifest)


def check_group_columns(manifests: Iterable[Manifest], columns: Sequence[str]) -> None:
    """A grouping column must exist in at least one set (a set without it is not broken down
    by it); one that no set has is a typo, refused with the columns there are."""
    manifests = list(manifests)
    for column in columns:
        if not any(has_column(m, column) for m in manifests):
            extra = sorted({key for m in manifests for row in m for key in row.extra})
            raise RlspoofError(f"--group-by {column!r}: no set has such a column "
                               f"(columns: {', '.join(CORE_COLUMNS + extra)})")


def column_values(manifest: Manifest, column: str, utt_ids: Sequence[str]) -> list[str]:
    """Each scored utterance's value of ``column``: a manifest field or any extra CSV column
    (the built-in corpus' ``channel``, a corpus' codec or language). These are the groups of
    ``eval --group-by``; an empty cell is the group ``-``."""
    by_id = {row.utt_id: row for row in manifest}
    if column in CORE_COLUMNS:
        return [str(getattr(by_id[u], column)) for u in utt_ids]
    return [by_id[u].extra.get(column) or "-" for u in utt_ids]


def set_metrics(scored: ScoredSet, n_boot: int = 1000, seed: int = 0,
                groups: dict[str, list[str]] | None = None) -> dict:
    """Pooled metrics with a bootstrap CI on EER, per-attack EER/minDCF tables, and one table
    per grouping column in ``groups`` (column -> one value per scored utterance)."""
    scores = np.asarray(scored.scores)
    labels = scored.labels
    if not labels and scored.skipped:
        utt_id, reason = scored.skipped[0]
        raise RlspoofError(f"set {scored.name!r}: no row could be scored ({len(scored.skipped)} "
                           f"skipped; first {utt_id}: {reason})")
    if BONAFIDE not in labels or all(label == BONAFIDE for label in labels):
        raise RlspoofError(f"set {scored.name!r} needs both bonafide and spoof rows to be evaluated")
    pooled = score_metrics(scores, labels)
    low, high = bootstrap_ci(scores, labels, metric="eer", n_boot=n_boot, seed=seed)
    pooled["eer_ci95"] = [low, high]
    return {
        "pooled": pooled,
        "per_attack": grouped_metrics(scores, labels, scored.attacks, pooled=False),
        "per_group": {column: grouped_metrics(scores, labels, values, pooled=False)
                      for column, values in (groups or {}).items()},
        "skipped": [{"utt_id": u, "reason": r} for u, r in scored.skipped],
    }


def evaluate_sets(policy: SpoofPolicy, sets: dict[str, Manifest], out_dir: str | Path,
                  batch_size: int = 16, max_seconds: float | None = None, skip_bad: bool = False,
                  progress_factory=None, group_by: Sequence[str] = (), calibration=None) -> dict:
    """Score each named set, write ``scores/<name>.tsv`` and ``metrics.json``; return the metrics.

    ``group_by`` names manifest columns to break every set's metrics down by (a group with
    both classes is scored on its own trials: a channel condition, say). With a
    ``calibration`` (a ``ScoreCalibration``), each set also gets ``"calibrated"``: the metrics
    of its calibrated LLRs, so actDCF and Cllr can be read before and after."""
    out = Path(out_dir)
    for name in sets:
        check_name(name, "--set")
    check_group_columns(sets.values(), group_by)  # a typo fails before any scoring
    try:  # before scoring: a results folder blocked by a file fails now, not after an hour
        (out / "scores").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RlspoofError(f"{out}: cannot create the results folder ({exc.strerror})") from None
    results = {}
    for name, manifest in sets.items():
        if progress_factory:
            with progress_factory(f"scoring {name}") as update:
                scored = score_manifest(policy, manifest, name, batch_size, max_seconds, skip_bad, update)
        else:
            scored = score_manifest(policy, manifest, name, batch_size, max_seconds, skip_bad)
        write_score_file(scored, out / "scores" / f"{name}.tsv")
        groups = {column: column_values(manifest, column, scored.utt_ids)
                  for column in group_by if has_column(manifest, column)}
        results[name] = set_metrics(scored, groups=groups)
        if calibration is not None:
            results[name]["calibrated"] = score_metrics(calibration.llr(scored.scores), scored.labels)
    (out / "metrics.json").write_text(json.dumps(results, indent=2) + "\n")
    return results
