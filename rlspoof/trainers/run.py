"""From a recipe to a trained policy: the one function ``rlspoof train`` calls.

A method is a (config class, trainer class) pair in ``METHODS``; new methods register here and
inherit everything else (data, policy building, saving).
"""

from __future__ import annotations

from pathlib import Path

from transformers import set_seed

from rlspoof.data.arguments import DataArguments
from rlspoof.errors import ConfigError
from rlspoof.models import EncoderConfig, PolicyConfig, SpoofPolicy, build_policy
from rlspoof.models.arguments import ModelArguments
from rlspoof.models.checkpoint import WEIGHTS_NAME, is_policy_folder
from rlspoof.models.hf_classifier import is_hf_classifier_folder
from rlspoof.recipe import check_output_dir, load_recipe, read_recipe
from rlspoof.trainers.base import build_datasets, build_train_sampler, resume_point, train_resuming
from rlspoof.trainers.grpo import GRPOTrainer
from rlspoof.trainers.grpo_config import GRPOConfig
from rlspoof.trainers.hybrid import HybridTrainer
from rlspoof.trainers.hybrid_config import HybridConfig
from rlspoof.trainers.mldg import MLDGTrainer
from rlspoof.trainers.mldg_config import MLDGConfig
from rlspoof.trainers.posttrain import PostTrainer
from rlspoof.trainers.posttrain_config import PostTrainConfig
from rlspoof.trainers.sft import SFTTrainer
from rlspoof.trainers.sft_config import SFTConfig

METHODS = {
    "sft": (SFTConfig, SFTTrainer),
    "grpo": (GRPOConfig, GRPOTrainer),
    "hybrid": (HybridConfig, HybridTrainer),
    "posttrain": (PostTrainConfig, PostTrainer),
    "mldg": (MLDGConfig, MLDGTrainer),
}


def policy_from_arguments(model_args: ModelArguments, data_args: DataArguments) -> SpoofPolicy:
    """A saved rlspoof policy, or a transformers audio classifier (its trained head kept),
    continues training (with a new freeze, LoRA or frame head if the recipe asks); anything
    else is an encoder to wrap in a new policy. ``trust_remote_code`` is the recipe's (the
    user's), never the checkpoint's."""
    lora = None
    if model_args.use_peft:
        lora = {"r": model_args.lora_r, "lora_alpha": model_args.lora_alpha,
                "lora_dropout": model_args.lora_dropout,
                "target_modules": list(model_args.lora_target_modules)}
    source = model_args.model_name_or_path
    if source and (is_policy_folder(source) or is_hf_classifier_folder(source)):
        policy = SpoofPolicy.from_pretrained(
            model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code).train()
        if model_args.freeze is not None:
            policy.set_freeze(model_args.freeze)
        if lora is not None and policy.config.encoder.lora is None:
            policy.add_lora(lora)
        if model_args.frame_head:
            policy.add_frame_head()
        return policy
    layer = model_args.encoder_layer
    encoder = EncoderConfig(
        name_or_path=model_args.model_name_or_path,
        preset=model_args.encoder_preset,
        family=model_args.encoder_family if model_args.encoder_preset else None,
        layer=int(layer) if layer.lstrip("-").isdigit() else layer,
        freeze=model_args.freeze or "feature_extractor",
        gradient_checkpointing=model_args.gradient_checkpointing_encoder,
        lora=lora,
        trust_remote_code=model_args.trust_remote_code,
        allow_pickle=model_args.allow_pickle,
    )
    return build_policy(PolicyConfig(
        encoder=encoder, pooling=model_args.pooling, head_hidden=model_args.head_hidden,
        head_dropout=model_args.head_dropout, normalize_input=model_args.normalize_input,
        sample_rate=data_args.sample_rate,
        crop_seconds=data_args.crop_seconds, frame_head=model_args.frame_head,
    ))


def recipe_method(recipe: str | Path, overrides: list[str]) -> str:
    """The ``method`` key (override wins), needed before the recipe can be parsed."""
    method = read_recipe(recipe).get("method", "sft")
    for item in overrides:
        key, _, value = item.partition("=")
        if key.strip() == "method":
            method = value.strip()
    if not isinstance(method, str) or method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    return method


def train_from_recipe(recipe: str | Path, overrides: list[str] | None = None) -> Path:
    """Train as the recipe says; returns the folder holding the final policy.

    Everything the user could get wrong is checked before the model is built: the recipe, the
    resume point, and that no saved model is overwritten (see ``check_output_dir``)."""
    overrides = list(overrides or [])
    config_cls, trainer_cls = METHODS[recipe_method(recipe, overrides)]
    model_args, data_args, train_args = load_recipe(
        recipe, (ModelArguments, DataArguments, config_cls), overrides
    )
    resume = resume_point(train_args)
    check_output_dir(train_args.output_dir, WEIGHTS_NAME, start=model_args.model_name_or_path,
                     resuming=resume is not None, overwrite=train_args.overwrite_output_dir)
    train_set, dev_set = build_datasets(data_args, train_args.seed)  # no global RNG: seeded below
    if dev_set is None and train_args.eval_strategy != "no":
        raise ConfigError(f"eval_strategy {train_args.eval_strategy.value} needs eval_manifest "
                          "(or set eval_strategy: no)")
    set_seed(train_args.seed)
    policy = policy_from_arguments(model_args, data_args)
    trainer = trainer_cls(
        policy, train_args, train_set, dev_set,
        recipe_configs=(model_args, data_args, train_args),
        train_sampler=build_train_sampler(data_args, train_set, train_args),
    )
    train_resuming(trainer, resume)
    trainer.save_model(train_args.output_dir)
    trainer.save_state()
    return Path(train_args.output_dir)
