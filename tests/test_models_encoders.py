"""SSL encoders: loading checkpoints safely (never a silent random init), presets, freezing,
LoRA, layer weighting and masked pooling. Tiny random models only; nothing is downloaded."""

from __future__ import annotations

import json
import re

import pytest
import torch
from safetensors.torch import load_file, save_file

from rlspoof.errors import RlspoofError
from rlspoof.models import (
    ENCODER_FAMILIES,
    PRESETS,
    EncoderConfig,
    PolicyConfig,
    build_policy,
    count_parameters,
    load_encoder,
    tiny_encoder_config,
)
from rlspoof.models.encoders import preset_config
from rlspoof.models.heads import (
    AttentiveStatsPooling,
    LayerWeights,
    MeanPooling,
    build_pooling,
    frame_mask_from_samples,
)

FAMILIES = list(ENCODER_FAMILIES)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _save_tiny(folder, family="wav2vec2", seed=0):
    torch.manual_seed(seed)
    _, model_cls = ENCODER_FAMILIES[family]
    model = model_cls(tiny_encoder_config(family))
    model.save_pretrained(folder, safe_serialization=True)
    return model


def _batch():
    torch.manual_seed(1)
    x = torch.randn(2, 8000)
    mask = torch.ones(2, 8000, dtype=torch.long)
    mask[1, 5000:] = 0
    return x, mask


# --------------------------------------------------------------------------- loading


@pytest.mark.parametrize("family", FAMILIES)
def test_load_local_checkpoint_keeps_saved_weights(tmp_path, family):
    original = _save_tiny(tmp_path / "enc", family)
    model, hidden, n_states = load_encoder(EncoderConfig(name_or_path=str(tmp_path / "enc")))
    assert type(model) is ENCODER_FAMILIES[family][1]
    assert hidden == 64 and n_states == 3
    saved = original.state_dict()
    loaded = model.state_dict()
    assert saved.keys() == loaded.keys()
    for key, value in saved.items():
        assert torch.equal(value, loaded[key]), key
    x, mask = _batch()
    model.eval()
    out = model(x, attention_mask=mask, output_hidden_states=True)
    assert out.last_hidden_state.shape[:2] == (2, model._get_feat_extract_output_lengths(8000))
    assert len(out.hidden_states) == n_states


def test_missing_folder_is_an_error_naming_it(tmp_path):
    path = tmp_path / "no" / "such" / "encoder"
    with pytest.raises(RlspoofError, match=re.escape(str(path))):
        load_encoder(EncoderConfig(name_or_path=str(path)))
    with pytest.raises(RlspoofError, match="does not exist"):
        load_encoder(EncoderConfig(name_or_path="./definitely_missing_encoder"))


def test_folder_without_config_json(tmp_path):
    _save_tiny(tmp_path / "enc")
    (tmp_path / "enc" / "config.json").unlink()
    with pytest.raises(RlspoofError, match="config.json"):
        load_encoder(EncoderConfig(name_or_path=str(tmp_path / "enc")))


def test_pickled_weights_refused_unless_allowed(tmp_path):
    folder = tmp_path / "enc"
    torch.manual_seed(0)
    model = ENCODER_FAMILIES["wav2vec2"][1](tiny_encoder_config())
    model.config.save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(RlspoofError, match=r"pytorch_model\.bin.*allow_pickle"):
        load_encoder(EncoderConfig(name_or_path=str(folder)))
    loaded, _, _ = load_encoder(EncoderConfig(name_or_path=str(folder), allow_pickle=True))
    key = "encoder.layers.0.attention.q_proj.weight"
    assert torch.equal(loaded.state_dict()[key], model.state_dict()[key])


def test_missing_or_misshapen_weights_are_errors_not_random_init(tmp_path):
    folder = tmp_path / "enc"
    _save_tiny(folder)
    weights = folder / "model.safetensors"
    state = load_file(weights)
    del state["encoder.layers.0.attention.q_proj.weight"]
    save_file(state, weights, metadata={"format": "pt"})
    with pytest.raises(RlspoofError, match="q_proj.weight") as err:
        load_encoder(EncoderConfig(name_or_path=str(folder)))
    assert str(folder) in str(err.value)

    state["encoder.layers.0.attention.q_proj.weight"] = torch.zeros(3, 3)
    save_file(state, weights, metadata={"format": "pt"})
    with pytest.raises(RlspoofError, match=re.escape(str(folder))):
        load_encoder(EncoderConfig(name_or_path=str(folder)))


def test_corrupt_weights_file_is_an_error_naming_the_folder(tmp_path):
    folder = tmp_path / "enc"
    _save_tiny(folder)
    (folder / "model.safetensors").write_bytes(b"not a safetensors file" * 4)
    with pytest.raises(RlspoofError, match=re.escape(str(folder))):
        load_encoder(EncoderConfig(name_or_path=str(folder)))


def test_masked_spec_embed_may_be_missing(tmp_path):
    folder = tmp_path / "enc"
    _save_tiny(folder)
    state = load_file(folder / "model.safetensors")
    del state["masked_spec_embed"]
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    model, _, _ = load_encoder(EncoderConfig(name_or_path=str(folder)))
    assert model.config.model_type == "wav2vec2"


def test_offline_hub_id_is_an_error_not_a_random_model(monkeypatch, tmp_path):
    import huggingface_hub.constants as hub_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub_cache"))
    with pytest.raises(RlspoofError, match="could not be found locally") as err:
        load_encoder(EncoderConfig(name_or_path="facebook/wav2vec2-base"))
    assert "facebook/wav2vec2-base" in str(err.value)


def test_exactly_one_source():
    with pytest.raises(RlspoofError, match="exactly one"):
        load_encoder(EncoderConfig(name_or_path="x/y", preset="tiny"))
    with pytest.raises(RlspoofError, match="exactly one"):
        load_encoder(EncoderConfig())


def test_unknown_preset_and_family_list_valid_names():
    with pytest.raises(RlspoofError, match="tiny.*base.*xlsr-300m"):
        load_encoder(EncoderConfig(preset="huge"))
    with pytest.raises(RlspoofError, match="wav2vec2, hubert, wavlm, data2vec-audio"):
        EncoderConfig(preset="tiny", family="conformer")
    with pytest.raises(RlspoofError, match="wav2vec2"):
        tiny_encoder_config("bert")


def test_invalid_layer_and_freeze_values():
    with pytest.raises(RlspoofError, match="weighted"):
        EncoderConfig(preset="tiny", layer="middle")
    with pytest.raises(RlspoofError, match="layers:N"):
        EncoderConfig(preset="tiny", freeze="cnn")
    assert EncoderConfig(preset="tiny", layer="-1").layer == -1
    with pytest.raises(RlspoofError, match="out of range"):
        load_encoder(EncoderConfig(preset="tiny", layer=3))
    with pytest.raises(RlspoofError, match="only 2 transformer layers"):
        load_encoder(EncoderConfig(preset="tiny", freeze="layers:3"))


# --------------------------------------------------------------------------- presets


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_preset_frame_rate_and_size(family):
    model, hidden, n_states = load_encoder(EncoderConfig(preset="tiny", family=family))
    frames_per_second = int(model._get_feat_extract_output_lengths(16000))
    assert 50 <= frames_per_second <= 200
    assert hidden == 64 and n_states == 3
    assert count_parameters(model)[1] < 1_000_000


def test_base_and_large_presets_without_instantiating():
    base = preset_config("base")
    with torch.device("meta"):  # shapes only: no memory, no init cost
        model = ENCODER_FAMILIES["wav2vec2"][1](base)
    total = sum(p.numel() for p in model.parameters())
    assert 90e6 < total < 100e6
    large = preset_config("xlsr-300m")
    assert (large.hidden_size, large.num_hidden_layers, large.num_attention_heads) == (1024, 24, 16)
    assert large.do_stable_layer_norm and large.feat_extract_norm == "layer"
    assert set(PRESETS) >= {"tiny", "base", "xlsr-300m"}


# --------------------------------------------------------------------------- adaptation


def _trainable(model):
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_freeze_options():
    model, _, _ = load_encoder(EncoderConfig(preset="tiny", freeze="none"))
    assert _trainable(model) == {n for n, _ in model.named_parameters()}

    model, _, _ = load_encoder(EncoderConfig(preset="tiny", freeze="feature_extractor"))
    for name, p in model.named_parameters():
        assert p.requires_grad == (not name.startswith("feature_extractor.")), name

    model, _, _ = load_encoder(EncoderConfig(preset="tiny", freeze="all"))
    assert count_parameters(model)[0] == 0

    model, _, _ = load_encoder(EncoderConfig(preset="tiny", freeze="layers:1"))
    for name, p in model.named_parameters():
        frozen = name.startswith(("feature_extractor.", "encoder.layers.0."))
        assert p.requires_grad == (not frozen), name


def test_lora_trains_only_adapters_and_head():
    full = build_policy(PolicyConfig(EncoderConfig(preset="tiny", freeze="none")))
    lora = build_policy(
        PolicyConfig(EncoderConfig(preset="tiny", lora={"r": 2, "lora_alpha": 4}), head_hidden=8)
    )
    trainable, total = count_parameters(lora)
    assert 0 < trainable < count_parameters(full)[0]
    assert total > count_parameters(full)[1]  # adapters are extra parameters
    for name in _trainable(lora):
        assert "lora_" in name or not name.startswith("encoder."), name
    assert any(".q_proj.lora_A." in n for n in _trainable(lora))
    assert any(n.startswith("head.") for n in _trainable(lora))


def test_lora_bad_settings_are_errors():
    with pytest.raises(RlspoofError, match="lora"):
        load_encoder(EncoderConfig(preset="tiny", lora={"rank": 4}))


def test_gradient_checkpointing_with_frozen_cnn_still_trains():
    policy = build_policy(PolicyConfig(EncoderConfig(preset="tiny", gradient_checkpointing=True)))
    assert policy.encoder.is_activation_checkpointing
    x, mask = _batch()
    policy(x, mask).sum().backward()
    grad = policy.encoder.encoder.layers[0].attention.q_proj.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    assert policy.encoder.feature_extractor.conv_layers[0].conv.weight.grad is None


def test_layer_selection():
    weighted = build_policy(PolicyConfig(EncoderConfig(preset="tiny", layer="weighted")))
    _, _, n_states = load_encoder(EncoderConfig(preset="tiny"))
    assert weighted.layer_weights.weights.numel() == n_states == 3
    last = build_policy(PolicyConfig(EncoderConfig(preset="tiny", layer="last")))
    assert last.layer_weights is None
    x, mask = _batch()
    hidden, frame_mask = weighted.eval().frames(x, mask)
    assert hidden.shape[0] == 2 and frame_mask.shape == hidden.shape[:2]


# --------------------------------------------------------------------------- heads


def test_layer_weights_start_as_plain_average():
    states = [torch.randn(2, 5, 4) for _ in range(3)]
    lw = LayerWeights(3)
    assert torch.allclose(lw(states), torch.stack(states).mean(0), atol=1e-6)
    with pytest.raises(ValueError, match="LayerDrop"):
        lw(states[:2])


@pytest.mark.parametrize("pool_cls", [MeanPooling, AttentiveStatsPooling])
def test_pooling_ignores_padding(pool_cls):
    torch.manual_seed(0)
    pool = pool_cls(8)
    seq = torch.randn(1, 6, 8)
    padded = torch.cat([seq, 100 * torch.randn(1, 4, 8)], dim=1)
    mask = torch.zeros(1, 10, dtype=torch.bool)
    mask[:, :6] = True
    alone = pool(seq, None)
    assert alone.shape == (1, pool.out_dim)
    assert torch.allclose(pool(padded, mask), alone, atol=1e-5)
    if pool_cls is MeanPooling:
        assert torch.allclose(alone, seq.mean(1))


def test_unknown_pooling_lists_valid():
    with pytest.raises(RlspoofError, match="attentive_stats, mean"):
        build_pooling("max", 4)


def test_frame_mask_matches_encoder():
    model, _, _ = load_encoder(EncoderConfig(preset="tiny"))
    x, mask = _batch()
    n_frames = int(model._get_feat_extract_output_lengths(8000))
    ours = frame_mask_from_samples(model, mask, n_frames)
    theirs = model._get_feature_vector_attention_mask(n_frames, mask)
    assert torch.equal(ours, theirs.bool())
    assert ours[0].all() and not ours[1].all()


# --------------------------------------------------------------------------- hostile folders


def _edit_config(folder, **changes):
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def _with_own_code(folder, tmp_path):
    """auto_map pointing at evil.py beside config.json; importing it leaves a marker."""
    marker = tmp_path / "code_ran"
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    _edit_config(folder, auto_map={"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"})
    return marker


def test_auto_map_is_not_followed_without_the_callers_trust_remote_code(tmp_path):
    folder = tmp_path / "enc"
    original = _save_tiny(folder)
    marker = _with_own_code(folder, tmp_path)
    model, _, _ = load_encoder(EncoderConfig(name_or_path=str(folder)))
    assert type(model) is ENCODER_FAMILIES["wav2vec2"][1] and not marker.exists()
    key = "encoder.layers.0.attention.q_proj.weight"
    assert torch.equal(model.state_dict()[key], original.state_dict()[key])


@pytest.mark.parametrize("trust", [False, True])
def test_model_type_must_be_a_supported_audio_family(tmp_path, trust):
    folder = tmp_path / "enc"
    _save_tiny(folder)
    marker = _with_own_code(folder, tmp_path)
    _edit_config(folder, model_type="bert")
    with pytest.raises(RlspoofError, match=r"model_type 'bert' is not an audio encoder") as err:
        load_encoder(EncoderConfig(name_or_path=str(folder), trust_remote_code=trust))
    assert str(folder) in str(err.value)
    assert "wav2vec2, hubert, wavlm, data2vec-audio" in str(err.value)
    assert not marker.exists()


def test_a_config_declaring_far_more_than_its_weights_is_refused(tmp_path):
    folder = tmp_path / "enc"
    _save_tiny(folder)
    _edit_config(folder, hidden_size=65536, num_hidden_layers=48, intermediate_size=262144)
    with pytest.raises(RlspoofError, match="refusing to allocate") as err:
        load_encoder(EncoderConfig(name_or_path=str(folder)))  # would be ~9,000 GiB
    message = str(err.value)
    assert str(folder) in message and str(folder / "model.safetensors") in message
    assert "hidden_size=65536, num_hidden_layers=48" in message
    assert re.search(r"holds only 14\d,\d{3}", message)


def test_more_layers_than_tensors_is_refused_before_building_them(tmp_path):
    folder = tmp_path / "enc"
    _save_tiny(folder)
    _edit_config(folder, num_hidden_layers=10**8)  # a million empty modules even on meta
    with pytest.raises(RlspoofError, match=r"num_hidden_layers=100000000.*holds only \d+ tensors"):
        load_encoder(EncoderConfig(name_or_path=str(folder)))


def test_non_finite_encoder_weights_are_refused(tmp_path):
    folder = tmp_path / "enc"
    _save_tiny(folder)
    state = load_file(folder / "model.safetensors")
    state["encoder.layers.1.feed_forward.output_dense.weight"][3, 3] = float("nan")
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(RlspoofError, match="NaN or Inf") as err:
        load_encoder(EncoderConfig(name_or_path=str(folder)))
    assert str(folder / "model.safetensors") in str(err.value)
    assert "encoder.layers.1.feed_forward.output_dense.weight" in str(err.value)


def test_a_config_json_that_is_not_a_mapping_is_an_error(tmp_path):
    folder = tmp_path / "enc"
    _save_tiny(folder)
    (folder / "config.json").write_text("[1, 2, 3]")
    with pytest.raises(RlspoofError, match=re.escape(str(folder))):
        load_encoder(EncoderConfig(name_or_path=str(folder)))


def test_a_frozen_feature_extractor_is_not_back_propagated_through():
    """Freezing the CNN also clears transformers' own flag, which otherwise makes the waveform
    require gradients so that every backward runs through the frozen convolutions."""
    import torch

    from rlspoof.models.encoders import EncoderConfig, apply_freeze, load_encoder

    model, _, _ = load_encoder(EncoderConfig(preset="tiny", freeze="feature_extractor"))
    model.train()
    features = model.feature_extractor(torch.randn(1, 4000))
    assert not features.requires_grad
    apply_freeze(model, "none")
    assert model.feature_extractor(torch.randn(1, 4000)).requires_grad
