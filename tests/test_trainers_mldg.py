"""MLDG with LoRA on a saved policy (the post-trained checkpoint of the pipeline), end to end."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from trainer_helpers import weights_of

from rlspoof.data.manifest import write_manifest
from rlspoof.models import EncoderConfig, PolicyConfig, SpoofPolicy, build_policy
from rlspoof.trainers.run import train_from_recipe

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def saved_policy(tmp_path):
    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(EncoderConfig(preset="tiny", freeze="none"), crop_seconds=0.75))
    return policy.save_pretrained(tmp_path / "posttrained")


def _recipe(tmp_path, corpus, start, **overrides):
    recipe = {
        "method": "mldg", "model_name_or_path": str(start), "use_peft": True, "lora_r": 4,
        "train_manifest": str(corpus / "target_train.csv"), "eval_manifest": str(corpus / "target_dev.csv"),
        "crop_seconds": 0.75, "eval_crop_seconds": 0.75, "output_dir": str(tmp_path / "mldg"),
        "learning_rate": 5e-3, "per_device_train_batch_size": 8, "per_device_eval_batch_size": 16,
        "max_steps": 60, "logging_steps": 10, "eval_strategy": "steps", "eval_steps": 60,
        "save_strategy": "no", "use_cpu": True, "disable_tqdm": True, "report_to": "none", "seed": 4,
        "lr_scheduler_type": "constant", "mix_by": "attack", "balance_labels": True,
        "meta_lr": 0.01, "meta_test_weight": 1.0,
    }
    recipe.update(overrides)
    path = tmp_path / "mldg.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("first_order", [False, True])
def test_mldg_lora_trains_only_adapters_and_head_and_reloads(tiny_corpus, tmp_path, saved_policy, first_order):
    folder, _ = tiny_corpus
    before = weights_of(SpoofPolicy.from_pretrained(saved_policy))
    out = train_from_recipe(_recipe(tmp_path, folder, saved_policy, first_order=first_order))
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    logs = [h for h in history if "meta_test_loss" in h]
    assert len(logs) == 6 and all(h["mldg_erm_fraction"] < 0.5 for h in logs)
    first = sum(h["loss"] for h in logs[:2]) / 2
    last = sum(h["loss"] for h in logs[-2:]) / 2
    assert last < first, (first, last)
    assert any("eval_eer" in h for h in history)

    after = SpoofPolicy.from_pretrained(out)  # re-creates the adapters from the stored config
    assert after.config.encoder.lora["r"] == 4
    state = after.state_dict()
    lora_keys = [k for k in state if "lora_" in k]
    assert lora_keys
    for key, value in before.items():
        stored = key if key in state else key.replace(".weight", ".base_layer.weight").replace(
            ".bias", ".base_layer.bias")
        if key.startswith("encoder."):
            assert torch.equal(state[stored], value), key  # the encoder's own weights are frozen
    assert not torch.equal(state["head.net.1.weight"], before["head.net.1.weight"])
    params = json.loads((out / "config.json").read_text())["metadata"]["parameters"]
    assert 0 < params["trainable"] < params["total"] / 5


def test_a_batch_with_one_family_takes_a_plain_step(tiny_corpus, tmp_path, saved_policy):
    folder, manifest = tiny_corpus
    one_family = manifest.filter(split="target_train", attack=["-", "codec_laundering"])
    one_family.root = folder
    train = write_manifest(one_family, folder / "one_family.csv")
    out = train_from_recipe(_recipe(tmp_path, folder, saved_policy, train_manifest=str(train),
                                    max_steps=10, eval_strategy="no"))
    logs = [h for h in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in h]
    assert logs[0]["mldg_erm_fraction"] == 1.0 and "meta_test_loss" not in logs[0]
