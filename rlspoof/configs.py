"""Run configuration: dataclasses whose fields are the keys of a YAML recipe.

TRL's convention, which we follow: a training config subclasses ``transformers.TrainingArguments``
(so accelerate, DeepSpeed, mixed precision, checkpointing and ``report_to`` are the library's),
fields are ``field(default, metadata={"help": ...})`` and ``__post_init__`` validates. A recipe is
flat YAML; ``TrlParser`` reads it as defaults and ``--key value`` pairs override them. We add
what TRL lacks: an unknown key is an error that names the key and the closest valid one.
"""

from __future__ import annotations

import difflib
import inspect
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml
from transformers import TrainingArguments

from rlspoof.algos import CENTERS, LOSS_TYPES, SCALES
from rlspoof.data.mixframe import MIX_MODES
from rlspoof.errors import ConfigError, RlspoofError


def _one_of(name: str, value, valid) -> None:
    if not isinstance(value, str) or value not in valid:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, valid))}; got {value!r}")


def check_positive(name: str, value) -> None:
    """``value`` is a finite number > 0 (``nan <= 0`` is False, so a plain check lets NaN in)."""
    if not 0 < value < math.inf:
        raise ConfigError(f"{name} must be positive, got {value}")


def yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's several-line message as one line: ``line 2, column 5: expected ',' or ']'``
    (the CLI promises one line per error; the line and column are all a user needs)."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return where + str(getattr(exc, "problem", None) or exc).splitlines()[0]


def _yaml_value(text: str, what: str):
    """``text`` parsed as YAML; a parse error is a ConfigError naming ``what`` (the field)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} is not valid YAML ({yaml_problem(exc)}): {text!r}") from None


def check_training_args(args) -> None:
    """Checks every training config shares (fine-tuning and pre-training), before
    ``TrainingArguments`` reads them.

    ``max_steps: 0`` would silently train one step at learning rate 0 and a negative value
    other than -1 (the library's "unset: train ``num_train_epochs``") is a typo, so both are
    errors. Without an accelerator, pinned memory does nothing but make torch warn on every
    run, so it is switched off there.
    """
    if args.max_steps == 0 or args.max_steps < -1:
        raise ConfigError(f"max_steps must be a positive number of optimizer steps, or -1 to train "
                          f"num_train_epochs epochs; got {args.max_steps}")
    if args.max_steps == -1 and not args.num_train_epochs > 0:
        raise ConfigError(f"num_train_epochs must be > 0 (or set max_steps), got {args.num_train_epochs}")
    for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
        if getattr(args, name) < 1:
            raise ConfigError(f"{name} must be >= 1, got {getattr(args, name)}")
    import torch

    if args.use_cpu or not torch.accelerator.is_available():
        args.dataloader_pin_memory = False


def check_output_dir(output_dir: str | Path, saved: str | Path, *, start: str | Path | None = None,
                     resuming: bool = False, overwrite: bool = False) -> None:
    """Refuse a run that would overwrite what the user has: the starting checkpoint (an
    ``output_dir`` equal to, inside or around ``model_name_or_path``: checkpoints and the final
    weights would land on it), or the model a finished run saved (``saved``, relative to
    ``output_dir``) unless the run resumes or ``overwrite_output_dir`` says to replace it."""
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output_dir {out} is a file, not a folder")
    if start is not None and Path(start).exists():  # a hub id is not on this disk
        a, b = out.resolve(), Path(start).resolve()
        if a == b or a.is_relative_to(b) or b.is_relative_to(a):
            where = "is" if a == b else "is inside" if a.is_relative_to(b) else "contains"
            raise ConfigError(f"output_dir {out} {where} model_name_or_path {start}: training would "
                              "overwrite the checkpoint it starts from; choose another output_dir")
    done = out / saved
    if done.exists() and not resuming and not overwrite:
        raise ConfigError(
            f"output_dir {out} holds a finished run ({done}); training again would replace it. "
            "Choose another output_dir, set resume_from_checkpoint to continue it, or set "
            "overwrite_output_dir: true (--overwrite) to replace it")


@dataclass
class ModelArguments:
    """The detector policy: SSL encoder, pooling, head, freezing, LoRA (TRL ``ModelConfig`` style)."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Encoder checkpoint (hub id or local folder) or a saved rlspoof policy folder."},
    )
    encoder_preset: str | None = field(
        default=None,
        metadata={"help": "Random-initialised encoder by name (tiny, base, xlsr-300m); "
                          "only when no checkpoint is given."},
    )
    encoder_family: str = field(
        default="wav2vec2", metadata={"help": "Family for presets: wav2vec2, hubert, wavlm, data2vec-audio."}
    )
    encoder_layer: str = field(
        default="weighted", metadata={"help": "'weighted' (learned sum of layers), 'last' or a layer index."}
    )
    freeze: str | None = field(
        default=None,
        metadata={"help": "none | feature_extractor | all | layers:N (feature extractor + first N layers). "
                          "Unset: feature_extractor for a new policy, as saved for a policy folder."},
    )
    gradient_checkpointing_encoder: bool = field(
        default=False, metadata={"help": "Recompute encoder activations in backward to save memory."}
    )
    pooling: str = field(default="mean", metadata={"help": "mean | attentive_stats."})
    head_hidden: int | None = field(default=None, metadata={"help": "Hidden units of an MLP head (None: linear)."})
    head_dropout: float = field(default=0.0, metadata={"help": "Dropout before the head."})
    frame_head: bool = field(
        default=False, metadata={"help": "Add a frame-level head (mix-frame post-training needs one)."})
    use_peft: bool = field(
        default=False, metadata={"help": "Train LoRA adapters instead of the encoder (also on a saved "
                                         "policy that has none)."})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "out_proj"],
        metadata={"help": "Encoder modules that get LoRA adapters."},
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow a checkpoint's own code (off unless asked)."})
    allow_pickle: bool = field(
        default=False, metadata={"help": "Allow pickled .bin/.pt weights (only from a source you trust)."}
    )

    def __post_init__(self) -> None:
        if self.model_name_or_path and self.encoder_preset:
            raise ConfigError("set either model_name_or_path or encoder_preset, not both")
        if not self.model_name_or_path and not self.encoder_preset:
            raise ConfigError("set model_name_or_path (a checkpoint) or encoder_preset (random init by name)")
        if self.head_dropout < 0 or self.head_dropout >= 1:
            raise ConfigError(f"head_dropout must be in [0, 1), got {self.head_dropout}")
        if self.lora_r < 1:
            raise ConfigError(f"lora_r must be >= 1, got {self.lora_r}")


@dataclass
class DataArguments:
    """Which manifests to train and evaluate on, and how audio is cut and augmented."""

    train_manifest: str | None = field(
        default=None,
        metadata={"help": "Training manifest (.csv/.jsonl); several (a YAML list or comma-separated) "
                          "are concatenated, e.g. the corpora of a post-training mix."})
    eval_manifest: str | None = field(default=None, metadata={"help": "Dev manifest for evaluation during training."})
    train_split: str | None = field(default=None, metadata={"help": "Keep only rows of this split from train_manifest."})
    eval_split: str | None = field(default=None, metadata={"help": "Keep only rows of this split from eval_manifest."})
    sample_rate: int = field(default=16_000, metadata={"help": "Rate audio is resampled to."})
    crop_seconds: float = field(default=4.0, metadata={"help": "Training crop (repeat-padded when shorter)."})
    eval_crop_seconds: float | None = field(
        default=None, metadata={"help": "Evaluation crop from the start (None: whole clips)."}
    )
    augment: str | None = field(
        default=None,
        metadata={"help": "YAML/JSON list of augmentation specs, e.g. "
                          "'[{name: rawboost, p: 0.5, algo: 3}]' (see rlspoof.data.augment)."},
    )

    mixframe_prob: float = field(
        default=0.0, metadata={"help": "Probability that a training clip gets spans of an utterance of "
                                       "the other class (mix-frame post-training; needs frame_head)."})
    mixframe_span_seconds: list[float] = field(
        default_factory=lambda: [0.1, 0.5], metadata={"help": "[min, max] length of a mixed span (s)."})
    mixframe_max_spans: int = field(default=2, metadata={"help": "At most this many spans per clip."})
    mixframe_mode: str = field(
        default="splice", metadata={"help": "splice (replace the span) | blend (add the donor at "
                                            "mixframe_blend_weight)."})
    mixframe_blend_weight: float = field(default=0.5, metadata={"help": "Donor weight in blend mode."})
    mix_by: str | None = field(
        default=None,
        metadata={"help": "Draw training rows source-first, grouping by this manifest column "
                          "(source, attack, domain, ...); None: uniformly over rows."})
    mix_weights: dict | str | None = field(
        default=None, metadata={"help": "Sampling weight per mix_by value, e.g. {vctk: 1, mlaad: 3}."})
    mix_temperature: float = field(
        default=1.0, metadata={"help": "Without mix_weights: p(source) ~ rows^(1/T); T=1 proportional, "
                                       "large T close to uniform over sources."})
    balance_labels: bool = field(
        default=False, metadata={"help": "Every batch holds as many bonafide as spoof rows."})

    def __post_init__(self) -> None:
        check_positive("crop_seconds", self.crop_seconds)
        if self.eval_crop_seconds is not None:
            check_positive("eval_crop_seconds", self.eval_crop_seconds)
        check_positive("sample_rate", self.sample_rate)
        if isinstance(self.mix_weights, str):  # YAML text, from a recipe or --set mix_weights='{...}'
            self.mix_weights = _yaml_value(self.mix_weights, "mix_weights (a mapping {source: weight})")
            if not isinstance(self.mix_weights, dict):
                raise ConfigError(f"mix_weights must be a mapping {{source: weight}}, got {self.mix_weights!r}")
        if not 0 <= self.mixframe_prob <= 1:
            raise ConfigError(f"mixframe_prob must be in [0, 1], got {self.mixframe_prob}")
        lo_hi = list(self.mixframe_span_seconds)
        if len(lo_hi) != 2 or not 0 < lo_hi[0] <= lo_hi[1]:
            raise ConfigError(f"mixframe_span_seconds must be [min, max] with 0 < min <= max, got {lo_hi}")
        _one_of("mixframe_mode", self.mixframe_mode, MIX_MODES)
        check_positive("mix_temperature", self.mix_temperature)
        if self.mix_weights is not None and not self.mix_by:
            raise ConfigError("mix_weights needs mix_by (the manifest column the weights are keyed by)")
        self.train_manifests()
        self._augmenter_check()

    def train_manifests(self) -> list[str]:
        value = self.train_manifest
        if isinstance(value, str):  # "a.csv", "a.csv,b.csv" or a YAML list's text "[a.csv, b.csv]"
            value = _yaml_value(value, "train_manifest") if value.lstrip().startswith("[") else value.split(",")
        if value is not None and not isinstance(value, list):
            raise ConfigError(f"train_manifest must be a path or a list of paths, got {value!r}")
        return [str(v).strip() for v in value or [] if str(v).strip()]

    def _augmenter_check(self) -> None:
        """Build the augmenter once now, so a bad spec fails before the model is built, not in
        a DataLoader worker at the first batch."""
        from rlspoof.data.augment import Augmenter

        try:
            Augmenter.from_config(self.augment_specs(), sample_rate=self.sample_rate)
        except ConfigError:
            raise
        except RlspoofError as exc:
            raise ConfigError(f"augment: {exc}") from None

    @property
    def uses_mixture(self) -> bool:
        return bool(self.mix_by or self.balance_labels)

    def augment_specs(self) -> list[dict] | None:
        if not self.augment:
            return None
        specs = _yaml_value(self.augment, "augment") if isinstance(self.augment, str) else self.augment
        if not isinstance(specs, list):
            raise ConfigError(f"augment must be a list of specs such as [{{name: rawboost, p: 0.5}}], "
                              f"got a {type(specs).__name__}: {self.augment!r}")
        return specs


@dataclass
class SFTConfig(TrainingArguments):
    """Supervised fine-tuning: cross-entropy on (bonafide, spoof) with optional class weights.

    Label smoothing is TrainingArguments' ``label_smoothing_factor``. Defaults differ from
    TrainingArguments where audio detectors differ from text models (learning rate, logging,
    keeping our non-tensor batch columns).
    """

    method: str = field(default="sft", metadata={"help": "Training method (sft)."})
    class_weights: list[float] | None = field(
        default=None, metadata={"help": "Cross-entropy weights [bonafide, spoof] (None: equal)."}
    )
    learning_rate: float = field(default=1e-5, metadata={"help": "AdamW learning rate."})
    nonfinite_loss: str = field(
        default="error",
        metadata={"help": "A NaN/Inf training loss: error (stop with the step and the batch's "
                          "utterances; no update is made) | skip (drop that optimizer step)."})
    drift_samples: int = field(
        default=0, metadata={"help": "N > 0: at each evaluation, log the sliced Wasserstein distance "
                                     "between the embeddings of N training and N dev utterances."})
    logging_steps: float = field(default=10, metadata={"help": "Log every N steps."})
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Keep utt_id/attack columns (the policy reads only audio)."}
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Train into the output_dir of a finished run, replacing its "
                                         "policy (off: such a run is refused unless it resumes)."})

    def __post_init__(self) -> None:
        check_positive("learning_rate", self.learning_rate)
        check_training_args(self)
        _one_of("nonfinite_loss", self.nonfinite_loss, ("error", "skip"))
        if self.drift_samples < 0:
            raise ConfigError(f"drift_samples must be >= 0 (0 = off), got {self.drift_samples}")
        if self.class_weights is not None and (
            len(self.class_weights) != 2 or min(self.class_weights) <= 0
        ):
            raise ConfigError("class_weights must be two positive numbers [bonafide, spoof]")
        super().__post_init__()


@dataclass
class GRPOConfig(SFTConfig):
    """GRPO for a two-action policy, with TRL's field names and defaults where they carry over.

    What differs from TRL, because a decision is one token over two actions: the G decisions of a
    group come from one forward pass (``num_generations`` costs nothing extra), an ``exact``
    estimator replaces sampling by the expectation over both actions, and the published method's
    options (batch-level centring, an old policy refreshed every K steps, no clipping) are fields
    rather than forks. ``class_weights`` and ``label_smoothing_factor`` shape a cross-entropy,
    which GRPO has not: setting them is an error here (a hybrid's CE part uses them).
    """

    #: Whether the loss has a cross-entropy part that reads class_weights / label_smoothing_factor.
    _has_cross_entropy = False

    method: str = field(default="grpo", metadata={"help": "Training method (grpo)."})
    learning_rate: float = field(default=1e-6, metadata={"help": "AdamW learning rate (TRL: 1e-6)."})
    num_generations: int = field(
        default=8, metadata={"help": "G: decisions sampled per utterance from one forward pass."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of the policy."})
    estimator: str = field(
        default="sampled",
        metadata={"help": "sampled (G draws per utterance) | exact (expectation over both actions: "
                          "the variance-free limit of large G)."})
    reward_funcs: list[str] = field(
        default_factory=lambda: ["correctness"],
        metadata={"help": "Reward function names (rlspoof.rewards registry) or dotted import paths."})
    reward_weights: list[float] | None = field(
        default=None, metadata={"help": "One weight per reward function (None: all 1.0)."})
    reward_kwargs: dict | str | None = field(
        default=None, metadata={"help": "Settings per reward function: {cost_weighted: {c_fa: 10}}."})
    scale_rewards: str = field(
        default="group", metadata={"help": "Divide advantages by the std of the group | batch | none."})
    advantage_center: str = field(
        default="group",
        metadata={"help": "Subtract the mean of the group (TRL) | batch (the published method) | "
                          "none (raw-reward ablation)."})
    batch_scope: str = field(
        default="accumulation",
        metadata={"help": "What advantage_center / scale_rewards: batch are taken over. accumulation "
                          "(TRL's generation batch): every micro-batch of the optimizer step on every "
                          "process; with gradient_accumulation_steps > 1 the first micro-batch samples "
                          "them all, at the cost of one extra no-grad forward pass for each of the "
                          "others | micro_batch: one micro-batch of every process, no extra pass. "
                          "Equal when gradient_accumulation_steps is 1."})
    advantage_eps: float = field(
        default=1e-4, metadata={"help": "Added to the std (TRL 1e-4; the published method 1e-5)."})
    loss_type: str = field(
        default="dapo", metadata={"help": "grpo | bnpo | dr_grpo | dapo: TRL's token aggregations, "
                                          "accepted for TRL recipes; with one decision per utterance "
                                          "all four are the mean over decisions."})
    epsilon: float = field(default=0.2, metadata={"help": "Lower clipping range of the ratio."})
    epsilon_high: float | None = field(
        default=None, metadata={"help": "Upper clipping range (None: = epsilon; DAPO uses 0.28)."})
    use_clipping: bool = field(
        default=True, metadata={"help": "False: the published GRPO_s, exp(logp - logp.detach()) * A."})
    num_iterations: int = field(
        default=1, metadata={"help": "mu: optimizer steps on each batch, with stored old log-probs."})
    old_policy_sync_steps: int = field(
        default=0,
        metadata={"help": "K > 0: the old policy of the ratio is a frozen copy refreshed every K "
                          "optimizer steps (the published GRPO, K=1000); rollout_policy says whether "
                          "it also takes the decisions. 0: the batch's own log-probs (TRL)."})
    rollout_policy: str = field(
        default="old",
        metadata={"help": "With old_policy_sync_steps: which policy samples the G decisions. old "
                          "(default; PPO and TRL: the sampler is the ratio's denominator, so the ratio "
                          "is an importance weight and clipping bounds the step away from the sampler) "
                          "| current (the published code: the train-mode policy of this forward pass "
                          "samples and the stale copy enters only the ratio, which then reweights the "
                          "policy gradient by pi/pi_old rather than correcting for the sampler). "
                          "Without an old policy both sample from the current policy."})
    beta: float = field(
        default=0.0, metadata={"help": "KL coefficient to the reference policy (TRL 0.0; the published "
                                       "method 0.04). 0 loads no reference."})
    use_bias_correction_kl: bool = field(
        default=True,
        metadata={"help": "TRL 1.16's option and default: the per-decision k3 KL is multiplied by "
                          "pi/mu (mu: the policy that sampled), an unbiased estimate of KL(pi || ref) "
                          "whose gradient is the reverse KL's. false: plain k3 (the published code), "
                          "unbiased in value only on-policy, with the gradient of KL(ref || pi)."})
    entropy_coef: float = field(default=0.0, metadata={"help": "Entropy bonus coefficient."})
    disable_dropout: bool = field(
        default=False, metadata={"help": "Zero dropout, SpecAugment masking and LayerDrop in the policy "
                                         "(TRL's option), so ratio and KL compare like with like."})
    sync_ref_model: bool = field(
        default=False, metadata={"help": "Mix the policy into the reference every ref_model_sync_steps."})
    ref_model_mixup_alpha: float = field(default=0.6, metadata={"help": "Mixing weight for sync_ref_model."})
    ref_model_sync_steps: int = field(default=512, metadata={"help": "Steps between reference syncs."})

    def __post_init__(self) -> None:
        if isinstance(self.reward_kwargs, str):  # from the command line: --set reward_kwargs='{...}'
            self.reward_kwargs = _yaml_value(self.reward_kwargs, "reward_kwargs (a mapping {reward: {key: value}})")
        if self.reward_kwargs is not None and not isinstance(self.reward_kwargs, dict):
            raise ConfigError(f"reward_kwargs must be a mapping {{reward: {{key: value}}}}, got {self.reward_kwargs!r}")
        if isinstance(self.scale_rewards, bool):  # TRL accepts booleans: True = group, False = none
            self.scale_rewards = "group" if self.scale_rewards else "none"
        _one_of("estimator", self.estimator, ("sampled", "exact"))
        _one_of("scale_rewards", self.scale_rewards, SCALES)
        _one_of("advantage_center", self.advantage_center, CENTERS)
        _one_of("loss_type", self.loss_type, LOSS_TYPES)
        _one_of("rollout_policy", self.rollout_policy, ("old", "current"))
        _one_of("batch_scope", self.batch_scope, ("accumulation", "micro_batch"))
        if not self._has_cross_entropy:  # silently ignored before: a recipe would mean nothing
            for name, unset in (("class_weights", None), ("label_smoothing_factor", 0.0)):
                if getattr(self, name) != unset:
                    raise ConfigError(f"{name} has no effect on GRPO (it weights a cross-entropy "
                                      f"loss); remove it, or use method: hybrid")
        checks = [
            (self.num_generations >= 1, f"num_generations must be >= 1, got {self.num_generations}"),
            (self.estimator == "exact" or self.num_generations >= 2 or self.advantage_center != "group",
             "num_generations=1 with advantage_center=group makes every advantage zero: use G >= 2"),
            (self.temperature > 0, f"temperature must be > 0, got {self.temperature}"),
            (self.epsilon >= 0, f"epsilon must be >= 0, got {self.epsilon}"),
            (self.epsilon_high is None or self.epsilon_high >= 0,
             f"epsilon_high must be >= 0 or null, got {self.epsilon_high}"),
            (self.num_iterations >= 1, f"num_iterations must be >= 1, got {self.num_iterations}"),
            (self.old_policy_sync_steps >= 0, "old_policy_sync_steps must be >= 0 (0 = off)"),
            (not (self.old_policy_sync_steps and self.num_iterations > 1),
             "use either num_iterations > 1 (TRL) or old_policy_sync_steps (the published method), "
             "not both"),
            (self.beta >= 0, f"beta must be >= 0, got {self.beta}"),
            (self.advantage_eps > 0, f"advantage_eps must be > 0, got {self.advantage_eps}"),
            (not self.sync_ref_model or self.beta > 0,
             "sync_ref_model needs a reference policy: set beta > 0"),
            (0 <= self.ref_model_mixup_alpha <= 1, "ref_model_mixup_alpha must be in [0, 1]"),
            (self.ref_model_sync_steps >= 1, "ref_model_sync_steps must be >= 1"),
            (not self.reward_weights or len(self.reward_weights) == len(self.reward_funcs),
             f"reward_weights has {len(self.reward_weights or [])} values for "
             f"{len(self.reward_funcs)} reward_funcs"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        super().__post_init__()


@dataclass
class HybridConfig(GRPOConfig):
    """SFT and GRPO in one run: loss = w(step) * CE + (1 - w(step)) * GRPO.

    One schedule field covers the published hybrid (``sft_then_grpo``), its reverse and mixed
    losses, so a new schedule is a recipe value, not a new trainer.
    """

    _has_cross_entropy = True  # the CE part reads class_weights and label_smoothing_factor

    method: str = field(default="hybrid", metadata={"help": "Training method (hybrid)."})
    schedule: str = field(
        default="sft_then_grpo",
        metadata={"help": "sft_then_grpo | grpo_then_sft (switch at switch_step) | mixed "
                          "(weight sft_weight, moving linearly to sft_weight_end if set)."})
    switch_step: int | None = field(
        default=None, metadata={"help": "Optimizer step of the switch (None: half of max_steps)."})
    sft_weight: float = field(default=0.5, metadata={"help": "mixed: weight of the CE loss."})
    sft_weight_end: float | None = field(
        default=None, metadata={"help": "mixed: CE weight at the last step (linear; None: constant)."})
    reset_reference_at_switch: bool = field(
        default=True,
        metadata={"help": "sft_then_grpo: the reference becomes the policy at the switch, as when "
                          "GRPO starts from an SFT checkpoint."})
    reset_optimizer_at_switch: bool = field(
        default=True,
        metadata={"help": "sft_then_grpo: fresh AdamW moments at the switch and the learning-rate "
                          "schedule (warmup, decay) run twice, once over the SFT steps and once over "
                          "the GRPO steps, as two runs (GRPO started from an SFT folder) get. On by "
                          "default, like reset_reference_at_switch: the published hybrid is two runs, "
                          "and SFT's moments (scaled to cross-entropy gradients) and its decayed "
                          "learning rate would otherwise set GRPO's first steps. false: one optimizer "
                          "and one schedule over the whole run."})

    def __post_init__(self) -> None:
        _one_of("schedule", self.schedule, ("sft_then_grpo", "grpo_then_sft", "mixed"))
        for name in ("sft_weight", "sft_weight_end"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise ConfigError(f"{name} must be in [0, 1], got {value}")
        if self.switch_step is not None and self.switch_step < 0:
            raise ConfigError(f"switch_step must be >= 0, got {self.switch_step}")
        if self.schedule != "mixed" and self.switch_step is None and self.max_steps <= 0:
            raise ConfigError(f"schedule {self.schedule} needs switch_step (or max_steps to switch at half)")
        if (self.schedule != "mixed" and self.switch_step is not None
                and 0 < self.max_steps <= self.switch_step):
            raise ConfigError(f"switch_step {self.switch_step} is not before max_steps {self.max_steps}: "
                              f"the {self.schedule} run would never switch")
        super().__post_init__()


@dataclass
class PostTrainConfig(SFTConfig):
    """Supervised post-training (AntiDeepfake; mix-frame): cross-entropy on the utterance, plus
    a frame-level cross-entropy on mix-frame clips. The data mixture (mix_by, mix_weights,
    balance_labels) and the perturbation (mixframe_*) are data keys, so any method can use them."""

    method: str = field(default="posttrain", metadata={"help": "Training method (posttrain)."})
    frame_loss_weight: float = field(
        default=0.0, metadata={"help": "Weight of the frame-level loss (needs frame_head; 0: utterance "
                                       "loss only, the AntiDeepfake recipe)."})

    def __post_init__(self) -> None:
        if self.frame_loss_weight < 0:
            raise ConfigError(f"frame_loss_weight must be >= 0, got {self.frame_loss_weight}")
        super().__post_init__()


@dataclass
class MLDGConfig(SFTConfig):
    """Meta-learning domain generalisation (MLDG, Li et al. 2018) with attack families as domains,
    usually on LoRA adapters (``use_peft``): each step holds out some of the batch's families as
    meta-test. ``balance_labels`` with ``mix_by: attack`` keeps every family in most batches."""

    method: str = field(default="mldg", metadata={"help": "Training method (mldg)."})
    meta_test_domains: int = field(
        default=1, metadata={"help": "Domains held out as meta-test in each step."})
    meta_lr: float = field(default=1e-3, metadata={"help": "alpha: learning rate of the inner (virtual) step."})
    meta_test_weight: float = field(default=1.0, metadata={"help": "Weight of the meta-test loss (Li et al.'s beta)."})
    first_order: bool = field(
        default=False, metadata={"help": "Drop the second-order term (the inner gradient is a constant)."})

    def __post_init__(self) -> None:
        if self.meta_test_domains < 1:
            raise ConfigError(f"meta_test_domains must be >= 1, got {self.meta_test_domains}")
        if self.meta_lr <= 0:
            raise ConfigError(f"meta_lr must be > 0, got {self.meta_lr}")
        if self.meta_test_weight < 0:
            raise ConfigError(f"meta_test_weight must be >= 0, got {self.meta_test_weight}")
        super().__post_init__()


# --- recipes ----------------------------------------------------------------------------------


def _valid_keys(dataclass_types) -> dict[str, type]:
    keys = {}
    for dc in dataclass_types:
        for f in fields(dc):
            if f.init:
                keys[f.name] = dc
    return keys


def check_keys(keys, dataclass_types, where: str) -> None:
    valid = _valid_keys(dataclass_types)
    for key in keys:
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint}")


def _annotation(owner, key: str) -> list[str]:
    """A field's declared type as its ``|`` parts, e.g. ``["str", "None"]``. The class annotation
    is read because HfArgumentParser rewrites ``field.type`` in place (``str | None`` -> ``str``)."""
    for klass in owner.__mro__:
        annotations = inspect.get_annotations(klass)
        if key in annotations:
            return [part.strip() for part in str(annotations[key]).split("|")]
    return []


def _is_list_field(key: str, dataclass_types) -> bool:
    """A field that takes several values (``nargs``): every declared type but None is a list."""
    owner = _valid_keys(dataclass_types).get(key)
    kinds = [k for k in _annotation(owner, key) if k != "None"] if owner else []
    return bool(kinds) and all(k.startswith("list[") for k in kinds)


def _is_nullable(owner, key: str) -> bool:
    return any(k == "None" or "Optional" in k or "Any" in k for k in _annotation(owner, key))


def parse_overrides(items: list[str], dataclass_types=()) -> list[str]:
    """``["lr=1e-4", "w=[1,4]"]`` -> ``["--lr", "1e-4", "--w", "1", "4"]`` for the argument parser.

    A value is read as YAML, as it would be in the recipe: a list spreads into the values of a
    list field (``class_weights=[1,4]``) and travels as YAML text to a field that parses its
    own (``train_manifest=[a.csv,b.csv]``, ``augment=[{name: noise}]``); anything else is passed
    as written (a string as YAML reads it: ``'"@run"'`` is ``@run``), for the field's type to
    convert. ``key=null`` (or ``key=``) is left out here:
    ``load_recipe`` sets it as a default, since the argument parser has no spelling for None.
    """
    args = []
    for item in items:
        key, sep, value = str(item).partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        parsed = _yaml_value(value, f"--set {key}")
        if parsed is None:
            continue
        if isinstance(parsed, list) and _is_list_field(key, dataclass_types):
            args += [f"--{key}", *(str(v) for v in parsed)]
        else:  # a quoted string loses its quotes, as in YAML; one token: it may start with "-"
            args.append(f"--{key}={parsed if isinstance(parsed, str) else value}")
    return args


def read_recipe(path: str | Path) -> dict:
    """A recipe file's mapping of keys, or a ConfigError naming the file (and the line of a
    YAML error): a missing file, a folder, bytes that are not UTF-8, or YAML that is a list or
    a scalar rather than a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe {path} does not exist" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        recipe = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (invalid UTF-8)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: invalid YAML ({getattr(exc, 'problem', None) or yaml_problem(exc)})") from None
    if recipe is None:
        return {}
    if not isinstance(recipe, dict):
        raise ConfigError(f"{path}: a recipe must be a YAML mapping of config keys (key: value lines), "
                          f"got a {type(recipe).__name__}")
    return recipe


def _where_in_recipe(path: Path, message: str, set_keys=()) -> str:
    """``recipe.yaml:16: max_steps: invalid int value: 'ten'``: argparse's complaint about a key,
    pointed at the recipe line that set it (or at --set when the recipe does not)."""
    match = re.match(r"argument --(\w+)(?:/--[\w-]+)?: (.*)", message)
    if not match:
        return f"{path}: {message}"
    key, problem = match.groups()
    if key in set_keys:
        return f"--set {key}: {problem}"
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if re.match(rf"{key}\s*:", line):
            return f"{path}:{number}: {key}: {problem}"
    return f"--set {key}: {problem}"


def load_recipe(path: str | Path, dataclass_types, overrides: list[str] | None = None):
    """Parse a YAML recipe (plus ``key=value`` overrides) into instances of ``dataclass_types``.

    Uses TRL's ``TrlParser`` (YAML values become parser defaults, command-line values win), after
    checking every key so a typo is an error that suggests the right name.
    """
    from trl import TrlParser

    path = Path(path)
    recipe = read_recipe(path)
    check_keys(recipe, dataclass_types, str(path))
    args = parse_overrides(overrides or [], dataclass_types)
    set_keys = [str(item).partition("=")[0].strip() for item in overrides or []]
    check_keys(set_keys, dataclass_types, "--set")
    for item in overrides or []:  # --set key=null: the recipe's value becomes None
        key, _, value = str(item).partition("=")
        if yaml.safe_load(value.strip()) is None:
            recipe[key.strip()] = None

    def refuse(message: str):  # argparse would print a 150-line usage and exit
        raise ConfigError(_where_in_recipe(path, message, set_keys))

    for key, value in recipe.items():  # lists/dicts travel as YAML text, parsed by the field
        owner = _valid_keys(dataclass_types)[key]
        if value is None and not _is_nullable(owner, key):
            refuse(f"argument --{key}: cannot be null (give a value, or leave the key out)")
        if (isinstance(value, (list, dict)) and owner is DataArguments
                and not _is_list_field(key, dataclass_types)):
            recipe[key] = yaml.safe_dump(value, default_flow_style=True).strip()
    parser = TrlParser(dataclass_types)
    parser.error = refuse
    parser.set_defaults_with_config(**recipe)
    try:
        return parser.parse_args_into_dataclasses(args=args)
    except RlspoofError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def save_resolved(configs, output_dir: str | Path) -> Path:
    """Write every resolved field to ``output_dir/recipe.resolved.yaml`` next to the checkpoint."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    resolved = {}
    for cfg in configs:
        data = cfg.to_dict() if hasattr(cfg, "to_dict") else {f.name: getattr(cfg, f.name) for f in fields(cfg)}
        resolved.update({k: v for k, v in data.items() if not k.startswith("_")})
    path = out / "recipe.resolved.yaml"
    path.write_text(yaml.safe_dump(_plain(resolved), sort_keys=True))
    return path


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
