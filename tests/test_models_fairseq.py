"""fairseq wav2vec 2.0 / HuBERT checkpoints converted into transformers encoder folders.

fairseq is not installed (nor needed): each test writes a tiny transformers model's weights in
fairseq's key layout and config (as fairseq's ``Wav2Vec2Model`` / ``HubertModel`` name them:
``feature_extractor.conv_layers.{i}.0``, ``post_extract_proj``, ``encoder.pos_conv.0.weight_g``,
``self_attn``, ``fc1``, ...), converts it back, and compares the two models' outputs.
"""

from __future__ import annotations

import argparse
import re

import numpy as np
import pytest
import torch
from transformers import HubertConfig, HubertModel, Wav2Vec2Config, Wav2Vec2Model
from typer.testing import CliRunner

from rlspoof.cli import app
from rlspoof.errors import RlspoofError
from rlspoof.models.fairseq import conv_layers, convert_fairseq

pytestmark = pytest.mark.usefixtures("one_torch_thread")
runner = CliRunner()

CONV_SPEC = "[(32, 10, 5)] + [(32, 3, 2)] * 2"
SIZES = dict(encoder_layers=2, encoder_embed_dim=48, encoder_ffn_embed_dim=64, encoder_attention_heads=4,
             conv_pos=16, conv_pos_groups=4, conv_feature_layers=CONV_SPEC)


def _hf_model(family: str, large: bool) -> torch.nn.Module:
    """A tiny model of the architecture the fairseq config will describe, with every weight
    (layer norms, biases, the mask embedding) random so that a misplaced one shows."""
    config_cls, model_cls = {"wav2vec2": (Wav2Vec2Config, Wav2Vec2Model), "hubert": (HubertConfig, HubertModel)}[family]
    config = config_cls(hidden_size=48, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                        conv_dim=(32, 32, 32), conv_kernel=(10, 3, 3), conv_stride=(5, 2, 2),
                        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, conv_bias=large,
                        feat_extract_norm="layer" if large else "group", do_stable_layer_norm=large,
                        layer_norm_eps=1e-5)
    torch.manual_seed(3)
    model = model_cls(config).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.1 * torch.randn_like(param))
    return model


def _fairseq_key(key: str, large: bool) -> str:
    """transformers key -> fairseq key (the layout of fairseq/models/wav2vec/wav2vec2.py)."""
    conv = re.fullmatch(r"feature_extractor\.conv_layers\.(\d+)\.(conv|layer_norm)\.(\w+)", key)
    if conv:
        layer, module, name = conv.groups()
        index = "0" if module == "conv" else "2.1" if large else "2"  # LayerNorm inside TransposeLast
        return f"feature_extractor.conv_layers.{layer}.{index}.{name}"
    for hf, fs in [("feature_projection.layer_norm", "layer_norm"), ("feature_projection.projection", "post_extract_proj"),
                   ("masked_spec_embed", "mask_emb"),
                   ("pos_conv_embed.conv.parametrizations.weight.original0", "pos_conv.0.weight_g"),
                   ("pos_conv_embed.conv.parametrizations.weight.original1", "pos_conv.0.weight_v"),
                   ("pos_conv_embed.conv.bias", "pos_conv.0.bias"), (".attention.", ".self_attn."),
                   (".layer_norm.", ".self_attn_layer_norm."), ("feed_forward.intermediate_dense", "fc1"),
                   ("feed_forward.output_dense", "fc2")]:
        if key.startswith("encoder.layer_norm."):
            return key
        key = key.replace(hf, fs)
    return key


def _write_fairseq(path, model, family: str, large: bool, style: str = "hydra", extra: dict | None = None):
    """A fairseq checkpoint: ``style`` hydra (cfg dicts), args (an old Namespace) or finetuned
    (a CTC model: encoder under w2v_encoder.w2v_model, its pre-training cfg in w2v_args)."""
    state = {_fairseq_key(k, large): v.clone() for k, v in model.state_dict().items()}
    state["quantizer.vars"] = torch.randn(1, 8, 16)  # pre-training heads, dropped
    state["project_q.weight"], state["final_proj.weight"] = torch.randn(16, 16), torch.randn(16, 48)
    model_cfg = {"_name": family, **SIZES, "extractor_mode": "layer_norm" if large else "default",
                 "layer_norm_first": large, "conv_bias": large, "activation_fn": "gelu"}
    task = {"_name": "audio_pretraining", "normalize": large, "sample_rate": 16000}
    if style == "args":
        checkpoint = {"args": argparse.Namespace(arch=family, **{k: v for k, v in model_cfg.items() if k != "_name"},
                                                 normalize=large), "cfg": None}
    elif style == "finetuned":
        state = {f"w2v_encoder.w2v_model.{k}": v for k, v in state.items()}
        state["w2v_encoder.proj.weight"] = torch.randn(32, 48)
        outer = {"_name": f"{family if family == 'hubert' else 'wav2vec'}_ctc",
                 "w2v_args": {"model": model_cfg, "task": task}}
        checkpoint = {"cfg": {"model": outer, "task": {**task, "_name": "audio_finetuning"}}}
    else:
        checkpoint = {"cfg": {"model": model_cfg, "task": task}}
    checkpoint.update(model=state, extra_state={"best": np.float64(0.25)}, **(extra or {}))
    torch.save(checkpoint, path)
    return path


@pytest.mark.parametrize("family,large,style", [("wav2vec2", False, "hydra"), ("wav2vec2", True, "finetuned"),
                                                ("hubert", False, "args"), ("hubert", True, "hydra")])
def test_a_converted_checkpoint_gives_the_original_outputs(tmp_path, family, large, style):
    model = _hf_model(family, large)
    source = _write_fairseq(tmp_path / "ckpt.pt", model, family, large, style)
    result = convert_fairseq(source, tmp_path / "out")
    converted = type(model).from_pretrained(tmp_path / "out").eval()
    torch.manual_seed(0)
    wave = torch.randn(2, 4000) * 0.3
    with torch.no_grad():
        want = model(wave, output_hidden_states=True)
        got = converted(wave, output_hidden_states=True)
    for a, b in zip(want.hidden_states, got.hidden_states, strict=True):
        assert torch.allclose(a, b, atol=1e-5, rtol=0)
    assert torch.allclose(want.last_hidden_state, got.last_hidden_state, atol=1e-5, rtol=0)
    assert result.family == family and result.normalize is large and result.finetuned is (style == "finetuned")
    assert {"quantizer.vars", "project_q.weight", "final_proj.weight"} <= set(result.dropped)
    extractor = (tmp_path / "out" / "preprocessor_config.json").read_text()
    assert f'"do_normalize": {str(large).lower()}' in extractor
    assert "sha256" in (tmp_path / "out" / "README.md").read_text()


def test_a_converted_folder_is_a_recipes_model_name_or_path(tmp_path):
    from rlspoof.data.arguments import DataArguments
    from rlspoof.models.arguments import ModelArguments
    from rlspoof.trainers.run import policy_from_arguments

    model = _hf_model("wav2vec2", large=True)
    convert_fairseq(_write_fairseq(tmp_path / "x.pt", model, "wav2vec2", True), tmp_path / "enc")
    policy = policy_from_arguments(ModelArguments(model_name_or_path=str(tmp_path / "enc"), normalize_input=True),
                                   DataArguments()).eval()
    assert torch.equal(policy.encoder.encoder.layers[1].attention.q_proj.weight,
                       model.encoder.layers[1].attention.q_proj.weight)
    assert policy.config.normalize_input
    assert np.isfinite(policy.score([np.random.default_rng(0).normal(0, 0.1, 3000).astype(np.float32)])).all()


def test_unknown_and_missing_weights_are_errors_that_list_them(tmp_path):
    model = _hf_model("wav2vec2", large=False)
    path = _write_fairseq(tmp_path / "a.pt", model, "wav2vec2", False)
    checkpoint = torch.load(path, weights_only=False)
    checkpoint["model"]["encoder.layers.0.adapter.down.weight"] = torch.zeros(2)
    del checkpoint["model"]["encoder.layers.1.fc2.weight"]
    torch.save(checkpoint, path)
    with pytest.raises(RlspoofError, match=r"encoder\.layers\.0\.adapter\.down\.weight"):
        convert_fairseq(path, tmp_path / "out")
    del checkpoint["model"]["encoder.layers.0.adapter.down.weight"]
    torch.save(checkpoint, path)
    with pytest.raises(RlspoofError, match=r"missing from the checkpoint: encoder\.layers\.1\.feed_forward\.output_dense\.weight"):
        convert_fairseq(path, tmp_path / "out")


class _Plain:
    pass


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # unpickling this would create the marker file
        return (type(self.marker).touch, (self.marker,))


def test_a_checkpoint_that_needs_code_to_unpickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    path = _write_fairseq(tmp_path / "evil.pt", _hf_model("wav2vec2", False), "wav2vec2", False,
                          extra={"extra": _RunsCode(marker)})
    with pytest.raises(RlspoofError, match="refusing to load it: it needs .*getattr, which only a full unpickle"):
        convert_fairseq(path, tmp_path / "out")
    assert not marker.exists() and not (tmp_path / "out").exists()
    torch.save({"model": {}, "cfg": _Plain()}, path)  # any class of the writer's, however harmless
    with pytest.raises(RlspoofError, match=r"it needs [\w.]*_Plain"):
        convert_fairseq(path, tmp_path / "out")


@pytest.mark.parametrize("change,message", [
    ({"_name": "data2vec_audio"}, "fairseq model 'data2vec_audio' is not one rlspoof converts"),
    ({"layer_type": "conformer"}, "layer_type='conformer'"),
    ({"conv_feature_layers": "[__import__('os').getpid()]"}, "cannot read conv_feature_layers"),
])
def test_architectures_transformers_cannot_express_are_errors(tmp_path, change, message):
    path = _write_fairseq(tmp_path / "a.pt", _hf_model("wav2vec2", False), "wav2vec2", False)
    checkpoint = torch.load(path, weights_only=False)
    checkpoint["cfg"]["model"].update(change)
    torch.save(checkpoint, path)
    with pytest.raises(RlspoofError, match=re.escape(message)):
        convert_fairseq(path, tmp_path / "out")


def test_conv_layers_reads_fairseq_expressions_and_nothing_else():
    assert conv_layers("[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] * 2", "x") == (
        [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2)
    for bad in ("[(512, 10, 5)] * 10**12", "[(512, 10)]", "[]", "open('x')", "[(512, 10, 5.5)]"):
        with pytest.raises(RlspoofError, match="cannot read conv_feature_layers"):
            conv_layers(bad, "x")


def test_cli_converts_and_refuses_bad_paths(tmp_path):
    path = _write_fairseq(tmp_path / "w.pt", _hf_model("hubert", False), "hubert", False)
    result = runner.invoke(app, ["convert", "fairseq", str(path), "--out", str(tmp_path / "enc")])
    assert result.exit_code == 0, result.output
    assert "hubert encoder, 2 layers" in " ".join(result.output.split())
    assert (tmp_path / "enc" / "model.safetensors").is_file() and (tmp_path / "enc" / "config.json").is_file()
    again = runner.invoke(app, ["convert", "fairseq", str(path), "--out", str(tmp_path / "enc")])
    assert isinstance(again.exception, RlspoofError) and "--overwrite" in str(again.exception)
    missing = runner.invoke(app, ["convert", "fairseq", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "x")])
    assert isinstance(missing.exception, RlspoofError) and "nope.pt" in str(missing.exception)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    junk = runner.invoke(app, ["convert", "fairseq", str(tmp_path / "junk.pt"), "--out", str(tmp_path / "y")])
    assert isinstance(junk.exception, RlspoofError) and "junk.pt" in str(junk.exception)
