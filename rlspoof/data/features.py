"""Classic cepstral front-ends for anti-spoofing baselines: LFCC and MFCC.

Both share one pipeline (``_cepstral_features``) and differ only in the filterbank:

    frames (Hamming window, no centring)  ->  |rFFT|^2  ->  triangular filterbank
    ->  log(. + eps)  ->  DCT-II (orthonormal), first ``n_ceps``  ->  [+ delta, delta-delta]

LFCC (linearly spaced filters) is the ASVspoof 2019/2021 baseline front-end: it keeps the
high-frequency resolution where many vocoder artefacts live; MFCC uses the HTK mel scale.
``utterance_stats`` turns a variable-length feature matrix into a fixed vector (mean and std per
dimension) for a linear classifier.

Written here, on scipy's FFT and DCT, because the maintained library that ships LFCC
(torchaudio) is not a dependency (see README, "No torchaudio") and librosa has no LFCC.

Framing: ``1 + (len(wave) - win_length) // hop_length`` frames (99 for 1 s at 16 kHz with the
defaults); a wave shorter than one window is zero-padded to one frame. Outputs are float64
arrays of shape ``(frames, dims)``.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.fft import dct
from scipy.signal import get_window

__all__ = [
    "lfcc",
    "mfcc",
    "utterance_stats",
    "linear_filterbank",
    "mel_filterbank",
    "hz_to_mel",
    "mel_to_hz",
    "deltas",
]

#: Floor added to filterbank energies before the log, so digital silence stays finite.
LOG_FLOOR = 1e-10
#: Regression half-width for deltas (+-2 frames, the HTK / ASVspoof-baseline choice).
DELTA_WIDTH = 2


# --------------------------------------------------------------------------- filterbanks


def hz_to_mel(hz):
    """HTK mel scale: ``2595 * log10(1 + f / 700)``."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel):
    """Inverse of ``hz_to_mel``."""
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def _check_filterbank_args(n_filters: int, n_fft: int, sample_rate: int) -> None:
    if int(n_filters) < 1:
        raise ValueError(f"n_filters must be >= 1, got {n_filters}")
    if int(n_fft) < 2:
        raise ValueError(f"n_fft must be >= 2, got {n_fft}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")


def _triangular_filterbank(edges_hz: np.ndarray, n_fft: int, sample_rate: int) -> np.ndarray:
    """Triangles with feet at ``edges_hz[m]``, ``edges_hz[m + 2]`` and peak 1 at ``edges_hz[m + 1]``.

    Evaluated at the rFFT bin frequencies; returns ``(len(edges_hz) - 2, n_fft // 2 + 1)``.
    """
    bin_hz = np.arange(n_fft // 2 + 1) * (sample_rate / n_fft)
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (bin_hz[None, :] - lower) / (centre - lower)
    falling = (upper - bin_hz[None, :]) / (upper - centre)
    bank = np.maximum(0.0, np.minimum(rising, falling))
    empty = np.flatnonzero(bank.sum(axis=1) <= 0)
    if empty.size:
        raise ValueError(
            f"filter {int(empty[0])} of {bank.shape[0]} covers no FFT bin "
            f"(bin spacing {sample_rate / n_fft:.1f} Hz): use fewer filters or a larger n_fft"
        )
    return bank


def linear_filterbank(n_filters: int, n_fft: int, sample_rate: int) -> np.ndarray:
    """``n_filters`` linearly spaced triangles covering 0 .. Nyquist, ``(n_filters, n_fft//2+1)``."""
    _check_filterbank_args(n_filters, n_fft, sample_rate)
    edges = np.linspace(0.0, sample_rate / 2.0, int(n_filters) + 2)
    return _triangular_filterbank(edges, int(n_fft), sample_rate)


def mel_filterbank(n_filters: int, n_fft: int, sample_rate: int) -> np.ndarray:
    """``n_filters`` HTK-mel-spaced triangles covering 0 .. Nyquist, ``(n_filters, n_fft//2+1)``."""
    _check_filterbank_args(n_filters, n_fft, sample_rate)
    edges = mel_to_hz(np.linspace(0.0, float(hz_to_mel(sample_rate / 2.0)), int(n_filters) + 2))
    return _triangular_filterbank(edges, int(n_fft), sample_rate)


# --------------------------------------------------------------------------- pipeline


def deltas(features: np.ndarray, width: int = DELTA_WIDTH) -> np.ndarray:
    """Regression deltas over ``+-width`` frames with edge padding, same shape as ``features``.

    ``d[t] = sum_n n * (c[t+n] - c[t-n]) / (2 * sum_n n^2)``, n = 1..width.
    """
    feats = np.asarray(features, dtype=np.float64)
    if feats.ndim != 2:
        raise ValueError(f"features must be (frames, dims), got shape {feats.shape}")
    n_frames = feats.shape[0]
    padded = np.pad(feats, ((width, width), (0, 0)), mode="edge")
    out = np.zeros_like(feats)
    for n in range(1, width + 1):  # loop over the (tiny) window, not over frames
        out += n * (
            padded[width + n : width + n + n_frames] - padded[width - n : width - n + n_frames]
        )
    return out / (2.0 * sum(n * n for n in range(1, width + 1)))


def _power_spectrum(
    wave, sample_rate: int, n_fft: int, win_length: int, hop_length: int
) -> np.ndarray:
    """Framed, Hamming-windowed power spectrum, ``(frames, n_fft // 2 + 1)``."""
    x = np.asarray(wave, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"wave must be 1-D (mono samples), got shape {x.shape}")
    if x.size == 0:
        raise ValueError("wave is empty")
    if not np.all(np.isfinite(x)):
        raise ValueError("wave contains NaN/Inf samples")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if hop_length < 1:
        raise ValueError(f"hop_length must be >= 1, got {hop_length}")
    if not 1 <= win_length <= n_fft:
        raise ValueError(
            f"need 1 <= win_length <= n_fft, got win_length={win_length}, n_fft={n_fft}"
        )
    if x.size < win_length:
        x = np.pad(x, (0, win_length - x.size))
    frames = sliding_window_view(x, win_length)[::hop_length]
    window = get_window("hamming", win_length, fftbins=True)
    spectrum = np.fft.rfft(frames * window, n=n_fft, axis=-1)
    return spectrum.real**2 + spectrum.imag**2


def _cepstral_features(
    wave,
    filterbank: np.ndarray,
    *,
    sample_rate: int,
    n_fft: int,
    win_length: int,
    hop_length: int,
    n_ceps: int,
    with_deltas: bool,
    with_energy: bool,
) -> np.ndarray:
    if not 1 <= n_ceps <= filterbank.shape[0]:
        raise ValueError(f"need 1 <= n_ceps <= n_filters ({filterbank.shape[0]}), got {n_ceps}")
    power = _power_spectrum(wave, sample_rate, n_fft, win_length, hop_length)
    log_energies = np.log(power @ filterbank.T + LOG_FLOOR)
    ceps = dct(log_energies, type=2, norm="ortho", axis=-1)[:, :n_ceps]
    if with_energy:
        # c0 is (up to scale) the mean log filterbank energy; replace it with the log frame
        # energy so the dimension count does not change.
        ceps[:, 0] = np.log(power.sum(axis=-1) + LOG_FLOOR)
    if with_deltas:
        d1 = deltas(ceps)
        ceps = np.concatenate([ceps, d1, deltas(d1)], axis=1)
    return ceps


def lfcc(
    wave,
    sample_rate: int = 16000,
    n_fft: int = 512,
    win_length: int = 320,
    hop_length: int = 160,
    n_filters: int = 20,
    n_ceps: int = 20,
    with_deltas: bool = True,
    with_energy: bool = False,
) -> np.ndarray:
    """Linear-frequency cepstral coefficients, ``(frames, n_ceps * (3 if with_deltas else 1))``.

    Defaults (20 ms Hamming window, 10 ms hop, 20 filters, 20 coefficients + deltas + delta-deltas
    = 60 dims) follow the ASVspoof LFCC baseline. ``with_energy`` replaces c0 by log frame energy.
    """
    bank = linear_filterbank(n_filters, n_fft, sample_rate)
    return _cepstral_features(
        wave,
        bank,
        sample_rate=sample_rate,
        n_fft=n_fft,
        win_length=win_length,
        hop_length=hop_length,
        n_ceps=n_ceps,
        with_deltas=with_deltas,
        with_energy=with_energy,
    )


def mfcc(
    wave,
    sample_rate: int = 16000,
    n_fft: int = 512,
    win_length: int = 320,
    hop_length: int = 160,
    n_filters: int = 20,
    n_ceps: int = 20,
    with_deltas: bool = True,
    with_energy: bool = False,
) -> np.ndarray:
    """Mel-frequency cepstral coefficients (HTK mel scale); same pipeline and shape as ``lfcc``."""
    bank = mel_filterbank(n_filters, n_fft, sample_rate)
    return _cepstral_features(
        wave,
        bank,
        sample_rate=sample_rate,
        n_fft=n_fft,
        win_length=win_length,
        hop_length=hop_length,
        n_ceps=n_ceps,
        with_deltas=with_deltas,
        with_energy=with_energy,
    )


def utterance_stats(features: np.ndarray) -> np.ndarray:
    """Per-dimension mean then (population) std over frames: ``(2 * dims,)``."""
    feats = np.asarray(features, dtype=np.float64)
    if feats.ndim != 2:
        raise ValueError(f"features must be (frames, dims), got shape {feats.shape}")
    if feats.shape[0] == 0:
        raise ValueError("features have no frames")
    return np.concatenate([feats.mean(axis=0), feats.std(axis=0)])
