"""``GRPOConfig``: the recipe keys of GRPO (TRL's names and defaults where they carry over)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rlspoof.algos import CENTERS, LOSS_TYPES, SCALES
from rlspoof.errors import ConfigError
from rlspoof.recipe import one_of
from rlspoof.trainers.sft_config import SFTConfig


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
    reward_kwargs: dict[str, dict] | None = field(
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
        if self.reward_kwargs is not None and not isinstance(self.reward_kwargs, dict):
            raise ConfigError(f"reward_kwargs must be a mapping {{reward: {{key: value}}}}, got {self.reward_kwargs!r}")
        if isinstance(self.scale_rewards, bool):  # TRL accepts booleans: True = group, False = none
            self.scale_rewards = "group" if self.scale_rewards else "none"
        one_of("estimator", self.estimator, ("sampled", "exact"))
        one_of("scale_rewards", self.scale_rewards, SCALES)
        one_of("advantage_center", self.advantage_center, CENTERS)
        one_of("loss_type", self.loss_type, LOSS_TYPES)
        one_of("rollout_policy", self.rollout_policy, ("old", "current"))
        one_of("batch_scope", self.batch_scope, ("accumulation", "micro_batch"))
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
