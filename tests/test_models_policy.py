"""SpoofPolicy: logits, scores as log-odds, and save/load round trips that never unpickle and
never need the original encoder checkpoint."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from rlspoof.errors import RlspoofError
from rlspoof.models import (
    ENCODER_FAMILIES,
    EncoderConfig,
    PolicyConfig,
    SpoofPolicy,
    build_policy,
    tiny_encoder_config,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _policy(seed=0, **kwargs):
    encoder_kwargs = kwargs.pop("encoder", {})
    torch.manual_seed(seed)
    cfg = PolicyConfig(EncoderConfig(**{"preset": "tiny", **encoder_kwargs}), **kwargs)
    return build_policy(cfg)


def _waves(lengths=(3000, 8000, 5200, 4100), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(n).astype(np.float32) for n in lengths]


def test_logits_distribution_and_score_are_consistent():
    policy = _policy(head_hidden=16).eval()
    x = torch.randn(3, 6000)
    with torch.no_grad():
        logits = policy(x)
        dist = policy.distribution(x)
    assert logits.shape == (3, 2)
    assert torch.allclose(dist.probs.sum(-1), torch.ones(3))
    assert dist.sample((5,)).shape == (5, 3)
    scores = policy.score(x)
    assert scores.dtype == np.float64 and scores.shape == (3,)
    expected = (logits[:, 0] - logits[:, 1]).double().numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    # log-odds: sigmoid(score) is P(bonafide)
    np.testing.assert_allclose(1 / (1 + np.exp(-scores)), dist.probs[:, 0].numpy(), rtol=1e-5)


def test_score_handles_variable_lengths_in_input_order():
    policy = _policy().train()
    waves = _waves()
    batched = policy.score(waves, batch_size=3)
    assert policy.training  # mode restored
    one_by_one = np.array([policy.score([w])[0] for w in waves])
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-4, atol=1e-5)
    assert policy.score(waves[1]).shape == (1,)
    with pytest.raises(ValueError, match="non-empty"):
        policy.score([np.zeros(0, dtype=np.float32)])


def test_gradients_reach_head_and_encoder():
    policy = _policy(encoder={"layer": "weighted"})
    x = torch.randn(2, 4000)
    mask = torch.ones(2, 4000, dtype=torch.long)
    mask[0, 3000:] = 0
    loss = -policy.distribution(x, mask).log_prob(torch.tensor([0, 1])).mean()
    loss.backward()
    assert policy.head.net[-1].weight.grad is not None
    assert policy.layer_weights.weights.grad is not None
    assert policy.encoder.encoder.layers[-1].feed_forward.output_dense.weight.grad is not None


def _perturb_lora(policy):
    with torch.no_grad():  # LoRA B starts at zero; make the adapters matter
        for name, p in policy.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"pooling": "mean"},
        {"pooling": "attentive_stats", "head_hidden": 8, "encoder": {"layer": "last"}},
        {"pooling": "mean", "encoder": {"lora": {"r": 2}, "layer": 1}},
        {"pooling": "attentive_stats", "encoder": {"family": "wavlm", "freeze": "layers:1"}},
    ],
    ids=["mean", "attentive", "lora", "wavlm"],
)
def test_save_load_round_trip_gives_identical_scores(tmp_path, kwargs):
    policy = _policy(**kwargs)
    _perturb_lora(policy)
    waves = _waves()
    before = policy.score(waves, batch_size=2)
    policy.save_pretrained(tmp_path / "ckpt", metadata={"recipe": {"method": "grpo"}, "seed": 3})
    loaded = SpoofPolicy.from_pretrained(tmp_path / "ckpt")
    assert not loaded.training
    np.testing.assert_array_equal(loaded.score(waves, batch_size=2), before)
    a, b = policy.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    trainable = {n for n, p in policy.named_parameters() if p.requires_grad}
    assert trainable == {n for n, p in loaded.named_parameters() if p.requires_grad}
    assert loaded.metadata == {"recipe": {"method": "grpo"}, "seed": 3}
    assert loaded.config.to_dict() == policy.config.to_dict()


def test_checkpoint_contents(tmp_path):
    policy = _policy(crop_seconds=2.5)
    folder = policy.save_pretrained(tmp_path / "ckpt", metadata={"recipe": {"lr": 1e-4}})
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config["label2id"] == {"bonafide": 0, "spoof": 1}
    assert config["sample_rate"] == 16000 and config["crop_length"] == 40000
    assert config["rlspoof_version"]
    assert config["metadata"] == {"recipe": {"lr": 1e-4}}
    assert config["encoder"]["model_type"] == "wav2vec2"
    assert config["encoder"]["config"]["hidden_size"] == 64
    assert PolicyConfig.from_dict(config["policy"]).crop_length == 40000


def test_loading_never_touches_the_original_encoder_checkpoint(tmp_path):
    torch.manual_seed(0)
    ENCODER_FAMILIES["hubert"][1](tiny_encoder_config("hubert")).save_pretrained(tmp_path / "enc")
    policy = build_policy(PolicyConfig(EncoderConfig(name_or_path=str(tmp_path / "enc"))))
    before = policy.score(_waves())
    policy.save_pretrained(tmp_path / "ckpt")
    shutil.rmtree(tmp_path / "enc")
    loaded = SpoofPolicy.from_pretrained(tmp_path / "ckpt")
    np.testing.assert_array_equal(loaded.score(_waves()), before)
    assert loaded.encoder.config.model_type == "hubert"


def test_pickled_policy_is_refused(tmp_path):
    folder = tmp_path / "pickled"
    policy = _policy()
    policy.save_pretrained(folder)
    (folder / "model.safetensors").unlink()
    torch.save(policy.state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(RlspoofError, match=r"pytorch_model\.bin.*never unpickles") as err:
        SpoofPolicy.from_pretrained(folder)
    assert str(folder) in str(err.value)


def test_load_errors_name_the_folder(tmp_path):
    missing = tmp_path / "missing"
    with pytest.raises(RlspoofError, match=re.escape(str(missing))):
        SpoofPolicy.from_pretrained(missing)

    plain = tmp_path / "plain_encoder"
    ENCODER_FAMILIES["wav2vec2"][1](tiny_encoder_config()).save_pretrained(plain)
    with pytest.raises(RlspoofError, match="not an rlspoof policy"):
        SpoofPolicy.from_pretrained(plain)

    folder = tmp_path / "ckpt"
    _policy().save_pretrained(folder)
    state = load_file(folder / "model.safetensors")
    del state["head.net.1.weight"]
    save_file(state, folder / "model.safetensors")
    with pytest.raises(RlspoofError, match=r"missing.*head\.net\.1\.weight") as err:
        SpoofPolicy.from_pretrained(folder)
    assert str(folder) in str(err.value)


def test_policy_config_dict_round_trip_and_unknown_keys():
    cfg = PolicyConfig(
        EncoderConfig(preset="tiny", family="wavlm", layer=2, freeze="layers:1", lora={"r": 4}),
        pooling="attentive_stats",
        head_hidden=32,
        head_dropout=0.1,
        crop_seconds=None,
    )
    data = json.loads(json.dumps(cfg.to_dict()))
    assert PolicyConfig.from_dict(data) == cfg
    with pytest.raises(RlspoofError, match="did you mean 'pooling'"):
        PolicyConfig.from_dict({**data, "poolin": "mean"})
    with pytest.raises(RlspoofError, match="did you mean 'freeze'"):
        PolicyConfig.from_dict({**data, "encoder": {**data["encoder"], "freez": "all"}})
    with pytest.raises(RlspoofError, match="attentive_stats, mean"):
        PolicyConfig(EncoderConfig(preset="tiny"), pooling="max")


def test_a_loaded_policy_can_be_refrozen_given_lora_or_a_frame_head_and_keeps_them(tmp_path):
    policy = build_policy(PolicyConfig(EncoderConfig(preset="tiny", freeze="none")))
    policy.set_freeze("all")
    assert not any(p.requires_grad for p in policy.encoder.parameters())
    assert all(p.requires_grad for p in policy.head.parameters())
    policy.add_frame_head()
    reloaded = SpoofPolicy.from_pretrained(policy.save_pretrained(tmp_path / "frozen"))
    assert reloaded.config.encoder.freeze == "all" and reloaded.frame_head is not None
    assert not any(p.requires_grad for p in reloaded.encoder.parameters())

    reloaded.set_freeze("none")
    reloaded.add_lora({"r": 2})
    trainable = {n for n, p in reloaded.encoder.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    with pytest.raises(RlspoofError, match="already has LoRA"):
        reloaded.add_lora({"r": 2})
    with pytest.raises(RlspoofError, match="stay frozen"):
        reloaded.set_freeze("none")
    wave = torch.randn(1, 8000)
    again = SpoofPolicy.from_pretrained(reloaded.save_pretrained(tmp_path / "lora"))
    assert torch.allclose(again(wave), reloaded.eval()(wave), atol=1e-6)
    logits, frames, mask = again(wave, return_frames=True)
    field, stride = again.frame_geometry
    assert frames.shape[:2] == (1, (8000 - field) // stride + 1) and mask is None and torch.allclose(logits, again(wave))


# --------------------------------------------------------------------------- hostile folders


def _hostile_policy_folder(tmp_path, model_type="wav2vec2"):
    """A policy folder whose config asks for its own code: trust_remote_code true and an
    auto_map to evil.py beside it, which leaves a marker file when imported."""
    folder = _policy().save_pretrained(tmp_path / "hostile")
    marker = tmp_path / "code_ran"
    config = json.loads((folder / "config.json").read_text())
    config["policy"]["encoder"]["trust_remote_code"] = True
    config["encoder"]["model_type"] = model_type
    config["encoder"]["config"]["auto_map"] = {
        "AutoConfig": "evil.EvilConfig",
        "AutoModel": "evil.EvilModel",
    }
    config["encoder"]["config"]["_name_or_path"] = str(folder)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    return folder, marker


def test_a_policy_folder_cannot_make_rlspoof_run_its_code(tmp_path):
    folder, marker = _hostile_policy_folder(tmp_path, model_type="bert")
    with pytest.raises(RlspoofError, match=r"model_type 'bert' is not an audio encoder") as err:
        SpoofPolicy.from_pretrained(folder)
    assert str(folder) in str(err.value)
    assert "wav2vec2, hubert, wavlm, data2vec-audio" in str(err.value)
    assert not marker.exists()


def test_a_stored_trust_remote_code_is_ignored_and_not_saved(tmp_path):
    folder, marker = _hostile_policy_folder(tmp_path, model_type="wav2vec2")
    loaded = SpoofPolicy.from_pretrained(folder)  # a supported family: rlspoof's own class
    assert not marker.exists()
    assert loaded.config.encoder.trust_remote_code is False
    assert not hasattr(loaded.encoder.config, "auto_map")
    # Only the caller turns it on, and the folder written next never carries it.
    assert SpoofPolicy.from_pretrained(folder, trust_remote_code=True).config.encoder.trust_remote_code
    assert not marker.exists()
    policy = _policy(encoder={"trust_remote_code": True})
    config = json.loads((policy.save_pretrained(tmp_path / "saved") / "config.json").read_text())
    assert "trust_remote_code" not in config["policy"]["encoder"]


@pytest.mark.parametrize(
    "change",
    [
        {"encoder": {"hidden_size": 65536, "num_hidden_layers": 48, "intermediate_size": 262144}},
        {"encoder": {"hidden_size": 65536, "intermediate_size": 262144}},
        {"policy": {"head_hidden": 10**9}},
    ],
    ids=["hidden65536x48", "hidden65536", "head_hidden"],
)
def test_a_config_declaring_far_more_than_its_weights_is_refused_before_allocating(
    tmp_path, change
):
    folder = _policy().save_pretrained(tmp_path / "bomb")
    config = json.loads((folder / "config.json").read_text())
    config["encoder"]["config"].update(change.get("encoder", {}))
    config["policy"].update(change.get("policy", {}))
    (folder / "config.json").write_text(json.dumps(config))
    # Allocating these would take from 0.5 to 9,000 GiB; refusing takes no memory.
    with pytest.raises(RlspoofError, match="refusing to allocate") as err:
        SpoofPolicy.from_pretrained(folder)
    message = str(err.value)
    assert str(folder / "config.json") in message and str(folder / "model.safetensors") in message
    assert re.search(r"holds only 14\d,\d{3}", message)
    if "encoder" in change:
        assert "hidden_size=65536" in message


def test_invalid_encoder_config_values_are_errors_naming_the_file(tmp_path):
    folder = _policy().save_pretrained(tmp_path / "bad")
    config = json.loads((folder / "config.json").read_text())
    config["encoder"]["config"]["num_attention_heads"] = 3  # does not divide hidden size 64
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(RlspoofError, match="invalid encoder config") as err:
        SpoofPolicy.from_pretrained(folder)
    assert str(folder / "config.json") in str(err.value)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_naming_file_and_tensor(tmp_path, bad):
    folder = _policy().save_pretrained(tmp_path / "nan")
    state = load_file(folder / "model.safetensors")
    state["encoder.encoder.layers.1.attention.q_proj.weight"][0, 0] = bad
    save_file(state, folder / "model.safetensors")
    with pytest.raises(RlspoofError, match="NaN or Inf") as err:
        SpoofPolicy.from_pretrained(folder)
    assert str(folder / "model.safetensors") in str(err.value)
    assert "encoder.encoder.layers.1.attention.q_proj.weight" in str(err.value)


# --------------------------------------------------------------------------- hostile clips


def test_clips_shorter_than_the_receptive_field_are_repeat_padded():
    policy = _policy()
    assert policy.min_samples == 400  # the tiny preset's 25 ms kernel
    waves = _waves(lengths=(1, 150, 399, 400, 5000))
    scores = policy.score(waves, batch_size=2)
    assert np.isfinite(scores).all()
    tiled = [np.tile(w, 400)[:400] if len(w) < 400 else w for w in waves]
    np.testing.assert_allclose(scores, policy.score(tiled, batch_size=2), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        scores, [policy.score([w])[0] for w in waves], rtol=1e-4, atol=1e-5
    )


def test_a_non_finite_score_is_an_error_naming_the_input():
    from rlspoof.models.policy import NonFiniteScoreError

    policy = _policy()
    good, huge, nan = _waves(lengths=(3000, 3000, 3000))
    huge = huge * np.float32(1e30)
    nan[5] = np.nan
    with pytest.raises(NonFiniteScoreError, match=r"'huge'.*not finite.*peak \|sample\|") as err:
        policy.score([good, huge], names=["good", "huge"])
    assert isinstance(err.value, RlspoofError) and err.value.indices == [1]
    assert np.isfinite(err.value.scores[0]) and np.isnan(err.value.scores[1])
    with pytest.raises(RlspoofError, match=r"waveform 0 \(and 1 more of 3\).*NaN/Inf samples"):
        policy.score([nan, good, huge])
    with torch.no_grad():  # a broken model is caught the same way
        policy.head.net[-1].bias.fill_(float("nan"))
    with pytest.raises(NonFiniteScoreError, match="waveform 0"):
        policy.score([good])
