"""Data mixing for post-training: which rows a training batch draws, by source and by label.

AntiDeepfake post-trains on dozens of corpora whose sizes differ by orders of magnitude; drawn
uniformly over rows, the largest would drown the rest. The usual cure (multilingual language
models: XLM-R, mT5) samples a *source* s with probability p_s proportional to n_s^(1/T), then a
row of it uniformly: T = 1 is proportional to size, larger T flattens towards uniform over
sources. Explicit per-source weights replace the rule. Independently, each batch can hold equal
numbers of bonafide and spoof rows, whatever the corpus balance.

Hand-written because neither torch nor transformers ships a grouped, label-balanced sampler
(``WeightedRandomSampler`` draws rows i.i.d. and cannot fix each batch's label counts).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping

import numpy as np
from torch.utils.data import Sampler

from rlspoof.data.manifest import CORE_COLUMNS, LABEL2ID, LABELS, Manifest
from rlspoof.errors import RlspoofError


class MixingError(RlspoofError, ValueError):
    """Mixing settings that do not fit the data."""


def mixture_probabilities(counts: Mapping[str, int], weights: Mapping[str, float] | None = None,
                          temperature: float = 1.0) -> dict[str, float]:
    """Sampling probability of each source: proportional to ``weights`` when given, else to
    ``count ** (1 / temperature)``.

    >>> mixture_probabilities({"big": 900, "small": 100}, temperature=1.0)
    {'big': 0.9, 'small': 0.1}
    >>> {k: round(v, 2) for k, v in mixture_probabilities({"big": 900, "small": 100}, temperature=2.0).items()}
    {'big': 0.75, 'small': 0.25}
    """
    if temperature <= 0:
        raise MixingError(f"mix_temperature must be > 0, got {temperature}")
    if not counts or any(n <= 0 for n in counts.values()):
        raise MixingError(f"every source needs rows to sample from, got counts {dict(counts)}")
    if weights is not None:
        unknown = sorted(set(weights) - set(counts))
        if unknown:
            raise MixingError(f"mix_weights names sources the data does not have: {unknown}; "
                              f"sources: {sorted(counts)}")
        missing = sorted(set(counts) - set(weights))
        if missing:
            raise MixingError(f"mix_weights has no weight for sources {missing} (give 0 to leave one out)")
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise MixingError(f"mix_weights must be >= 0 with a positive sum, got {dict(weights)}")
        raw = {s: float(weights[s]) for s in counts}
    else:
        raw = {s: float(n) ** (1.0 / temperature) for s, n in counts.items()}
    total = sum(raw.values())
    return {s: w / total for s, w in raw.items()}


class MixtureSampler(Sampler[int]):
    """Row indices drawn source-first (``mixture_probabilities``), optionally label-balanced.

    With ``balance_labels`` every block of ``batch_size`` indices holds ``batch_size // 2``
    bonafide and the rest spoof rows, in shuffled order; within a label, sources are drawn by the
    same rule applied to their rows of that label (a genuine-only corpus feeds only the
    bonafide half; a spoof corpus's few genuine rows do not weigh like its many spoofs). An epoch is ``num_samples`` draws (default:
    the number of rows). The draw depends on (seed, epoch) only; ``set_epoch`` gives a new one.
    """

    def __init__(self, manifest: Manifest, mix_by: str = "source", *, batch_size: int = 1,
                 weights: Mapping[str, float] | None = None, temperature: float = 1.0,
                 balance_labels: bool = False, num_samples: int | None = None, seed: int = 0):
        if mix_by not in CORE_COLUMNS:
            raise MixingError(f"mix_by must be a manifest column ({', '.join(CORE_COLUMNS)}), got {mix_by!r}")
        if batch_size < 1:
            raise MixingError(f"batch_size must be >= 1, got {batch_size}")
        if balance_labels and batch_size < 2:
            raise MixingError("balance_labels needs a batch of at least 2 rows")
        self.batch_size, self.balance_labels, self.seed, self.epoch = batch_size, balance_labels, seed, 0
        self.num_samples = len(manifest) if num_samples is None else int(num_samples)
        rows_of: dict[tuple[int, str], list[int]] = defaultdict(list)
        for index, row in enumerate(manifest):
            rows_of[(row.label_id if balance_labels else 0, str(getattr(row, mix_by)))].append(index)
        self.rows_of = {key: np.asarray(rows) for key, rows in rows_of.items()}
        sources = sorted({source for _, source in self.rows_of})
        counts = {s: sum(len(r) for (_, src), r in self.rows_of.items() if src == s) for s in sources}
        #: p(source) over all rows: what a report shows; draws use the per-label version below.
        self.probabilities = mixture_probabilities(counts, weights, temperature)
        self.plan: dict[int, tuple[list[str], np.ndarray]] = {}
        for label in sorted(LABEL2ID.values()) if balance_labels else [0]:
            have = [s for s in sources if (label, s) in self.rows_of and self.probabilities[s] > 0]
            if not have:
                name = LABELS[label] if balance_labels else "any"
                raise MixingError(f"no rows with label {name} in a source with a positive weight")
            p = mixture_probabilities({s: len(self.rows_of[(label, s)]) for s in have},
                                      None if weights is None else {s: weights[s] for s in have},
                                      temperature)
            self.plan[label] = (have, np.array([p[s] for s in have]))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def _draw(self, rng: np.random.Generator, label: int, n: int) -> np.ndarray:
        sources, p = self.plan[label]
        picks = rng.choice(len(sources), size=n, p=p)
        out = np.empty(n, dtype=np.int64)
        for k, source in enumerate(sources):
            where = picks == k
            rows = self.rows_of[(label, source)]
            out[where] = rows[rng.integers(0, len(rows), size=int(where.sum()))]
        return out

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        if not self.balance_labels:
            yield from self._draw(rng, 0, self.num_samples).tolist()
            return
        produced = 0
        while produced < self.num_samples:
            n = min(self.batch_size, self.num_samples - produced)
            n_bonafide = n // 2
            block = np.concatenate([self._draw(rng, LABEL2ID["bonafide"], n_bonafide),
                                    self._draw(rng, LABEL2ID["spoof"], n - n_bonafide)])
            yield from rng.permutation(block).tolist()
            produced += n


__all__ = ["MixingError", "MixtureSampler", "mixture_probabilities"]
