"""Additive noise and codec/channel simulation: pure waveform functions, used as augmentations
(``rlspoof.data.augment``) and as the synthetic corpus' channels.

Every function here and in :mod:`rlspoof.data.rawboost` follows one contract:
``fn(wave, rng, sample_rate=16000, **params)`` on a mono float32 waveform, all randomness drawn
from ``rng`` (a ``np.random.Generator``, so the same seed gives the same output), returning a
new float32 array of the same length with only finite values. Nothing is peak-normalised
except where the algorithm itself says so (RawBoost's convolutive noise), and silent input
never divides by zero. The helpers that keep that contract are public for the two modules.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy.signal import butter, fftconvolve, resample_poly, sosfiltfilt

from rlspoof.errors import AugmentConfigError

DEFAULT_SAMPLE_RATE = 16_000

#: Mean power at or below which a signal counts as silent (no SNR can be defined against it).
SILENT_POWER = 1e-20


def as_wave(wave: np.ndarray) -> np.ndarray:
    """A float64 working copy of a 1-D waveform (float64 keeps SNR arithmetic exact)."""
    x = np.asarray(wave)
    if x.ndim != 1:
        raise ValueError(f"expected a mono 1-D waveform, got shape {x.shape}")
    return x.astype(np.float64, copy=True)


def finite_float32(y: np.ndarray) -> np.ndarray:
    y = np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)
    return np.ascontiguousarray(y, dtype=np.float32)


def signal_power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64))) if x.size else 0.0


def peak_normalise(y: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    return y / peak if peak > 0.0 else y


def scale_to_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``noise`` rescaled so that 10*log10(P_signal / P_noise) == snr_db (zeros if undefined)."""
    ps, pn = signal_power(signal), signal_power(noise)
    if ps <= SILENT_POWER or pn <= SILENT_POWER:
        return np.zeros_like(signal)
    return noise * np.sqrt(ps / (pn * 10.0 ** (snr_db / 10.0)))


NOISE_COLORS = ("white", "pink", "brown")


def colored_noise(n: int, rng: np.random.Generator, color: str = "white") -> np.ndarray:
    """Zero-mean Gaussian noise with a 1/f**0 (white), 1/f (pink) or 1/f**2 (brown) PSD."""
    if color not in NOISE_COLORS:
        raise AugmentConfigError(f"unknown noise color {color!r}; use one of {list(NOISE_COLORS)}")
    white = rng.standard_normal(n)
    if color == "white" or n < 2:
        return white
    exponent = 0.5 if color == "pink" else 1.0  # amplitude slope: PSD slope / 2
    spec = np.fft.rfft(white)
    freqs = np.arange(spec.size, dtype=np.float64)
    freqs[0] = 1.0
    spec = spec / freqs**exponent
    spec[0] = 0.0
    out = np.fft.irfft(spec, n=n)
    return out


def add_noise(
    wave: np.ndarray,
    rng: np.random.Generator,
    snr_db: float = 20.0,
    noise: np.ndarray | None = None,
    color: str = "white",
    sample_rate: int = DEFAULT_SAMPLE_RATE,
) -> np.ndarray:
    """Add noise at exactly ``snr_db`` dB SNR (mean-power ratio over the whole clip).

    ``noise`` is a given noise waveform (tiled if shorter, randomly cropped if longer); without
    it, Gaussian noise of ``color`` white, pink or brown is generated. Silent input, or silent
    noise, leaves the waveform unchanged.
    """
    x = as_wave(wave)
    n = x.size
    if noise is None:
        z = colored_noise(n, rng, color)
    else:
        z = np.asarray(noise, dtype=np.float64).reshape(-1)
        if z.size == 0:
            raise AugmentConfigError("add_noise: the given noise array is empty")
        if z.size < n:
            z = np.tile(z, -(-n // z.size))
        start = int(rng.integers(0, z.size - n + 1))
        z = z[start : start + n]
    return finite_float32(x + scale_to_snr(x, z, float(snr_db)))


def band_limit(
    wave: np.ndarray,
    rng: np.random.Generator,
    low_hz: float = 300.0,
    high_hz: float = 3400.0,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    order: int = 6,
) -> np.ndarray:
    """Zero-phase Butterworth band-pass (``sosfiltfilt``) between ``low_hz`` and ``high_hz``.

    ``low_hz <= 0`` gives a low-pass, ``high_hz >= sample_rate/2`` a high-pass; with both the
    waveform is returned unchanged. ``rng`` is unused (kept for the common signature).
    """
    del rng
    x = as_wave(wave)
    nyq = sample_rate / 2.0
    has_low, has_high = low_hz > 0.0, high_hz < nyq
    if has_low and has_high and low_hz >= high_hz:
        raise AugmentConfigError(f"band_limit: low_hz={low_hz} must be below high_hz={high_hz}")
    if not (has_low or has_high) or x.size < 2:
        return finite_float32(x)
    if has_low and has_high:
        sos = butter(order, [low_hz, high_hz], btype="bandpass", fs=sample_rate, output="sos")
    elif has_low:
        sos = butter(order, low_hz, btype="highpass", fs=sample_rate, output="sos")
    else:
        sos = butter(order, high_hz, btype="lowpass", fs=sample_rate, output="sos")
    padlen = min(3 * (2 * sos.shape[0] + 1), x.size - 1)
    return finite_float32(sosfiltfilt(sos, x, padlen=padlen))


def mu_law_encode(wave: np.ndarray, bits: int = 8) -> np.ndarray:
    """Integer mu-law codes in [0, 2**bits - 1] (input clipped to [-1, 1], mu = 2**bits - 1)."""
    if not 1 <= int(bits) <= 16:
        raise AugmentConfigError(f"mu_law: bits must be in 1..16, got {bits}")
    mu = 2 ** int(bits) - 1
    x = np.clip(np.asarray(wave, dtype=np.float64), -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    return np.rint((y + 1.0) / 2.0 * mu).astype(np.int64)


def mu_law_decode(codes: np.ndarray, bits: int = 8) -> np.ndarray:
    """Inverse of ``mu_law_encode``: codes back to waveform values in [-1, 1]."""
    mu = 2 ** int(bits) - 1
    y = 2.0 * np.asarray(codes, dtype=np.float64) / mu - 1.0
    return np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu


def mu_law(
    wave: np.ndarray,
    rng: np.random.Generator,
    bits: int = 8,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
) -> np.ndarray:
    """Mu-law companding, quantisation to 2**bits levels and expansion (G.711-like).

    Samples outside [-1, 1] are clipped, as a codec would. ``rng`` is unused.
    """
    del rng
    x = as_wave(wave)
    return finite_float32(mu_law_decode(mu_law_encode(x, bits), bits))


def resample_chain(
    wave: np.ndarray,
    rng: np.random.Generator,
    mid_rate: int = 8000,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
) -> np.ndarray:
    """Down-sample to ``mid_rate`` and back (polyphase), keeping the length; ``rng`` unused.

    Removes everything above ``mid_rate / 2``. ``mid_rate >= sample_rate`` is a no-op.
    """
    del rng
    x = as_wave(wave)
    n = x.size
    if int(mid_rate) <= 0:
        raise AugmentConfigError(f"resample_chain: mid_rate must be positive, got {mid_rate}")
    if int(mid_rate) >= sample_rate or n == 0:
        return finite_float32(x)
    ratio = Fraction(int(mid_rate), int(sample_rate))
    down = resample_poly(x, ratio.numerator, ratio.denominator)
    up = resample_poly(down, ratio.denominator, ratio.numerator)
    if up.size >= n:
        up = up[:n]
    else:
        up = np.pad(up, (0, n - up.size))
    return finite_float32(up)


def telephone(
    wave: np.ndarray, rng: np.random.Generator, sample_rate: int = DEFAULT_SAMPLE_RATE
) -> np.ndarray:
    """Narrow-band telephone channel: 300-3400 Hz band-pass, 8 kHz round trip, 8-bit mu-law."""
    y = band_limit(wave, rng, 300.0, 3400.0, sample_rate)
    y = resample_chain(y, rng, 8000, sample_rate)
    return mu_law(y, rng, 8, sample_rate)


def reverb(
    wave: np.ndarray,
    rng: np.random.Generator,
    rt60: float = 0.6,
    drr_db: float = 0.0,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
) -> np.ndarray:
    """A far-field room: convolution with an exponentially decaying noise tail.

    ``rt60`` is the time (s) the tail takes to fall by 60 dB; ``drr_db`` the direct-to-reverberant
    energy ratio (lower: farther from the microphone). The level of the input is kept.
    """
    x = as_wave(wave)
    if rt60 <= 0:
        raise AugmentConfigError(f"reverb: rt60 must be positive, got {rt60}")
    length = max(2, int(min(rt60, 2.0) * sample_rate))
    t = np.arange(length) / sample_rate
    tail = rng.standard_normal(length) * np.exp(-6.9 * t / rt60)
    tail[0] = 0.0
    tail *= 10 ** (-float(drr_db) / 20) / (np.sqrt(np.sum(tail**2)) + 1e-12)
    tail[0] = 1.0
    y = fftconvolve(x, tail)[: x.size]
    power = signal_power(x)
    if power > SILENT_POWER:
        y = y * np.sqrt(power / (signal_power(y) + SILENT_POWER))
    return finite_float32(y)
