"""benchmarks/gpu_step.py (issue 14's prepared GPU check) runs end to end at tiny size on CPU."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def gpu_step(tmp_path_factory):
    """The module (imported as the script imports its sibling) and one tiny CPU run's JSON."""
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(BENCHMARKS))
    import gpu_step

    transformers_logger = logging.getLogger("transformers")
    level = transformers_logger.level
    out = tmp_path_factory.mktemp("gpu_step") / "gpu_step.json"
    try:
        returned = gpu_step.main([
            "--device", "cpu", "--preset", "tiny", "--batch", "2", "--seconds", "0.5",
            "--steps", "1", "--warmup", "1", "--threads", "1", "--out", str(out),
        ])
    finally:
        transformers_logger.setLevel(level)
        mp.undo()
    report = json.loads(out.read_text())
    assert report == json.loads(json.dumps(returned))
    return gpu_step, report


def _positive_finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_report_has_both_methods_and_both_checkpointing_settings(gpu_step):
    _, report = gpu_step
    assert report["synthetic_input"] is True
    assert report["device"] == "cpu" and report["device_name"]
    assert report["torch_version"] == torch.__version__
    s = report["settings"]
    assert (s["preset"], s["batch"], s["seconds"], s["steps"]) == ("tiny", 2, 0.5, 1)
    assert s["dtype"] == "bf16" and s["grad_checkpointing"] == "both"
    assert s["peak_tflops"] is None
    rows = {(r["method"], r["gradient_checkpointing"]): r for r in report["results"]}
    assert set(rows) == {(m, c) for m in ("sft", "grpo") for c in ("off", "on")}
    for (method, ckpt), r in rows.items():
        assert "error" not in r, r
        assert r["checkpointing_active"] is (ckpt == "on")
        assert _positive_finite(r["steps_per_second"])
        assert _positive_finite(r["seconds_per_step"]["mean"])
        assert len(r["seconds_raw"]) == 1 and _positive_finite(r["seconds_raw"][0])
        assert r["loss_finite"] and math.isfinite(r["loss_last"])
        assert _positive_finite(r["flops"]["per_step"]) and _positive_finite(r["achieved_tflops"])
        assert r["mfu"] is None  # no peak figure on CPU
        assert r["memory"]["kind"] == "process_rss_after_steps"
        # GRPO with beta = 0.04 runs one frozen reference forward on top of SFT's step.
        assert r["flops"]["frozen_copy_forwards"] == (1 if method == "grpo" else 0)
    for ckpt in ("off", "on"):
        sft, grpo = rows["sft", ckpt]["flops"], rows["grpo", ckpt]["flops"]
        assert grpo["per_step"] == sft["per_step"] + sft["forward"]["total"]


def test_flops_formula_matches_hand_count(gpu_step):
    """The tiny CNN (kernels 400/1, strides 160/1, channels 128/64) and transformer by hand."""
    module, _ = gpu_step
    from rlspoof.models import EncoderConfig, PolicyConfig, build_policy

    policy = build_policy(PolicyConfig(encoder=EncoderConfig(preset="tiny")))
    b, samples = 3, 8000
    f = module.flops_per_step(policy, b, samples, "sft", frozen_copies=0)
    t = (samples - 400) // 160 + 1  # 48 frames; the 1x1 second layer keeps them
    assert f["frames_per_clip"] == t
    conv = 2 * b * (t * 1 * 128 * 400 + t * 128 * 64 * 1)
    attention = 4 * 2 * 64 * b * t * t  # 2 layers, width 64
    assert f["forward"]["conv"] == conv and f["forward"]["attention"] == attention
    linear = 2 * f["params_per_token"] * b * t
    head = 2 * f["params_head"] * b
    assert f["per_step"] == 3 * (linear + attention + head) + conv  # frozen CNN: forward only
    assert f["params_conv"] + f["params_per_token"] + f["params_head"] + 64 == sum(
        p.numel() for p in policy.parameters())  # + the 64-wide SpecAugment mask vector


def test_mfu_uses_the_given_peak(gpu_step):
    module, _ = gpu_step
    args = module.parse_args(["--device", "cpu", "--peak-tflops", "2.5"])
    assert args.peak_tflops == 2.5 and args.peak_tflops_source == "--peak-tflops"
    assert module.parse_args(["--device", "cpu"]).peak_tflops is None
