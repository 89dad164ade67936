"""``PretrainConfig`` and ``PretrainDataArguments``: the recipe keys of wav2vec 2.0 pre-training
(``rlspoof pretrain``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml
from transformers import TrainingArguments

from rlspoof.data.audio import DEFAULT_SAMPLE_RATE
from rlspoof.data.manifest import BONAFIDE, LABELS, normalize_label
from rlspoof.errors import ConfigError, RlspoofError
from rlspoof.recipe import check_positive, check_training_args, yaml_problem

#: Config keys that are PretrainConfig fields; ``encoder_overrides`` may not set them too.
PRETRAIN_KEYS = (
    "mask_time_prob", "mask_time_length", "num_negatives", "codevector_dim",
    "proj_codevector_dim", "num_codevector_groups", "num_codevectors_per_group",
    "diversity_loss_weight",
)


#: Encoder families that can be pre-trained. Only wav2vec 2.0 has a pre-training head in
#: transformers with a contrastive objective.
PRETRAIN_FAMILIES = ("wav2vec2",)
#: Presets small enough to pre-train on a CPU (``rlspoof.models.presets.PRESETS``).
PRETRAIN_PRESETS = ("tiny", "tiny-logspec")


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
        clash = sorted(set(overrides) & set(PRETRAIN_KEYS))
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
