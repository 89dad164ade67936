"""Does wav2vec 2.0 pre-training on the built-in corpus give the tiny encoder useful features?

Pre-trains the tiny encoder (``rlspoof.trainers.pretrain``) on the bona fide ``train`` audio of
the SMALL synthetic corpus, then fits a linear probe (logistic regression on frozen, pooled
features) on the ``train`` split and reports EER on ``eval`` and ``dev`` (plus the two
out-of-domain splits) for (a) the pre-trained encoder and (b) the same architecture randomly
initialised with the same seed.

    python benchmarks/pretrain_probe.py --out benchmarks/results/pretrain_probe.json

The Gumbel temperature decays per step to its floor by ``--anneal-fraction`` of the run: the
Hugging Face default (0.999995 per step) is meant for 400k-step runs; at 2.0 the quantiser's
targets are nearly random and a short run learns nothing. Prints JSON; every number is
labelled as coming from the synthetic corpus.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rlspoof.data.manifest import read_manifest
from rlspoof.data.synth.corpus import build_corpus
from rlspoof.evaluation.probe import linear_probe
from rlspoof.provenance import emit_report, run_facts
from rlspoof.trainers.pretrain import (
    build_pretraining_model,
    pretrain,
)
from rlspoof.trainers.pretrain_config import PretrainConfig, PretrainDataArguments

EVAL_SETS = ("eval", "dev", "eval_unseen_attack", "eval_channel")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", choices=["tiny", "small", "medium"])
    parser.add_argument("--seed", type=int, default=1234, help="corpus seed")
    parser.add_argument("--corpus", type=Path, help="existing corpus folder (else built in data/)")
    parser.add_argument("--steps", type=int, default=2000, help="about 3.5 min on 2 CPU cores")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--crop-seconds", type=float, default=2.0)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--mask-prob", type=float, default=0.4)
    parser.add_argument("--mask-length", type=int, default=5)
    parser.add_argument("--codevectors", type=int, default=16, help="entries per codebook (2 codebooks)")
    parser.add_argument("--feature-grad-mult", type=float, default=0.1)
    parser.add_argument("--diversity-weight", type=float, default=0.1)
    parser.add_argument("--anneal-fraction", type=float, default=0.5,
                        help="fraction of the steps after which the Gumbel temperature hits its floor")
    parser.add_argument("--features", default="all_layers", choices=["all_layers", "last"])
    parser.add_argument("--train-seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="processes building the corpus")
    parser.add_argument("--output-dir", type=Path, help="keep the pre-training run here (else a temp dir)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()

    torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    corpus = args.corpus or Path("data") / f"synthetic-{args.size}-seed{args.seed}"
    if not (corpus / "manifest.csv").exists():
        build_corpus(corpus, args.size, args.seed, n_jobs=args.workers)
    manifest_path = corpus / "manifest.csv"
    manifest = read_manifest(manifest_path)

    max_t, min_t = 2.0, 0.5
    decay = math.exp(math.log(min_t / max_t) / max(1.0, args.anneal_fraction * args.steps))
    tmp = None if args.output_dir else tempfile.TemporaryDirectory(prefix="pretrain_probe_")
    output_dir = args.output_dir or Path(tmp.name)
    cfg = PretrainConfig(
        output_dir=str(output_dir), max_steps=args.steps, per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr, mask_time_prob=args.mask_prob, mask_time_length=args.mask_length,
        num_codevectors_per_group=args.codevectors, feature_grad_mult=args.feature_grad_mult,
        diversity_loss_weight=args.diversity_weight, max_gumbel_temperature=max_t, min_gumbel_temperature=min_t, gumbel_temperature_decay=decay,
        logging_steps=10, seed=args.train_seed, report_to="none", use_cpu=True,
        save_strategy="no", disable_tqdm=True, log_level="error",
    )
    data_args = PretrainDataArguments(train_manifest=str(manifest_path), split="train",
                                      crop_seconds=args.crop_seconds)
    t0 = time.perf_counter()
    encoder_dir = pretrain(cfg, data_args)
    pretrain_s = time.perf_counter() - t0
    log = json.loads((output_dir / "pretrain_log.json").read_text())
    curve = log["curve"]

    def first_last(key: str) -> tuple[float, float]:
        values = [entry[key] for entry in curve]
        return round(float(np.mean(values[:5])), 4), round(float(np.mean(values[-5:])), 4)

    train = manifest.filter(split="train")
    evals = {name: manifest.filter(split=name) for name in EVAL_SETS}
    t1 = time.perf_counter()
    probe_pre = linear_probe(encoder_dir, train, evals, features=args.features)
    probe_rand = linear_probe(build_pretraining_model(cfg), train, evals, features=args.features)
    probe_s = time.perf_counter() - t1

    loss_start, loss_end = first_last("loss")
    contrastive_start, contrastive_end = first_last("contrastive_loss")
    report = {
        "benchmark": "pretrain_probe",
        "corpus": f"rlspoof built-in SYNTHETIC corpus, size={args.size}, seed={args.seed}",
        "synthetic": True,
        "encoder": "tiny wav2vec2 (hidden 64, 2 layers, CNN stride 160)",
        "pretrain_utterances": log["n_utterances"],
        "steps": log["global_steps"],
        "batch_size": args.batch_size,
        "crop_seconds": args.crop_seconds,
        "learning_rate": args.lr,
        "mask_time_prob": args.mask_prob,
        "mask_time_length": args.mask_length,
        "num_codevectors_per_group": args.codevectors,
        "feature_grad_mult": args.feature_grad_mult,
        "diversity_loss_weight": args.diversity_weight,
        "gumbel_temperature": {"max": max_t, "min": min_t, "decay": round(decay, 6)},
        "loss_start": loss_start,
        "loss_end": loss_end,
        "contrastive_start": contrastive_start,
        "contrastive_end": contrastive_end,
        "codevector_perplexity_end": first_last("codevector_perplexity")[1],
        "probe": f"logistic regression (torch LBFGS, C=1) on {args.features} features; train split",
        "probe_eer_pretrained": probe_pre["eer_by_set"]["eval"],
        "probe_eer_random": probe_rand["eer_by_set"]["eval"],
        "probe_eer_pretrained_by_set": probe_pre["eer_by_set"],
        "probe_eer_random_by_set": probe_rand["eer_by_set"],
        "pretrain_seconds": round(pretrain_s, 1),
        "probe_seconds": round(probe_s, 1),
        "seconds": round(pretrain_s + probe_s, 1),
        "torch_threads": torch.get_num_threads(),
        **run_facts(),
    }
    if tmp is not None:
        tmp.cleanup()
    emit_report(report, args.out)


if __name__ == "__main__":
    main()
