"""Self-supervised pre-training of the SSL encoder (wav2vec 2.0), and a linear probe to judge it.

The source papers start from an encoder pre-trained with wav2vec 2.0's objective on genuine
speech. Real checkpoints cannot be downloaded here, so the toolkit pre-trains its own tiny
encoder on the built-in corpus's bona fide audio, with the library's objective unchanged:
``transformers.Wav2Vec2ForPreTraining`` (contrastive loss over masked frames against sampled
distractors, plus the codebook diversity loss). Masks and negatives are drawn per batch with
``_compute_mask_indices`` / ``_sample_negative_indices`` exactly as Hugging Face's
``run_wav2vec2_pretraining_no_trainer.py`` does, the loss is normalised by the number of masked
frames as there, and the Gumbel-softmax temperature decays per step with the same schedule.

``pretrain`` saves only the encoder (``Wav2Vec2Model``) as a plain ``save_pretrained`` folder,
so ``AutoModel.from_pretrained`` (and every rlspoof recipe) loads it like any hub checkpoint.
``linear_probe`` fits a logistic regression (torch, no scikit-learn) on frozen, pooled encoder
features and reports EER: the cheap check that pre-training taught the encoder something.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.models.wav2vec2.modeling_wav2vec2 import (
    Wav2Vec2ForPreTraining,
    _compute_mask_indices,
    _sample_negative_indices,
)

from rlspoof.configs import (
    ConfigError,
    check_output_dir,
    check_positive,
    check_training_args,
    save_resolved,
    yaml_problem,
)
from rlspoof.data.audio import DEFAULT_SAMPLE_RATE, load_audio
from rlspoof.data.dataset import AudioCollator, SpoofDataset
from rlspoof.data.manifest import BONAFIDE, LABELS, Manifest, normalize_label, read_manifest
from rlspoof.errors import DataError, RlspoofError
from rlspoof.metrics import compute_eer
from rlspoof.models.encoders import EncoderConfig, load_encoder, preset_config
from rlspoof.models.frontends import install_front_end
from rlspoof.models.inference import run_batched
from rlspoof.provenance import run_facts
from rlspoof.trainers.base import FreshCropsEachEpoch, resume_point, train_resuming

#: Config keys that are PretrainConfig fields; ``encoder_overrides`` may not set them too.
_PRETRAIN_KEYS = (
    "mask_time_prob", "mask_time_length", "num_negatives", "codevector_dim",
    "proj_codevector_dim", "num_codevector_groups", "num_codevectors_per_group",
    "diversity_loss_weight",
)


#: Encoder families that can be pre-trained. Only wav2vec 2.0 has a pre-training head in
#: transformers with a contrastive objective.
PRETRAIN_FAMILIES = ("wav2vec2",)
#: Presets small enough to pre-train on a CPU (``rlspoof.models.encoders.PRESETS``).
PRETRAIN_PRESETS = ("tiny", "tiny-logspec")


# --- configs ----------------------------------------------------------------------------------


@dataclass
class PretrainDataArguments:
    """Which audio to pre-train on: a manifest filtered by split and label, cut to fixed crops."""

    train_manifest: str | None = field(default=None, metadata={"help": "Manifest (.csv/.jsonl) with the audio."})
    split: str | None = field(
        default=None, metadata={"help": "Keep only rows of this split (None: every row)."}
    )
    label: str | None = field(
        default=BONAFIDE,
        metadata={"help": "Keep only rows with this label (None: all). The papers pre-train on genuine speech."},
    )
    sample_rate: int = field(default=DEFAULT_SAMPLE_RATE, metadata={"help": "Rate audio is resampled to."})
    crop_seconds: float = field(
        default=2.0, metadata={"help": "Random training crop (repeat-padded when a clip is shorter)."}
    )

    def __post_init__(self) -> None:
        check_positive("crop_seconds", self.crop_seconds)
        check_positive("sample_rate", self.sample_rate)
        if self.label is not None:
            try:
                self.label = normalize_label(self.label)
            except RlspoofError:
                raise ConfigError(f"label must be one of {list(LABELS)} or None, got {self.label!r}") from None


@dataclass
class PretrainConfig(TrainingArguments):
    """wav2vec 2.0 pre-training of a (tiny) encoder; defaults suit the built-in corpus on a CPU.

    Optimiser defaults follow the wav2vec 2.0 recipe (AdamW, betas (0.9, 0.98), eps 1e-6,
    weight decay 0.01, linear warm-up then decay, CNN gradient scaled by 0.1). Masking is
    lighter than the paper's (p=0.65, span 10) and codebooks smaller (2 x 16, paper 2 x 320)
    because the tiny encoder sees short crops; with 2 x 64 codes the diversity loss won in
    short runs (perplexity up, contrastive loss stuck at chance, ln(1 + num_negatives)).
    The Gumbel schedule defaults are the Hugging Face example's, made for ~400k steps: for a
    run of N steps set ``gumbel_temperature_decay`` to reach the floor within about N/2
    steps (at 2.0 the quantised targets are close to random codes and nothing is learned).
    """

    encoder_family: str = field(
        default="wav2vec2", metadata={"help": f"Encoder family to pre-train: {', '.join(PRETRAIN_FAMILIES)}."}
    )
    encoder_preset: str = field(
        default="tiny",
        metadata={"help": f"Encoder architecture to pre-train: {', '.join(PRETRAIN_PRESETS)} (tiny-logspec: "
                          "a log-spectrogram 2D-conv front end in place of the waveform CNN)."})
    encoder_overrides: str | None = field(
        default=None,
        metadata={"help": "YAML/JSON mapping of encoder config overrides on top of the preset, "
                          "e.g. '{hidden_size: 128, num_hidden_layers: 4}'."},
    )
    mask_time_prob: float = field(
        default=0.4, metadata={"help": "Fraction of frames that start a masked span (wav2vec 2.0: 0.65)."}
    )
    mask_time_length: int = field(default=5, metadata={"help": "Length of a masked span in frames (paper: 10)."})
    num_negatives: int = field(
        default=20, metadata={"help": "Distractors per masked frame, drawn from the same utterance (paper: 100)."}
    )
    codevector_dim: int = field(default=64, metadata={"help": "Dimension of the quantised code vectors."})
    proj_codevector_dim: int = field(
        default=64, metadata={"help": "Dimension both context and quantised vectors are projected to."}
    )
    num_codevector_groups: int = field(default=2, metadata={"help": "Codebooks (G in the paper)."})
    num_codevectors_per_group: int = field(
        default=16, metadata={"help": "Entries per codebook (V; paper: 320, 16 suits the tiny encoder)."}
    )
    diversity_loss_weight: float = field(default=0.1, metadata={"help": "Weight alpha of the diversity loss."})
    feature_grad_mult: float = field(
        default=0.1,
        metadata={"help": "Scale of the gradient reaching the CNN feature encoder (fairseq's wav2vec 2.0 "
                          "recipe: 0.1; the Hugging Face example: 1.0; 0 freezes the CNN)."},
    )
    max_gumbel_temperature: float = field(default=2.0, metadata={"help": "Gumbel-softmax temperature at step 0."})
    min_gumbel_temperature: float = field(default=0.5, metadata={"help": "Floor of the temperature schedule."})
    gumbel_temperature_decay: float = field(
        default=0.999995,
        metadata={"help": "Temperature at step t: max(max_gumbel_temperature * decay**t, min_gumbel_temperature)."},
    )
    saved_mask_time_prob: float = field(
        default=0.05,
        metadata={"help": "mask_time_prob written into the saved encoder's config: the SpecAugment rate "
                          "fine-tuning will use (wav2vec2-base ships 0.05); must be > 0 to keep the "
                          "learned mask embedding in the checkpoint."},
    )
    learning_rate: float = field(default=5e-4, metadata={"help": "Peak AdamW learning rate."})
    warmup_steps: float = field(
        default=0.1, metadata={"help": "Warm-up steps (int) or fraction of all steps (float < 1)."}
    )
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    adam_beta2: float = field(default=0.98, metadata={"help": "AdamW beta2 (wav2vec 2.0 recipe)."})
    adam_epsilon: float = field(default=1e-6, metadata={"help": "AdamW epsilon (wav2vec 2.0 recipe)."})
    logging_steps: float = field(default=10, metadata={"help": "Log every N steps."})
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "The pre-training collator builds the model inputs itself."}
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Pre-train into the output_dir of a finished run, replacing "
                                         "its encoder (off: such a run is refused unless it resumes)."})

    def __post_init__(self) -> None:
        if self.encoder_family not in PRETRAIN_FAMILIES:
            raise ConfigError(
                f"encoder_family {self.encoder_family!r} cannot be pre-trained; "
                f"choose one of: {', '.join(PRETRAIN_FAMILIES)}"
            )
        if self.encoder_preset not in PRETRAIN_PRESETS:
            raise ConfigError(f"encoder_preset {self.encoder_preset!r} cannot be pre-trained here; "
                              f"choose one of: {', '.join(PRETRAIN_PRESETS)}")
        overrides = self.encoder_overrides_dict()
        clash = sorted(set(overrides) & set(_PRETRAIN_KEYS))
        if clash:
            raise ConfigError(f"encoder_overrides sets {', '.join(clash)}: use the config field(s) instead")
        if not 0 < self.mask_time_prob < 1:
            raise ConfigError(f"mask_time_prob must be in (0, 1), got {self.mask_time_prob}")
        if not 0 < self.saved_mask_time_prob < 1:
            raise ConfigError(f"saved_mask_time_prob must be in (0, 1), got {self.saved_mask_time_prob}")
        for name in ("mask_time_length", "num_negatives", "codevector_dim", "proj_codevector_dim",
                     "num_codevector_groups"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_codevectors_per_group < 2:
            raise ConfigError(f"num_codevectors_per_group must be >= 2, got {self.num_codevectors_per_group}")
        if self.codevector_dim % self.num_codevector_groups:
            raise ConfigError(
                f"codevector_dim ({self.codevector_dim}) must be divisible by "
                f"num_codevector_groups ({self.num_codevector_groups})"
            )
        if self.feature_grad_mult < 0:
            raise ConfigError(f"feature_grad_mult must be >= 0, got {self.feature_grad_mult}")
        if self.diversity_loss_weight < 0:
            raise ConfigError(f"diversity_loss_weight must be >= 0, got {self.diversity_loss_weight}")
        if not 0 < self.min_gumbel_temperature <= self.max_gumbel_temperature:
            raise ConfigError(
                "need 0 < min_gumbel_temperature <= max_gumbel_temperature, got "
                f"{self.min_gumbel_temperature} and {self.max_gumbel_temperature}"
            )
        if not 0 < self.gumbel_temperature_decay <= 1:
            raise ConfigError(f"gumbel_temperature_decay must be in (0, 1], got {self.gumbel_temperature_decay}")
        check_positive("learning_rate", self.learning_rate)
        check_training_args(self)
        super().__post_init__()

    def encoder_overrides_dict(self) -> dict:
        if not self.encoder_overrides:
            return {}
        value = self.encoder_overrides
        if isinstance(value, str):
            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError as exc:
                raise ConfigError(f"encoder_overrides is not valid YAML ({yaml_problem(exc)})") from None
        if not isinstance(value, dict):
            raise ConfigError(f"encoder_overrides must be a mapping, got {type(value).__name__}")
        return dict(value)

    def gumbel_temperature(self, step: int) -> float:
        """The schedule of the Hugging Face pre-training example."""
        return max(self.max_gumbel_temperature * self.gumbel_temperature_decay**step,
                   self.min_gumbel_temperature)


# --- model ------------------------------------------------------------------------------------


def pretraining_config(cfg: PretrainConfig):
    """``cfg.encoder_preset`` of ``cfg.encoder_family`` with the overrides and pre-training head settings."""
    config = preset_config(cfg.encoder_preset, cfg.encoder_family, **cfg.encoder_overrides_dict())
    for key in _PRETRAIN_KEYS:
        setattr(config, key, getattr(cfg, key))
    config.apply_spec_augment = True
    return config


def build_pretraining_model(cfg: PretrainConfig) -> Wav2Vec2ForPreTraining:
    """A randomly initialised ``Wav2Vec2ForPreTraining``; the same ``cfg.seed`` gives the same init."""
    set_seed(cfg.seed)
    model = Wav2Vec2ForPreTraining(pretraining_config(cfg))
    install_front_end(model.wav2vec2)
    return model


def scale_feature_grad(model: Wav2Vec2ForPreTraining, mult: float) -> None:
    """Scale the gradient into the CNN feature encoder by ``mult`` (fairseq's ``feature_grad_mult``).

    The forward values are unchanged (``x * m + x.detach() * (1 - m)``); ``mult=0`` freezes it.
    """
    if mult == 1.0:
        return
    if mult == 0.0:
        model.freeze_feature_encoder()
        return

    def hook(module, args, output):
        return output * mult + output.detach() * (1.0 - mult)

    model.wav2vec2.feature_extractor.register_forward_hook(hook)


def _unwrap(model):
    while hasattr(model, "module"):
        model = model.module
    return model


class PretrainCollator:
    """Pads audio and draws the masks and negatives, as ``DataCollatorForWav2Vec2Pretraining``.

    Masked spans are sampled on the feature-frame grid (only over real, unpadded frames) with
    the model's ``mask_time_min_masks``; negatives for each masked frame are other masked frames
    of the same utterance. Randomness is numpy's global generator, seeded by the trainer.
    """

    def __init__(self, model: Wav2Vec2ForPreTraining, mask_time_prob: float, mask_time_length: int):
        self.model = model
        self.mask_time_prob = float(mask_time_prob)
        self.mask_time_length = int(mask_time_length)
        self.audio = AudioCollator()

    def __call__(self, batch: list[dict]) -> dict:
        padded = self.audio(batch)
        values, attention = padded["input_values"], padded["attention_mask"]
        model = _unwrap(self.model)
        batch_size, n_samples = values.shape
        n_frames = int(model._get_feat_extract_output_lengths(n_samples))
        sub_mask = None
        if not bool(attention.all()):  # fixed-length crops never pad; whole clips may
            sub_mask = model._get_feature_vector_attention_mask(n_frames, attention, add_adapter=False)
        mask = _compute_mask_indices(
            (batch_size, n_frames),
            self.mask_time_prob,
            self.mask_time_length,
            attention_mask=sub_mask,
            min_masks=model.config.mask_time_min_masks,
        )
        negatives = _sample_negative_indices(
            (batch_size, n_frames), model.config.num_negatives, mask_time_indices=mask
        )
        out = {
            "input_values": values,
            "mask_time_indices": torch.tensor(mask, dtype=torch.long),
            "sampled_negative_indices": torch.tensor(negatives, dtype=torch.long),
        }
        if sub_mask is not None:
            out["attention_mask"] = attention
            out["sub_attention_mask"] = sub_mask.long()
        return out


class GumbelTemperatureCallback(TrainerCallback):
    """Sets the quantiser's Gumbel-softmax temperature before every optimiser step."""

    def __init__(self, cfg: PretrainConfig):
        self.cfg = cfg

    def _set(self, model, step: int) -> None:
        if model is not None:
            _unwrap(model).set_gumbel_temperature(self.cfg.gumbel_temperature(step))

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._set(model, state.global_step)

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        self._set(model, state.global_step)


class PretrainTrainer(Trainer):
    """``Trainer`` for ``Wav2Vec2ForPreTraining``: the method is ``compute_loss`` (TRL style).

    The loss is the model's contrastive + weighted diversity loss divided by the number of
    masked frames (the example divides gradients by it). Logged with the loss: contrastive
    and diversity loss (same normalisation), codevector perplexity, fraction of frames masked
    and the Gumbel temperature, averaged over the steps since the last log.
    """

    def __init__(self, model, args: PretrainConfig, train_dataset=None, **kwargs):
        kwargs.setdefault(
            "data_collator", PretrainCollator(model, args.mask_time_prob, args.mask_time_length)
        )
        super().__init__(model=model, args=args, train_dataset=train_dataset, **kwargs)
        self.model_accepts_loss_kwargs = False  # loss normalised here; let Trainer divide by GA
        self._metrics: dict[str, list[float]] = defaultdict(list)
        self.add_callback(GumbelTemperatureCallback(args))
        if isinstance(train_dataset, SpoofDataset):
            self.add_callback(FreshCropsEachEpoch(train_dataset))

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        sub_mask = inputs.pop("sub_attention_mask", None)
        mask = inputs["mask_time_indices"]
        n_masked = mask.sum().clamp(min=1)
        n_frames = sub_mask.sum() if sub_mask is not None else torch.tensor(mask.numel())
        outputs = model(**inputs)
        loss = outputs.loss / n_masked
        if not torch.isfinite(loss).item():  # a NaN update poisons every later step: stop here
            raise RlspoofError(
                f"non-finite pre-training loss ({loss.item()}) at step {self.state.global_step + 1}"
                f"{' (the weights already hold NaN: an earlier gradient was not finite)' if self.state.global_step else ''}; "
                "lower learning_rate or check the audio (rlspoof data validate)")
        if model.training:
            record = self._metrics
            record["contrastive_loss"].append(float(outputs.contrastive_loss.detach() / n_masked))
            record["diversity_loss"].append(float(outputs.diversity_loss.detach() / n_masked))
            record["codevector_perplexity"].append(float(outputs.codevector_perplexity.detach()))
            record["percent_masked"].append(float(n_masked) / max(float(n_frames), 1.0))
            record["gumbel_temperature"].append(float(_unwrap(model).quantizer.temperature))
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._metrics:
            for key, values in self._metrics.items():
                value = torch.tensor(sum(values) / len(values), device=self.accelerator.device)
                if self.accelerator.num_processes > 1:
                    value = self.accelerator.reduce(value, reduction="mean")
                logs[key] = round(float(value), 6)
            self._metrics.clear()
        super().log(logs, start_time)


# --- the entry point --------------------------------------------------------------------------


def pretraining_manifest(data_args: PretrainDataArguments) -> Manifest:
    if not data_args.train_manifest:
        raise ConfigError("pre-training needs train_manifest")
    manifest = read_manifest(data_args.train_manifest)
    conditions = {}
    if data_args.split is not None:
        conditions["split"] = data_args.split
    if data_args.label is not None:
        conditions["label"] = data_args.label
    manifest = manifest.filter(**conditions)
    if len(manifest) == 0:
        wanted = ", ".join(f"{k}={v!r}" for k, v in conditions.items())
        raise DataError(f"no rows with {wanted}", data_args.train_manifest)
    return manifest


def save_encoder(model: Wav2Vec2ForPreTraining, out_dir: str | Path, mask_time_prob: float = 0.05) -> Path:
    """Save ``model.wav2vec2`` (config.json + model.safetensors) for ``AutoModel.from_pretrained``.

    transformers 5 always writes safetensors. The saved config's ``mask_time_prob`` is set to
    ``mask_time_prob`` (fine-tuning SpecAugment), not the pre-training masking rate.
    """
    from transformers.utils import logging as hf_logging

    encoder = _unwrap(model).wav2vec2
    out_dir = Path(out_dir)
    pretrain_prob = encoder.config.mask_time_prob
    encoder.config.mask_time_prob = mask_time_prob
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a "Writing model shards" bar for one small file is noise
    try:
        encoder.save_pretrained(out_dir)
    finally:
        encoder.config.mask_time_prob = pretrain_prob
        if bar:
            hf_logging.enable_progress_bar()
    return out_dir


def _curve(log_history: list[dict]) -> list[dict]:
    keys = ("loss", "contrastive_loss", "diversity_loss", "codevector_perplexity",
            "gumbel_temperature", "percent_masked", "learning_rate", "grad_norm")
    curve = []
    for entry in log_history:
        if "loss" in entry and "step" in entry:
            curve.append({"step": entry["step"], **{k: entry[k] for k in keys if k in entry}})
    return curve


def pretrain(cfg: PretrainConfig, data_args: PretrainDataArguments) -> Path:
    """Pre-train an encoder; return the folder of the saved ``Wav2Vec2Model``.

    ``cfg.output_dir`` receives ``encoder/`` (the checkpoint), ``pretrain_log.json`` (loss
    curve, run facts) and ``recipe.resolved.yaml`` (every config field). An ``output_dir`` that
    already holds an ``encoder/`` is refused unless the run resumes or ``overwrite_output_dir``
    is set, so a finished encoder is never replaced by accident.
    """
    if not cfg.output_dir:
        raise ConfigError("pre-training needs output_dir")
    resume = resume_point(cfg)
    check_output_dir(cfg.output_dir, "encoder", resuming=resume is not None,
                     overwrite=cfg.overwrite_output_dir)
    manifest = pretraining_manifest(data_args)
    dataset = SpoofDataset(manifest, sample_rate=data_args.sample_rate,
                           crop_seconds=data_args.crop_seconds, train=True, seed=cfg.seed)
    model = build_pretraining_model(cfg)
    scale_feature_grad(model, cfg.feature_grad_mult)
    trainer = PretrainTrainer(model, cfg, train_dataset=dataset)
    result = train_resuming(trainer, resume)
    out = Path(cfg.output_dir)
    encoder_dir = out / "encoder"
    if trainer.is_world_process_zero():
        save_encoder(trainer.model, encoder_dir, cfg.saved_mask_time_prob)
        save_resolved([cfg, data_args], out)
        log = {
            "encoder_dir": str(encoder_dir),
            "encoder_family": cfg.encoder_family,
            "n_utterances": len(manifest),
            "global_steps": trainer.state.global_step,
            "train_runtime_s": round(result.metrics.get("train_runtime", math.nan), 2),
            "seed": cfg.seed,
            **run_facts(),
            "curve": _curve(trainer.state.log_history),
        }
        (out / "pretrain_log.json").write_text(json.dumps(log, indent=2) + "\n")
    return encoder_dir


# --- linear probe -----------------------------------------------------------------------------

#: Pooled features for the probe: mean over time of the last hidden state, or of the average
#: of all hidden states (the transformer input plus every layer's output).
PROBE_FEATURES = ("all_layers", "last")


def _load_encoder(encoder):
    if isinstance(encoder, (str, Path)):
        # The policy's loader: safetensors only, no remote code, missing weights are errors.
        return load_encoder(EncoderConfig(name_or_path=str(encoder), freeze="all"))[0]
    encoder = _unwrap(encoder)
    return encoder.wav2vec2 if isinstance(encoder, Wav2Vec2ForPreTraining) else encoder


def _as_manifest(manifest, split: str | None) -> Manifest:
    if not isinstance(manifest, Manifest):
        manifest = read_manifest(manifest)
    if split is not None:
        manifest = manifest.filter(split=split)
    if len(manifest) == 0:
        raise DataError(f"no rows{f' with split {split!r}' if split else ''}", manifest.origin)
    return manifest


def _pool(encoder, values: torch.Tensor, attention: torch.Tensor | None, features: str) -> torch.Tensor:
    out = encoder(values, attention_mask=attention, output_hidden_states=features == "all_layers")
    states = out.last_hidden_state if features == "last" else torch.stack(out.hidden_states).mean(dim=0)
    if attention is None:
        return states.mean(dim=1)
    frames = encoder._get_feature_vector_attention_mask(states.shape[1], attention).to(states.dtype)
    return (states * frames[..., None]).sum(dim=1) / frames.sum(dim=1, keepdim=True).clamp(min=1)


def extract_features(encoder, manifest: Manifest, features: str = "all_layers",
                     sample_rate: int = DEFAULT_SAMPLE_RATE, max_seconds: float | None = None,
                     batch_size: int = 16, bucket_seconds: float = 0.5) -> np.ndarray:
    """One pooled vector per utterance (whole clip, or its first ``max_seconds``), shape (N, H).

    Encoders with a layer-normalised CNN (``feat_extract_norm="layer"``, the tiny preset and
    wav2vec 2.0 large / XLS-R) see batches zero-padded to a multiple of ``bucket_seconds`` with
    an attention mask, and pool over real frames only: the same numbers as one clip at a time,
    with few distinct shapes (oneDNN re-plans convolutions for every new input shape, which
    made clip-by-clip extraction 20x slower). Group-normalised CNNs (wav2vec2-base), whose
    frames depend on padding, get one clip at a time.
    """
    if features not in PROBE_FEATURES:
        raise ConfigError(f"unknown probe features {features!r}; choose one of: {', '.join(PROBE_FEATURES)}")
    limit = None if max_seconds is None else int(max_seconds * sample_rate)
    waves = []
    for row in manifest:
        wave = load_audio(manifest.audio_path(row), sample_rate)
        waves.append(wave[:limit] if limit is not None else wave)
    if getattr(encoder.config, "feat_extract_norm", "group") == "layer":
        return run_batched(encoder, waves, lambda x, mask: _pool(encoder, x, mask, features),
                           batch_size=batch_size, pad_multiple=max(1, int(bucket_seconds * sample_rate)))
    return run_batched(encoder, waves, lambda x, mask: _pool(encoder, x, None, features), batch_size=1)


def fit_logistic(x: np.ndarray, y: np.ndarray, C: float = 1.0, max_iter: int = 500):
    """L2 logistic regression with LBFGS on standardised features; ``score(x)`` = logit of y=1.

    ``C`` is scikit-learn's inverse regularisation strength; classes are weighted to balance.
    """
    xt = torch.as_tensor(x, dtype=torch.float64)
    yt = torch.as_tensor(y, dtype=torch.float64)
    mean, std = xt.mean(0), xt.std(0).clamp(min=1e-8)
    z = (xt - mean) / std
    n_pos, n = float(yt.sum()), yt.numel()
    if n_pos in (0, n):
        raise ValueError("the probe needs both classes in its training set")
    weights = torch.where(yt > 0, n / (2 * n_pos), n / (2 * (n - n_pos)))
    w = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-9,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logits = z @ w + b
        loss = (weights * torch.nn.functional.binary_cross_entropy_with_logits(
            logits, yt, reduction="none")).sum() + 0.5 / C * w.dot(w)
        loss = loss / n
        loss.backward()
        return loss

    opt.step(closure)
    w, b = w.detach(), b.detach()

    def score(features: np.ndarray) -> np.ndarray:
        zf = (torch.as_tensor(features, dtype=torch.float64) - mean) / std
        return (zf @ w + b).numpy()

    return score


def _eer(scores: np.ndarray, manifest: Manifest) -> float:
    bona = np.array([r.label == BONAFIDE for r in manifest])
    return float(compute_eer(scores[bona], scores[~bona])[0])


def linear_probe(encoder_dir_or_model, train_manifest, eval_manifest, *, train_split: str | None = None,
                 eval_split: str | None = None, features: str = "all_layers",
                 sample_rate: int = DEFAULT_SAMPLE_RATE, max_seconds: float | None = None,
                 C: float = 1.0) -> dict:
    """EER of a logistic regression on frozen encoder features (higher score = more bonafide).

    ``encoder_dir_or_model`` is a saved encoder folder, an encoder module or a
    ``Wav2Vec2ForPreTraining``. Manifests are paths or ``Manifest`` objects (filtered by the
    split arguments); ``eval_manifest`` may also be a mapping ``name -> manifest`` to score
    several sets with one fitted probe. Features: ``all_layers`` (default: time-mean of the
    average of all hidden states; lower layers carry the acoustic detail artefacts live in)
    or ``last`` (time-mean of the last hidden state).

    Returns ``eer`` (first eval set), ``eer_by_set``, ``train_eer``, ``n_train``,
    ``n_eval_by_set``, ``features`` and ``feature_dim``.
    """
    encoder = _load_encoder(encoder_dir_or_model)
    train = _as_manifest(train_manifest, train_split)
    evals = eval_manifest if isinstance(eval_manifest, Mapping) else {"eval": eval_manifest}
    evals = {name: _as_manifest(m, eval_split) for name, m in evals.items()}

    def feats(m: Manifest) -> np.ndarray:
        return extract_features(encoder, m, features, sample_rate, max_seconds)

    x_train = feats(train)
    y_train = np.array([r.label == BONAFIDE for r in train], dtype=np.float64)
    score = fit_logistic(x_train, y_train, C=C)
    eer_by_set = {name: round(_eer(score(feats(m)), m), 4) for name, m in evals.items()}
    return {
        "eer": next(iter(eer_by_set.values())),
        "eer_by_set": eer_by_set,
        "train_eer": round(_eer(score(x_train), train), 4),
        "n_train": len(train),
        "n_eval_by_set": {name: len(m) for name, m in evals.items()},
        "features": features,
        "feature_dim": int(x_train.shape[1]),
    }


__all__ = [
    "PRETRAIN_FAMILIES",
    "PROBE_FEATURES",
    "GumbelTemperatureCallback",
    "PretrainCollator",
    "PretrainConfig",
    "PretrainDataArguments",
    "PretrainTrainer",
    "build_pretraining_model",
    "extract_features",
    "fit_logistic",
    "linear_probe",
    "pretrain",
    "pretraining_config",
    "pretraining_manifest",
    "save_encoder",
    "scale_feature_grad",
]
