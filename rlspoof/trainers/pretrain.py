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
from pathlib import Path

import torch
from accelerate.utils import extract_model_from_parallel
from transformers import Trainer, TrainerCallback, set_seed
from transformers.models.wav2vec2.modeling_wav2vec2 import (
    Wav2Vec2ForPreTraining,
    _compute_mask_indices,
    _sample_negative_indices,
)

from rlspoof.data.dataset import AudioCollator, SpoofDataset
from rlspoof.data.manifest import Manifest, read_manifest
from rlspoof.errors import ConfigError, DataError
from rlspoof.models.encoders import preset_config
from rlspoof.models.frontends import install_front_end
from rlspoof.provenance import run_facts
from rlspoof.recipe import (
    check_output_dir,
    save_resolved,
)
from rlspoof.trainers.base import (
    FreshCropsEachEpoch,
    nonfinite_loss_error,
    resume_point,
    train_resuming,
)
from rlspoof.trainers.pretrain_config import PRETRAIN_KEYS, PretrainConfig, PretrainDataArguments

# --- model ------------------------------------------------------------------------------------


def pretraining_config(cfg: PretrainConfig):
    """``cfg.encoder_preset`` of ``cfg.encoder_family`` with the overrides and pre-training head settings."""
    config = preset_config(cfg.encoder_preset, cfg.encoder_family, **cfg.encoder_overrides_dict())
    for key in PRETRAIN_KEYS:
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
        model = extract_model_from_parallel(self.model)
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
            extract_model_from_parallel(model).set_gumbel_temperature(self.cfg.gumbel_temperature(step))

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._set(model, state.global_step)

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        self._set(model, state.global_step)


def codebook_collapsed(perplexity: float, num_groups: int, contrastive_loss: float) -> bool:
    """Every frame quantised to the same code of each codebook (perplexity = the number of
    codebooks): every distractor then equals its target, transformers masks them all, the
    contrastive loss is exactly 0 and no gradient flows, so the run cannot recover. Seen on
    the demo's tiny-logspec encoder at diversity_loss_weight 0.1 (step ~30 of 750)."""
    return contrastive_loss == 0.0 and perplexity <= num_groups + 1e-3


COLLAPSE_ADVICE = ("the rest of the run learns nothing; raise diversity_loss_weight (0.5 kept the demo's "
                   "tiny-logspec encoder from collapsing) or lower learning_rate")


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
        #: First step at which the codebooks had collapsed (``codebook_collapsed``), or None.
        self.collapsed_at_step: int | None = None
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
        if not torch.isfinite(loss).item():
            earlier = "the weights already hold NaN (an earlier gradient was not finite); "
            raise nonfinite_loss_error(
                "pre-training", loss, self.state.global_step + 1,
                (earlier if self.state.global_step else "")
                + "lower learning_rate or check the audio (rlspoof data validate)")
        if model.training:
            record = self._metrics
            record["contrastive_loss"].append(float(outputs.contrastive_loss.detach() / n_masked))
            record["diversity_loss"].append(float(outputs.diversity_loss.detach() / n_masked))
            record["codevector_perplexity"].append(float(outputs.codevector_perplexity.detach()))
            record["percent_masked"].append(float(n_masked) / max(float(n_frames), 1.0))
            record["gumbel_temperature"].append(float(extract_model_from_parallel(model).quantizer.temperature))
            if self.collapsed_at_step is None and codebook_collapsed(
                    record["codevector_perplexity"][-1], self.args.num_codevector_groups,
                    record["contrastive_loss"][-1]):
                self.collapsed_at_step = self.state.global_step + 1
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

    encoder = extract_model_from_parallel(model).wav2vec2
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
            "codebook_collapsed_at_step": trainer.collapsed_at_step,
            "seed": cfg.seed,
            **run_facts(),
            "curve": _curve(trainer.state.log_history),
        }
        (out / "pretrain_log.json").write_text(json.dumps(log, indent=2) + "\n")
    return encoder_dir


__all__ = [
    "COLLAPSE_ADVICE",
    "GumbelTemperatureCallback",
    "PretrainCollator",
    "PretrainTrainer",
    "build_pretraining_model",
    "codebook_collapsed",
    "pretrain",
    "pretraining_config",
    "pretraining_manifest",
    "save_encoder",
    "scale_feature_grad",
]
