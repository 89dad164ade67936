"""Which channel breaks a detector, and how hard? EER on one set under graded channel effects.

Up to corpus version 4 the built-in ``eval_channel`` set mixed a telephone channel (300-3400 Hz
band, 8 kHz round trip, 8-bit mu-law) with pink noise at 5-15 dB SNR, and the post-trained
detector scored it at chance: one pooled number that said nothing about why. This benchmark
takes a labelled set (the old-domain ``eval``, whose speakers and attacks ``eval_channel``
shares), passes every clip through one channel effect at a time, at graded severity, and
reports the policy's EER under each: a robustness curve that says which part of a channel a
detector cannot bear. Version 5's channel conditions were chosen from it.

    python benchmarks/channel_robustness.py --model runs/posttrained --set data/mini/eval.csv \
        --out benchmarks/results/channel_robustness_small_v5.json

Each clip gets its own random stream (seeded by its row index), so two policies see identical
degraded audio; each degraded clip keeps its original RMS level. Prints JSON; numbers on the
built-in corpus are labelled synthetic.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from rlspoof.data.audio import load_audio
from rlspoof.data.channels import add_noise, band_limit, mu_law, resample_chain, telephone
from rlspoof.data.manifest import BONAFIDE, read_manifest
from rlspoof.data.synth.corpus import is_synthetic
from rlspoof.metrics import compute_eer
from rlspoof.models import SpoofPolicy
from rlspoof.provenance import emit_report, run_facts

Channel = Callable[[np.ndarray, np.random.Generator], np.ndarray]

#: name -> channel; the first is the reference. Severity grows down each group.
CONDITIONS: dict[str, Channel | None] = {
    "clean": None,
    **{f"pink_noise_{snr}dB": partial(add_noise, snr_db=snr, color="pink") for snr in (30, 25, 20, 15, 10, 5)},
    **{f"white_noise_{snr}dB": partial(add_noise, snr_db=snr, color="white") for snr in (30, 20, 10)},
    "lowpass_7kHz": partial(band_limit, low_hz=0.0, high_hz=7000.0),
    "lowpass_5kHz": partial(band_limit, low_hz=0.0, high_hz=5000.0),
    "bandpass_300_3400Hz": partial(band_limit, low_hz=300.0, high_hz=3400.0),
    "resample_8kHz": partial(resample_chain, mid_rate=8000),
    "mu_law_8bit": partial(mu_law, bits=8),
    "telephone": telephone,
}


def degrade(wave: np.ndarray, channel: Channel | None, index: int, seed: int) -> np.ndarray:
    if channel is None:
        return wave
    out = channel(wave, np.random.default_rng([seed, index]))
    rms_in, rms_out = np.sqrt(np.mean(wave**2)), np.sqrt(np.mean(out**2))
    return (out * (rms_in / rms_out) if rms_out > 0 else out).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="policy folder")
    parser.add_argument("--set", type=Path, required=True, help="labelled manifest (CSV)")
    parser.add_argument("--conditions", nargs="*", choices=list(CONDITIONS), default=list(CONDITIONS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()

    manifest = read_manifest(args.set)
    policy = SpoofPolicy.from_pretrained(args.model)
    waves = [load_audio(manifest.audio_path(row), policy.sample_rate) for row in manifest]
    is_bona = np.array([row.label == BONAFIDE for row in manifest])
    results = {}
    for name in args.conditions:
        degraded = [degrade(w, CONDITIONS[name], i, args.seed) for i, w in enumerate(waves)]
        scores = policy.score(degraded, batch_size=args.batch_size)
        results[name] = {
            "eer": round(float(compute_eer(scores[is_bona], scores[~is_bona])[0]), 4),
            "median_score_bonafide": round(float(np.median(scores[is_bona])), 3),
            "median_score_spoof": round(float(np.median(scores[~is_bona])), 3),
        }
        print(f"{name:>22}: EER {100 * results[name]['eer']:5.1f} %", flush=True)
    emit_report({
        "benchmark": "channel_robustness",
        "synthetic_corpus": is_synthetic([manifest]),
        "model": str(args.model),
        "set": str(args.set),
        "n_bonafide": int(is_bona.sum()),
        "n_spoof": int((~is_bona).sum()),
        "seed": args.seed,
        "conditions": results,
        "facts": run_facts(),
    }, args.out)


if __name__ == "__main__":
    main()
