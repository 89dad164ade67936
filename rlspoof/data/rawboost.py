"""RawBoost (Tak et al., "RawBoost: a raw data boosting and augmentation method applied to
automatic speaker verification anti-spoofing", ICASSP 2022): linear and non-linear
convolutive noise (LnL), impulsive signal-dependent noise (ISD) and stationary
signal-independent noise (SSI), combined in series or in parallel as the paper's algorithms 1
to 8. It is written here (on scipy's filter design) because no maintained library packages
it; the authors' code is a research script tied to its training loop. The waveform contract
is :mod:`rlspoof.data.channels`'.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from scipy.signal import fftconvolve, firwin

from rlspoof.data.channels import (
    DEFAULT_SAMPLE_RATE,
    as_wave,
    finite_float32,
    peak_normalise,
    scale_to_snr,
)
from rlspoof.errors import AugmentConfigError


@dataclass(frozen=True)
class RawBoostParams:
    """RawBoost hyper-parameters; the defaults are those of the paper (16 kHz audio).

    Frequencies are in Hz, gains in dB, ``P`` in percent, SNRs in dB. ``maxF`` is clipped
    below the Nyquist frequency of the audio it is applied to.
    """

    nBands: int = 5
    minF: float = 20.0
    maxF: float = 8000.0
    minBW: float = 100.0
    maxBW: float = 1000.0
    minCoeff: int = 10
    maxCoeff: int = 100
    minG: float = 0.0
    maxG: float = 0.0
    minBiasLinNonLin: float = 5.0
    maxBiasLinNonLin: float = 20.0
    N_f: int = 5
    P: float = 10.0
    g_sd: float = 2.0
    SNRmin: float = 10.0
    SNRmax: float = 40.0

    def __post_init__(self) -> None:
        pairs = [
            ("minF", "maxF"),
            ("minBW", "maxBW"),
            ("minCoeff", "maxCoeff"),
            ("minG", "maxG"),
            ("minBiasLinNonLin", "maxBiasLinNonLin"),
            ("SNRmin", "SNRmax"),
        ]
        for lo, hi in pairs:
            if getattr(self, lo) > getattr(self, hi):
                raise AugmentConfigError(
                    f"RawBoostParams: {lo}={getattr(self, lo)} exceeds {hi}={getattr(self, hi)}"
                )
        if self.nBands < 1 or self.N_f < 1 or self.minCoeff < 1:
            raise AugmentConfigError("RawBoostParams: nBands, N_f and minCoeff must be >= 1")
        if self.minF < 0 or self.minBW <= 0:
            raise AugmentConfigError("RawBoostParams: minF must be >= 0 and minBW > 0")
        if not 0.0 < self.P <= 100.0:
            raise AugmentConfigError(f"RawBoostParams: P must be in (0, 100], got {self.P}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> RawBoostParams:
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - valid)
        if unknown:
            raise AugmentConfigError(
                f"unknown RawBoost parameter(s) {unknown}; valid: {sorted(valid)}"
            )
        return cls(**dict(values))


def resolve_params(params: RawBoostParams | Mapping[str, Any] | None) -> RawBoostParams:
    if params is None:
        return RawBoostParams()
    if isinstance(params, RawBoostParams):
        return params
    if isinstance(params, Mapping):
        return RawBoostParams.from_mapping(params)
    raise AugmentConfigError(f"params must be RawBoostParams or a mapping, got {type(params)}")


def multiband_filter(
    rng: np.random.Generator,
    p: RawBoostParams,
    sample_rate: int,
    min_f: float | None = None,
    max_f: float | None = None,
) -> np.ndarray:
    """FIR coefficients of a random multi-band (multi-notch) filter.

    ``nBands`` band-stop FIR filters, each with a random centre frequency in [min_f, max_f], a
    random bandwidth in [minBW, maxBW], a random (odd) number of taps in [minCoeff, maxCoeff]
    and a random gain in [minG, maxG] dB, are cascaded (their impulse responses convolved).
    """
    nyq = sample_rate / 2.0
    top = nyq * 0.999  # band edges must lie strictly inside (0, nyquist)
    lo_f = p.minF if min_f is None else min_f
    hi_f = p.maxF if max_f is None else max_f
    hi_f = min(hi_f, top)
    lo_f = min(max(lo_f, 1.0), hi_f)
    b = np.ones(1)
    for _ in range(p.nBands):
        fc = rng.uniform(lo_f, hi_f)
        bw = rng.uniform(p.minBW, p.maxBW)
        taps = int(rng.integers(p.minCoeff, p.maxCoeff + 1))
        gain_db = rng.uniform(p.minG, p.maxG)
        taps += 1 - taps % 2  # band-stop FIR filters need an odd number of taps
        f1, f2 = fc - bw / 2.0, fc + bw / 2.0
        if taps < 3 or (f1 <= 1.0 and f2 >= top):
            band = np.ones(1)
        elif f1 <= 1.0:  # the stop band reaches DC: a high-pass
            band = firwin(taps, f2, pass_zero="highpass", fs=sample_rate, scale=False)
        elif f2 >= top:  # the stop band reaches Nyquist: a low-pass
            band = firwin(taps, f1, pass_zero="lowpass", fs=sample_rate, scale=False)
        else:
            band = firwin(taps, [f1, f2], pass_zero="bandstop", fs=sample_rate, scale=False)
        b = np.convolve(b, band * 10.0 ** (gain_db / 20.0))
    return b


def _fir(x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Zero-delay application of a linear-phase FIR filter (output centred, same length)."""
    if b.size == 1:
        return x * b[0]
    return fftconvolve(x, b, mode="same")


def lnl_convolutive(
    wave: np.ndarray,
    rng: np.random.Generator,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    params: RawBoostParams | Mapping[str, Any] | None = None,
) -> np.ndarray:
    """RawBoost algorithm 1: linear and non-linear convolutive noise, peak-normalised.

    ``y = sum_{j=1..N_f} h_j * x**j`` where each ``h_j`` is an independent random multi-band
    filter. For the non-linear orders (j >= 2) the band-centre range is biased downwards by
    ``(j-1)*minBiasLinNonLin`` Hz at the bottom and ``(j-1)*maxBiasLinNonLin`` Hz at the top,
    so higher-order harmonics are shaped by progressively lower bands.
    """
    p = resolve_params(params)
    x = as_wave(wave)
    y = np.zeros_like(x)
    xj = np.ones_like(x)
    for k in range(p.N_f):
        xj = xj * x  # x ** (k + 1)
        min_f = p.minF - k * p.minBiasLinNonLin
        max_f = min(p.maxF, sample_rate / 2.0) - k * p.maxBiasLinNonLin
        y += _fir(xj, multiband_filter(rng, p, sample_rate, min_f, max_f))
    return finite_float32(peak_normalise(y))


def isd_noise(
    wave: np.ndarray,
    rng: np.random.Generator,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    params: RawBoostParams | Mapping[str, Any] | None = None,
) -> np.ndarray:
    """RawBoost algorithm 2: impulsive signal-dependent noise.

    A random fraction of P percent (P uniform in (0, P_max]) of the samples, at random
    positions, become ``x + g_sd * f * x`` with ``f`` uniform in [-1, 1]; the rest are untouched.
    """
    p = resolve_params(params)
    x = as_wave(wave)
    n = x.size
    if n == 0:
        return finite_float32(x)
    percent = p.P * (1.0 - rng.random())  # uniform in (0, P]
    count = min(n, max(1, int(n * percent / 100.0)))
    idx = rng.choice(n, size=count, replace=False)
    f = rng.uniform(-1.0, 1.0, size=count)
    x[idx] += p.g_sd * f * x[idx]
    return finite_float32(x)


def ssi_noise(
    wave: np.ndarray,
    rng: np.random.Generator,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    params: RawBoostParams | Mapping[str, Any] | None = None,
) -> np.ndarray:
    """RawBoost algorithm 3: stationary signal-independent additive noise.

    White Gaussian noise coloured by a random multi-band FIR filter, added at an SNR drawn
    uniformly from [SNRmin, SNRmax] dB. Silent input is returned unchanged.
    """
    p = resolve_params(params)
    x = as_wave(wave)
    noise = _fir(rng.standard_normal(x.size), multiband_filter(rng, p, sample_rate))
    snr_db = rng.uniform(p.SNRmin, p.SNRmax)
    return finite_float32(x + scale_to_snr(x, noise, snr_db))


_RAWBOOST_SERIES: dict[int, tuple[Callable[..., np.ndarray], ...]] = {
    1: (lnl_convolutive,),
    2: (isd_noise,),
    3: (ssi_noise,),
    4: (lnl_convolutive, isd_noise, ssi_noise),
    5: (lnl_convolutive, isd_noise),
    6: (lnl_convolutive, ssi_noise),
    7: (isd_noise, ssi_noise),
}


RAWBOOST_ALGOS = tuple(range(1, 9))


def rawboost(
    wave: np.ndarray,
    rng: np.random.Generator,
    algo: int = 5,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    params: RawBoostParams | Mapping[str, Any] | None = None,
) -> np.ndarray:
    """RawBoost with the paper's algorithm numbers.

    1 LnL, 2 ISD, 3 SSI, 4 series LnL->ISD->SSI, 5 series LnL->ISD, 6 series LnL->SSI,
    7 series ISD->SSI, 8 parallel LnL and ISD (mean of both outputs, peak-normalised).
    ``params`` is a ``RawBoostParams`` or a mapping of its fields (defaults: the paper's).
    """
    p = resolve_params(params)
    algo = int(algo)
    if algo == 8:
        a = lnl_convolutive(wave, rng, sample_rate, p).astype(np.float64)
        b = isd_noise(wave, rng, sample_rate, p).astype(np.float64)
        return finite_float32(peak_normalise((a + b) / 2.0))
    if algo not in _RAWBOOST_SERIES:
        raise AugmentConfigError(f"RawBoost algo must be one of {list(RAWBOOST_ALGOS)}, got {algo}")
    y = np.asarray(wave)
    for step in _RAWBOOST_SERIES[algo]:
        y = step(y, rng, sample_rate, p)
    return finite_float32(y)
