"""Mix-frame perturbation: spans, per-sample labels, lengths, frame alignment and the dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlspoof.data.audio import write_audio
from rlspoof.data.dataset import AudioCollator
from rlspoof.data.manifest import Manifest, ManifestRow
from rlspoof.data.mixframe import MixFrameDataset, draw_spans, frame_targets, mix_frames, span_mask
from rlspoof.errors import RlspoofError

SR = 16_000


@pytest.mark.parametrize("seed", range(20))
def test_spans_are_disjoint_sorted_inside_the_clip_and_of_the_asked_length(seed):
    rng = np.random.default_rng(seed)
    spans = draw_spans(8000, rng, (400, 1600), max_spans=3)
    assert 1 <= len(spans) <= 3
    for (_, b), (c, _) in zip(spans, spans[1:], strict=False):
        assert b <= c
    for start, end in spans:
        assert 0 <= start < end <= 8000 and 400 <= end - start <= 1600


def test_splice_labels_line_up_with_the_spliced_samples_and_keep_the_length():
    host, donor = np.full(4000, 0.1, np.float32), np.full(4000, -0.1, np.float32)
    spans = [(500, 1500), (3000, 3500)]
    wave, labels = mix_frames(host, donor, host_label=0, donor_label=1, spans=spans, crossfade=0)
    assert wave.shape == host.shape and labels.shape == host.shape and wave.dtype == np.float32
    inside = np.zeros(4000, bool)
    for a, b in spans:
        inside[a:b] = True
    assert np.all(labels[inside] == 1) and np.all(labels[~inside] == 0)
    assert np.allclose(wave[inside], -0.1) and np.allclose(wave[~inside], 0.1)


def test_crossfade_ramps_inside_the_span_and_blend_labels_spoof_if_either_is():
    mask = span_mask(100, [(20, 60)], crossfade=5)
    assert mask[19] == 0 and mask[20] > 0 and mask[24] < 1 and np.all(mask[25:55] == 1) and mask[60] == 0
    host, donor = np.ones(100, np.float32), np.zeros(100, np.float32) + 3.0
    wave, labels = mix_frames(host, donor, 1, 0, [(20, 60)], mode="blend", blend_weight=0.25, crossfade=0)
    assert np.all(labels == 1)  # spoof host, bonafide donor: every sample still has spoof content
    # loudness matched: the donor is scaled to the host's RMS (1.0) before blending
    assert np.allclose(wave[30], 1.0) and np.allclose(wave[0], 1.0)


def test_mix_frames_rejects_bad_input():
    with pytest.raises(RlspoofError, match="same length"):
        mix_frames(np.ones(10), np.ones(11), 0, 1, [(0, 5)])
    with pytest.raises(RlspoofError, match="splice, blend"):
        mix_frames(np.ones(10), np.ones(10), 0, 1, [(0, 5)], mode="paste")
    with pytest.raises(RlspoofError, match="min <= max"):
        draw_spans(100, np.random.default_rng(0), (50, 10), 1)


def test_frame_targets_follow_the_spans_at_the_encoder_frame_rate():
    labels = torch.zeros(1, 3200)
    labels[0, 800:1600] = 1  # frames 5..9 at 160 samples per frame
    targets = frame_targets(labels, 20)
    assert targets.shape == (1, 20)
    assert torch.equal((targets > 0.5).nonzero()[:, 1], torch.arange(5, 10))
    # with the encoder's geometry, frame t sees samples [t * stride, t * stride + field)
    exact = frame_targets(labels, 18, geometry=(400, 160))
    assert exact.shape == (1, 18)
    for t in range(18):
        assert exact[0, t].item() == pytest.approx(labels[0, 160 * t:160 * t + 400].mean().item())
    half = torch.zeros(1, 320)
    half[0, 80:240] = 1
    assert frame_targets(half, 2).tolist() == [[0.5, 0.5]]


@pytest.fixture
def two_class_manifest(tmp_path) -> Manifest:
    rows = []
    rng = np.random.default_rng(0)
    for i in range(6):
        label = "bonafide" if i < 3 else "spoof"
        write_audio(tmp_path / f"{i}.wav", (0.1 * rng.standard_normal(SR)).astype(np.float32), SR)
        rows.append(ManifestRow(f"u{i}", f"{i}.wav", label, attack="-" if i < 3 else "A01"))
    return Manifest(rows, root=tmp_path)


def test_dataset_mixes_with_the_given_probability_and_collates_sample_labels(two_class_manifest):
    always = MixFrameDataset(two_class_manifest, crop_seconds=0.5, prob=1.0, span_seconds=(0.05, 0.1), seed=1)
    for i in range(len(always)):
        item = always[i]
        labels = item["sample_labels"].numpy()
        assert labels.shape == item["input_values"].shape == (8000,)
        assert 0 < labels.mean() < 1  # both classes present in every clip
        assert item["labels"] == 1 and item["attack"] == "A01"
    never = MixFrameDataset(two_class_manifest, crop_seconds=0.5, prob=0.0, seed=1)
    assert [float(never[i]["sample_labels"].mean()) for i in range(6)] == [0, 0, 0, 1, 1, 1]
    batch = AudioCollator()([always[0], always[4]])
    assert batch["sample_labels"].shape == (2, 8000)
    # reproducible per (seed, epoch, index); a new epoch draws new spans
    again = MixFrameDataset(two_class_manifest, crop_seconds=0.5, prob=1.0, span_seconds=(0.05, 0.1), seed=1)
    assert torch.equal(again[2]["sample_labels"], always[2]["sample_labels"])
    again.set_epoch(1)
    assert not torch.equal(again[2]["sample_labels"], always[2]["sample_labels"])
