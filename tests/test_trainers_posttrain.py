"""Post-training: AntiDeepfake-style mixture + mix-frame frame loss, end to end on the tiny corpus."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from rlspoof.errors import RlspoofError
from rlspoof.models import SpoofPolicy
from rlspoof.trainers.posttrain import frame_loss
from rlspoof.trainers.run import train_from_recipe

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _recipe(tmp_path, corpus, **overrides):
    recipe = {
        "method": "posttrain", "encoder_preset": "tiny", "freeze": "none", "frame_head": True,
        "train_manifest": str(corpus / "train.csv"), "eval_manifest": str(corpus / "dev.csv"),
        "crop_seconds": 0.75, "eval_crop_seconds": 0.75, "output_dir": str(tmp_path / "run"),
        "learning_rate": 3e-3, "per_device_train_batch_size": 8, "per_device_eval_batch_size": 16,
        "max_steps": 30, "logging_steps": 5, "eval_strategy": "steps", "eval_steps": 30,
        "save_strategy": "no", "use_cpu": True, "disable_tqdm": True, "report_to": "none", "seed": 2,
        "lr_scheduler_type": "constant", "mix_by": "attack", "mix_temperature": 2.0,
        "balance_labels": True, "mixframe_prob": 0.5, "mixframe_span_seconds": [0.1, 0.3],
        "frame_loss_weight": 0.5,
    }
    recipe.update(overrides)
    path = tmp_path / "posttrain.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_frame_loss_is_zero_for_confident_right_frames_and_ignores_masked_ones():
    labels = torch.tensor([[0.0] * 160 + [1.0] * 160])  # 2 frames of 160 samples
    right = torch.tensor([[[20.0, -20.0], [-20.0, 20.0]]])
    assert frame_loss(right, labels, None).item() < 1e-6
    wrong_second = torch.tensor([[[20.0, -20.0], [20.0, -20.0]]])
    assert frame_loss(wrong_second, labels, None).item() > 10
    assert frame_loss(wrong_second, labels, torch.tensor([[1, 0]])).item() < 1e-6


@pytest.mark.slow
def test_posttrain_with_mix_frame_lowers_both_losses_and_saves_the_frame_head(tiny_corpus, tmp_path):
    folder, _ = tiny_corpus
    out = train_from_recipe(_recipe(tmp_path, folder, max_steps=120, logging_steps=10, eval_steps=120))
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    logs = [h for h in history if "frame_loss" in h]
    assert len(logs) == 12
    def first_and_last(key):  # means of the first three and of the last three logs
        return [sum(h[key] for h in part) / 3 for part in (logs[:3], logs[-3:])]
    first, last = first_and_last("frame_loss")
    assert last < 0.85 * first, (first, last)
    first, last = first_and_last("utterance_loss")
    assert last < first, (first, last)
    assert any("eval_eer" in h for h in history)
    policy = SpoofPolicy.from_pretrained(out)
    assert policy.frame_head is not None
    config = json.loads((out / "config.json").read_text())
    params = config["metadata"]["parameters"]
    assert params["trainable"] == params["total"] > 0


def test_posttrain_without_frame_loss_is_the_antideepfake_recipe(tiny_corpus, tmp_path):
    folder, _ = tiny_corpus
    out = train_from_recipe(_recipe(tmp_path, folder, frame_head=False, mixframe_prob=0.0,
                                    frame_loss_weight=0.0, max_steps=5, eval_strategy="no",
                                    train_manifest=f"{folder / 'train.csv'},{folder / 'target_train.csv'}",
                                    mix_by="domain", mix_weights={"in_domain": 3, "target": 1}))
    assert SpoofPolicy.from_pretrained(out).frame_head is None


@pytest.mark.parametrize(("overrides", "message"), [
    ({"mixframe_prob": 0.0}, "set mixframe_prob > 0"),
    ({"frame_head": False}, "set frame_head: true"),
])
def test_frame_loss_without_its_inputs_is_a_clear_error(tiny_corpus, tmp_path, overrides, message):
    folder, _ = tiny_corpus
    with pytest.raises(RlspoofError, match=message):
        train_from_recipe(_recipe(tmp_path, folder, max_steps=1, eval_strategy="no", **overrides))
