"""A trained detector exported to ONNX: the same scores and metrics as in rlspoof, at what speed.

Exports a policy folder (default: the demo's post-trained detector, ``runs/posttrained``) with
``export_onnx``, scores the same manifests with ``SpoofPolicy.score`` (torch) and with the
graph under onnxruntime (``OnnxDetector``), and reports per set: the largest score difference,
EER and minDCF from each, and each scorer's wall time. The graph computes the log-spectrogram
in float64 (``export_onnx``); the policy's own float32 one is compared with float64 too, which
is where the gap between graph and policy comes from. Both score every clip alone
(``--batch-size 1`` by default), which is how ``detect`` meets most audio; the demo corpus is
SYNTHETIC.

    python benchmarks/onnx_parity.py --model runs/posttrained \
        --set old_eval=data/mini/eval.csv --set target_eval=data/mini/target_eval.csv \
        --out benchmarks/results/onnx_parity_demo.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from rlspoof.data.manifest import read_manifest
from rlspoof.evaluation.scoring import score_manifest
from rlspoof.metrics.report import score_metrics
from rlspoof.models import SpoofPolicy
from rlspoof.models.frontends import set_spectrogram_dtype
from rlspoof.models.onnx_export import OnnxDetector, export_onnx
from rlspoof.provenance import emit_report, run_facts


def timed_scores(scorer, manifest, name: str, batch_size: int) -> tuple[object, float]:
    start = time.perf_counter()
    scored = score_manifest(scorer, manifest, name, batch_size=batch_size)
    return scored, time.perf_counter() - start


@contextmanager
def float64_spectrogram(policy) -> Iterator[None]:
    """The policy's log-spectrogram in float64, as the exported graph computes it."""
    set_spectrogram_dtype(policy, torch.float64)
    try:
        yield
    finally:
        set_spectrogram_dtype(policy, torch.float32)


def score_gaps(a, b) -> dict:
    gap = np.abs(np.asarray(a.scores) - np.asarray(b.scores))
    return {"max": float(gap.max()), "p99": float(np.quantile(gap, 0.99)), "mean": float(gap.mean())}


def compare_set(policy, graph, name: str, manifest_path: Path, batch_size: int) -> dict:
    manifest = read_manifest(manifest_path)
    ref, torch_seconds = timed_scores(policy, manifest, name, batch_size)
    got, onnx_seconds = timed_scores(graph, manifest, name, batch_size)
    with float64_spectrogram(policy):
        exact, _ = timed_scores(policy, manifest, name, batch_size)
    assert ref.utt_ids == got.utt_ids == exact.utt_ids
    metrics = {which: score_metrics(s.scores, s.labels) for which, s in (("torch", ref), ("onnx", got))}
    audio_seconds = sum(row.duration or 0.0 for row in manifest)
    return {
        "set": name, "manifest": str(manifest_path), "trials": len(ref.scores),
        # the graph against the policy, and where the gap comes from: the policy's float32
        # spectrogram (the graph computes it in float64)
        "score_gap_onnx_vs_torch": score_gaps(got, ref),
        "score_gap_onnx_vs_torch_float64_spectrogram": score_gaps(got, exact),
        "score_gap_torch_vs_torch_float64_spectrogram": score_gaps(ref, exact),
        **{f"eer_{k}": round(m["eer"], 6) for k, m in metrics.items()},
        **{f"min_dcf_{k}": round(m["min_dcf"], 6) for k, m in metrics.items()},
        "torch_seconds": round(torch_seconds, 2), "onnx_seconds": round(onnx_seconds, 2),
        "torch_real_time_factor": round(torch_seconds / audio_seconds, 5),
        "onnx_real_time_factor": round(onnx_seconds / audio_seconds, 5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("runs/posttrained"))
    parser.add_argument("--set", action="append", default=None, help="NAME=manifest.csv (repeatable)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    sets = args.set or ["old_eval=data/mini/eval.csv", "target_eval=data/mini/target_eval.csv"]
    policy = SpoofPolicy.from_pretrained(args.model).eval()
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        path = export_onnx(policy, folder)
        export_seconds = time.perf_counter() - start
        graph = OnnxDetector(path, providers=["CPUExecutionProvider"])
        results = []
        for spec in sets:
            name, manifest = spec.split("=", 1)
            results.append(compare_set(policy, graph, name, Path(manifest), args.batch_size))
        size_mb = path.stat().st_size / 2**20
    import onnxruntime

    report = {
        "benchmark": "onnx_parity", "device": "cpu", "corpus": "SYNTHETIC (rlspoof data synth)",
        "model": str(args.model), "batch_size": args.batch_size, "torch_threads": torch.get_num_threads(),
        "export_seconds": round(export_seconds, 2), "onnx_file_mb": round(size_mb, 2),
        "onnxruntime": onnxruntime.__version__, "results": results, **run_facts(),
    }
    emit_report(report, args.out)


if __name__ == "__main__":
    main()
