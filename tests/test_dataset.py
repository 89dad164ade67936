"""Tests for rlspoof.data.dataset: cropping, labels, collation, reproducibility, bad files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from rlspoof.data.audio import write_audio
from rlspoof.data.augment import Augmenter
from rlspoof.data.dataset import (
    AudioCollator,
    SpoofDataset,
    collate_audio,
    validate_manifest,
    write_skipped,
)
from rlspoof.data.manifest import Manifest, ManifestRow, read_manifest, write_manifest
from rlspoof.errors import AudioError, DataError

SR = 16_000
CROP = 0.5  # seconds
LENGTHS = {"b1": 3000, "s1": 12000, "b2": 20000, "s2": 8000}  # samples
LABELS = {"b1": "bonafide", "s1": "spoof", "b2": "bona-fide", "s2": "fake"}


@pytest.fixture
def manifest(tmp_path: Path) -> Manifest:
    rng = np.random.default_rng(0)
    rows = []
    for utt, n in LENGTHS.items():
        # a ramp plus noise: every sample distinct, so crops at different offsets differ
        wave = np.linspace(-0.5, 0.5, n) + 0.01 * rng.standard_normal(n)
        write_audio(tmp_path / "wav" / f"{utt}.wav", wave.astype(np.float32), SR)
        rows.append(ManifestRow(utt, f"wav/{utt}.wav", LABELS[utt],
                                attack="-" if utt.startswith("b") else "A07"))
    return read_manifest(write_manifest(rows, tmp_path / "m.csv"))


def _with_bad_row(manifest: Manifest, tmp_path: Path) -> Manifest:
    (tmp_path / "wav" / "bad.wav").write_bytes(b"RIFF not really a wave file")
    rows = list(manifest) + [ManifestRow("bad", "wav/bad.wav", "spoof")]
    return read_manifest(write_manifest(rows, tmp_path / "with_bad.csv"))


def test_train_mode_fixed_length(manifest: Manifest):
    ds = SpoofDataset(manifest, SR, crop_seconds=CROP, train=True)
    assert len(ds) == 4
    for i in range(len(ds)):
        item = ds[i]
        assert item["input_values"].dtype == torch.float32
        assert item["input_values"].shape == (int(CROP * SR),)


def test_short_clip_is_repeat_padded(manifest: Manifest):
    item = SpoofDataset(manifest, SR, crop_seconds=CROP, train=False)[0]  # b1: 3000 samples
    x = item["input_values"].numpy()
    np.testing.assert_array_equal(x[:3000], x[3000:6000])


def test_eval_mode_full_and_cropped(manifest: Manifest):
    full = SpoofDataset(manifest, SR, crop_seconds=None, train=False)
    assert [full[i]["input_values"].shape[0] for i in range(4)] == list(LENGTHS.values())
    cropped = SpoofDataset(manifest, SR, crop_seconds=CROP, train=False)
    a = cropped[2]["input_values"]
    assert a.shape == (8000,)
    torch.testing.assert_close(a, full[2]["input_values"][:8000])  # start crop, deterministic


def test_labels_and_metadata(manifest: Manifest):
    ds = SpoofDataset(manifest, SR, crop_seconds=CROP, train=False)
    items = [ds[i] for i in range(4)]
    assert [it["labels"] for it in items] == [0, 1, 0, 1]
    assert [it["utt_id"] for it in items] == list(LENGTHS)
    assert [it["attack"] for it in items] == ["-", "A07", "-", "A07"]


def test_collate_pads_and_masks(manifest: Manifest):
    ds = SpoofDataset(manifest, SR, crop_seconds=None, train=False)
    batch = collate_audio([ds[i] for i in range(4)])
    lengths = list(LENGTHS.values())
    assert batch["input_values"].shape == (4, max(lengths))
    assert batch["attention_mask"].dtype == torch.long
    assert batch["attention_mask"].sum(dim=1).tolist() == lengths
    assert batch["labels"].dtype == torch.long and batch["labels"].tolist() == [0, 1, 0, 1]
    assert batch["utt_id"] == list(LENGTHS) and batch["attack"][1] == "A07"
    for i, n in enumerate(lengths):
        torch.testing.assert_close(batch["input_values"][i, :n], ds[i]["input_values"])
        assert torch.all(batch["input_values"][i, n:] == 0)
        assert torch.all(batch["attention_mask"][i, n:] == 0)


def test_collator_pad_to_multiple_of():
    items = [{"input_values": torch.ones(n), "labels": 1, "utt_id": str(n), "attack": "-"}
             for n in (5, 9)]
    batch = AudioCollator(pad_to_multiple_of=8)(items)
    assert batch["input_values"].shape == (2, 16)
    assert batch["attention_mask"].sum(dim=1).tolist() == [5, 9]
    with pytest.raises(ValueError):
        AudioCollator(pad_to_multiple_of=0)


def test_crops_reproducible_per_seed_and_epoch(manifest: Manifest):
    def crop(seed: int, epoch: int) -> torch.Tensor:
        ds = SpoofDataset(manifest, SR, crop_seconds=CROP, train=True, seed=seed)
        ds.set_epoch(epoch)
        return ds[2]["input_values"]  # b2: 20000 samples, so the crop offset is random

    torch.testing.assert_close(crop(0, 0), crop(0, 0))
    assert not torch.equal(crop(0, 0), crop(0, 1))
    assert not torch.equal(crop(0, 0), crop(1, 0))


def test_augmenter_applied_in_train_only(manifest: Manifest):
    aug = Augmenter([{"name": "noise", "snr_db": 5.0}], sample_rate=SR)
    plain = SpoofDataset(manifest, SR, crop_seconds=CROP, train=True)
    noisy = SpoofDataset(manifest, SR, crop_seconds=CROP, train=True, augmenter=aug)
    a, b = plain[1]["input_values"], noisy[1]["input_values"]
    assert a.shape == b.shape and not torch.allclose(a, b)
    torch.testing.assert_close(noisy[1]["input_values"], b)  # same seed/epoch -> same noise
    ev = SpoofDataset(manifest, SR, crop_seconds=CROP, train=False, augmenter=aug)
    ev_plain = SpoofDataset(manifest, SR, crop_seconds=CROP, train=False)
    torch.testing.assert_close(ev[1]["input_values"], ev_plain[1]["input_values"])


def test_dataloader(manifest: Manifest):
    ds = SpoofDataset(manifest, SR, crop_seconds=CROP, train=True)
    loader = DataLoader(ds, batch_size=3, num_workers=0, collate_fn=collate_audio)
    batches = list(loader)
    assert [b["input_values"].shape[0] for b in batches] == [3, 1]
    assert batches[0]["input_values"].shape[1] == int(CROP * SR)
    assert torch.all(batches[0]["attention_mask"] == 1)


def test_an_empty_training_manifest_and_a_non_finite_crop_are_refused(manifest: Manifest):
    with pytest.raises(DataError, match=r"^x\.csv: no rows to train on$"):
        SpoofDataset(Manifest([], origin="x.csv"), SR, crop_seconds=CROP, train=True)
    assert len(SpoofDataset(Manifest([]), SR, crop_seconds=None, train=False)) == 0  # scoring nothing is fine
    for crop in (float("nan"), float("inf"), 0.0):
        with pytest.raises(ValueError, match="crop_seconds must be positive"):
            SpoofDataset(manifest, SR, crop_seconds=crop)


def test_bad_file_names_file_and_manifest_row(manifest: Manifest, tmp_path: Path):
    bad = _with_bad_row(manifest, tmp_path)
    ds = SpoofDataset(bad, SR, crop_seconds=CROP, train=True)
    ds[0]  # good rows still load
    with pytest.raises(AudioError) as info:
        ds[4]
    msg = str(info.value)
    assert "bad.wav" in msg and "with_bad.csv" in msg and "row 5" in msg and "utt_id bad" in msg
    assert info.value.path.endswith("bad.wav")


def test_validate_manifest_skip_bad(manifest: Manifest, tmp_path: Path):
    bad = _with_bad_row(manifest, tmp_path)
    calls = []
    good, skipped = validate_manifest(bad, SR, skip_bad=True,
                                      progress=lambda done, total: calls.append((done, total)))
    assert [r.utt_id for r in good] == list(LENGTHS)
    assert good.root == bad.root and good.origin == bad.origin
    assert len(skipped) == 1
    utt, path, reason = skipped[0]
    assert utt == "bad" and path.endswith("bad.wav") and reason
    assert calls[-1] == (5, 5) and len(calls) == 5

    with pytest.raises(AudioError, match="bad.wav"):
        validate_manifest(bad, SR, skip_bad=False)
    assert validate_manifest(manifest, SR)[1] == []

    out = write_skipped(skipped, tmp_path / "out" / "skipped.csv")
    with out.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["utt_id", "path", "reason"]
    assert rows[1] == list(skipped[0])
