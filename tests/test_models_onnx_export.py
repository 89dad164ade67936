"""ONNX export (issue 16): ``rlspoof export POLICY --format onnx`` writes a graph with dynamic
batch and length axes that onnxruntime runs to the policy's scores (within 1e-4), and
``rlspoof detect --model DIR/model.onnx`` scores with it as with the policy folder.

Each export takes ~5 s on 2 cores, so the module makes two: the demo's tiny-logspec preset
(mean pooling; the complex STFT the TorchScript exporter cannot take) through ``export_onnx``,
and a tiny wav2vec 2.0 with input normalisation, a weighted layer sum, attentive-statistics
pooling and trained-looking LoRA adapters (merged on export) through the command line, from a
saved and calibrated policy folder.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from cli_helpers import run_cli

from rlspoof.errors import RlspoofError
from rlspoof.evaluation.calibration import ScoreCalibration
from rlspoof.models import EncoderConfig, PolicyConfig, SpoofPolicy, build_policy
from rlspoof.models.onnx_export import (
    ONNX_NAME,
    SIDECAR_NAME,
    OnnxDetector,
    export_onnx,
    merged_copy,
)
from rlspoof.models.policy import NonFiniteScoreError

pytest.importorskip("onnxruntime", reason="pip install 'rlspoof[onnx]'")
pytest.importorskip("onnxscript", reason="pip install 'rlspoof[onnx]'")

pytestmark = pytest.mark.usefixtures("one_torch_thread")
#: None of them is the trace length (1 s: 16000 samples); 300 is below both presets'
#: receptive field (400 and 992 samples), so it must be repeat-padded as SpoofPolicy.score does.
LENGTHS = (300, 1500, 7777, 23456, 40000)


def _waves(lengths, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 0.1, n).astype(np.float32) for n in lengths]


def _lora_policy() -> SpoofPolicy:
    """A tiny wav2vec 2.0 policy with what the graph must carry beyond the logspec one: per-clip
    input normalisation, a weighted layer sum, attentive-statistics pooling, an MLP head and LoRA
    adapters as after training (peft starts lora_B at zero: a dropped adapter would not show)."""
    torch.manual_seed(1)
    encoder = EncoderConfig(preset="tiny", layer="weighted", lora={"r": 2, "lora_alpha": 4})
    policy = build_policy(PolicyConfig(encoder, pooling="attentive_stats", head_hidden=8, normalize_input=True))
    with torch.no_grad():
        for name, param in policy.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    return policy.eval()


@pytest.fixture(scope="module")
def logspec(tmp_path_factory) -> tuple[SpoofPolicy, OnnxDetector]:
    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(encoder=EncoderConfig(preset="tiny-logspec"), pooling="mean")).eval()
    return policy, OnnxDetector(export_onnx(policy, tmp_path_factory.mktemp("logspec_onnx")))


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path]:
    """(calibrated policy folder, what `rlspoof export --format onnx` wrote from it)."""
    root = tmp_path_factory.mktemp("exported")
    folder = _lora_policy().save_pretrained(root / "policy")
    ScoreCalibration(weights=(0.5,), bias=-1.0, fit_prior=0.3).save(folder)
    code, output = run_cli(["export", folder, "--format", "onnx", "--out", root / "onnx"])
    assert code == 0, output
    return folder, root / "onnx"


def _parity(policy, detector: OnnxDetector) -> float:
    # Quiet and silent clips too: onnxscript's optimiser once dropped the front end's
    # log(power + 1e-8) floor as "x + 0", which moved a -80 dBFS clip's score by 0.03.
    quiet, silent = _waves((7000, 5000), seed=9)
    waves = [*_waves((*LENGTHS, policy.min_samples)), 1e-3 * quiet, 0 * silent]
    expected = policy.score(waves, batch_size=1)
    assert np.ptp(expected) > 1e-3  # a constant model would pass any comparison
    got = detector.score(waves, batch_size=1)
    assert got.dtype == np.float64 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    return float(np.max(np.abs(got - expected)))


def test_logspec_graph_scores_as_the_policy_at_lengths_it_was_not_traced_at(logspec):
    policy, detector = logspec
    assert (detector.sample_rate, detector.min_samples) == (policy.sample_rate, policy.min_samples) == (16000, 992)
    _parity(policy, detector)


def test_wav2vec2_attentive_lora_graph_scores_as_the_saved_policy(exported):
    folder, out = exported
    policy = SpoofPolicy.from_pretrained(folder)
    assert policy.config.encoder.lora is not None and policy.config.pooling == "attentive_stats"
    assert policy.config.normalize_input and policy.layer_weights is not None
    _parity(policy, OnnxDetector(out / ONNX_NAME))


def test_merged_copy_is_the_same_function_without_adapters_and_leaves_the_policy_alone():
    from peft.tuners.tuners_utils import BaseTunerLayer

    policy = _lora_policy().train()
    waves = _waves((4000, 9000))
    merged = merged_copy(policy)
    assert not any(isinstance(m, BaseTunerLayer) for m in merged.modules())
    assert policy.training and any(isinstance(m, BaseTunerLayer) for m in policy.modules())
    expected = policy.score(waves, batch_size=1)
    np.testing.assert_allclose(merged.score(waves, batch_size=1), expected, atol=1e-5)
    for module in policy.modules():  # the adapters do change the function: parity above means something
        if isinstance(module, BaseTunerLayer):
            module.enable_adapters(False)
    assert np.max(np.abs(policy.score(waves, batch_size=1) - expected)) > 1e-3


def test_mixed_lengths_batch_by_length_and_come_back_in_input_order(logspec):
    policy, detector = logspec
    # 300 is repeat-padded to 992 and batched with the 992-sample clip; five 5000s make two batches of 4
    lengths = (5000, 3000, 5000, 300, 5000, 992, 5000, 3000, 5000, 700)
    waves = _waves(lengths, seed=3)
    alone = np.array([detector.score([w])[0] for w in waves])
    assert len(set(np.round(alone, 6))) == len(waves)  # every clip its own score: order is visible
    np.testing.assert_allclose(detector.score(waves, batch_size=4), alone, rtol=0, atol=1e-5)
    np.testing.assert_allclose(detector.score(np.stack(waves[:3:2])), alone[:3:2], atol=1e-5)  # a 2-D array
    np.testing.assert_allclose(policy.score(waves, batch_size=4), alone, rtol=0, atol=1e-4)
    assert detector.score([]).shape == (0,)
    with pytest.raises(ValueError, match="batch_size"):
        detector.score(waves, batch_size=0)


def test_a_non_finite_score_is_an_error_naming_the_input_with_every_score(logspec):
    _, detector = logspec
    good, bad = _waves((3000, 3000))
    bad[10] = np.nan
    with pytest.raises(NonFiniteScoreError, match=r"'bad'.*not finite.*NaN/Inf samples") as err:
        detector.score([good, bad, good], names=["good", "bad", "good2"], batch_size=4)
    assert err.value.indices == [1]
    assert np.isfinite(err.value.scores[[0, 2]]).all() and np.isnan(err.value.scores[1])


def test_export_command_writes_graph_sidecar_card_and_calibration(exported):
    folder, out = exported
    assert sorted(p.name for p in out.iterdir()) == sorted([ONNX_NAME, SIDECAR_NAME, "README.md",
                                                            "calibration.json"])
    assert not any(p.name.endswith(".data") for p in out.iterdir())  # weights inside model.onnx
    info = json.loads((out / SIDECAR_NAME).read_text())
    assert info["labels"] == ["bonafide", "spoof"] and info["sample_rate"] == 16000
    assert info["min_samples"] == 400 and info["input"] == "input_values"
    assert info["outputs"] == ["logits", "score"]
    card = (out / "README.md").read_text()
    for needle in ("Class 0 is `bonafide`", "Intended use and limitations", "ONNX graph",
                   "`input_values`: float32 [batch, samples]", "no attention mask"):
        assert needle in card, needle
    assert ScoreCalibration.load(out) == ScoreCalibration.load(folder)


def test_the_hf_export_keeps_the_calibration_too(tmp_path):
    torch.manual_seed(0)
    folder = build_policy(PolicyConfig(EncoderConfig(preset="tiny"))).save_pretrained(tmp_path / "policy")
    ScoreCalibration(weights=(2.0,), bias=0.5, fit_prior=0.2).save(folder)
    code, output = run_cli(["export", folder, "--format", "hf", "--out", tmp_path / "hf"])
    assert code == 0, output
    assert ScoreCalibration.load(tmp_path / "hf") == ScoreCalibration.load(folder)


def test_graph_outputs_logits_and_score_with_dynamic_axes(exported):
    import onnxruntime

    _, out = exported
    session = onnxruntime.InferenceSession(str(out / ONNX_NAME), providers=["CPUExecutionProvider"])
    (node,) = session.get_inputs()
    assert node.name == "input_values" and all(isinstance(d, str) for d in node.shape)
    for batch, samples in ((1, 640), (3, 12345)):
        logits, score = session.run(None, {"input_values": np.stack(_waves([samples] * batch))})
        assert logits.shape == (batch, 2) and score.shape == (batch,)
        np.testing.assert_allclose(score, logits[:, 0] - logits[:, 1], atol=1e-6)


def _clips(folder: Path) -> Path:
    folder.mkdir()
    for name, seconds in (("short.wav", 0.02), ("one.wav", 1.3), ("long.wav", 7.5)):
        sf.write(folder / name, _waves([int(16000 * seconds)], seed=len(name))[0], 16000)
    return folder


def test_detect_with_the_onnx_graph_gives_the_policy_folder_results(exported, tmp_path):
    folder, out = exported
    clips = _clips(tmp_path / "clips")
    results = {}
    for name, model in (("policy", folder), ("onnx", out / ONNX_NAME), ("onnx_folder", out)):
        code, output = run_cli(["detect", "--model", model, clips, "--format", "json",
                             "--out", tmp_path / f"{name}.json", "--window", 2, "--hop", 1])
        assert code == 0, output
        results[name] = json.loads((tmp_path / f"{name}.json").read_text())
    policy, onnx = results["policy"], results["onnx"]
    assert results["onnx_folder"] == onnx  # --model DIR of an export runs its model.onnx
    assert onnx["decision_rule"] == policy["decision_rule"] and onnx["decision_rule"]["calibrated"]
    assert [r["path"] for r in onnx["results"]] == [r["path"] for r in policy["results"]]
    assert len(onnx["results"]) == 3 and onnx["errors"] == []
    for got, expected in zip(onnx["results"], policy["results"], strict=True):
        assert len(got["window_scores"]) == len(expected["window_scores"])
        np.testing.assert_allclose(got["window_scores"], expected["window_scores"], atol=1e-4)
        np.testing.assert_allclose([got["score"], got["llr"]], [expected["score"], expected["llr"]], atol=1e-4)
    assert max(len(r["window_scores"]) for r in onnx["results"]) == 7  # 7.5 s in 2 s windows, 1 s hop
    code, output = run_cli(["detect", "--model", out / ONNX_NAME, clips / "one.wav", "--no-calibration"])
    assert code == 0 and output.splitlines()[0].startswith("path,score,decision")


def test_export_usage_errors_exit_2(exported, tmp_path):
    folder, out = exported
    code, message = run_cli(["export", folder, "--format", "tflite", "--out", tmp_path / "x"])
    assert code == 2 and "--format must be one of hf, onnx" in message
    code, message = run_cli(["export", folder, "--format", "onnx", "--out", out])
    assert code == 2 and "--overwrite" in message
    assert not (tmp_path / "x").exists()


def test_a_graph_without_a_valid_sidecar_is_a_clear_error(exported, tmp_path):
    _, out = exported
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    shutil.copy(out / ONNX_NAME, lonely / ONNX_NAME)
    clip = _clips(tmp_path / "clips") / "one.wav"
    code, message = run_cli(["detect", "--model", lonely / ONNX_NAME, clip])
    assert code == 2 and str(lonely / SIDECAR_NAME) in message and "missing" in message
    (lonely / SIDECAR_NAME).write_text("{not json")
    code, message = run_cli(["detect", "--model", lonely / ONNX_NAME, clip])
    assert code == 2 and "not valid JSON" in message
    info = json.loads((out / SIDECAR_NAME).read_text())
    (lonely / SIDECAR_NAME).write_text(json.dumps({**info, "labels": ["spoof", "bonafide"], "min_samples": 0}))
    code, message = run_cli(["detect", "--model", lonely / ONNX_NAME, clip])
    assert code == 2 and "labels must be" in message and "min_samples must be a positive integer" in message
    code, message = run_cli(["detect", "--model", tmp_path / "nothing.onnx", clip])
    assert code == 2 and "no such ONNX file" in message
    (lonely / SIDECAR_NAME).write_text(json.dumps(info))
    (lonely / ONNX_NAME).write_bytes(b"not a graph")
    code, message = run_cli(["detect", "--model", lonely / ONNX_NAME, clip])
    assert code == 2 and "onnxruntime cannot load it" in message


def test_missing_onnx_packages_name_the_extra(exported, monkeypatch, tmp_path):
    _, out = exported
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(RlspoofError, match=r"pip install 'rlspoof\[onnx\]'"):
        OnnxDetector(out / ONNX_NAME)
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(RlspoofError, match=r"onnxscript.*pip install 'rlspoof\[onnx\]'"):
        export_onnx(_lora_policy(), tmp_path / "never")
    assert not (tmp_path / "never").exists()
