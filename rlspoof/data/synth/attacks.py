"""Attack families of the built-in corpus: re-syntheses that each leave one kind of artifact.

Each family mimics a class of real spoofing systems (ASVspoof 2019 LA lists waveform filtering,
vocoders, neural waveform models, concatenation, ...). An attack receives the utterance's
context (script, speaker, recording channel, the bonafide rendering) and a ``strength`` in
[0, 1]: at low strength the artifact is close to inaudible, so the corpus has hard spoofs and a
detector's EER is not trivially 0. Families are registered by name; the corpus splits them into
*seen* (training) and *unseen* (out-of-domain evaluation) families.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve_toeplitz
from scipy.signal import istft, lfilter, resample_poly, stft

from rlspoof.data.synth.voice import (
    SAMPLE_RATE,
    Channel,
    Script,
    Speaker,
    Style,
    Take,
    apply_channel,
    render,
)


@dataclass
class AttackContext:
    script: Script
    speaker: Speaker
    channel: Channel
    take: Take  # the bonafide rendering of the script (dry)
    rng: np.random.Generator
    strength: float

    @property
    def recorded(self) -> np.ndarray:
        """What a microphone in the speaker's room would have picked up."""
        return apply_channel(self.take.wave, self.channel)

    def rerender(self, style: Style) -> np.ndarray:
        """The same script re-rendered in another style, through the same channel."""
        return apply_channel(render(self.script, self.speaker, self.rng, style).wave, self.channel)


@dataclass(frozen=True)
class AttackFamily:
    name: str
    system: str  # which kind of real system it stands in for
    fn: Callable[[AttackContext], np.ndarray]


ATTACKS: dict[str, AttackFamily] = {}


def attack(name: str, system: str):
    def register(fn: Callable[[AttackContext], np.ndarray]):
        ATTACKS[name] = AttackFamily(name, system, fn)
        return fn

    return register


N_FFT, HOP = 512, 128


def _stft(wave: np.ndarray) -> np.ndarray:
    return stft(wave, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary="even")[2]


def _istft(spec: np.ndarray, n: int) -> np.ndarray:
    out = istft(spec, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary=True)[1]
    return np.pad(out, (0, max(0, n - len(out))))[:n]


@attack("griffin_lim", "magnitude-only vocoder, phase rebuilt by Griffin-Lim")
def griffin_lim(ctx: AttackContext) -> np.ndarray:
    """Phase above a cut-off frequency is discarded and rebuilt by fast Griffin-Lim.

    Stronger attacks rebuild more of the band with fewer iterations.
    """
    wave = ctx.recorded
    spec = _stft(wave)
    freqs = np.linspace(0, SAMPLE_RATE / 2, spec.shape[0])
    cutoff = 4000 - 3500 * ctx.strength
    band = freqs >= cutoff
    n_iter = int(round(12 - 8 * ctx.strength))
    mag = np.abs(spec)
    phase = np.exp(2j * np.pi * ctx.rng.random(spec.shape))
    rebuilt = np.where(band[:, None], mag * phase, spec)
    previous = rebuilt
    for _ in range(n_iter):
        projected = _stft(_istft(rebuilt, len(wave)))[:, : spec.shape[1]]
        accelerated = projected + 0.99 * (projected - previous)
        previous = projected
        rebuilt = np.where(band[:, None], mag * np.exp(1j * np.angle(accelerated)), spec)
    return _istft(rebuilt, len(wave))


@attack("lpc_vocoder", "source-filter vocoder with idealised pulse/noise excitation")
def lpc_vocoder(ctx: AttackContext) -> np.ndarray:
    """LPC analysis-synthesis; the excitation moves from the true residual towards a buzzy
    impulse train (voiced) or white noise (unvoiced) as strength grows."""
    wave = ctx.recorded
    win, hop, order = 320, 160, 18
    window = np.hanning(win + 1)[:-1]  # periodic Hann: overlap-adds to one at 50 %
    out = np.zeros(len(wave) + win)
    padded = np.pad(wave, (0, win))
    f0 = np.pad(ctx.take.f0, (0, win))
    phase = 0.0
    for start in range(0, len(wave), hop):
        frame = padded[start : start + win] * window
        r = np.correlate(frame, frame, "full")[win - 1 : win + order]
        if r[0] < 1e-10:
            continue
        r[0] *= 1.0001  # white-noise correction keeps the Toeplitz system well conditioned
        a = np.concatenate([[1.0], -solve_toeplitz(r[:-1], r[1:])])
        residual = lfilter(a, [1.0], padded[start : start + win])
        frame_f0 = f0[start + hop // 2]
        if frame_f0 > 0:
            t = phase + np.cumsum(np.full(win, frame_f0 / SAMPLE_RATE))
            ideal = (np.diff(np.floor(t), prepend=np.floor(phase)) > 0).astype(float)
            phase = float(t[hop - 1])
        else:
            ideal = ctx.rng.standard_normal(win)
        ideal *= np.std(residual) / (np.std(ideal) + 1e-12)
        excitation = ctx.strength * ideal + (1 - ctx.strength) * residual
        out[start : start + win] += lfilter([1.0], a, excitation) * window
    return out[: len(wave)]


@attack("oversmoothed", "statistical parametric TTS: over-smoothed prosody and spectrum")
def oversmoothed(ctx: AttackContext) -> np.ndarray:
    """Acoustic-model over-smoothing: f0 without micro-variation, no jitter/shimmer, sluggish
    formants, and a spectrum whose frame-to-frame variance is shrunk (the global-variance
    loss that statistical parametric TTS is known for)."""
    s = ctx.strength
    style = Style(
        jitter_scale=1 - 0.9 * s,
        shimmer_scale=1 - 0.9 * s,
        breath_scale=1 - 0.9 * s,
        f0_smoothing=0.1 + 0.3 * s,
        micro_prosody=1 - s,
        coarticulation=0.04 + 0.08 * s,
    )
    wave = ctx.rerender(style)
    spec = _stft(wave)
    log_mag = np.log(np.abs(spec) + 1e-9)
    width = 1 + int(round(6 * s))
    kernel = np.ones(width) / width
    smoothed = np.apply_along_axis(lambda row: np.convolve(row, kernel, mode="same"), 1, log_mag)
    smoothed = log_mag.mean(1, keepdims=True) + (smoothed - log_mag.mean(1, keepdims=True)) * (1 - 0.3 * s)
    return _istft(np.exp(smoothed) * np.exp(1j * np.angle(spec)), len(wave))


@attack("upsample_tones", "neural vocoder with transposed-convolution upsampling tones")
def upsample_tones(ctx: AttackContext) -> np.ndarray:
    """Faint tones at multiples of fs/stride plus a frame-rate buzz, following the envelope."""
    wave = ctx.recorded
    n = len(wave)
    t = np.arange(n) / SAMPLE_RATE
    stride = int(ctx.rng.choice([4, 8, 16]))
    hop = int(ctx.rng.choice([200, 256, 300]))
    env = np.convolve(np.abs(wave), np.ones(160) / 160, mode="same")
    tones = sum(np.cos(2 * np.pi * k * SAMPLE_RATE / stride * t + ctx.rng.uniform(0, 6.28))
                for k in range(1, stride // 2))
    buzz = np.sign(np.sin(2 * np.pi * SAMPLE_RATE / hop * t))
    level = 10 ** ((-40 + 20 * ctx.strength) / 20)
    artifact = env / (env.std() + 1e-12) * (tones / np.sqrt(stride) + 0.5 * buzz)
    return wave + level * np.std(wave) * artifact


def phase_vocoder_stretch(wave: np.ndarray, rate: float) -> np.ndarray:
    """Time-stretch by ``rate`` (> 1: faster) with a phase vocoder: frames are read at
    fractional steps, magnitudes interpolated, and phases advanced by each bin's measured
    instantaneous frequency. The classic tool of prosody modification; its artifact is
    "phasiness", phase that no longer matches the waveform's structure."""
    spec = _stft(wave)
    n_bins, n_frames = spec.shape
    expected = 2 * np.pi * HOP * np.arange(n_bins) / N_FFT  # phase advance per hop, per bin
    steps = np.arange(0, n_frames - 1, rate)
    out = np.empty((n_bins, len(steps)), dtype=complex)
    phase = np.angle(spec[:, 0])
    for i, step in enumerate(steps):
        left, frac = int(step), step - int(step)
        mag = (1 - frac) * np.abs(spec[:, left]) + frac * np.abs(spec[:, left + 1])
        out[:, i] = mag * np.exp(1j * phase)
        deviation = np.angle(spec[:, left + 1]) - np.angle(spec[:, left]) - expected
        phase = phase + expected + (deviation - 2 * np.pi * np.round(deviation / (2 * np.pi)))
    return _istft(out, int(round(len(wave) / rate)))


def pitch_shift(wave: np.ndarray, semitones: float) -> np.ndarray:
    """Pitch moved by ``semitones``, duration kept: resampling (pitch and tempo move together)
    followed by a phase-vocoder stretch back to the original length."""
    ratio = 2 ** (semitones / 12)
    faster = resample_poly(wave, 1000, int(round(1000 * ratio)))
    stretched = phase_vocoder_stretch(faster, 1 / ratio)
    return np.pad(stretched, (0, max(0, len(wave) - len(stretched))))[: len(wave)]


@attack("frame_splice", "unit-selection concatenation: prosody-modified units, pitch jumps at joins")
def frame_splice(ctx: AttackContext) -> np.ndarray:
    """Every other unit (60-200 ms) comes from a copy of the recording whose pitch was moved by
    signal processing, as unit-selection systems modify their units' prosody (PSOLA, phase
    vocoders), and joins are cross-faded. Stronger attacks shift further, with shorter fades.

    Corpus version 5: the modified units are pitch-shifted by DSP. Up to version 4 they were a
    clean re-rendering at another pitch, so the spliced audio held no processing artifact at
    all and every detector trained on the seen families scored this family at chance (47 %),
    which makes it useless for measuring how much generalisation a fine-tuning method keeps.
    """
    wave = ctx.recorded
    semitones = float(ctx.rng.choice([-1, 1]) * (0.3 + 1.2 * ctx.strength))
    other = pitch_shift(wave, semitones)
    fade = max(8, int((0.012 - 0.011 * ctx.strength) * SAMPLE_RATE))
    out = wave.copy()
    pos, use_other = 0, False
    while pos < len(wave):
        end = min(len(wave), pos + int(ctx.rng.uniform(0.06, 0.2) * SAMPLE_RATE))
        if use_other:
            ramp = np.ones(end - pos)
            k = min(fade, len(ramp) // 2)
            ramp[:k] = np.linspace(0, 1, k)
            ramp[len(ramp) - k :] = np.linspace(1, 0, k)
            out[pos:end] = ramp * other[pos:end] + (1 - ramp) * wave[pos:end]
        use_other = not use_other
        pos = end
    return out


@attack("bandlimit_upsample", "waveform generated at a low rate, then upsampled")
def bandlimit_upsample(ctx: AttackContext) -> np.ndarray:
    wave = ctx.recorded
    low_rate = int(ctx.rng.choice([8000, 11025, 12000]) if ctx.strength > 0.5 else 12000)
    down = resample_poly(wave, low_rate, SAMPLE_RATE)
    up = resample_poly(down, SAMPLE_RATE, low_rate)[: len(wave)]
    up = np.pad(up, (0, len(wave) - len(up)))
    # Crude bandwidth extension: shaped noise fills the empty band, as BWE post-nets do.
    fill = np.diff(ctx.rng.standard_normal(len(wave)), prepend=0.0)
    env = np.convolve(np.abs(up), np.ones(320) / 320, mode="same")
    return up + fill * env * 10 ** ((-30 + 10 * (1 - ctx.strength)) / 20)


@attack("codec_laundering", "spoof laundered through a low-bit-rate transform codec")
def codec_laundering(ctx: AttackContext) -> np.ndarray:
    """Transform-codec quantisation: weak bins zeroed (spectral holes), levels quantised."""
    wave = lpc_vocoder(AttackContext(**{**ctx.__dict__, "strength": 0.3 * ctx.strength}))
    spec = _stft(wave)
    mag = np.abs(spec)
    floor_db = 50 - 25 * ctx.strength
    keep = 20 * np.log10(mag + 1e-12) > 20 * np.log10(mag.max(0, keepdims=True) + 1e-12) - floor_db
    step_db = 1.0 + 5.0 * ctx.strength
    q_db = np.round(20 * np.log10(mag + 1e-12) / step_db) * step_db
    coded = np.where(keep, 10 ** (q_db / 20) * np.exp(1j * np.angle(spec)), 0)
    return _istft(coded, len(wave))


@attack("mel_inversion", "mel-spectrogram inversion: fine spectral detail smeared")
def mel_inversion(ctx: AttackContext) -> np.ndarray:
    wave = ctx.recorded
    spec = _stft(wave)
    n_mels = int(round(64 - 48 * ctx.strength))
    fb = _mel_matrix(n_mels, spec.shape[0])
    mag = np.abs(spec)
    smeared = np.linalg.pinv(fb) @ (fb @ mag)
    smeared = np.maximum(smeared, 0)
    smeared *= mag.sum(0, keepdims=True) / (smeared.sum(0, keepdims=True) + 1e-12)
    return _istft(smeared * np.exp(1j * np.angle(spec)), len(wave))


def _mel_matrix(n_mels: int, n_bins: int) -> np.ndarray:
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    hz = lambda m: 700 * (10 ** (m / 2595) - 1)  # noqa: E731
    edges = hz(np.linspace(mel(0), mel(SAMPLE_RATE / 2), n_mels + 2))
    bins = np.linspace(0, SAMPLE_RATE / 2, n_bins)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    return np.maximum(0, np.minimum(rising, falling))
