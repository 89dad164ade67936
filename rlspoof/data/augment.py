"""Waveform augmentation: RawBoost, additive noise and codec/channel simulation.

Every augmentation is a pure function ``fn(wave, rng, sample_rate=16000, **params)`` on a mono
float32 waveform. It draws all its randomness from ``rng`` (a ``np.random.Generator``), so the
same seed gives the same output, and it returns a new float32 array of the same length with
only finite values. Nothing is peak-normalised except where the algorithm itself says so
(RawBoost's convolutive noise), and silent input never divides by zero.

RawBoost follows Tak et al., "RawBoost: a raw data boosting and augmentation method applied to
automatic speaker verification anti-spoofing", ICASSP 2022: linear and non-linear convolutive
noise (LnL), impulsive signal-dependent noise (ISD) and stationary signal-independent noise
(SSI), combined in series or in parallel as the paper's algorithms 1 to 8. It is written here
(on scipy's filter design) because no maintained library packages it; the authors' code is a
research script tied to its training loop.

``Augmenter`` composes augmentations from config specs such as
``[{"name": "rawboost", "p": 0.5, "algo": 3}, {"name": "noise", "p": 0.3, "snr_db": [5, 20]}]``
where a two-element list for a numeric parameter is a range drawn from on every call.
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from fractions import Fraction
from typing import Any

import numpy as np
from scipy.signal import butter, fftconvolve, firwin, resample_poly, sosfiltfilt

from rlspoof.errors import RlspoofError

DEFAULT_SAMPLE_RATE = 16_000
#: Mean power at or below which a signal counts as silent (no SNR can be defined against it).
_SILENT_POWER = 1e-20

AugmentFn = Callable[..., np.ndarray]


class AugmentConfigError(RlspoofError, ValueError):
    """An augmentation spec names an unknown augmentation or parameter, or a bad value."""


# --- helpers ---------------------------------------------------------------------------------


def _as_wave(wave: np.ndarray) -> np.ndarray:
    """A float64 working copy of a 1-D waveform (float64 keeps SNR arithmetic exact)."""
    x = np.asarray(wave)
    if x.ndim != 1:
        raise ValueError(f"expected a mono 1-D waveform, got shape {x.shape}")
    return x.astype(np.float64, copy=True)


def _out(y: np.ndarray) -> np.ndarray:
    y = np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)
    return np.ascontiguousarray(y, dtype=np.float32)


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64))) if x.size else 0.0


def _peak_normalise(y: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    return y / peak if peak > 0.0 else y


def _scale_to_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``noise`` rescaled so that 10*log10(P_signal / P_noise) == snr_db (zeros if undefined)."""
    ps, pn = _power(signal), _power(noise)
    if ps <= _SILENT_POWER or pn <= _SILENT_POWER:
        return np.zeros_like(signal)
    return noise * np.sqrt(ps / (pn * 10.0 ** (snr_db / 10.0)))


# --- RawBoost --------------------------------------------------------------------------------


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


def _resolve_params(params: RawBoostParams | Mapping[str, Any] | None) -> RawBoostParams:
    if params is None:
        return RawBoostParams()
    if isinstance(params, RawBoostParams):
        return params
    if isinstance(params, Mapping):
        return RawBoostParams.from_mapping(params)
    raise AugmentConfigError(f"params must be RawBoostParams or a mapping, got {type(params)}")


def _multiband_filter(
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
    p = _resolve_params(params)
    x = _as_wave(wave)
    y = np.zeros_like(x)
    xj = np.ones_like(x)
    for k in range(p.N_f):
        xj = xj * x  # x ** (k + 1)
        min_f = p.minF - k * p.minBiasLinNonLin
        max_f = min(p.maxF, sample_rate / 2.0) - k * p.maxBiasLinNonLin
        y += _fir(xj, _multiband_filter(rng, p, sample_rate, min_f, max_f))
    return _out(_peak_normalise(y))


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
    p = _resolve_params(params)
    x = _as_wave(wave)
    n = x.size
    if n == 0:
        return _out(x)
    percent = p.P * (1.0 - rng.random())  # uniform in (0, P]
    count = min(n, max(1, int(n * percent / 100.0)))
    idx = rng.choice(n, size=count, replace=False)
    f = rng.uniform(-1.0, 1.0, size=count)
    x[idx] += p.g_sd * f * x[idx]
    return _out(x)


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
    p = _resolve_params(params)
    x = _as_wave(wave)
    noise = _fir(rng.standard_normal(x.size), _multiband_filter(rng, p, sample_rate))
    snr_db = rng.uniform(p.SNRmin, p.SNRmax)
    return _out(x + _scale_to_snr(x, noise, snr_db))


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
    p = _resolve_params(params)
    algo = int(algo)
    if algo == 8:
        a = lnl_convolutive(wave, rng, sample_rate, p).astype(np.float64)
        b = isd_noise(wave, rng, sample_rate, p).astype(np.float64)
        return _out(_peak_normalise((a + b) / 2.0))
    if algo not in _RAWBOOST_SERIES:
        raise AugmentConfigError(f"RawBoost algo must be one of {list(RAWBOOST_ALGOS)}, got {algo}")
    y = np.asarray(wave)
    for step in _RAWBOOST_SERIES[algo]:
        y = step(y, rng, sample_rate, p)
    return _out(y)


# --- additive noise --------------------------------------------------------------------------

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
    x = _as_wave(wave)
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
    return _out(x + _scale_to_snr(x, z, float(snr_db)))


# --- codec and channel simulation ------------------------------------------------------------


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
    x = _as_wave(wave)
    nyq = sample_rate / 2.0
    has_low, has_high = low_hz > 0.0, high_hz < nyq
    if has_low and has_high and low_hz >= high_hz:
        raise AugmentConfigError(f"band_limit: low_hz={low_hz} must be below high_hz={high_hz}")
    if not (has_low or has_high) or x.size < 2:
        return _out(x)
    if has_low and has_high:
        sos = butter(order, [low_hz, high_hz], btype="bandpass", fs=sample_rate, output="sos")
    elif has_low:
        sos = butter(order, low_hz, btype="highpass", fs=sample_rate, output="sos")
    else:
        sos = butter(order, high_hz, btype="lowpass", fs=sample_rate, output="sos")
    padlen = min(3 * (2 * sos.shape[0] + 1), x.size - 1)
    return _out(sosfiltfilt(sos, x, padlen=padlen))


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
    x = _as_wave(wave)
    return _out(mu_law_decode(mu_law_encode(x, bits), bits))


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
    x = _as_wave(wave)
    n = x.size
    if int(mid_rate) <= 0:
        raise AugmentConfigError(f"resample_chain: mid_rate must be positive, got {mid_rate}")
    if int(mid_rate) >= sample_rate or n == 0:
        return _out(x)
    ratio = Fraction(int(mid_rate), int(sample_rate))
    down = resample_poly(x, ratio.numerator, ratio.denominator)
    up = resample_poly(down, ratio.denominator, ratio.numerator)
    if up.size >= n:
        up = up[:n]
    else:
        up = np.pad(up, (0, n - up.size))
    return _out(up)


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
    x = _as_wave(wave)
    if rt60 <= 0:
        raise AugmentConfigError(f"reverb: rt60 must be positive, got {rt60}")
    length = max(2, int(min(rt60, 2.0) * sample_rate))
    t = np.arange(length) / sample_rate
    tail = rng.standard_normal(length) * np.exp(-6.9 * t / rt60)
    tail[0] = 0.0
    tail *= 10 ** (-float(drr_db) / 20) / (np.sqrt(np.sum(tail**2)) + 1e-12)
    tail[0] = 1.0
    y = fftconvolve(x, tail)[: x.size]
    power = _power(x)
    if power > _SILENT_POWER:
        y = y * np.sqrt(power / (_power(y) + _SILENT_POWER))
    return _out(y)


# --- registry and composition ----------------------------------------------------------------

AUGMENTATIONS: dict[str, AugmentFn] = {
    "rawboost": rawboost,
    "noise": add_noise,
    "band_limit": band_limit,
    "mu_law": mu_law,
    "resample_chain": resample_chain,
    "telephone": telephone,
    "reverb": reverb,
}

_RESERVED = ("wave", "rng", "sample_rate")


def _params_of(fn: AugmentFn) -> dict[str, inspect.Parameter]:
    sig = inspect.signature(fn)
    return {k: v for k, v in sig.parameters.items() if k not in _RESERVED}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _is_finite(v: Any) -> bool:
    """NaN, Inf and integers beyond float range (YAML reads 1e400 digits as an int) are not."""
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


@dataclass(frozen=True)
class _Step:
    name: str
    fn: AugmentFn
    p: float
    fixed: dict[str, Any]
    ranges: dict[str, tuple[float, float, bool]]  # name -> (low, high, integer)


class Augmenter:
    """A chain of augmentations, each applied with its own probability ``p`` (default 1).

    ``specs`` is a list of dicts: ``name`` (a key of ``AUGMENTATIONS``), optional ``p`` and the
    function's keyword parameters. A two-element list ``[low, high]`` for a numeric parameter is
    drawn uniformly on each call (an integer in [low, high] inclusive where the parameter's
    default is an int, e.g. RawBoost ``algo``; a float otherwise).

    Every spec is tried once when the augmenter is built (``_try``), so a bad value fails then,
    naming the spec, rather than in a DataLoader worker at the first batch of a training run.
    """

    def __init__(
        self,
        specs: Sequence[Mapping[str, Any]] | None = None,
        sample_rate: int = DEFAULT_SAMPLE_RATE,
    ):
        self.sample_rate = int(sample_rate)
        self.specs = [dict(s) if isinstance(s, Mapping) else s for s in (specs or [])]
        self.steps = [self._build(i, s) for i, s in enumerate(self.specs)]
        for index, step in enumerate(self.steps):
            self._try(index, step)

    @classmethod
    def from_config(
        cls, config: Sequence[Mapping[str, Any]] | None, sample_rate: int = DEFAULT_SAMPLE_RATE
    ) -> Augmenter:
        """An augmenter from a config list; ``None`` or ``[]`` gives the identity."""
        if config is not None and (
            isinstance(config, (str, Mapping)) or not isinstance(config, Sequence)
        ):
            raise AugmentConfigError(
                f"augmentation config must be a list of specs, got {type(config).__name__}"
            )
        return cls(config, sample_rate=sample_rate)

    @staticmethod
    def _build(index: int, spec: Mapping[str, Any]) -> _Step:
        if not isinstance(spec, Mapping):
            raise AugmentConfigError(f"augmentation spec #{index} must be a mapping, got {spec!r}")
        if "name" not in spec:
            raise AugmentConfigError(f"augmentation spec #{index} has no 'name': {dict(spec)}")
        name = str(spec["name"])
        if name not in AUGMENTATIONS:
            valid = sorted(AUGMENTATIONS)
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise AugmentConfigError(f"unknown augmentation {name!r}{hint}; valid names: {valid}")
        fn = AUGMENTATIONS[name]
        p = spec.get("p", 1.0)
        if not _is_number(p) or not 0.0 <= float(p) <= 1.0:
            raise AugmentConfigError(f"augmentation {name!r}: p must be in [0, 1], got {p!r}")
        accepted = _params_of(fn)
        fixed: dict[str, Any] = {}
        ranges: dict[str, tuple[float, float, bool]] = {}
        for key, value in spec.items():
            if key in ("name", "p"):
                continue
            if key not in accepted:
                close = difflib.get_close_matches(key, list(accepted), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise AugmentConfigError(
                    f"augmentation {name!r} has no parameter {key!r}{hint}; "
                    f"valid parameters: {sorted(accepted)}"
                )
            if isinstance(value, (list, tuple)):
                if len(value) != 2 or not all(_is_number(v) and _is_finite(v) for v in value):
                    raise AugmentConfigError(
                        f"augmentation {name!r}: a list for {key!r} must be a numeric range "
                        f"[low, high] of finite numbers, got {value!r}"
                    )
                low, high = float(value[0]), float(value[1])
                if low > high:
                    raise AugmentConfigError(
                        f"augmentation {name!r}: range for {key!r} has low > high: {value!r}"
                    )
                default = accepted[key].default
                integer = isinstance(default, int) and not isinstance(default, bool)
                if integer and np.ceil(low) > np.floor(high):
                    raise AugmentConfigError(
                        f"augmentation {name!r}: range for integer {key!r} holds no integer: {value!r}"
                    )
                ranges[key] = (low, high, integer)
            else:
                if _is_number(value) and not _is_finite(value):
                    raise AugmentConfigError(f"augmentation {name!r}: {key} must be finite, got {value!r}")
                fixed[key] = value
        if name == "rawboost" and "params" in fixed:
            try:  # fail at build time, not mid-run
                fixed["params"] = _resolve_params(fixed["params"])
            except (TypeError, ValueError) as exc:
                raise AugmentConfigError(f"augmentation {name!r}: params: {exc}") from None
        return _Step(name, fn, float(p), fixed, ranges)

    def _try(self, index: int, step: _Step) -> None:
        """Run ``step`` on 0.1 s of a test tone, once with every range at its low end and once
        at its high end: a value the function refuses (text for a number, RawBoost algo 9, a
        negative rt60) is an AugmentConfigError naming the spec."""
        wave = (0.1 * np.sin(np.arange(max(2, self.sample_rate // 10)) * 0.3)).astype(np.float32)
        for end in (0, 1):
            kwargs = dict(step.fixed)
            for key, (low, high, integer) in step.ranges.items():
                value = (low, high)[end]
                kwargs[key] = (int(np.ceil(value)) if end == 0 else int(np.floor(value))) if integer else value
            try:
                step.fn(wave, np.random.default_rng(0), sample_rate=self.sample_rate, **kwargs)
            except (TypeError, ValueError, ArithmeticError) as exc:
                raise AugmentConfigError(f"augmentation spec #{index} ({step.name}): {exc}") from None

    def __call__(self, wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        y = np.array(wave, dtype=np.float32, copy=True)
        for step in self.steps:
            if rng.random() >= step.p:
                continue
            kwargs = dict(step.fixed)
            for key, (low, high, integer) in step.ranges.items():
                if integer:
                    kwargs[key] = int(rng.integers(int(np.ceil(low)), int(np.floor(high)) + 1))
                else:
                    kwargs[key] = float(rng.uniform(low, high))
            y = step.fn(y, rng, sample_rate=self.sample_rate, **kwargs)
        return y

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        return f"Augmenter({self.specs!r}, sample_rate={self.sample_rate})"


__all__ = [
    "AUGMENTATIONS",
    "AugmentConfigError",
    "Augmenter",
    "NOISE_COLORS",
    "RAWBOOST_ALGOS",
    "RawBoostParams",
    "add_noise",
    "band_limit",
    "colored_noise",
    "isd_noise",
    "lnl_convolutive",
    "mu_law",
    "mu_law_decode",
    "mu_law_encode",
    "resample_chain",
    "rawboost",
    "reverb",
    "ssi_noise",
    "telephone",
]
