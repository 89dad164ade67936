"""The model card an exported policy carries: labels, training data (SYNTHETIC flagged), metrics."""

from __future__ import annotations

import json

import pytest
import yaml

from rlspoof.models import EncoderConfig, PolicyConfig, build_policy
from rlspoof.reports.model_card import model_card

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_card_says_what_the_folder_shows(tiny_corpus, tmp_path):
    folder, _ = tiny_corpus
    policy = build_policy(PolicyConfig(EncoderConfig(preset="tiny"), normalize_input=True))
    source = policy.save_pretrained(tmp_path / "policy")
    bare = model_card(policy, source, "hf")
    assert "SYNTHETIC" not in bare and "not recorded" in bare and "Not measured" in bare
    assert "zero mean and unit variance" in bare

    (source / "recipe.resolved.yaml").write_text(yaml.safe_dump(
        {"method": "sft", "train_manifest": [str(folder / "train.csv")], "max_steps": 3, "unlisted_key": 1}))
    (source / "eval").mkdir()
    pooled = {"eer": 0.125, "eer_ci95": [0.1, 0.15], "min_dcf": 0.2, "act_dcf": 0.3, "cllr": 0.4,
              "n_bonafide": 8, "n_spoof": 8}
    (source / "eval" / "metrics.json").write_text(json.dumps({"dev": {"pooled": pooled}}))
    card = model_card(policy, source, "hf")
    assert "SYNTHETIC corpus" in card and "`max_steps`: 3" in card and "unlisted_key" not in card
    assert "| dev | 12.50 | 10.0-15.0 | 0.200 | 0.300 | 0.400 | 8+8 |" in card
