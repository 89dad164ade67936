"""transformers audio classifiers (``*ForSequenceClassification``) used as rlspoof policies."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rlspoof.errors import RlspoofError
from rlspoof.models import SpoofPolicy
from rlspoof.models.hf_classifier import is_hf_classifier_folder, label_order

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _save_classifier(folder, id2label: dict, weighted: bool, family: str = "wav2vec2", layer_norm: bool = False):
    import transformers
    from transformers import Wav2Vec2FeatureExtractor

    prefix = {"wav2vec2": "Wav2Vec2", "hubert": "Hubert", "wavlm": "WavLM", "data2vec-audio": "Data2VecAudio"}[family]
    config_cls = getattr(transformers, f"{prefix}Config")
    model_cls = getattr(transformers, f"{prefix}ForSequenceClassification")
    torch.manual_seed(0)
    config = config_cls(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48,
                        conv_dim=(32, 32, 32), conv_stride=(5, 2, 2), conv_kernel=(10, 3, 3),
                        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, classifier_proj_size=8,
                        use_weighted_layer_sum=weighted, id2label=id2label,
                        feat_extract_norm="layer" if layer_norm else "group", do_stable_layer_norm=layer_norm,
                        label2id={v: k for k, v in id2label.items()})
    model = model_cls(config).eval()
    with torch.no_grad():  # a trained-looking head: far from symmetric, layer weights unequal
        model.classifier.weight.normal_(0, 2.0)
        if weighted:
            model.layer_weights.copy_(torch.tensor([0.5, -1.0, 2.0]))
    model.save_pretrained(folder)
    Wav2Vec2FeatureExtractor(do_normalize=True).save_pretrained(folder)
    return folder


def _pipeline_log_odds(folder, waves, real_label: str, fake_label: str) -> np.ndarray:
    from transformers import pipeline

    classify = pipeline("audio-classification", model=str(folder), top_k=None, device="cpu")
    out = []
    for wave in waves:
        probs = {r["label"]: r["score"] for r in classify({"raw": wave, "sampling_rate": 16000})}
        out.append(np.log(probs[real_label]) - np.log(probs[fake_label]))
    return np.array(out)


@pytest.mark.parametrize("id2label, real, fake, weighted, layer_norm", [
    ({0: "fake", 1: "real"}, "real", "fake", False, False),  # wav2vec2-base style
    ({0: "bonafide", 1: "spoof"}, "bonafide", "spoof", True, True),  # XLS-R style
])
def test_a_classifier_scores_as_the_transformers_pipeline_does(tmp_path, id2label, real, fake, weighted,
                                                               layer_norm):
    folder = _save_classifier(tmp_path / "clf", id2label, weighted, layer_norm=layer_norm)
    assert is_hf_classifier_folder(folder)
    rng = np.random.default_rng(0)
    waves = [(0.05 * rng.standard_normal(n) + 0.3).astype(np.float32) for n in (16000, 9000, 23456)]
    policy = SpoofPolicy.from_pretrained(folder)
    assert policy.config.normalize_input and policy.config.head_activation == "none"
    expected = _pipeline_log_odds(folder, waves, real, fake)
    assert np.ptp(expected) > 0.01  # the scores differ, so agreement is not a coincidence
    np.testing.assert_allclose(policy.score(waves, batch_size=1), expected, atol=1e-4)
    if layer_norm:  # a group-normed CNN reads batch padding, in transformers as here
        np.testing.assert_allclose(policy.score(waves, batch_size=3), expected, atol=1e-4)

    saved = policy.save_pretrained(tmp_path / "as_policy")  # and it stays the same as a policy
    np.testing.assert_allclose(SpoofPolicy.from_pretrained(saved).score(waves, batch_size=1), expected,
                               atol=1e-4)


@pytest.mark.parametrize("family", ["hubert", "wavlm", "data2vec-audio"])
def test_the_other_families_import_too(tmp_path, family):
    folder = _save_classifier(tmp_path / "clf", {0: "Bona-fide", 1: "Deepfake"}, True, family=family)
    waves = [np.random.default_rng(1).normal(0, 0.1, 12000).astype(np.float32)]
    np.testing.assert_allclose(SpoofPolicy.from_pretrained(folder).score(waves),
                               _pipeline_log_odds(folder, waves, "Bona-fide", "Deepfake"), atol=1e-4)


@pytest.mark.parametrize("id2label, order", [
    ({0: "fake", 1: "real"}, (1, 0)), ({"0": "Bona-fide", "1": "Spoof"}, (0, 1)),
    ({0: "AI", 1: "Human"}, (1, 0)), ({0: "REAL", 1: "FAKE"}, (0, 1)), ({0: "genuine", 1: "synthetic"}, (0, 1)),
])
def test_label_vocabularies_in_the_wild(id2label, order):
    assert label_order(id2label, "x") == order


@pytest.mark.parametrize("id2label, needle", [
    ({0: "LABEL_0", 1: "LABEL_1"}, "cannot tell which label"),
    ({0: "real", 1: "genuine"}, "cannot tell which label"),
    ({0: "real", 1: "fake", 2: "partial"}, "exactly 2 classes"),
])
def test_unknown_label_maps_are_refused_with_the_labels_listed(id2label, needle):
    with pytest.raises(RlspoofError, match=needle) as err:
        label_order(id2label, "clf/config.json")
    assert "id2label" in str(err.value) and str(id2label[0]) in str(err.value)


def test_a_classifier_without_its_head_weights_is_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    folder = _save_classifier(tmp_path / "clf", {0: "fake", 1: "real"}, False)
    tensors = load_file(folder / "model.safetensors")
    del tensors["classifier.weight"]
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(RlspoofError, match="head is incomplete.*classifier.weight"):
        SpoofPolicy.from_pretrained(folder)
    assert json.loads((folder / "config.json").read_text())["architectures"]


def test_a_training_recipe_starting_from_a_classifier_keeps_its_head(tmp_path):
    """``model_name_or_path`` of a recipe: the classifier continues training as it was, not
    its encoder under a fresh random head."""
    from rlspoof.data.arguments import DataArguments
    from rlspoof.models.arguments import ModelArguments
    from rlspoof.trainers.run import policy_from_arguments

    folder = _save_classifier(tmp_path / "clf", {0: "spoof", 1: "bona fide"}, True)
    waves = [np.random.default_rng(2).normal(0, 0.1, 16000).astype(np.float32)]
    policy = policy_from_arguments(ModelArguments(model_name_or_path=str(folder)), DataArguments())
    assert policy.training and policy.metadata["imported_from"] == str(folder)
    np.testing.assert_allclose(policy.score(waves), _pipeline_log_odds(folder, waves, "bona fide", "spoof"),
                               atol=1e-4)


@pytest.mark.parametrize("head_hidden, layer", [(8, "weighted"), (None, "last")])
def test_an_exported_policy_scores_the_same_in_the_transformers_pipeline(tmp_path, head_hidden, layer):
    from rlspoof.models import EncoderConfig, PolicyConfig, build_policy
    from rlspoof.models.hf_classifier import export_hf_classifier

    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(EncoderConfig(preset="tiny", layer=layer), head_hidden=head_hidden,
                                       head_activation="none", normalize_input=True)).eval()
    with torch.no_grad():
        policy.head.net[-1].weight.normal_(0, 2.0)
    folder = export_hf_classifier(policy, tmp_path / "hf")
    waves = [np.random.default_rng(n).normal(0.2, 0.1, n).astype(np.float32) for n in (8000, 16000)]
    expected = policy.score(waves, batch_size=1)
    assert np.ptp(expected) > 1e-3
    np.testing.assert_allclose(_pipeline_log_odds(folder, waves, "bonafide", "spoof"), expected, atol=1e-4)
    np.testing.assert_allclose(SpoofPolicy.from_pretrained(folder).score(waves, batch_size=1), expected,
                               atol=1e-4)  # and back


def test_what_transformers_cannot_express_is_named():
    from rlspoof.models import EncoderConfig, PolicyConfig, build_policy
    from rlspoof.models.hf_classifier import export_hf_classifier

    policy = build_policy(PolicyConfig(EncoderConfig(preset="tiny-logspec", layer=1), head_hidden=8,
                                       pooling="attentive_stats"))
    with pytest.raises(RlspoofError) as err:
        export_hf_classifier(policy, "unused")
    for needle in ("front end", "pooling 'attentive_stats'", "gelu activation", "encoder layer 1"):
        assert needle in str(err.value)


def test_export_command_writes_a_model_card(tmp_path):
    from typer.testing import CliRunner

    from rlspoof.cli import app
    from rlspoof.models import EncoderConfig, PolicyConfig, build_policy

    policy_dir = build_policy(PolicyConfig(EncoderConfig(preset="tiny"))).save_pretrained(tmp_path / "policy")
    runner = CliRunner()
    result = runner.invoke(app, ["export", str(policy_dir), "--format", "hf", "--out", str(tmp_path / "hf")])
    assert result.exit_code == 0, result.output
    card = (tmp_path / "hf" / "README.md").read_text()
    for needle in ("Class 0 is `bonafide`", "Intended use and limitations", "not a calibrated", "Not measured"):
        assert needle in card
    assert is_hf_classifier_folder(tmp_path / "hf")
    again = runner.invoke(app, ["export", str(policy_dir), "--out", str(tmp_path / "hf")])
    assert isinstance(again.exception, RlspoofError) and "--overwrite" in str(again.exception)
    unknown = runner.invoke(app, ["export", str(policy_dir), "--format", "tflite", "--out", str(tmp_path / "o")])
    assert isinstance(unknown.exception, RlspoofError) and "--format" in str(unknown.exception)
