"""The policy's recipe keys: which encoder, pooling, head, freezing and LoRA (TRL ``ModelConfig``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rlspoof.errors import ConfigError


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
    normalize_input: bool = field(
        default=False, metadata={"help": "Zero-mean, unit-variance waveforms per clip, as the encoder "
                                         "saw them if its feature extractor has do_normalize (most "
                                         "hub wav2vec 2.0 / XLS-R checkpoints)."})
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
