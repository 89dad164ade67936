"""A torch ``Dataset`` over a manifest, its batch collator, and a pre-flight check of the audio.

Training crops every clip to a fixed length so batches are dense and cheap; evaluation can keep
whole clips (the collator pads them and returns an attention mask so padding is ignored).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from rlspoof.data.audio import DEFAULT_SAMPLE_RATE, crop_or_pad, load_audio
from rlspoof.data.augment import Augmenter
from rlspoof.data.manifest import LABEL2ID, Manifest, ManifestRow
from rlspoof.errors import AudioError, DataError

ProgressFn = Callable[[int, int], None]


def _where(manifest: Manifest, index: int, row: ManifestRow) -> str:
    """Where a row lives, so a bad file in a 100k-row manifest can be traced to its line."""
    origin = manifest.origin if manifest.origin is not None else "<in memory>"
    return f"manifest {origin}, row {index + 1}: utt_id {row.utt_id}"


class SpoofDataset(Dataset):
    """Waveforms and labels (0 bonafide, 1 spoof) for the rows of a manifest.

    Train mode takes a random ``crop_seconds`` window (repeat-padding short clips, so the
    detector gets no length or zero-padding cue) and then applies the augmenter. Eval mode is
    deterministic: the first ``crop_seconds`` or, with ``crop_seconds=None``, the whole clip.

    Randomness comes from a generator seeded with ``(seed, epoch, index)`` per item rather than
    a shared stream: the result then does not depend on which DataLoader worker loads an item
    or in what order, so runs are reproducible across ``num_workers`` settings. Call
    ``set_epoch`` each epoch to get fresh crops (with ``persistent_workers=True`` the workers
    keep their own copy of the dataset, so the new epoch would not reach them).
    """

    def __init__(
        self,
        manifest: Manifest,
        sample_rate: int = DEFAULT_SAMPLE_RATE,
        crop_seconds: float | None = 4.0,
        train: bool = True,
        augmenter: Augmenter | None = None,
        seed: int = 0,
    ):
        if crop_seconds is not None and not 0 < crop_seconds < float("inf"):
            raise ValueError(f"crop_seconds must be positive or None, got {crop_seconds}")
        if train and crop_seconds is None:
            raise ValueError("train mode needs crop_seconds (fixed-length batches)")
        if train and len(manifest) == 0:  # a sampler of 0 items fails later with a traceback
            raise DataError("no rows to train on", manifest.origin)
        self.manifest = manifest
        self.sample_rate = int(sample_rate)
        self.crop_seconds = crop_seconds
        self.train = train
        self.augmenter = augmenter
        self.seed = int(seed)
        self.epoch = 0

    @property
    def crop_length(self) -> int | None:
        """Crop length in samples, or None for full-length clips."""
        if self.crop_seconds is None:
            return None
        return max(1, int(round(self.crop_seconds * self.sample_rate)))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        """The generator for one item in the current epoch (see the class docstring)."""
        return np.random.default_rng([self.seed, self.epoch, index])

    def __len__(self) -> int:
        return len(self.manifest)

    def load(self, index: int) -> np.ndarray:
        """The row's waveform; an ``AudioError`` also names the manifest and row."""
        row = self.manifest[index]
        try:
            return load_audio(self.manifest.audio_path(row), self.sample_rate)
        except AudioError as exc:
            raise AudioError(
                exc.path, f"{exc.reason} ({_where(self.manifest, index, row)})"
            ) from None

    def __getitem__(self, index: int) -> dict:
        if index < 0:
            index += len(self)
        row = self.manifest[index]
        wave = self.load(index)
        length = self.crop_length
        if self.train:
            rng = self.rng(index)
            wave = crop_or_pad(wave, length, rng=rng, mode="random")
            if self.augmenter is not None and len(self.augmenter):
                wave = self.augmenter(wave, rng)
                if wave.shape[-1] != length:  # keep the fixed-length promise
                    wave = crop_or_pad(wave, length, mode="start")
        elif length is not None:
            wave = crop_or_pad(wave, length, mode="start")
        return {
            "input_values": torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)),
            "labels": LABEL2ID[row.label],
            "utt_id": row.utt_id,
            "attack": row.attack,
        }


class AudioCollator:
    """Pads ``input_values`` with trailing zeros to the batch's longest item.

    ``attention_mask`` marks real samples with 1 so models (and pooling) ignore the padding;
    ``pad_to_multiple_of`` rounds the padded length up, which keeps tensor shapes few (useful
    for cuDNN autotuning and compiled models).
    """

    def __init__(self, pad_to_multiple_of: int | None = None):
        if pad_to_multiple_of is not None and pad_to_multiple_of <= 0:
            raise ValueError(f"pad_to_multiple_of must be positive, got {pad_to_multiple_of}")
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, batch: list[dict]) -> dict:
        if not batch:
            raise ValueError("cannot collate an empty batch")
        waves = [torch.as_tensor(item["input_values"], dtype=torch.float32) for item in batch]
        lengths = [int(w.shape[-1]) for w in waves]
        longest = max(lengths)
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            longest = -(-longest // m) * m
        values = torch.zeros(len(batch), longest, dtype=torch.float32)
        mask = torch.zeros(len(batch), longest, dtype=torch.long)
        for i, (w, n) in enumerate(zip(waves, lengths, strict=True)):
            values[i, :n] = w
            mask[i, :n] = 1
        out = {
            "input_values": values,
            "attention_mask": mask,
            "labels": torch.tensor([int(item["labels"]) for item in batch], dtype=torch.long),
            "utt_id": [item["utt_id"] for item in batch],
            "attack": [item["attack"] for item in batch],
        }
        if "sample_labels" in batch[0]:  # mix-frame items: one label per sample, zero-padded
            out["sample_labels"] = torch.zeros(len(batch), longest, dtype=torch.float32)
            for i, (item, n) in enumerate(zip(batch, lengths, strict=True)):
                out["sample_labels"][i, :n] = torch.as_tensor(item["sample_labels"])
        return out


def collate_audio(batch: list[dict]) -> dict:
    """``AudioCollator()`` as a plain function (picklable for DataLoader workers)."""
    return AudioCollator()(batch)


def validate_manifest(
    manifest: Manifest,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    skip_bad: bool = False,
    progress: ProgressFn | None = None,
) -> tuple[Manifest, list[tuple[str, str, str]]]:
    """Decode every file once before training, so a bad file fails now, not hours into a run.

    Returns the usable rows (same root and origin) and ``(utt_id, path, reason)`` for each
    skipped one. With ``skip_bad=False`` the first bad file raises its ``AudioError`` (naming
    the file and the manifest row). ``progress(done, total)`` is called after each file.
    """
    good: list[ManifestRow] = []
    skipped: list[tuple[str, str, str]] = []
    total = len(manifest)
    for i, row in enumerate(manifest):
        path = manifest.audio_path(row)
        try:
            load_audio(path, sample_rate)
        except AudioError as exc:
            if not skip_bad:
                raise AudioError(exc.path, f"{exc.reason} ({_where(manifest, i, row)})") from None
            skipped.append((row.utt_id, str(path), exc.reason))
        else:
            good.append(row)
        if progress is not None:
            progress(i + 1, total)
    return Manifest(good, manifest.root, manifest.origin), skipped


def write_skipped(skipped: list[tuple[str, str, str]], path: str | Path) -> Path:
    """Write the skipped files as CSV (``utt_id,path,reason``) for the user to inspect."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["utt_id", "path", "reason"])
        writer.writerows(skipped)
    return path


__all__ = [
    "AudioCollator",
    "SpoofDataset",
    "collate_audio",
    "validate_manifest",
    "write_skipped",
]
