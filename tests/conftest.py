"""Shared fixtures: the tiny built-in corpus is built once per test session."""

from __future__ import annotations

import pytest

from rlspoof.data.synth.corpus import build_corpus


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """(folder, manifest) of the tiny synthetic corpus, seed 7, built with 2 workers."""
    out = tmp_path_factory.mktemp("tiny_corpus")
    manifest = build_corpus(out, size="tiny", seed=7, n_jobs=2)
    return out, manifest


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy 2-core machine the thread
    pool's spin-waiting can make each small op 100x slower. Use with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory):
    """(folder, manifest) of the train and dev splits of the small synthetic corpus (the demo's),
    seed 11; only the slow learning tests use it: the tiny corpus (4 training speakers) is too
    small to generalise, and they need no evaluation split."""
    out = tmp_path_factory.mktemp("small_corpus")
    manifest = build_corpus(out, size="small", seed=11, n_jobs=2, splits=["train", "dev"])
    return out, manifest
