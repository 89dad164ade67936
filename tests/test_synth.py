"""The built-in corpus: determinism, split hygiene, counts, audio validity, attack behaviour."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rlspoof.data.audio import load_audio
from rlspoof.data.manifest import BONAFIDE, SPOOF, read_manifest
from rlspoof.data.synth.attacks import ATTACKS, AttackContext
from rlspoof.data.synth.corpus import (
    CHANNEL_SNR_DB,
    CHANNELS,
    CODEC_CUTOFF_HZ,
    SEEN_ATTACKS,
    SIZES,
    TARGET_ATTACKS,
    UNSEEN_ATTACKS,
    UtteranceJob,
    build_corpus,
    split_specs,
    synthesize,
)
from rlspoof.data.synth.voice import (
    SAMPLE_RATE,
    apply_channel,
    make_channel,
    render,
    sample_script,
    sample_speaker,
)


def _audio(folder, manifest):
    return {r.utt_id: load_audio(folder / r.path) for r in manifest}


@pytest.mark.slow
def test_same_seed_same_corpus_whatever_the_worker_count(tiny_corpus, tmp_path):
    folder, manifest = tiny_corpus
    again = build_corpus(tmp_path / "again", size="tiny", seed=7, n_jobs=1)
    assert [r.utt_id for r in again] == [r.utt_id for r in manifest]
    assert [(r.label, r.attack, r.speaker, r.split) for r in again] == [
        (r.label, r.attack, r.speaker, r.split) for r in manifest
    ]
    first, second = _audio(folder, manifest), _audio(tmp_path / "again", again)
    for utt_id, wave in first.items():
        np.testing.assert_array_equal(wave, second[utt_id])


def test_different_seed_different_audio(tiny_corpus):
    job = dict(split="train", index=0, speaker_index=0, speaker_id="SPK_0000", label=SPOOF,
               attack="lpc_vocoder", duration_range=(1.0, 1.2), channel_shift=False, out_path="-")
    a, _ = synthesize(UtteranceJob(seed=1, **job))
    b, _ = synthesize(UtteranceJob(seed=2, **job))
    assert a.shape != b.shape or not np.allclose(a, b)


def test_counts_follow_the_size_spec(tiny_corpus):
    _, manifest = tiny_corpus
    for spec in split_specs(SIZES["tiny"]):
        part = manifest.filter(split=spec.name)
        assert len(part.filter(label=BONAFIDE)) == spec.n_bonafide
        for attack in spec.attacks:
            assert len(part.filter(attack=attack)) == spec.n_spoof_per_attack
        assert {r.attack for r in part.filter(label=SPOOF)} == set(spec.attacks)
        assert {r.domain for r in part} == {spec.domain}


def test_speakers_disjoint_between_train_dev_evaluation_and_target(tiny_corpus):
    _, manifest = tiny_corpus
    speakers = {s: {r.speaker for r in manifest.filter(split=s)} for s in
                ("train", "dev", "eval", "eval_unseen_attack", "eval_channel",
                 "target_train", "target_dev", "target_eval")}
    assert not speakers["train"] & speakers["dev"]
    evaluation = speakers["eval"] | speakers["eval_unseen_attack"] | speakers["eval_channel"]
    old = speakers["train"] | speakers["dev"]
    assert not evaluation & old
    target_test = speakers["target_dev"] | speakers["target_eval"]
    assert not speakers["target_train"] & target_test
    assert not (speakers["target_train"] | target_test) & (old | evaluation)


def test_seen_target_and_unseen_families_are_disjoint(tiny_corpus):
    _, manifest = tiny_corpus
    families = [set(SEEN_ATTACKS), set(TARGET_ATTACKS), set(UNSEEN_ATTACKS)]
    assert sum(map(len, families)) == len(set().union(*families))
    def spoofed_by(*splits):
        return {r.attack for r in manifest.filter(split=list(splits), label=SPOOF)}
    assert spoofed_by("train", "dev", "eval", "eval_channel") == set(SEEN_ATTACKS)
    assert spoofed_by("target_train", "target_dev", "target_eval") == set(TARGET_ATTACKS)
    assert spoofed_by("eval_unseen_attack") == set(UNSEEN_ATTACKS)
    assert len(ATTACKS) >= 6


def test_channel_conditions_are_named_and_within_their_ranges(tiny_corpus):
    """eval_channel (corpus v5): moderate noise or a wideband codec, each row naming its
    condition (the group of ``eval --group-by channel``) and its parameters."""
    _, manifest = tiny_corpus
    rows = manifest.filter(split="eval_channel")
    assert {r.extra["channel"] for r in rows} <= set(CHANNELS)
    for row in rows:
        params = row.extra["channel_params"]
        if row.extra["channel"] == "noise":
            color, snr, unit = params.split()
            assert color in ("pink", "white") and unit == "dB"
            assert CHANNEL_SNR_DB[0] <= float(snr) <= CHANNEL_SNR_DB[1]
        else:
            band = params.split()[0]
            assert band.startswith("50-") and CODEC_CUTOFF_HZ[0] <= float(band[3:]) <= CODEC_CUTOFF_HZ[1]
    assert all("channel" not in r.extra or not r.extra["channel"]
               for r in manifest if r.split != "eval_channel")


def test_only_the_target_domain_is_far_field(tiny_corpus):
    _, manifest = tiny_corpus
    for row in manifest:
        assert ("room" in row.extra) == row.split.startswith("target_"), row.utt_id
        assert (row.domain == "target") == row.split.startswith("target_")


def test_audio_is_valid_and_level_is_no_cue(tiny_corpus):
    folder, manifest = tiny_corpus
    lo, hi = SIZES["tiny"].duration
    levels = {BONAFIDE: [], SPOOF: []}
    for row in manifest:
        wave = load_audio(folder / row.path, allow_resample=False)  # raises if NaN/silent/wrong rate
        assert lo - 0.05 <= len(wave) / SAMPLE_RATE <= hi + 0.5
        assert np.max(np.abs(wave)) < 1.0
        levels[row.label].append(20 * np.log10(np.sqrt(np.mean(wave**2))))
    # Both classes share one loudness distribution (drawn from -32..-20 dBFS).
    assert abs(np.mean(levels[BONAFIDE]) - np.mean(levels[SPOOF])) < 3.0


def test_manifests_and_card_on_disk(tiny_corpus):
    folder, manifest = tiny_corpus
    assert len(read_manifest(folder / "manifest.csv")) == len(manifest)
    for split in {r.split for r in manifest}:
        assert len(read_manifest(folder / f"{split}.csv")) == len(manifest.filter(split=split))
    card = json.loads((folder / "corpus.json").read_text())
    assert card["synthetic"] is True and card["seed"] == 7 and card["size"] == "tiny"
    assert card["unseen_attacks"] == list(UNSEEN_ATTACKS)
    assert card["target_attacks"] == list(TARGET_ATTACKS)


def test_small_evaluation_sets_resolve_a_two_point_difference():
    """Every scored-only split of the demo corpus has >= 1,000 trials, half of them bonafide,
    and only the training splits keep the long clips."""
    spec = SIZES["small"]
    for split in split_specs(spec):
        trials = split.n_bonafide + split.n_spoof_per_attack * len(split.attacks)
        if split.name in ("eval", "target_eval", "eval_unseen_attack", "eval_channel"):
            assert trials >= 1000 and split.n_bonafide * 2 == trials, split
        expected = spec.duration if split.name in ("train", "target_train") else spec.eval_duration
        assert spec.duration_of(split.name) == expected


def test_a_subset_of_splits_is_the_same_audio(tiny_corpus, tmp_path):
    folder, manifest = tiny_corpus
    part = build_corpus(tmp_path, size="tiny", seed=7, n_jobs=1, splits=["dev"])
    assert {r.split for r in part} == {"dev"}
    assert sorted(p.name for p in tmp_path.glob("*.csv")) == ["dev.csv", "manifest.csv"]
    assert set(json.loads((tmp_path / "corpus.json").read_text())["splits"]) == {"dev"}
    full = {r.utt_id: r for r in manifest.filter(split="dev")}
    assert [r.utt_id for r in part] == list(full)
    for row in part:
        np.testing.assert_array_equal(load_audio(tmp_path / row.path),
                                      load_audio(folder / full[row.utt_id].path))
    with pytest.raises(ValueError, match="unknown split"):
        build_corpus(tmp_path, size="tiny", splits=["devv"])


def test_unknown_size_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="tiny, small, medium"):
        build_corpus(tmp_path, size="huge")


# --- the voice and the attacks -----------------------------------------------------------


@pytest.fixture(scope="module")
def context_factory():
    rng = np.random.default_rng(3)
    speaker = sample_speaker(rng, "S")
    channel = make_channel(speaker, rng)
    script = sample_script(rng, 1.5, speaker.rate)
    take = render(script, speaker, rng)

    def make(strength: float) -> AttackContext:
        return AttackContext(script, speaker, channel, take, np.random.default_rng(11), strength)

    return make


def test_formant_cascade_fast_path_equals_scipy_sosfilt(monkeypatch):
    """The in-place kernel path gives the numbers of the public ``sosfilt`` (its fallback)."""
    from rlspoof.data.synth import voice

    rng = np.random.default_rng(0)
    n_frames = 37
    x = rng.standard_normal(n_frames * voice.FRAME - 13)  # last frame partial
    sections = voice._resonator_sos(rng.uniform(200, 4000, size=(n_frames, 5)))
    fast = voice._time_varying_cascade(x, sections)
    monkeypatch.setattr(voice, "_sosfilt_inplace", None)
    np.testing.assert_allclose(fast, voice._time_varying_cascade(x, sections), rtol=0, atol=1e-12)
    assert np.std(fast) > 0


@pytest.mark.parametrize("semitones", [-1.5, 0.5, 2.0])
def test_pitch_shift_moves_a_tone_and_keeps_the_length(semitones):
    """The DSP behind frame_splice's units: a 200 Hz tone comes out at 200 * 2**(k/12) Hz."""
    from rlspoof.data.synth.attacks import pitch_shift

    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    shifted = pitch_shift(np.sin(2 * np.pi * 200.0 * t), semitones)
    assert len(shifted) == SAMPLE_RATE and np.all(np.isfinite(shifted))
    middle = shifted[2000:-2000] * np.hanning(SAMPLE_RATE - 4000)
    spectrum = np.abs(np.fft.rfft(middle, 8 * SAMPLE_RATE))
    peak_hz = np.argmax(spectrum) / 8
    assert peak_hz == pytest.approx(200.0 * 2 ** (semitones / 12), abs=2.0)


def test_phase_vocoder_stretch_changes_duration_not_pitch():
    from rlspoof.data.synth.attacks import phase_vocoder_stretch

    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    for rate in (0.8, 1.25):
        out = phase_vocoder_stretch(np.sin(2 * np.pi * 440.0 * t), rate)
        assert len(out) == round(SAMPLE_RATE / rate)
        spectrum = np.abs(np.fft.rfft(out[2000:-2000], 8 * SAMPLE_RATE))
        assert np.argmax(spectrum) / 8 == pytest.approx(440.0, abs=2.0)


def test_rendered_voice_has_speaker_pitch_and_pauses(context_factory):
    ctx = context_factory(0.5)
    voiced = ctx.take.f0[ctx.take.f0 > 0]
    assert 0.2 < len(voiced) / len(ctx.take.f0) < 0.95
    median = np.median(voiced)
    assert ctx.speaker.f0_mean / 2 < median < ctx.speaker.f0_mean * 2
    assert np.all(np.isfinite(ctx.take.wave))


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_every_attack_changes_the_audio_and_keeps_its_length(context_factory, name):
    ctx = context_factory(0.6)
    recorded = apply_channel(ctx.take.wave, ctx.channel)
    spoof = ATTACKS[name].fn(ctx)
    assert spoof.shape == recorded.shape and np.all(np.isfinite(spoof))
    assert not np.allclose(spoof, recorded, atol=1e-4)


@pytest.mark.parametrize("name", ["griffin_lim", "lpc_vocoder", "upsample_tones",
                                  "codec_laundering", "mel_inversion"])
def test_stronger_attacks_deviate_more(context_factory, name):
    def deviation(strength):
        ctx = context_factory(strength)
        recorded = ctx.recorded
        return np.sum((ATTACKS[name].fn(ctx) - recorded) ** 2) / np.sum(recorded**2)

    assert deviation(1.0) > deviation(0.15)
