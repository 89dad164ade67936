"""Embedding report: PCA, class separation, embedding a manifest, and ``rlspoof embed``.

Tiny random policies on the tiny synthetic corpus's dev split (16 clips): a few seconds.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from rlspoof.cli import app, main
from rlspoof.errors import RlspoofError
from rlspoof.evaluation.embeddings import class_separation, embed_manifest, pca_2d
from rlspoof.models import EncoderConfig, PolicyConfig, build_policy

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _tiny_policy(seed: int):
    torch.manual_seed(seed)
    return build_policy(PolicyConfig(EncoderConfig(preset="tiny", freeze="none"), crop_seconds=0.5))


@pytest.fixture(scope="module")
def model_folders(tmp_path_factory):
    """Two saved tiny policies with different random weights."""
    root = tmp_path_factory.mktemp("models")
    return [_tiny_policy(seed).save_pretrained(root / name) for seed, name in ((0, "before"),
                                                                              (1, "after"))]


# --------------------------------------------------------------------------- PCA


def test_pca_recovers_the_dominant_direction_and_its_variance_share():
    rng = np.random.default_rng(0)
    direction = rng.normal(size=6)
    direction /= np.linalg.norm(direction)
    # variance 25 along `direction`, 1 along each of the 6 axes: ratio 26 / (25 + 6)
    x = rng.normal(size=(4000, 1)) * 5.0 * direction + rng.normal(size=(4000, 6)) + 3.0
    points, ratio = pca_2d(x)
    assert points.shape == (4000, 2) and ratio.shape == (2,)
    assert np.allclose(points.mean(axis=0), 0.0, atol=1e-9)
    first = np.linalg.lstsq(x - x.mean(axis=0), points[:, 0], rcond=None)[0]  # loading of PC1
    assert abs(first @ direction) / np.linalg.norm(first) > 0.99
    assert ratio[0] == pytest.approx(26 / 31, abs=0.02)
    assert 0 < ratio[1] < ratio[0]
    # deterministic sign: the largest-|loading| entry is positive whatever sign the SVD picked,
    # so the same components come back for a negated or reordered input
    assert first[np.argmax(np.abs(first))] > 0
    assert np.allclose(pca_2d(-x)[0], -points)
    assert np.allclose(pca_2d(x[::-1])[0], points[::-1])


def test_pca_of_too_few_rows_pads_with_zeros():
    points, ratio = pca_2d(np.array([[1.0, 2.0, 3.0]]))
    assert np.array_equal(points, np.zeros((1, 2))) and np.array_equal(ratio, np.zeros(2))
    with pytest.raises(ValueError, match="N x D"):
        pca_2d(np.zeros(5))


# --------------------------------------------------------------------------- separation


def test_class_separation_of_known_clouds():
    rng = np.random.default_rng(1)
    shift = np.zeros(8)
    shift[:2] = 3.0 / np.sqrt(2)  # mean distance 3, unit variance in every dimension
    bona = rng.normal(size=(3000, 8)) + shift
    spoof = rng.normal(size=(3000, 8))
    labels = ["bonafide"] * 3000 + ["spoof"] * 3000
    assert class_separation(np.vstack([bona, spoof]), labels) == pytest.approx(3.0, rel=0.05)
    # scale-free: a rescaled embedding space gives the same number
    assert class_separation(10 * np.vstack([bona, spoof]), labels) == pytest.approx(
        class_separation(np.vstack([bona, spoof]), labels))

    same = class_separation(np.vstack([spoof, rng.normal(size=(3000, 8))]), labels)
    assert same < 0.15
    assert class_separation(np.vstack([spoof, spoof]), labels) == pytest.approx(0.0, abs=1e-12)


def test_class_separation_needs_both_classes():
    with pytest.raises(RlspoofError, match="0 bonafide, 3 spoof"):
        class_separation(np.zeros((3, 4)), ["spoof"] * 3)


# --------------------------------------------------------------------------- embedding


def test_embed_manifest_gives_finite_rows_and_restores_train_mode(tiny_corpus):
    _, manifest = tiny_corpus
    dev = manifest.filter(split="dev")
    policy = _tiny_policy(0)
    assert policy.training
    calls = []
    emb = embed_manifest(policy, dev, batch_size=6, crop_seconds=0.5,
                         progress=lambda done, total: calls.append((done, total)))
    assert emb.shape == (len(dev), policy.pooling.out_dim) and np.isfinite(emb).all()
    assert policy.training
    assert calls[-1] == (len(dev), len(dev)) and len(calls) == -(-len(dev) // 6)
    # rows come back in manifest order, whatever the length-sorted batching did
    single = embed_manifest(policy, dev[2:3], crop_seconds=0.5)
    assert np.allclose(single[0], emb[2], atol=1e-5)


# --------------------------------------------------------------------------- CLI


def test_embed_cli_writes_figure_and_numbers(tiny_corpus, model_folders, tmp_path):
    folder, _ = tiny_corpus
    before, after = model_folders
    out = tmp_path / "emb"
    result = CliRunner().invoke(app, [
        "embed", "--model", str(before), "--model", f"post={after}",
        "--manifest", str(folder / "manifest.csv"), "--split", "dev",
        "--max-per-attack", "3", "--crop-seconds", "0.5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "embeddings.png").read_bytes()[:8] == PNG_SIGNATURE
    report = json.loads((out / "embeddings.json").read_text())
    assert report["synthetic"] is True and set(report["models"]) == {"before", "post"}
    for numbers in report["models"].values():
        assert numbers["n"] == report["n_rows"] <= 3 * 5  # bonafide + 4 seen attacks, 3 each
        assert numbers["class_separation"] >= 0
        assert len(numbers["explained_variance_ratio"]) == 2
    unwrapped = result.output.replace("\n", "")  # rich folds long tmp paths at 80 columns
    assert "separation" in result.output and "embeddings.png" in unwrapped


def test_embed_cli_missing_model_is_one_line_exit_2(tiny_corpus, tmp_path, monkeypatch, capsys):
    folder, _ = tiny_corpus
    missing = tmp_path / "no_such_model"
    monkeypatch.setattr(sys, "argv", ["rlspoof", "embed", "--model", str(missing),
                                      "--manifest", str(folder / "dev.csv")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no_such_model" in err and "Traceback" not in err
