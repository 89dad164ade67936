"""The log-spectrogram 2D-conv front end: frame geometry the transformer's masks rely on, save and
load through every rlspoof loader, wav2vec 2.0 pre-training on top of it, freezing, bad configs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from rlspoof.errors import RlspoofError
from rlspoof.models import EncoderConfig, PolicyConfig, SpoofPolicy, build_policy
from rlspoof.models.encoders import load_encoder, preset_config
from rlspoof.models.frontends import FRONT_END_KEY, LogSpecConv2d, build_front_end

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _encoder(**overrides):
    return load_encoder(EncoderConfig(**{"preset": "tiny-logspec", "freeze": "none", **overrides}))[0]


@pytest.mark.parametrize("samples", [992, 1000, 1151, 1152, 16000, 32123])
def test_frames_match_the_length_arithmetic_of_the_config(samples):
    """Attention masks and SpecAugment spans come from ``_get_feat_extract_output_lengths``
    (the config's conv geometry): the front end must produce exactly that many frames."""
    torch.manual_seed(0)
    encoder = _encoder()
    frames = encoder.feature_extractor(torch.randn(2, samples))
    expected = int(encoder._get_feat_extract_output_lengths(torch.tensor(samples)))
    assert frames.shape == (2, encoder.config.conv_dim[-1], expected)
    assert isinstance(encoder.feature_extractor, LogSpecConv2d)


def test_frames_are_gain_aware_and_local_in_time():
    """A frame depends on its neighbourhood only (no per-utterance statistics): changing the
    last second leaves the first second's frames as they were, except those whose 3x3
    convolutions and pooling reach across."""
    torch.manual_seed(0)
    front = LogSpecConv2d()
    wave = torch.randn(1, 32000) * 0.1
    changed = wave.clone()
    changed[0, 16000:] *= 3.0
    a, b = front(wave), front(changed)
    first = int((16000 - 512) / 160 + 1) // 4 - 2  # frames wholly before the change
    torch.testing.assert_close(a[..., :first], b[..., :first])
    assert not torch.allclose(a[..., -5:], b[..., -5:])  # and louder speech reads differently


@pytest.mark.parametrize("frequency", ["flatten", "pool"])
def test_a_clip_scores_the_same_alone_and_in_a_padded_batch(frequency):
    """Batch padding must not reach a clip's score: lengths that do not divide the hop or the
    pools, batched with longer clips, score as they do one at a time (before the front end
    knew the valid lengths, batch sizes 1 and 64 differed by up to 0.95 log-odds)."""
    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(EncoderConfig(preset="tiny-logspec", freeze="none"))).eval()
    policy.encoder.feature_extractor = LogSpecConv2d(frequency=frequency)  # same geometry
    lengths = (16000, 9123, 12345, 4001, 23999)
    waves = [np.random.default_rng(n).normal(0, 0.1, n).astype(np.float32) for n in lengths]
    alone = np.array([policy.score([w])[0] for w in waves])
    np.testing.assert_allclose(policy.score(waves, batch_size=len(waves)), alone, atol=1e-5)
    assert policy.encoder.feature_extractor.valid_samples is None  # handed over for one call


def test_a_policy_round_trips_through_save_and_load_with_its_front_end(tmp_path):
    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(EncoderConfig(preset="tiny-logspec", freeze="none"), crop_seconds=1.0))
    waves = [np.random.default_rng(i).normal(0, 0.1, n).astype(np.float32) for i, n in enumerate((8000, 16000, 700))]
    folder = policy.save_pretrained(tmp_path / "policy")
    config = json.loads((folder / "config.json").read_text())
    assert config["encoder"]["config"][FRONT_END_KEY] == {"type": "logspec2d", "channels": 16,
                                                          "frequency": "flatten"}
    loaded = SpoofPolicy.from_pretrained(folder)
    assert isinstance(loaded.encoder.feature_extractor, LogSpecConv2d)
    np.testing.assert_allclose(loaded.score(waves), policy.score(waves), atol=1e-6)


def test_an_encoder_folder_loads_with_its_front_end_and_refuses_missing_weights(tmp_path):
    torch.manual_seed(0)
    encoder = _encoder()
    encoder.save_pretrained(tmp_path / "enc")
    loaded = load_encoder(EncoderConfig(name_or_path=str(tmp_path / "enc"), freeze="none"))[0]
    x = torch.randn(1, 16000)
    torch.testing.assert_close(loaded.eval()(x).last_hidden_state, encoder.eval()(x).last_hidden_state)

    weights = load_file(str(tmp_path / "enc" / "model.safetensors"))
    front = [k for k in weights if k.startswith("feature_extractor.")]
    assert front and all(k.startswith(("feature_extractor.conv.", "feature_extractor.project."))
                         for k in front)
    save_file({k: v for k, v in weights.items() if k not in front}, str(tmp_path / "enc" / "model.safetensors"))
    with pytest.raises(RlspoofError, match=r"weights missing from the checkpoint: feature_extractor\.conv\.0"):
        load_encoder(EncoderConfig(name_or_path=str(tmp_path / "enc")))


def test_a_config_whose_geometry_disagrees_with_its_front_end_is_refused():
    config = preset_config("tiny-logspec", "wav2vec2")
    config.conv_stride = (160, 2)
    with pytest.raises(RlspoofError, match=r"logspec2d needs conv_stride=\[160, 4\], the config has \[160, 2\]"):
        build_front_end(config)
    config = preset_config("tiny-logspec", "wav2vec2")
    setattr(config, FRONT_END_KEY, {"type": "mel"})
    with pytest.raises(RlspoofError, match="type one of logspec2d"):
        build_front_end(config)


def test_freezing_the_feature_extractor_freezes_the_front_end():
    encoder = _encoder(freeze="feature_extractor")
    assert not any(p.requires_grad for p in encoder.feature_extractor.parameters())
    assert encoder.feature_extractor._requires_grad is False
    encoder = _encoder()
    out = encoder(torch.randn(2, 8000)).last_hidden_state.sum()
    out.backward()
    assert encoder.feature_extractor.conv[0].weight.grad.abs().sum() > 0


def test_frequency_flatten_keeps_where_a_tone_sits_and_pool_does_not():
    """A pure tone moved from 1 to 5 kHz: pooled over frequency, the frames barely change (the
    convolutions are shared across frequency); flattened, they change as much as they vary."""
    torch.manual_seed(0)
    t = torch.arange(16000) / 16000
    low, high = (0.1 * torch.sin(2 * torch.pi * f * t)[None] for f in (1000.0, 5000.0))
    moved = {}
    for frequency in ("pool", "flatten"):
        front = LogSpecConv2d(frequency=frequency)
        with torch.no_grad():
            a, b = front(low)[..., 2:-2], front(high)[..., 2:-2]  # frames clear of the edges
        moved[frequency] = float((a - b).norm() / a.norm())
    assert moved["flatten"] > 0.2 and moved["pool"] < moved["flatten"] / 3, moved
    with pytest.raises(ValueError, match="pool or flatten"):
        LogSpecConv2d(frequency="mean")


@pytest.mark.parametrize("frequency", ["pool", "flatten"])
def test_wav2vec2_pretraining_runs_on_the_front_end_and_saves_a_loadable_encoder(tmp_path, frequency):
    from transformers.models.wav2vec2.modeling_wav2vec2 import (
        _compute_mask_indices,
        _sample_negative_indices,
    )

    from rlspoof.trainers.pretrain import build_pretraining_model, save_encoder
    from rlspoof.trainers.pretrain_config import PretrainConfig

    cfg = PretrainConfig(output_dir=str(tmp_path / "pt"), encoder_preset="tiny-logspec", use_cpu=True,
                         report_to="none", encoder_overrides={
                             FRONT_END_KEY: {"type": "logspec2d", "channels": 16, "frequency": frequency}})
    model = build_pretraining_model(cfg)
    assert model.wav2vec2.feature_extractor.frequency == frequency
    frames = int(model._get_feat_extract_output_lengths(torch.tensor(32000)))
    mask = _compute_mask_indices((2, frames), cfg.mask_time_prob, cfg.mask_time_length, min_masks=2)
    negatives = _sample_negative_indices((2, frames), cfg.num_negatives, mask)
    out = model(0.1 * torch.randn(2, 32000), mask_time_indices=torch.tensor(mask),
                sampled_negative_indices=torch.tensor(negatives))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    # The quantiser's softmax must not saturate (flattened maps fed to it raw gave NaN gradients)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert all(torch.isfinite(g).all() for g in grads)
    assert model.wav2vec2.feature_extractor.conv[0].weight.grad.abs().sum() > 0
    folder = save_encoder(model, tmp_path / "encoder")
    loaded = load_encoder(EncoderConfig(name_or_path=str(folder)))[0]
    torch.testing.assert_close(loaded.feature_extractor.conv[0].weight, model.wav2vec2.feature_extractor.conv[0].weight)


def test_input_normalisation_is_per_clip_and_ignores_padding():
    """As transformers' Wav2Vec2FeatureExtractor(do_normalize=True): each clip to zero mean and
    unit variance over its own samples; padding stays zero and changes nothing."""
    from transformers import Wav2Vec2FeatureExtractor

    from rlspoof.models.frontends import normalize_waveforms

    rng = np.random.default_rng(0)
    clips = [rng.normal(0.3, 0.05, 1000).astype(np.float32), rng.normal(-1, 2, 700).astype(np.float32)]
    values = torch.zeros(2, 1000)
    mask = torch.zeros(2, 1000, dtype=torch.long)
    for row, clip in enumerate(clips):
        values[row, :len(clip)] = torch.from_numpy(clip)
        mask[row, :len(clip)] = 1
    out = normalize_waveforms(values, mask)
    reference = Wav2Vec2FeatureExtractor(do_normalize=True)
    for row, clip in enumerate(clips):
        expected = reference(clip, sampling_rate=16000, return_tensors="np").input_values[0]
        np.testing.assert_allclose(out[row, :len(clip)].numpy(), expected, atol=1e-5)
    assert torch.all(out[1, 700:] == 0)
    np.testing.assert_allclose(normalize_waveforms(values[:1], None).numpy(), out[:1].numpy(), atol=1e-6)
