"""wav2vec 2.0 pre-training of the tiny encoder, its saved checkpoint, and the linear probe."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import AutoModel

from rlspoof.data.manifest import read_manifest
from rlspoof.errors import ConfigError, DataError, RlspoofError
from rlspoof.evaluation.probe import linear_probe
from rlspoof.trainers.pretrain import (
    PretrainCollator,
    build_pretraining_model,
    codebook_collapsed,
    pretrain,
    pretraining_manifest,
)
from rlspoof.trainers.pretrain_config import PretrainConfig, PretrainDataArguments

QUIET = {"report_to": "none", "use_cpu": True, "save_strategy": "no", "disable_tqdm": True,
         "log_level": "error"}


def _cfg(tmp_path, **kw):
    return PretrainConfig(output_dir=str(tmp_path / "run"), **{**QUIET, **kw})


# --- configs ----------------------------------------------------------------------------------


def test_unknown_family_is_config_error(tmp_path):
    with pytest.raises(ConfigError, match="bert.*wav2vec2"):
        _cfg(tmp_path, encoder_family="bert")


@pytest.mark.parametrize("kw, match", [
    ({"mask_time_prob": 0.0}, "mask_time_prob"),
    ({"mask_time_prob": 1.2}, "mask_time_prob"),
    ({"num_negatives": 0}, "num_negatives"),
    ({"codevector_dim": 63, "num_codevector_groups": 2}, "divisible"),
    ({"min_gumbel_temperature": 3.0}, "gumbel"),
    ({"gumbel_temperature_decay": 1.5}, "gumbel_temperature_decay"),
    ({"encoder_overrides": "[1, 2]"}, "mapping"),
    ({"encoder_overrides": "{a: [1"}, "YAML"),
    ({"encoder_overrides": "{num_negatives: 5}"}, "num_negatives"),
    ({"learning_rate": 0.0}, "learning_rate"),
])
def test_invalid_config_values(tmp_path, kw, match):
    with pytest.raises(ConfigError, match=match):
        _cfg(tmp_path, **kw)


def test_data_arguments_validate(tiny_corpus):
    with pytest.raises(ConfigError, match="label"):
        PretrainDataArguments(train_manifest="x.csv", label="maybe")
    with pytest.raises(ConfigError, match="crop_seconds"):
        PretrainDataArguments(train_manifest="x.csv", crop_seconds=0)
    folder, _ = tiny_corpus
    args = PretrainDataArguments(train_manifest=str(folder / "manifest.csv"), split="train", label="real")
    rows = pretraining_manifest(args)
    assert len(rows) > 0 and {r.label for r in rows} == {"bonafide"} and {r.split for r in rows} == {"train"}
    with pytest.raises(DataError, match="no rows"):
        pretraining_manifest(PretrainDataArguments(train_manifest=str(folder / "manifest.csv"),
                                                   split="no_such_split"))


def test_gumbel_schedule(tmp_path):
    cfg = _cfg(tmp_path, max_gumbel_temperature=2.0, min_gumbel_temperature=0.5,
               gumbel_temperature_decay=0.9)
    assert cfg.gumbel_temperature(0) == 2.0
    assert cfg.gumbel_temperature(1) == pytest.approx(1.8)
    assert cfg.gumbel_temperature(1000) == 0.5


def test_overrides_reach_the_model(tmp_path):
    cfg = _cfg(tmp_path, encoder_overrides="{hidden_size: 32, num_attention_heads: 2}",
               num_negatives=7, codevector_dim=32)
    model = build_pretraining_model(cfg)
    assert model.config.hidden_size == 32 and model.config.num_negatives == 7
    assert model.config.codevector_dim == 32


def test_collator_masks_and_negatives(tmp_path):
    cfg = _cfg(tmp_path, mask_time_prob=0.4, mask_time_length=5, num_negatives=6)
    model = build_pretraining_model(cfg)
    collate = PretrainCollator(model, cfg.mask_time_prob, cfg.mask_time_length)
    batch = [{"input_values": torch.randn(16000), "labels": 0, "utt_id": f"u{i}", "attack": "-"}
             for i in range(3)]
    out = collate(batch)
    n_frames = int(model._get_feat_extract_output_lengths(16000))
    assert set(out) == {"input_values", "mask_time_indices", "sampled_negative_indices"}
    mask, neg = out["mask_time_indices"].bool(), out["sampled_negative_indices"]
    assert mask.shape == (3, n_frames) and neg.shape == (3, n_frames, 6)
    assert 0.1 < mask.float().mean() < 0.6
    for b in range(3):  # negatives of a masked frame: other masked frames of the same clip
        own = neg[b][mask[b]] - b * n_frames
        assert own.min() >= 0 and own.max() < n_frames
        assert mask[b][own.flatten()].all()
        assert not (own == torch.nonzero(mask[b]).flatten()[:, None]).any()
    # one forward pass gives the model's losses
    model.train()
    loss = model(**out).loss
    assert torch.isfinite(loss)


def test_collator_pads_and_masks_only_real_frames(tmp_path):
    cfg = _cfg(tmp_path)
    model = build_pretraining_model(cfg)
    collate = PretrainCollator(model, 0.5, 3)
    out = collate([{"input_values": torch.randn(16000), "labels": 0, "utt_id": "a", "attack": "-"},
                   {"input_values": torch.randn(8000), "labels": 0, "utt_id": "b", "attack": "-"}])
    short = int(model._get_feat_extract_output_lengths(8000))
    assert out["attention_mask"].shape == (2, 16000)
    assert out["sub_attention_mask"][1].sum() == short
    assert not out["mask_time_indices"][1, short:].any()


def test_a_pretraining_run_whose_loss_turns_nan_stops_at_once(tiny_corpus, tmp_path, monkeypatch):
    """NaN weights would otherwise train on silently to max_steps and be saved."""
    import rlspoof.trainers.pretrain as module

    build = module.build_pretraining_model

    def poisoned(cfg):
        model = build(cfg)
        with torch.no_grad():
            model.project_q.weight.fill_(float("nan"))
        return model

    monkeypatch.setattr(module, "build_pretraining_model", poisoned)
    folder, _ = tiny_corpus
    data = PretrainDataArguments(train_manifest=str(folder / "manifest.csv"), split="train", crop_seconds=1.0)
    with pytest.raises(RlspoofError, match=r"non-finite pre-training loss \(nan\) at step 1;"):
        pretrain(_cfg(tmp_path, max_steps=3, per_device_train_batch_size=4), data)
    assert not (tmp_path / "run" / "encoder").exists()


def test_codebook_collapse_is_one_code_per_codebook_and_no_contrastive_loss():
    assert codebook_collapsed(2.0, num_groups=2, contrastive_loss=0.0)
    assert not codebook_collapsed(2.0, num_groups=2, contrastive_loss=0.3)  # still learning
    assert not codebook_collapsed(2.6, num_groups=2, contrastive_loss=0.0)  # some frames differ


def test_a_run_whose_codebooks_collapse_records_the_step(tiny_corpus, tmp_path, monkeypatch):
    """A collapsed quantiser trains on without gradient; the log must say so (the CLI warns)."""
    import rlspoof.trainers.pretrain as module

    build = module.build_pretraining_model

    def collapsed(cfg):  # every frame picks code 0 of each codebook
        model = build(cfg)
        with torch.no_grad():
            model.quantizer.weight_proj.weight.zero_()
            model.quantizer.weight_proj.bias.view(cfg.num_codevector_groups, -1)[:, 0] = 50.0
        return model

    monkeypatch.setattr(module, "build_pretraining_model", collapsed)
    folder, _ = tiny_corpus
    data = PretrainDataArguments(train_manifest=str(folder / "manifest.csv"), split="train", crop_seconds=1.0)
    pretrain(_cfg(tmp_path, max_steps=3, per_device_train_batch_size=4), data)
    assert json.loads((tmp_path / "run" / "pretrain_log.json").read_text())["codebook_collapsed_at_step"] == 1


@pytest.mark.slow
def test_pretrain_lowers_contrastive_loss_and_saves_a_loadable_encoder(tiny_corpus, tmp_path):
    folder, _ = tiny_corpus
    # The Hugging Face temperature decay (0.999995) is for 400k steps: at 2.0 the targets are
    # near-random codes, so a short run anneals to the floor in ~70 steps. Below ~150 steps the
    # loss has not left its chance plateau (ln(1 + num_negatives)) on every seed.
    cfg = _cfg(
        tmp_path, max_steps=200, per_device_train_batch_size=16, logging_steps=1, seed=0,
        learning_rate=1e-3, gumbel_temperature_decay=0.98,
    )
    data = PretrainDataArguments(train_manifest=str(folder / "manifest.csv"), split="train",
                                 crop_seconds=1.0)
    encoder_dir = pretrain(cfg, data)

    log = json.loads((tmp_path / "run" / "pretrain_log.json").read_text())
    curve = log["curve"]
    assert len(curve) == 200 and log["global_steps"] == 200
    assert {"step", "loss", "contrastive_loss", "diversity_loss", "codevector_perplexity"} <= set(curve[0])
    contrastive = [c["contrastive_loss"] for c in curve]
    assert np.mean(contrastive[-5:]) < np.mean(contrastive[:5])
    # ... by learning, not by codebook collapse (identical negatives are masked out of the loss)
    assert np.mean([c["codevector_perplexity"] for c in curve[-5:]]) > 8
    assert log["codebook_collapsed_at_step"] is None
    assert (tmp_path / "run" / "recipe.resolved.yaml").is_file()

    assert (encoder_dir / "model.safetensors").is_file()
    encoder, info = AutoModel.from_pretrained(encoder_dir, output_loading_info=True)
    assert type(encoder).__name__ == "Wav2Vec2Model"
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert encoder.config.mask_time_prob == cfg.saved_mask_time_prob

    fresh = build_pretraining_model(cfg).wav2vec2.state_dict()
    trained = encoder.state_dict()
    assert set(fresh) == set(trained)
    changed = [k for k in fresh if not torch.allclose(fresh[k], trained[k])]
    assert len(changed) > len(fresh) // 2

    manifest = read_manifest(folder / "manifest.csv")
    result = linear_probe(encoder_dir, manifest.filter(split="train"),
                          {"dev": manifest.filter(split="dev"), "eval": manifest.filter(split="eval")})
    assert set(result["eer_by_set"]) == {"dev", "eval"}
    assert result["eer"] == result["eer_by_set"]["dev"]
    assert all(0.0 <= v <= 1.0 for v in result["eer_by_set"].values())
    assert result["feature_dim"] == encoder.config.hidden_size
