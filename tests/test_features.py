"""LFCC / MFCC front-end: shapes, filterbank geometry, deltas, silence, utterance stats."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import get_window

from rlspoof.data.features import (
    deltas,
    hz_to_mel,
    lfcc,
    linear_filterbank,
    mel_filterbank,
    mel_to_hz,
    mfcc,
    utterance_stats,
)

SR = 16000
N_FFT = 512
BANKS = {"linear": linear_filterbank, "mel": mel_filterbank}
EXTRACTORS = {"lfcc": lfcc, "mfcc": mfcc}


def tone(freq: float, seconds: float = 1.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return amp * np.sin(2 * np.pi * freq * t)


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("name", EXTRACTORS)
def test_shapes_for_one_second(name):
    extract = EXTRACTORS[name]
    wave = np.random.default_rng(0).normal(0, 0.1, SR)
    frames = 1 + (SR - 320) // 160  # 99: no centring
    assert extract(wave).shape == (frames, 60)
    assert extract(wave, with_deltas=False).shape == (frames, 20)
    assert extract(wave, n_filters=40, n_ceps=13).shape == (frames, 39)
    assert extract(wave, with_energy=True).shape == (frames, 60)
    assert extract(wave).dtype == np.float64
    assert np.all(np.isfinite(extract(wave)))


def test_lfcc_and_mfcc_differ():
    wave = np.random.default_rng(1).normal(0, 0.1, SR)
    assert not np.allclose(lfcc(wave), mfcc(wave))


def test_short_wave_is_padded_to_one_frame():
    assert lfcc(np.full(100, 0.1)).shape == (1, 60)


def test_with_energy_replaces_c0_only():
    wave = np.random.default_rng(2).normal(0, 0.1, SR)
    plain = lfcc(wave, with_deltas=False)
    energy = lfcc(wave, with_deltas=False, with_energy=True)
    np.testing.assert_allclose(plain[:, 1:], energy[:, 1:])
    assert not np.allclose(plain[:, 0], energy[:, 0])


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"n_ceps": 21}, "n_ceps"),
        ({"win_length": 600}, "win_length"),
        ({"hop_length": 0}, "hop_length"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lfcc(np.zeros(SR), **kwargs)


@pytest.mark.parametrize(
    "wave,match",
    [(np.zeros(0), "empty"), (np.zeros((2, 100)), "1-D"), (np.array([0.0, np.nan] * 200), "NaN")],
)
def test_bad_waves_raise(wave, match):
    with pytest.raises(ValueError, match=match):
        mfcc(wave)


# --------------------------------------------------------------------------- filterbanks


@pytest.mark.parametrize("kind", BANKS)
@pytest.mark.parametrize("n_filters", [20, 40, 70])
def test_filterbank_geometry(kind, n_filters):
    bank = BANKS[kind](n_filters, N_FFT, SR)
    assert bank.shape == (n_filters, N_FFT // 2 + 1)
    assert np.all(bank >= 0) and np.all(bank <= 1)
    assert np.all(bank.sum(axis=1) > 0)
    # Covers 0 .. Nyquist: triangles have their feet at 0 Hz and at Nyquist, so every bin strictly
    # inside gets some weight, the first filter starts at bin 1 and the last ends at N/2 - 1.
    assert np.all(bank.sum(axis=0)[1:-1] > 0)
    assert bank[0, 1] > 0
    assert bank[-1, N_FFT // 2 - 1] > 0
    # Filter centres increase.
    assert np.all(np.diff(np.argmax(bank, axis=1)) >= 0)


def test_linear_filters_are_equally_spaced_and_mel_filters_widen():
    lin = linear_filterbank(20, N_FFT, SR)
    widths = np.count_nonzero(lin, axis=1)
    assert widths.max() - widths.min() <= 1
    mel = np.count_nonzero(mel_filterbank(20, N_FFT, SR), axis=1)
    assert mel[-1] > 4 * mel[0]


def test_mel_scale_is_htk():
    assert hz_to_mel(700.0) == pytest.approx(2595.0 * np.log10(2.0))
    assert hz_to_mel(1000.0) == pytest.approx(1000.0, abs=0.5)
    f = np.array([0.0, 123.0, 4000.0, 8000.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f)), f, atol=1e-9)


def test_too_many_filters_for_fft_raises():
    with pytest.raises(ValueError, match="covers no FFT bin"):
        linear_filterbank(600, N_FFT, SR)
    with pytest.raises(ValueError, match="covers no FFT bin"):
        mel_filterbank(128, 256, SR)


@pytest.mark.parametrize("kind", BANKS)
@pytest.mark.parametrize("freq", [250.0, 1000.0, 2345.0, 5000.0, 7300.0])
def test_tone_peaks_in_filter_covering_its_frequency(kind, freq):
    bank = BANKS[kind](20, N_FFT, SR)
    # Power spectrum of one Hamming-windowed frame, computed independently of the module.
    frame = tone(freq)[:320] * get_window("hamming", 320)
    power = np.abs(np.fft.rfft(frame, n=N_FFT)) ** 2
    energies = bank @ power
    # The filter "covering" f: the one with the largest weight at f (linear interpolation
    # between the bins around f).
    bin_hz = np.arange(N_FFT // 2 + 1) * SR / N_FFT
    weight_at_f = np.array([np.interp(freq, bin_hz, row) for row in bank])
    assert weight_at_f.max() > 0
    assert np.argmax(energies) == np.argmax(weight_at_f)


# --------------------------------------------------------------------------- deltas / silence


@pytest.mark.parametrize("name", EXTRACTORS)
@pytest.mark.parametrize(
    "wave",
    [np.full(SR, 0.25), tone(100.0)],  # DC, and a 100 Hz tone whose period is exactly one hop
    ids=["dc", "hop-periodic-tone"],
)
def test_deltas_of_stationary_signal_are_zero(name, wave):
    feats = EXTRACTORS[name](wave)
    static, d1, d2 = feats[:, :20], feats[:, 20:40], feats[:, 40:]
    assert np.ptp(static, axis=0).max() < 1e-6  # every frame identical
    assert np.abs(d1).max() < 1e-6
    assert np.abs(d2).max() < 1e-6


def test_delta_regression_formula():
    ramp = np.arange(10, dtype=float)[:, None] * np.array([[1.0, -2.0]])
    d = deltas(ramp)
    # Slope is recovered exactly away from the edges (+-2 frames); edge padding flattens it.
    np.testing.assert_allclose(d[2:-2], np.tile([[1.0, -2.0]], (6, 1)))
    np.testing.assert_allclose(d[0], [0.5, -1.0])  # (1*(1-0) + 2*(2-0)) / 10


@pytest.mark.parametrize("name", EXTRACTORS)
@pytest.mark.parametrize(
    "wave",
    [np.zeros(SR), np.full(SR, 1e-30), np.random.default_rng(3).normal(0, 1e-9, SR)],
    ids=["digital-silence", "denormal-dc", "near-silent-noise"],
)
def test_near_silent_input_is_finite(name, wave):
    for kwargs in ({}, {"with_energy": True}):
        feats = EXTRACTORS[name](wave, **kwargs)
        assert np.all(np.isfinite(feats))


# --------------------------------------------------------------------------- utterance stats


def test_utterance_stats():
    feats = lfcc(np.random.default_rng(4).normal(0, 0.1, SR))
    stats = utterance_stats(feats)
    assert stats.shape == (2 * feats.shape[1],)
    np.testing.assert_allclose(stats[:60], feats.mean(axis=0))
    np.testing.assert_allclose(stats[60:], feats.std(axis=0))
    single = utterance_stats(feats[:1])
    assert np.all(single[60:] == 0)


@pytest.mark.parametrize("bad", [np.zeros((0, 60)), np.zeros(60)])
def test_utterance_stats_rejects_bad_shapes(bad):
    with pytest.raises(ValueError):
        utterance_stats(bad)
