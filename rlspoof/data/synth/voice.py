"""A small source-filter speech synthesiser: the "bonafide" voice of the built-in corpus.

Why a synthesiser and not recordings: real corpora cannot be downloaded on our machines, and a
detector test bed must have the properties that make real anti-spoofing hard: many speakers
with their own voices, natural micro-variation (jitter, shimmer, breath, prosody), room and
microphone colouring. A Klatt-style formant synthesiser gives all of that from a seed, in
milliseconds per utterance, with every generation parameter known, so attacks can re-synthesise
the *same* utterance and differ from it only by their artifact.

Signal path: glottal pulses (Rosenberg shape, per-cycle jitter and shimmer) + aspiration noise
-> cascade of five formant resonators with time-varying targets (vowels, coarticulation)
+ parallel frication noise -> lip radiation -> room impulse response and microphone response.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from scipy.signal import butter, fftconvolve, sosfilt

try:
    # The in-place kernel behind ``scipy.signal.sosfilt``. The formant cascade changes its
    # coefficients every 80 samples, and the public wrapper's argument checks cost ~20x the
    # filtering itself at that size: most of the corpus build time. Same arithmetic either way.
    from scipy.signal._sosfilt import _sosfilt as _sosfilt_inplace
except ImportError:  # a scipy that moved its private kernel: the public path, same numbers
    _sosfilt_inplace = None

SAMPLE_RATE = 16_000
FRAME = 80  # 5 ms control-rate hop for formant and amplitude tracks

# Adult male formant targets (Hz), F1-F3, after Peterson & Barney; scaled per speaker.
VOWELS = np.array(
    [
        [270, 2290, 3010],  # i
        [390, 1990, 2550],  # I
        [530, 1840, 2480],  # e
        [660, 1720, 2410],  # ae
        [730, 1090, 2440],  # a
        [570, 840, 2410],  # o
        [440, 1020, 2240],  # U
        [300, 870, 2240],  # u
        [640, 1190, 2390],  # ^
    ],
    dtype=np.float64,
)
FORMANT_BANDWIDTHS = np.array([70.0, 100.0, 140.0, 200.0, 260.0])
# Fricative noise bands (centre Hz, bandwidth Hz): s, sh, f, h-like
FRICATIVES = np.array([[6000, 2500], [3200, 1800], [4500, 5000], [1500, 2500]], dtype=np.float64)


@dataclass(frozen=True)
class Speaker:
    """Everything that makes one synthetic voice and its recording set-up recognisable."""

    speaker_id: str
    sex: str
    f0_mean: float  # Hz
    f0_range: float  # semitones (std of the phrase contour)
    formant_scale: float  # vocal-tract length: >1 shorter tract, higher formants
    jitter: float  # relative std of glottal period
    shimmer: float  # relative std of pulse amplitude
    breathiness: float  # aspiration noise relative to voicing
    open_quotient: float  # glottal open phase as a fraction of the period
    rate: float  # speaking rate factor (>1 faster)
    rt60: float  # room reverberation time (s)
    drr_db: float  # direct-to-reverberant ratio
    highpass_hz: float  # microphone low cut
    lowpass_hz: float  # microphone high roll-off


def sample_speaker(rng: np.random.Generator, speaker_id: str) -> Speaker:
    sex = "F" if rng.random() < 0.5 else "M"
    female = sex == "F"
    return Speaker(
        speaker_id=speaker_id,
        sex=sex,
        f0_mean=float(rng.uniform(165, 255) if female else rng.uniform(85, 150)),
        f0_range=float(rng.uniform(1.5, 4.0)),
        formant_scale=float(rng.uniform(1.08, 1.22) if female else rng.uniform(0.9, 1.04)),
        jitter=float(rng.uniform(0.004, 0.016)),
        shimmer=float(rng.uniform(0.03, 0.10)),
        breathiness=float(rng.uniform(0.02, 0.12) * (1.5 if female else 1.0)),
        open_quotient=float(rng.uniform(0.5, 0.75)),
        rate=float(rng.uniform(0.85, 1.2)),
        rt60=float(rng.uniform(0.05, 0.4)),
        drr_db=float(rng.uniform(4, 16)),
        highpass_hz=float(rng.uniform(50, 160)),
        lowpass_hz=float(rng.uniform(6200, 7800)),
    )


@dataclass(frozen=True)
class Script:
    """What is said and how: segment sequence plus prosody, independent of the voice rendering
    details, so one script can be rendered several times (bonafide, or by an attack)."""

    kinds: np.ndarray  # per segment: 0 pause, 1 vowel, 2 fricative, 3 stop burst
    durations: np.ndarray  # seconds
    vowel_ids: np.ndarray  # index into VOWELS (vowels) or FRICATIVES (fricatives)
    accents: np.ndarray  # (n, 3): time fraction, height (semitones), width (fraction)
    declination: float  # semitone drop over the utterance


def sample_script(rng: np.random.Generator, duration: float, rate: float) -> Script:
    kinds, durs, ids = [], [], []
    total = 0.0
    kinds.append(0)
    durs.append(rng.uniform(0.05, 0.15))
    ids.append(0)
    total += durs[-1]
    while total < duration:
        if rng.random() < 0.55:  # onset consonant
            kind = 2 if rng.random() < 0.6 else 3
            kinds.append(kind)
            durs.append(rng.uniform(0.05, 0.12) if kind == 2 else rng.uniform(0.02, 0.04))
            ids.append(int(rng.integers(len(FRICATIVES))))
        kinds.append(1)
        durs.append(rng.uniform(0.08, 0.24) / rate)
        ids.append(int(rng.integers(len(VOWELS))))
        if rng.random() < 0.18:  # word / phrase pause
            kinds.append(0)
            durs.append(rng.uniform(0.04, 0.25))
            ids.append(0)
        total = float(np.sum(durs))
    n_acc = int(rng.integers(1, 4))
    accents = np.stack(
        [rng.uniform(0.1, 0.9, n_acc), rng.normal(0, 1, n_acc), rng.uniform(0.05, 0.2, n_acc)], 1
    )
    return Script(
        kinds=np.asarray(kinds),
        durations=np.asarray(durs),
        vowel_ids=np.asarray(ids),
        accents=accents,
        declination=float(rng.uniform(1.0, 4.0)),
    )


@dataclass(frozen=True)
class Style:
    """Rendering knobs that attacks turn: a statistical-parametric TTS over-smooths prosody and
    loses micro-variation; a concatenative system renders twice and splices."""

    jitter_scale: float = 1.0
    shimmer_scale: float = 1.0
    breath_scale: float = 1.0
    f0_smoothing: float = 0.0  # seconds of extra smoothing on the f0 contour
    f0_shift: float = 0.0  # semitones
    micro_prosody: float = 1.0  # scale of fast f0 wobble
    coarticulation: float = 0.03  # seconds of formant-track smoothing


@dataclass
class Take:
    """One rendering: dry speech (before room/mic), its per-sample f0 (0 where unvoiced)."""

    wave: np.ndarray
    f0: np.ndarray


def _smooth(track: np.ndarray, width: int) -> np.ndarray:
    if width <= 1:
        return track
    kernel = np.hanning(width + 2)[1:-1]
    kernel /= kernel.sum()
    pad = width // 2
    padded = np.pad(track, [(pad, width - 1 - pad)] + [(0, 0)] * (track.ndim - 1), mode="edge")
    if track.ndim == 1:
        return np.convolve(padded, kernel, mode="valid")
    return np.stack([np.convolve(padded[:, i], kernel, mode="valid") for i in range(track.shape[1])], 1)


def _control_tracks(script: Script, speaker: Speaker, style: Style, n_frames: int, rng):
    """Per 5-ms frame: formants (5), voicing amp, frication amp, frication band, f0."""
    frame_s = FRAME / SAMPLE_RATE
    seg_frames = np.maximum(1, np.round(script.durations / frame_s).astype(int))
    seg_index = np.repeat(np.arange(len(seg_frames)), seg_frames)[:n_frames]
    seg_index = np.pad(seg_index, (0, n_frames - len(seg_index)), mode="edge")
    kinds = script.kinds[seg_index]
    ids = script.vowel_ids[seg_index]

    # Vowel targets held through consonants (coarticulation), then smoothed.
    vowel_of = np.where(kinds == 1, ids, -1)
    last = 4
    for i in range(n_frames):
        if vowel_of[i] < 0:
            vowel_of[i] = last
        last = vowel_of[i]
    f123 = VOWELS[vowel_of] * speaker.formant_scale
    f45 = np.tile(np.array([3500.0, 4500.0]) * speaker.formant_scale, (n_frames, 1))
    formants = np.concatenate([f123, f45], 1)
    formants = _smooth(formants, int(style.coarticulation / frame_s))
    formants = np.minimum(formants, SAMPLE_RATE / 2 - 400)

    voicing = (kinds == 1).astype(float) + 0.25 * (kinds == 2) * (ids == 3)
    voicing = _smooth(voicing, 5)
    frication = ((kinds == 2).astype(float) * 0.35 + (kinds == 3).astype(float) * 0.8)
    frication = _smooth(frication, 3)
    fric_band = FRICATIVES[np.where(kinds >= 2, ids, 0) % len(FRICATIVES)]

    # f0: declination + accents + slow wander + micro-prosody.
    t = np.linspace(0, 1, n_frames)
    semis = -script.declination * t
    for pos, height, width in script.accents:
        semis += speaker.f0_range * height * np.exp(-0.5 * ((t - pos) / width) ** 2)
    wander = _smooth(rng.normal(0, 1, n_frames), 40) * 6.0
    micro = _smooth(rng.normal(0, 1, n_frames), 4) * 0.6 * style.micro_prosody
    semis = semis + wander + micro + style.f0_shift
    if style.f0_smoothing > 0:
        semis = _smooth(semis, int(style.f0_smoothing / frame_s))
    f0 = speaker.f0_mean * 2.0 ** (semis / 12.0)
    return formants, voicing, frication, fric_band, f0


def _glottal_source(f0_frames, voicing_frames, n, speaker: Speaker, style: Style, rng):
    """Pulse train of Rosenberg glottal-flow pulses with per-cycle jitter and shimmer."""
    f0 = np.interp(np.arange(n), np.arange(len(f0_frames)) * FRAME, f0_frames)
    voicing = np.interp(np.arange(n), np.arange(len(voicing_frames)) * FRAME, voicing_frames)
    source = np.zeros(n + SAMPLE_RATE // 40)
    jitter = speaker.jitter * style.jitter_scale
    shimmer = speaker.shimmer * style.shimmer_scale
    pos = float(rng.uniform(0, SAMPLE_RATE / f0[0]))
    while pos < n:
        i = int(pos)
        period = SAMPLE_RATE / f0[i] * (1.0 + jitter * rng.standard_normal())
        period = max(period, 20.0)
        amp = voicing[i] * (1.0 + shimmer * rng.standard_normal())
        if amp > 0.01:
            open_len = max(4, int(period * speaker.open_quotient))
            rise = int(open_len * 0.65)
            fall = open_len - rise
            pulse = np.concatenate(
                [0.5 * (1 - np.cos(np.pi * np.arange(rise) / rise)),
                 np.cos(0.5 * np.pi * np.arange(fall) / fall)]
            )
            source[i : i + open_len] += amp * pulse
        pos += period
    source = source[:n]
    voiced_f0 = np.where(voicing > 0.05, f0, 0.0)
    return source, voiced_f0


def render(script: Script, speaker: Speaker, rng: np.random.Generator, style: Style = Style()) -> Take:
    """Dry speech for ``script`` in ``speaker``'s voice. Deterministic given ``rng``'s state."""
    n = int(round(script.durations.sum() * SAMPLE_RATE))
    n_frames = -(-n // FRAME) + 1
    formants, voicing, frication, fric_band, f0_frames = _control_tracks(
        script, speaker, style, n_frames, rng
    )
    flow, f0 = _glottal_source(f0_frames, voicing, n, speaker, style, rng)
    # Aspiration: noise modulated by the glottal flow (turbulence while the glottis is open).
    breath = speaker.breathiness * style.breath_scale
    excitation = np.diff(flow, prepend=0.0) * 8.0 + breath * flow * rng.standard_normal(n)

    # Cascade of five resonators, coefficients updated every frame; DF2T state carried across.
    voiced = _time_varying_cascade(excitation, _resonator_sos(formants[: -(-n // FRAME)]))

    # Frication: band-passed noise per fricative type, parallel branch.
    noise = rng.standard_normal(n)
    fric = np.zeros(n)
    fric_env = np.interp(np.arange(n), np.arange(n_frames) * FRAME, frication)
    band_per_sample = np.repeat(np.arange(n_frames), FRAME)[:n]
    centres = fric_band[band_per_sample, 0]
    for centre, width in FRICATIVES:
        mask = (centres == centre) & (fric_env > 1e-3)
        if not mask.any():
            continue
        lo, hi = max(100.0, centre - width / 2), min(SAMPLE_RATE / 2 - 200, centre + width / 2)
        fric += np.where(mask, sosfilt(_band_sos(lo, hi), noise), 0.0)
    fric *= fric_env

    active = fric[fric_env > 0.05]
    fric_scale = np.std(active) if active.size > 1 else 1.0
    speech = voiced / (np.std(voiced) + 1e-9) + fric / (fric_scale + 1e-9) * 0.35
    speech = np.diff(speech, prepend=0.0) * 0.5 + speech * 0.5  # lip radiation (+6 dB/oct tilt)
    return Take(wave=_normalise(speech), f0=f0)


def _resonator_sos(freqs: np.ndarray) -> np.ndarray:
    """Unity-DC-gain two-pole resonators (Klatt 1980) as second-order sections:
    (..., 5) formant frequencies -> (..., 5, 6) sections."""
    r = np.exp(-np.pi * FORMANT_BANDWIDTHS / SAMPLE_RATE)
    theta = 2 * np.pi * freqs / SAMPLE_RATE
    a1 = -2 * r * np.cos(theta)
    a2 = np.broadcast_to(r * r, a1.shape)
    sos = np.zeros((*freqs.shape, 6))
    sos[..., 0] = 1 + a1 + a2
    sos[..., 3] = 1.0
    sos[..., 4] = a1
    sos[..., 5] = a2
    return sos


def _time_varying_cascade(x: np.ndarray, sos_per_frame: np.ndarray) -> np.ndarray:
    """Filter ``x`` frame by frame (FRAME samples) with frame k's sections (n_frames, 5, 6),
    carrying the filter state across frames."""
    if _sosfilt_inplace is None:
        out, zi = np.empty(len(x)), np.zeros((sos_per_frame.shape[1], 2))
        for k, sos in enumerate(sos_per_frame):
            out[k * FRAME : (k + 1) * FRAME], zi = sosfilt(sos, x[k * FRAME : (k + 1) * FRAME], zi=zi)
        return out
    out = np.array(x, dtype=np.float64)
    zi = np.zeros((1, sos_per_frame.shape[1], 2))
    for k, sos in enumerate(sos_per_frame):
        frame = out[None, k * FRAME : (k + 1) * FRAME].copy()
        _sosfilt_inplace(sos, frame, zi)
        out[k * FRAME : (k + 1) * FRAME] = frame[0]
    return out


@lru_cache(maxsize=64)
def _band_sos(lo: float, hi: float) -> np.ndarray:
    return butter(2, [lo, hi], btype="band", fs=SAMPLE_RATE, output="sos")


@dataclass(frozen=True)
class Channel:
    """Room and microphone of one recording session."""

    impulse_response: np.ndarray
    mic_sos: np.ndarray


def make_channel(speaker: Speaker, rng: np.random.Generator) -> Channel:
    length = int(min(speaker.rt60, 0.3) * SAMPLE_RATE)
    t = np.arange(length) / SAMPLE_RATE
    tail = rng.standard_normal(length) * np.exp(-6.9 * t / speaker.rt60)
    tail *= 10 ** (-speaker.drr_db / 20) / (np.sqrt(np.sum(tail**2)) + 1e-9)
    ir = tail
    ir[0] = 1.0
    hp = butter(2, speaker.highpass_hz, btype="high", fs=SAMPLE_RATE, output="sos")
    lp = butter(4, speaker.lowpass_hz, btype="low", fs=SAMPLE_RATE, output="sos")
    return Channel(impulse_response=ir, mic_sos=np.concatenate([hp, lp]))


def apply_channel(wave: np.ndarray, channel: Channel) -> np.ndarray:
    wet = fftconvolve(wave, channel.impulse_response)[: len(wave)]
    return _normalise(sosfilt(channel.mic_sos, wet))


def add_noise_floor(wave: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Pink-ish background at ``snr_db`` below the speech: every real recording has one."""
    white = rng.standard_normal(len(wave))
    pink = sosfilt(butter(1, 800, btype="low", fs=SAMPLE_RATE, output="sos"), white) + 0.2 * white
    pink *= np.std(wave) / (np.std(pink) + 1e-12) * 10 ** (-snr_db / 20)
    return wave + pink


def _normalise(wave: np.ndarray, rms: float = 0.05) -> np.ndarray:
    return wave * (rms / (np.sqrt(np.mean(wave**2)) + 1e-12))


def with_style(style: Style, **changes) -> Style:
    return replace(style, **changes)
