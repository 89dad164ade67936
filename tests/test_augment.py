"""Tests for rlspoof.data.augment, channels and rawboost: each test checks the property its name
promises."""

from __future__ import annotations

import re

import numpy as np
import pytest

from rlspoof.data.augment import AUGMENTATIONS, AugmentConfigError, Augmenter
from rlspoof.data.channels import (
    add_noise,
    band_limit,
    mu_law,
    mu_law_encode,
    resample_chain,
    reverb,
)
from rlspoof.data.rawboost import (
    RAWBOOST_ALGOS,
    RawBoostParams,
    isd_noise,
    lnl_convolutive,
    multiband_filter,
    rawboost,
    ssi_noise,
)

SR = 16_000


def _speechlike(seed: int = 0, n: int = SR) -> np.ndarray:
    """1 s of a sine mixture (incl. content above 4 kHz) plus a little noise, peak ~0.8."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    x = sum(
        a * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
        for a, f in [(0.4, 220.0), (0.25, 1250.0), (0.15, 3100.0), (0.1, 5200.0)]
    )
    x = x + 0.02 * rng.standard_normal(n)
    return (0.8 * x / np.max(np.abs(x))).astype(np.float32)


def _snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    c = clean.astype(np.float64)
    d = noisy.astype(np.float64) - c
    return float(10 * np.log10(np.mean(c**2) / np.mean(d**2)))


def _band_power(x: np.ndarray, lo: float, hi: float) -> float:
    """Mean power spectral density of ``x`` between ``lo`` and ``hi`` Hz (Hann-windowed FFT)."""
    spec = np.abs(np.fft.rfft(x.astype(np.float64) * np.hanning(x.size))) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / SR)
    return float(spec[(freqs >= lo) & (freqs < hi)].mean())


WAVE = _speechlike()


# --- shape / dtype / finiteness ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_every_registered_augmentation_keeps_shape_dtype_and_is_finite(name):
    out = AUGMENTATIONS[name](WAVE, np.random.default_rng(1), sample_rate=SR)
    assert out.dtype == np.float32
    assert out.shape == WAVE.shape
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize("algo", RAWBOOST_ALGOS)
def test_every_rawboost_algo_keeps_shape_dtype_and_is_finite(algo):
    out = rawboost(WAVE, np.random.default_rng(algo), algo=algo, sample_rate=SR)
    assert out.dtype == np.float32
    assert out.shape == WAVE.shape
    assert np.all(np.isfinite(out))
    assert not np.array_equal(out, WAVE)


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_silent_and_short_input_stays_finite(name):
    for x in (np.zeros(SR // 4, dtype=np.float32), WAVE[:7]):
        out = AUGMENTATIONS[name](x, np.random.default_rng(0), sample_rate=SR)
        assert out.dtype == np.float32 and out.shape == x.shape
        assert np.all(np.isfinite(out))


def test_rawboost_silent_input_stays_silent_for_every_algo():
    silent = np.zeros(SR // 4, dtype=np.float32)
    for algo in RAWBOOST_ALGOS:
        out = rawboost(silent, np.random.default_rng(algo), algo=algo)
        assert np.all(out == 0.0)


# --- determinism -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn",
    [
        lambda w, r: rawboost(w, r, algo=4),
        lambda w, r: rawboost(w, r, algo=8),
        lambda w, r: add_noise(w, r, snr_db=10.0, color="pink"),
    ],
    ids=["rawboost4", "rawboost8", "noise"],
)
def test_same_seed_same_output_different_seed_different_output(fn):
    a = fn(WAVE, np.random.default_rng(123))
    b = fn(WAVE, np.random.default_rng(123))
    c = fn(WAVE, np.random.default_rng(124))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_augmentations_do_not_modify_their_input():
    x = WAVE.copy()
    for algo in RAWBOOST_ALGOS:
        rawboost(x, np.random.default_rng(0), algo=algo)
    for fn in AUGMENTATIONS.values():
        fn(x, np.random.default_rng(0))
    np.testing.assert_array_equal(x, WAVE)


# --- additive noise ----------------------------------------------------------------------------


@pytest.mark.parametrize("color", ["white", "pink", "brown"])
@pytest.mark.parametrize("snr", [0.0, 7.5, 30.0])
def test_add_noise_hits_target_snr_for_generated_colors(color, snr):
    out = add_noise(WAVE, np.random.default_rng(5), snr_db=snr, color=color)
    assert abs(_snr_db(WAVE, out) - snr) < 0.1


@pytest.mark.parametrize("noise_len", [SR // 3, 2 * SR])  # tiled, cropped
def test_add_noise_hits_target_snr_for_given_noise_array(noise_len):
    noise = np.random.default_rng(9).uniform(-1, 1, noise_len).astype(np.float32)
    out = add_noise(WAVE, np.random.default_rng(5), snr_db=12.0, noise=noise)
    assert out.shape == WAVE.shape
    assert abs(_snr_db(WAVE, out) - 12.0) < 0.1


def test_pink_noise_has_more_low_than_high_frequency_energy():
    out = add_noise(WAVE, np.random.default_rng(2), snr_db=0.0, color="pink")
    noise = out.astype(np.float64) - WAVE
    assert _band_power(noise, 50, 500) > 10 * _band_power(noise, 5000, 7900)


def test_add_noise_rejects_unknown_color():
    with pytest.raises(ValueError, match="purple"):
        add_noise(WAVE, np.random.default_rng(0), snr_db=10, color="purple")


# --- RawBoost components -----------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_isd_changes_a_small_nonzero_fraction_of_samples(seed):
    p = RawBoostParams()
    out = isd_noise(WAVE, np.random.default_rng(seed), params=p)
    frac = np.mean(out != WAVE)
    assert 0.0 < frac <= p.P / 100.0 + 0.005


@pytest.mark.parametrize("seed", range(5))
def test_ssi_snr_lies_within_configured_range(seed):
    p = RawBoostParams()
    out = ssi_noise(WAVE, np.random.default_rng(seed), params=p)
    assert p.SNRmin - 0.05 <= _snr_db(WAVE, out) <= p.SNRmax + 0.05


def test_ssi_respects_custom_snr_range():
    out = ssi_noise(WAVE, np.random.default_rng(0), params={"SNRmin": 20.0, "SNRmax": 20.0})
    assert abs(_snr_db(WAVE, out) - 20.0) < 0.05


@pytest.mark.parametrize("seed", range(3))
def test_lnl_differs_from_input_but_stays_correlated_and_normalised(seed):
    out = lnl_convolutive(WAVE, np.random.default_rng(seed))
    assert not np.allclose(out, WAVE / np.max(np.abs(WAVE)), atol=1e-3)
    assert np.corrcoef(out, WAVE)[0, 1] > 0.3  # pure noise would give ~0
    assert np.isclose(np.max(np.abs(out)), 1.0, atol=1e-6)


def test_multiband_filter_never_amplifies():
    # regression: firwin's DC normalisation blew short stop-DC filters up by 100x
    p = RawBoostParams()
    for seed in range(200):
        b = multiband_filter(np.random.default_rng(seed), p, SR)
        assert np.abs(np.fft.rfft(b, 4096)).max() < 1.1


def test_rawboost_params_validation_and_unknown_field():
    with pytest.raises(ValueError, match="minF"):
        RawBoostParams(minF=5000, maxF=100)
    with pytest.raises(ValueError, match="nbands"):
        rawboost(WAVE, np.random.default_rng(0), algo=1, params={"nbands": 3})
    with pytest.raises(ValueError, match="algo"):
        rawboost(WAVE, np.random.default_rng(0), algo=9)


def test_rawboost_works_at_8khz_with_maxf_clipped():
    x = WAVE[::2].copy()
    for algo in RAWBOOST_ALGOS:
        out = rawboost(x, np.random.default_rng(algo), algo=algo, sample_rate=8000)
        assert out.shape == x.shape and np.all(np.isfinite(out))


# --- codec / channel ---------------------------------------------------------------------------


def test_band_limit_attenuates_out_of_band_energy_by_20_db():
    """Stop bands start 20% beyond each cutoff: a Butterworth is -6 dB (zero-phase) *at* the
    cutoff, so the mean over the whole region from the cutoff on is only ~18-21 dB down."""
    white = np.random.default_rng(3).standard_normal(SR).astype(np.float32)
    out = band_limit(white, np.random.default_rng(0), low_hz=300, high_hz=3400, sample_rate=SR)
    in_band = _band_power(out, 300, 3400)
    assert 10 * np.log10(in_band / _band_power(out, 1.2 * 3400, SR / 2)) >= 20
    assert 10 * np.log10(in_band / _band_power(out, 1, 300 / 1.2)) >= 20
    # the pass band itself is kept (white noise in, within 1 dB)
    assert abs(10 * np.log10(_band_power(white, 500, 3000) / _band_power(out, 500, 3000))) < 1


def test_band_limit_lowpass_and_highpass_only():
    white = np.random.default_rng(3).standard_normal(SR).astype(np.float32)
    lp = band_limit(white, None, low_hz=0, high_hz=2000)
    assert 10 * np.log10(_band_power(lp, 100, 2000) / _band_power(lp, 2400, 7900)) >= 20
    hp = band_limit(white, None, low_hz=2000, high_hz=SR / 2)
    assert 10 * np.log10(_band_power(hp, 2000, 7900) / _band_power(hp, 1, 1600)) >= 20


def test_mu_law_uses_at_most_2_pow_bits_levels():
    noisy = WAVE + 0.1 * np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    for bits in (4, 8):
        codes = mu_law_encode(noisy, bits)
        assert codes.min() >= 0 and codes.max() <= 2**bits - 1
        out = mu_law(noisy, np.random.default_rng(0), bits=bits)
        assert len(np.unique(out)) <= 2**bits
    # 8-bit mu-law is a close approximation of the (in-range) input
    out8 = mu_law(WAVE, np.random.default_rng(0), bits=8)
    assert _snr_db(WAVE, out8) > 25


def test_resample_chain_to_8k_removes_energy_above_4k():
    white = np.random.default_rng(4).standard_normal(SR).astype(np.float32)
    out = resample_chain(white, np.random.default_rng(0), mid_rate=8000, sample_rate=SR)
    assert out.shape == white.shape
    before = _band_power(white, 4200, 7900)
    after = _band_power(out, 4200, 7900)
    assert 10 * np.log10(before / after) >= 20
    # the band below 4 kHz survives (within 1 dB)
    assert abs(10 * np.log10(_band_power(white, 100, 3500) / _band_power(out, 100, 3500))) < 1


def test_resample_chain_keeps_length_for_awkward_lengths():
    for n in (1, 3, 101, 16001):
        x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
        assert resample_chain(x, np.random.default_rng(0), mid_rate=11025).shape == (n,)


# --- Augmenter ---------------------------------------------------------------------------------


def test_augmenter_p0_leaves_input_unchanged():
    aug = Augmenter(
        [{"name": "rawboost", "p": 0.0, "algo": 4}, {"name": "noise", "p": 0, "snr_db": 5}]
    )
    rng = np.random.default_rng(0)
    for _ in range(5):
        out = aug(WAVE, rng)
        np.testing.assert_array_equal(out, WAVE)
        assert out.dtype == np.float32


def test_augmenter_p1_always_applies():
    aug = Augmenter([{"name": "noise", "p": 1.0, "snr_db": 10}])
    rng = np.random.default_rng(0)
    for _ in range(10):
        assert abs(_snr_db(WAVE, aug(WAVE, rng)) - 10.0) < 0.1


def test_augmenter_range_params_vary_across_calls():
    aug = Augmenter([{"name": "noise", "snr_db": [5, 20]}])
    rng = np.random.default_rng(0)
    snrs = [_snr_db(WAVE, aug(WAVE, rng)) for _ in range(8)]
    assert all(5 - 0.1 <= s <= 20 + 0.1 for s in snrs)
    assert np.ptp(snrs) > 1.0


def test_augmenter_integer_range_draws_integers():
    seen = set()
    aug = Augmenter([{"name": "rawboost", "algo": [2, 3]}])
    step = aug.steps[0]
    assert step.ranges["algo"][2] is True
    rng = np.random.default_rng(0)
    for _ in range(12):
        out = aug(WAVE[:2000], rng)
        seen.add(bool(np.mean(out != WAVE[:2000]) > 0.5))  # SSI changes all samples, ISD few
    assert seen == {True, False}


def test_augmenter_is_deterministic_per_seed():
    aug = Augmenter.from_config(
        [{"name": "rawboost", "p": 0.5, "algo": 3}, {"name": "telephone", "p": 0.5}]
    )
    a = [aug(WAVE, np.random.default_rng(s)) for s in range(4)]
    b = [aug(WAVE, np.random.default_rng(s)) for s in range(4)]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_augmenter_unknown_name_lists_valid_and_suggests():
    with pytest.raises(ValueError, match="rawbost") as err:
        Augmenter([{"name": "rawbost"}])
    assert "rawboost" in str(err.value) and "telephone" in str(err.value)


def test_augmenter_unknown_param_names_it():
    with pytest.raises(ValueError, match="snr") as err:
        Augmenter([{"name": "noise", "snr": 10}])
    assert "snr_db" in str(err.value)


def test_augmenter_rejects_bad_p_and_bad_range():
    with pytest.raises(ValueError, match="p must be"):
        Augmenter([{"name": "mu_law", "p": 1.5}])
    with pytest.raises(ValueError, match="snr_db"):
        Augmenter([{"name": "noise", "snr_db": [20, 5]}])
    with pytest.raises(ValueError, match="nBand"):
        Augmenter([{"name": "rawboost", "params": {"nBand": 3}}])


def test_from_config_none_is_identity():
    aug = Augmenter.from_config(None)
    assert len(aug) == 0
    np.testing.assert_array_equal(aug(WAVE, np.random.default_rng(0)), WAVE)
    with pytest.raises(ValueError):
        Augmenter.from_config({"name": "noise"})


def _late_energy_fraction(wave: np.ndarray, after_s: float = 0.05) -> float:
    start = int(after_s * 16000)
    return float(np.sum(wave[start:] ** 2) / np.sum(wave**2))


def test_reverb_tail_follows_rt60_and_keeps_the_level():
    impulse = np.zeros(16000, dtype=np.float32)
    impulse[0] = 1.0
    rng = np.random.default_rng(0)
    short = reverb(impulse, np.random.default_rng(1), rt60=0.2, drr_db=-6.0)
    long = reverb(impulse, np.random.default_rng(1), rt60=0.8, drr_db=-6.0)
    assert _late_energy_fraction(long) > _late_energy_fraction(short) > 0.01
    # 60 dB down after rt60: the envelope between 0.1 s and 0.3 s falls by about 40 dB at rt60 0.3
    tail = reverb(impulse, rng, rt60=0.3, drr_db=-20.0)
    early, late = (np.mean(tail[int(a * 16000):int(b * 16000)] ** 2) for a, b in ((0.08, 0.12), (0.28, 0.32)))
    assert 30 < 10 * np.log10(early / late) < 50
    speech = np.random.default_rng(2).standard_normal(16000).astype(np.float32) * 0.1
    wet = reverb(speech, rng, rt60=0.6)
    assert np.mean(wet**2) == pytest.approx(np.mean(speech**2), rel=1e-3)


def test_reverb_rejects_a_non_positive_rt60():
    with pytest.raises(AugmentConfigError, match="rt60"):
        reverb(np.ones(100, dtype=np.float32), np.random.default_rng(0), rt60=0.0)


# --- hostile specs (issue 13): refused when the augmenter is built, naming the spec ---------------


@pytest.mark.parametrize(("spec", "message"), [
    ({"name": "noise", "snr_db": "loud"}, "augmentation spec #1 (noise): could not convert string"),
    ({"name": "rawboost", "algo": 9}, "augmentation spec #1 (rawboost): RawBoost algo must be one of"),
    ({"name": "rawboost", "algo": [1, 9]}, "RawBoost algo must be one of"),  # a range's high end
    ({"name": "reverb", "rt60": -1}, "augmentation spec #1 (reverb): reverb: rt60 must be positive"),
    ({"name": "noise", "color": 5}, "augmentation spec #1 (noise): unknown noise color 5"),
    ({"name": "band_limit", "low_hz": 4000, "high_hz": 300}, "must be below high_hz"),
    ({"name": "noise", "snr_db": float("nan")}, "augmentation 'noise': snr_db must be finite"),
    ({"name": "noise", "snr_db": 10**400}, "snr_db must be finite"),
    ({"name": "noise", "snr_db": [5, float("inf")]}, "[low, high] of finite numbers"),
    ({"name": "rawboost", "params": {"nBands": "x"}}, "augmentation 'rawboost': params:"),
])
def test_a_bad_value_fails_when_the_augmenter_is_built_not_mid_run(spec, message):
    with pytest.raises(AugmentConfigError, match=re.escape(message)):
        Augmenter([{"name": "mu_law"}, spec])


@pytest.mark.parametrize("spec", ["noise", ["noise"], 3])
def test_a_spec_that_is_not_a_mapping_is_a_config_error(spec):
    with pytest.raises(AugmentConfigError, match="augmentation spec #0 must be a mapping"):
        Augmenter([spec])
