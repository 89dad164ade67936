"""Inference cost of a detector on this CPU: utterances per second and real-time factor.

Scores batches of fixed-length clips with ``SpoofPolicy.score`` (the path ``rlspoof eval`` and
``detect`` use) for the tiny preset and a wav2vec2-base-sized (95 M parameter) configuration,
randomly initialised (speed does not depend on the weights).

    python benchmarks/eval_throughput.py --out benchmarks/results/eval_throughput.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from rlspoof.models import EncoderConfig, PolicyConfig, build_policy, count_parameters
from rlspoof.provenance import emit_report, run_facts


def measure(preset: str, seconds: float, n_utts: int, batch_size: int) -> dict:
    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(encoder=EncoderConfig(preset=preset))).eval()
    rng = np.random.default_rng(0)
    waves = [0.1 * rng.standard_normal(int(seconds * 16000)).astype(np.float32) for _ in range(n_utts)]
    policy.score(waves[:batch_size], batch_size=batch_size)  # warm-up
    start = time.perf_counter()
    policy.score(waves, batch_size=batch_size)
    elapsed = time.perf_counter() - start
    return {
        "preset": preset,
        "parameters": count_parameters(policy)[1],
        "clip_seconds": seconds,
        "utterances": n_utts,
        "batch_size": batch_size,
        "utterances_per_second": round(n_utts / elapsed, 2),
        "real_time_factor": round(elapsed / (n_utts * seconds), 5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    report = {
        "benchmark": "eval_throughput",
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "results": [measure("tiny", args.seconds, 256, 32), measure("base", args.seconds, 32, 8)],
        **run_facts(),
    }
    emit_report(report, args.out)


if __name__ == "__main__":
    main()
