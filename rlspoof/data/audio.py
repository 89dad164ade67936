"""Reading, validating, resampling and cropping audio.

soundfile (libsndfile) reads wav/flac/ogg; scipy's polyphase resampler converts rates. We do
not depend on torchaudio: its current wheels are CUDA builds tied to one torch version and its
I/O now needs torchcodec. Every failure names the file, because a bad file in a corpus of
100k is otherwise impossible to find.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from rlspoof.errors import AudioError

DEFAULT_SAMPLE_RATE = 16_000
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif")
#: Peak amplitude at or below which a file counts as digital silence (about -96 dBFS, 16 bit LSB).
SILENCE_PEAK = 1.0 / 32768
#: Sample rates outside this range come from a corrupt header (libsndfile accepts any positive
#: rate); resampling from one such as 2 130 722 432 Hz would need a filter of hundreds of GB.
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 768_000


@dataclass(frozen=True)
class AudioInfo:
    path: str
    sample_rate: int
    frames: int
    channels: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def audio_info(path: str | Path) -> AudioInfo:
    """Header facts without decoding; raises ``AudioError`` for a missing or unreadable file,
    one that is not a regular file (opening a FIFO or device blocks or never ends), or one
    whose header gives a sample rate outside ``MIN_SAMPLE_RATE..MAX_SAMPLE_RATE``."""
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "file does not exist")
    if not path.is_file():
        raise AudioError(path, "not a regular file (folder, FIFO, socket or device)")
    try:
        info = sf.info(str(path))
    except Exception as exc:  # libsndfile raises a bare RuntimeError/LibsndfileError
        raise AudioError(path, f"unreadable audio ({_short(exc)})") from None
    if not MIN_SAMPLE_RATE <= info.samplerate <= MAX_SAMPLE_RATE:
        raise AudioError(path, f"implausible sample rate {info.samplerate} Hz (corrupt header?; "
                               f"expected {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz)")
    return AudioInfo(str(path), int(info.samplerate), int(info.frames), int(info.channels))


def resample(wave: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Polyphase resampling with the exact rational ratio (e.g. 44.1k -> 16k is 160/441)."""
    if orig_sr == target_sr:
        return wave
    ratio = Fraction(target_sr, orig_sr)
    out = resample_poly(wave, ratio.numerator, ratio.denominator, axis=-1)
    return out.astype(np.float32, copy=False)


def load_audio(
    path: str | Path,
    sample_rate: int | None = DEFAULT_SAMPLE_RATE,
    *,
    allow_resample: bool = True,
    reject_silence: bool = True,
) -> np.ndarray:
    """Read a file as mono float32 at ``sample_rate`` and check it is usable.

    Raises ``AudioError`` (naming the file) when the file is missing, unreadable, truncated,
    empty, contains NaN/Inf, or is digital silence; when its header rate is implausible (see
    ``audio_info``); when the rate differs and ``allow_resample`` is False; when float samples
    so far beyond +-1 that resampling overflows float32. ``sample_rate=None`` keeps the file's
    own rate.
    """
    info = audio_info(path)
    if info.frames == 0:
        raise AudioError(path, "empty audio (0 samples)")
    try:
        data, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(path, f"unreadable audio ({_short(exc)})") from None
    if data.shape[0] == 0:
        raise AudioError(path, "empty audio (0 samples)")
    missing = _wav_bytes_missing(Path(path))
    if data.shape[0] < info.frames or missing:
        if missing:
            raise AudioError(path, f"truncated file: WAV data chunk lacks {missing} byte(s)")
        raise AudioError(
            path, f"truncated file: header promises {info.frames} samples, only {data.shape[0]} read"
        )
    wave = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(wave)):
        bad = int(np.count_nonzero(~np.isfinite(wave)))
        raise AudioError(path, f"{bad} NaN/Inf sample(s)")
    if reject_silence and float(np.max(np.abs(wave))) <= SILENCE_PEAK:
        raise AudioError(path, "digital silence (all samples zero or below 1 LSB)")
    if sample_rate is not None and file_sr != sample_rate:
        if not allow_resample:
            raise AudioError(path, f"sample rate {file_sr} Hz, expected {sample_rate} Hz")
        wave = resample(wave, file_sr, sample_rate)
        if not np.all(np.isfinite(wave)):  # float files far beyond +-1: the filter overshoots
            raise AudioError(path, "samples overflow float32 when resampled (values far beyond "
                                   "+-1)")
    return np.ascontiguousarray(wave, dtype=np.float32)


def write_audio(path: str | Path, wave: np.ndarray, sample_rate: int = DEFAULT_SAMPLE_RATE) -> Path:
    """Write 16-bit PCM (FLAC or WAV by extension), as the ASVspoof corpora are distributed."""
    path = Path(path)
    if not np.all(np.isfinite(wave)):
        raise AudioError(path, "refusing to write NaN/Inf samples")
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(wave, -1.0, 1.0), sample_rate, subtype="PCM_16")
    return path


# --- fixed-length views for training and evaluation -----------------------------------------


def crop_or_pad(
    wave: np.ndarray, length: int, rng: np.random.Generator | None = None, mode: str = "random"
) -> np.ndarray:
    """Exactly ``length`` samples: a crop of a long clip or a repeat-pad of a short one.

    Repeat-padding (tiling the clip) rather than zero-padding follows the SSL+AASIST recipes:
    zeros would give the detector a length cue that has nothing to do with spoofing.
    ``mode`` is ``random`` (training; needs ``rng``), ``start`` or ``center`` (evaluation).
    """
    if length <= 0:
        raise ValueError(f"length must be positive, got {length}")
    n = wave.shape[-1]
    if n == 0:
        raise ValueError("cannot crop or pad an empty waveform")
    if n < length:
        reps = -(-length // n)
        return np.tile(wave, reps)[:length]
    if mode == "random":
        if rng is None:
            raise ValueError("mode='random' needs an rng")
        start = int(rng.integers(0, n - length + 1))
    elif mode == "start":
        start = 0
    elif mode == "center":
        start = (n - length) // 2
    else:
        raise ValueError(f"unknown crop mode {mode!r}; use random, start or center")
    return wave[start : start + length]


def sliding_windows(wave: np.ndarray, window: int, hop: int) -> np.ndarray:
    """Overlapping windows (num_windows, window) covering the whole clip, last one end-aligned.

    A clip shorter than one window is repeat-padded to one window.
    """
    n = wave.shape[-1]
    starts = window_starts(n, window, hop)
    if n <= window:
        return crop_or_pad(wave, window, mode="start")[None, :]
    return np.stack([wave[s : s + window] for s in starts])


def window_starts(n: int, window: int, hop: int) -> list[int]:
    """Start samples of the windows :func:`sliding_windows` cuts from ``n`` samples.

    Callers that only need views (``wave[s : s + window]``) use this instead of the stacked
    copy, whose size is ``len(starts) * window`` samples.
    """
    if window <= 0 or hop <= 0:
        raise ValueError("window and hop must be positive")
    if n <= window:
        return [0]
    starts = list(range(0, n - window + 1, hop))
    if starts[-1] + window < n:
        starts.append(n - window)
    return starts


def _wav_bytes_missing(path: Path) -> int:
    """Bytes the RIFF ``data`` chunk promises but the file lacks (0 if complete or not WAV).

    libsndfile clamps a cut WAV's frame count to the bytes present, so a half-copied file
    would load as a shorter clip without complaint; the chunk header still knows the truth.
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        header = handle.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return 0
        offset = 12
        while offset + 8 <= size:
            handle.seek(offset)
            chunk = handle.read(8)
            chunk_size = int.from_bytes(chunk[4:8], "little")
            if chunk[:4] == b"data":
                if chunk_size in (0, 0xFFFFFFFF):  # streamed WAV: size unknown by design
                    return 0
                return max(0, offset + 8 + chunk_size - size)
            offset += 8 + chunk_size + (chunk_size & 1)
    return 0


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
