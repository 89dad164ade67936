"""Data mixing: source probabilities, label-balanced batches, determinism, and clear errors."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy.stats import chisquare

from rlspoof.data.arguments import DataArguments
from rlspoof.data.manifest import Manifest, ManifestRow, concat_manifests
from rlspoof.data.mixing import MixingError, MixtureSampler, mixture_probabilities
from rlspoof.errors import ConfigError


def _manifest(spec: dict[str, tuple[int, int]]) -> Manifest:
    """spec: source -> (n_bonafide, n_spoof)."""
    rows = []
    for source, (n_bona, n_spoof) in spec.items():
        rows += [ManifestRow(f"{source}_b{i}", f"{source}/b{i}.wav", "bonafide", source=source) for i in range(n_bona)]
        rows += [ManifestRow(f"{source}_s{i}", f"{source}/s{i}.wav", "spoof", attack="A01", source=source)
                 for i in range(n_spoof)]
    return Manifest(rows, root="/data")


def test_temperature_one_is_proportional_and_large_temperature_tends_to_uniform():
    counts = {"big": 900, "mid": 90, "small": 10}
    assert mixture_probabilities(counts, temperature=1.0) == pytest.approx({"big": 0.9, "mid": 0.09, "small": 0.01})
    flat = mixture_probabilities(counts, temperature=1e6)
    assert flat == pytest.approx({s: 1 / 3 for s in counts}, abs=1e-4)
    t2 = mixture_probabilities(counts, temperature=2.0)
    assert t2["big"] / t2["small"] == pytest.approx(np.sqrt(90))


def test_explicit_weights_replace_the_rule_and_must_name_every_source():
    assert mixture_probabilities({"a": 10, "b": 1000}, {"a": 3, "b": 1}) == {"a": 0.75, "b": 0.25}
    with pytest.raises(MixingError, match=r"does not have: \['c'\]"):
        mixture_probabilities({"a": 1, "b": 1}, {"a": 1, "b": 1, "c": 1})
    with pytest.raises(MixingError, match=r"no weight for sources \['b'\]"):
        mixture_probabilities({"a": 1, "b": 1}, {"a": 1})
    with pytest.raises(MixingError, match="temperature"):
        mixture_probabilities({"a": 1}, temperature=0)


def test_draw_frequencies_match_the_source_probabilities():
    manifest = _manifest({"big": (500, 400), "small": (30, 20)})
    sampler = MixtureSampler(manifest, "source", temperature=2.0, num_samples=20_000, seed=3)
    drawn = Counter(manifest[i].source for i in sampler)
    expected = mixture_probabilities({"big": 900, "small": 50}, temperature=2.0)
    observed = [drawn["big"], drawn["small"]]
    assert chisquare(observed, [expected["big"] * 20_000, expected["small"] * 20_000]).pvalue > 1e-3


def test_balanced_batches_hold_half_bonafide_even_from_a_spoof_heavy_corpus():
    manifest = _manifest({"vocoded": (0, 300), "genuine": (40, 0), "mixed": (10, 200)})
    sampler = MixtureSampler(manifest, "source", batch_size=8, balance_labels=True,
                             temperature=1.0, num_samples=800, seed=0)
    indices = list(sampler)
    assert len(indices) == len(sampler) == 800
    for start in range(0, 800, 8):
        labels = Counter(manifest[i].label for i in indices[start:start + 8])
        assert labels == {"bonafide": 4, "spoof": 4}
    # a genuine-only source feeds only the bonafide half; its share there is 40 / 50 at T = 1
    bonafide_sources = Counter(manifest[i].source for i in indices if manifest[i].label == "bonafide")
    assert set(bonafide_sources) == {"genuine", "mixed"}
    assert bonafide_sources["genuine"] / 400 == pytest.approx(0.8, abs=0.07)


def test_same_seed_and_epoch_same_draw_new_epoch_new_draw():
    manifest = _manifest({"a": (20, 20), "b": (5, 5)})
    one = MixtureSampler(manifest, "source", batch_size=4, balance_labels=True, seed=1)
    two = MixtureSampler(manifest, "source", batch_size=4, balance_labels=True, seed=1)
    assert list(one) == list(two)
    first = list(one)
    one.set_epoch(1)
    assert list(one) != first


def test_mixing_by_attack_and_zero_weight_leaves_a_group_out():
    rows = [ManifestRow(f"s{i}", f"{i}.wav", "spoof", attack=f"A0{i % 3}") for i in range(30)]
    sampler = MixtureSampler(Manifest(rows), "attack", weights={"A00": 1, "A01": 1, "A02": 0},
                             num_samples=300, seed=0)
    assert {rows[i].attack for i in sampler} == {"A00", "A01"}


def test_bad_settings_are_clear_errors():
    manifest = _manifest({"genuine": (10, 0)})
    with pytest.raises(MixingError, match="no rows with label spoof"):
        MixtureSampler(manifest, "source", batch_size=4, balance_labels=True)
    with pytest.raises(MixingError, match="mix_by must be a manifest column"):
        MixtureSampler(manifest, "sorce")
    with pytest.raises(ConfigError, match="mix_weights needs mix_by"):
        DataArguments(train_manifest="x.csv", mix_weights={"a": 1})
    with pytest.raises(ConfigError, match="mix_temperature"):
        DataArguments(train_manifest="x.csv", mix_by="source", mix_temperature=0)
    assert DataArguments(train_manifest="a.csv, b.csv").train_manifests() == ["a.csv", "b.csv"]
    assert DataArguments(train_manifest=["a.csv", "b.csv"]).train_manifests() == ["a.csv", "b.csv"]


def test_concat_manifests_keeps_every_row_readable_and_refuses_duplicate_ids(tmp_path):
    one = Manifest([ManifestRow("u1", "a/1.wav", "bonafide")], root=tmp_path / "c1", origin="c1.csv")
    two = Manifest([ManifestRow("u2", "b/2.wav", "spoof")], root=tmp_path / "c2", origin="c2.csv")
    both = concat_manifests([one, two])
    assert [both.audio_path(r) for r in both] == [(tmp_path / "c1/a/1.wav").resolve(),
                                                   (tmp_path / "c2/b/2.wav").resolve()]
    with pytest.raises(Exception, match="duplicate utt_id 'u1'"):
        concat_manifests([one, one])
