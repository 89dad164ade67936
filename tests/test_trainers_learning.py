"""Do the trainers learn? End-to-end runs on the small SYNTHETIC corpus, judged on held-out
speakers (dev split), not on the training loss. Slow (minutes), and still run in CI."""

from __future__ import annotations

import json

import pytest
import yaml

from rlspoof.data.manifest import read_manifest
from rlspoof.evaluation import score_manifest
from rlspoof.metrics.report import score_metrics
from rlspoof.models import SpoofPolicy
from rlspoof.trainers.run import train_from_recipe

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

CHANCE_EER = 0.5


def _train(tmp_path, corpus, name, **overrides):
    recipe = {
        "method": "sft", "encoder_preset": "tiny", "freeze": "none",
        "train_manifest": str(corpus / "train.csv"), "crop_seconds": 1.5,
        "output_dir": str(tmp_path / name), "learning_rate": 1.0e-3, "warmup_steps": 20,
        "per_device_train_batch_size": 16, "max_steps": 300, "eval_strategy": "no",
        "save_strategy": "no", "logging_steps": 10, "use_cpu": True, "disable_tqdm": True,
        "report_to": "none", "seed": 5,
    }
    recipe.update(overrides)
    if "model_name_or_path" in overrides:
        del recipe["encoder_preset"]
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return train_from_recipe(path)


def _dev_eer(folder, corpus) -> float:
    policy = SpoofPolicy.from_pretrained(folder)
    scored = score_manifest(policy, read_manifest(corpus / "dev.csv"), "dev")
    return score_metrics(scored.scores, scored.labels)["eer"]


def _logged(folder, key) -> list[float]:
    history = json.loads((folder / "trainer_state.json").read_text())["log_history"]
    return [entry[key] for entry in history if key in entry]


def test_post_training_the_demo_detector_lowers_dev_eer_well_below_chance(small_corpus, tmp_path):
    """The demo's post-training (family- and label-balanced batches) of its detector, the
    tiny-logspec preset, from random init: 150 steps of 8 x 1 s crops."""
    corpus, _ = small_corpus
    folder = _train(tmp_path, corpus, "posttrain", method="posttrain", encoder_preset="tiny-logspec",
                    mix_by="attack", balance_labels=True, max_steps=150, warmup_steps=10,
                    crop_seconds=1.0, per_device_train_batch_size=8)
    eer = _dev_eer(folder, corpus)
    # Measured 2026-12-02 with the frequency-keeping front end and corpus version 4, seed 5:
    # dev EER 0.195 after 150 steps of 8 x 1 s crops (22 s), 0.175 with 16 x 1 s (32 s), 0.15
    # with 16 x 1.5 s, 0.105 after 300 steps of 16 x 1.5 s (400 trials from unseen speakers,
    # standard error ~0.02). 0.30 leaves room for the seed and
    # the machine's float rounding and is still far from chance (0.5; the old waveform-CNN
    # preset reached ~0.40).
    assert eer < CHANCE_EER - 0.20, f"dev EER {eer:.3f} after 150 post-training steps"


def test_grpo_improves_a_weak_checkpoint(small_corpus, tmp_path):
    corpus, _ = small_corpus
    # Weak = has learned almost nothing: with the tiny preset even 5 SFT steps at lr 1e-3 reach
    # the ~0.38 dev EER plateau that the other trainers also stop at (it separates lpc_vocoder
    # only). The demo's detector (tiny-logspec) is not used here: after 60 SFT steps (dev EER
    # 0.20), 150 GRPO steps at lr 1e-3 collapsed it to chance (rewards 0.68 -> 0.5, dev EER
    # 0.445), and from a random start its rewards stayed at chance (measured 2026-12-02).
    weak = _train(tmp_path, corpus, "weak", max_steps=20, learning_rate=1.0e-5)
    weak_eer = _dev_eer(weak, corpus)
    grpo = _train(tmp_path, corpus, "grpo", method="grpo", model_name_or_path=str(weak),
                  max_steps=120, num_generations=8, beta=0.04, crop_seconds=1.0)
    rewards = _logged(grpo, "reward")
    kls = _logged(grpo, "kl")
    grpo_eer = _dev_eer(grpo, corpus)
    assert sum(rewards[-5:]) / 5 > sum(rewards[:5]) / 5 + 0.03, rewards
    # beta > 0 keeps the policy near its start: bounded, as in the tiny-corpus KL test (that a
    # larger beta keeps it closer is tested in test_trainers_grpo). Measured on corpus v4, seed
    # 5, 120 steps of 1 s crops: mean reward 0.50 -> 0.60 over the first and last 5 logs, logged
    # KL at most 0.51 (1.05 after 240 steps of 1.5 s).
    assert max(kls) < 2.0, kls
    # Measured on corpus v4, seed 5, 120 steps of 1 s crops: 0.445 -> 0.415 (400 dev trials; the
    # reward curve above is the sharper signal); the dev EER must at least not get worse.
    assert grpo_eer <= weak_eer, (weak_eer, grpo_eer)
