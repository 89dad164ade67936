"""Is the built-in corpus a fair test bed? A classic baseline says how hard it is.

Trains logistic regression on LFCC utterance statistics (mean and std of 20 LFCC + deltas,
the ASVspoof 2019 LFCC front-end) on the ``train`` split of the synthetic corpus and reports
EER on every evaluation split and per attack. A good test bed is neither trivial (in-domain EER
clearly above 0) nor impossible (clearly below 50 %), and out-of-domain sets are harder.

    python benchmarks/baseline_lfcc.py --size small --out benchmarks/results/baseline_lfcc_small.json

Prints JSON; every number is labelled as coming from the synthetic corpus.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from rlspoof.data.audio import load_audio
from rlspoof.data.features import lfcc, utterance_stats
from rlspoof.data.manifest import BONAFIDE, read_manifest
from rlspoof.data.synth.corpus import build_corpus
from rlspoof.metrics import compute_eer
from rlspoof.provenance import emit_report, run_facts

EVAL_SPLITS = ("dev", "eval", "eval_unseen_attack", "eval_channel", "target_eval")


def _features(path: str) -> np.ndarray:
    return utterance_stats(lfcc(load_audio(path)))


def _embed(manifest, workers: int) -> np.ndarray:
    paths = [str(manifest.audio_path(r)) for r in manifest]
    with ProcessPoolExecutor(workers) as pool:
        return np.stack(list(pool.map(_features, paths, chunksize=16)))


def _eer(scores: np.ndarray, labels: list[str]) -> float:
    is_bona = np.array([lab == BONAFIDE for lab in labels])
    return float(compute_eer(scores[is_bona], scores[~is_bona])[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", choices=["tiny", "small", "medium"])
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--corpus", type=Path, help="existing corpus folder (else built in data/)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()

    corpus = args.corpus or Path("data") / f"synthetic-{args.size}-seed{args.seed}"
    t0 = time.perf_counter()
    if not (corpus / "manifest.csv").exists():
        build_corpus(corpus, args.size, args.seed, n_jobs=args.workers)
    build_s = time.perf_counter() - t0
    manifest = read_manifest(corpus / "manifest.csv")

    train = manifest.filter(split="train")
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    # class 1 = bonafide so that decision_function is "higher = more bonafide" (ASVspoof).
    model.fit(_embed(train, args.workers), [r.label == BONAFIDE for r in train])

    results = {}
    for split in EVAL_SPLITS:
        part = manifest.filter(split=split)
        scores = model.decision_function(_embed(part, args.workers))
        labels = [r.label for r in part]
        per_attack = {}
        bona = np.array([lab == BONAFIDE for lab in labels])
        for attack in sorted({r.attack for r in part if r.label != BONAFIDE}):
            keep = bona | np.array([r.attack == attack for r in part])
            per_attack[attack] = round(100 * _eer(scores[keep], [labels[i] for i in np.flatnonzero(keep)]), 2)
        results[split] = {"eer_percent": round(100 * _eer(scores, labels), 2),
                          "n": len(part), "per_attack_eer_percent": per_attack}

    report = {
        "benchmark": "baseline_lfcc_logreg",
        "corpus": f"rlspoof built-in SYNTHETIC corpus, size={args.size}, seed={args.seed}",
        "synthetic": True,
        "corpus_version": json.loads((corpus / "corpus.json").read_text())["corpus_version"],
        "model": "StandardScaler + LogisticRegression on LFCC(20)+deltas mean/std (120 dims)",
        "train_utterances": len(train),
        "results": results,
        "corpus_build_seconds": round(build_s, 1),
        **run_facts(),
    }
    emit_report(report, args.out)


if __name__ == "__main__":
    main()
