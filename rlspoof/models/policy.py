"""The detector as a policy: SSL encoder -> layer weighting -> pooling -> head -> 2 logits.

Action / class order is ``rlspoof.data.manifest.LABELS``: index 0 bonafide, index 1 spoof.
``score`` is the log-odds ``logit[bonafide] - logit[spoof]`` (higher = more bonafide, the
ASVspoof convention). What a saved policy folder holds, and how it is read without trusting
it, is :mod:`rlspoof.models.checkpoint`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedModel

from rlspoof.data.manifest import LABEL2ID, LABELS
from rlspoof.errors import RlspoofError
from rlspoof.models.checkpoint import (
    load_policy_weights,
    policy_config_json,
    read_policy_folder,
    write_policy,
)
from rlspoof.models.encoders import (
    EncoderConfig,
    apply_freeze,
    apply_lora,
    check_declared_size,
    checked_fields,
    enable_checkpointing,
    encoder_from_config,
    load_encoder,
)
from rlspoof.models.frontends import conv_geometry, normalize_waveforms, valid_samples
from rlspoof.models.heads import (
    POOLINGS,
    ClassifierHead,
    LayerWeights,
    build_pooling,
    frame_mask_from_samples,
)
from rlspoof.models.inference import (
    NonFiniteScoreError,
    check_finite_scores,
    run_batched,
    scoring_inputs,
)

__all__ = [
    "PolicyConfig",
    "SpoofPolicy",
    "NonFiniteScoreError",
    "build_policy",
]

@dataclass
class PolicyConfig:
    """Everything needed to build a policy's architecture (saved in its ``config.json``)."""

    encoder: EncoderConfig
    pooling: str = field(default="mean", metadata={"help": f"one of {', '.join(POOLINGS)}"})
    head_hidden: int | None = field(
        default=None, metadata={"help": "MLP hidden size; None = linear"}
    )
    head_dropout: float = field(default=0.0, metadata={"help": "dropout before head layers"})
    head_activation: str = field(default="gelu", metadata={"help": "gelu | none (between the MLP's layers)"})
    normalize_input: bool = field(
        default=False, metadata={"help": "zero-mean, unit-variance waveforms per clip "
                                         "(transformers feature extractors' do_normalize)"}
    )
    sample_rate: int = field(default=16000, metadata={"help": "audio sample rate in Hz"})
    crop_seconds: float | None = field(default=4.0, metadata={"help": "training crop length"})
    frame_head: bool = field(
        default=False, metadata={"help": "a second, frame-level head (mix-frame post-training)"}
    )

    def __post_init__(self) -> None:
        if isinstance(self.encoder, dict):
            self.encoder = EncoderConfig.from_dict(self.encoder)
        if not isinstance(self.encoder, EncoderConfig):
            raise RlspoofError(f"policy encoder must be an EncoderConfig, got {self.encoder!r}")
        if self.pooling not in POOLINGS:
            raise RlspoofError(
                f"unknown pooling {self.pooling!r} (valid: {', '.join(sorted(POOLINGS))})"
            )
        if self.head_hidden is not None and (
            isinstance(self.head_hidden, bool) or int(self.head_hidden) < 1
        ):
            raise RlspoofError(
                f"head_hidden must be a positive integer or null, got {self.head_hidden!r}"
            )
        if not 0.0 <= float(self.head_dropout) < 1.0:
            raise RlspoofError(f"head_dropout must be in [0, 1), got {self.head_dropout!r}")
        if int(self.sample_rate) <= 0:
            raise RlspoofError(f"sample_rate must be positive, got {self.sample_rate!r}")
        if self.crop_seconds is not None and float(self.crop_seconds) <= 0:
            raise RlspoofError(f"crop_seconds must be positive or null, got {self.crop_seconds!r}")

    @property
    def crop_length(self) -> int | None:
        """Crop length in samples (None: no cropping)."""
        if self.crop_seconds is None:
            return None
        return int(round(float(self.crop_seconds) * int(self.sample_rate)))

    def to_dict(self) -> dict:
        return {
            "encoder": self.encoder.to_dict(),
            "pooling": self.pooling,
            "head_hidden": self.head_hidden,
            "head_dropout": self.head_dropout,
            "head_activation": self.head_activation,
            "normalize_input": self.normalize_input,
            "sample_rate": self.sample_rate,
            "crop_seconds": self.crop_seconds,
            "frame_head": self.frame_head,
        }

    @classmethod
    def from_dict(cls, data: dict) -> PolicyConfig:
        data = checked_fields(cls, data, "policy")
        if "encoder" not in data:
            raise RlspoofError("policy config needs an 'encoder' section")
        return cls(**data)


class SpoofPolicy(nn.Module):
    """Binary spoofing detector seen as a 2-action policy (0 = bonafide, 1 = spoof)."""

    labels: tuple[str, str] = LABELS

    def __init__(
        self,
        config: PolicyConfig,
        encoder: PreTrainedModel,
        hidden_size: int,
        num_hidden_states: int,
    ):
        super().__init__()
        self.config = config
        self.encoder = encoder
        self.layer_weights = (
            LayerWeights(num_hidden_states) if config.encoder.layer == "weighted" else None
        )
        self.pooling = build_pooling(config.pooling, hidden_size)
        self.head = ClassifierHead(self.pooling.out_dim, config.head_hidden, config.head_dropout,
                                   num_labels=len(LABELS), activation=config.head_activation)
        self.hidden_size = int(hidden_size)
        #: Frame-level logits (mix-frame post-training); unused when scoring utterances.
        self.frame_head = ClassifierHead(hidden_size, num_labels=len(LABELS)) if config.frame_head else None
        #: Free-form metadata (``recipe``, seed, ...) saved with the checkpoint.
        self.metadata: dict = {}

    # ------------------------------------------------------------------ forward

    @property
    def sample_rate(self) -> int:
        return int(self.config.sample_rate)

    @property
    def crop_length(self) -> int | None:
        return self.config.crop_length

    def frames(
        self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Frame features (B x T x D) of the selected/weighted layer and their mask (B x T)."""
        if input_values.dim() == 1:
            input_values = input_values.unsqueeze(0)
            attention_mask = None if attention_mask is None else attention_mask.reshape(1, -1)
        layer = self.config.encoder.layer
        if self.config.normalize_input:
            input_values = normalize_waveforms(input_values, attention_mask)
        with valid_samples(self.encoder, attention_mask):
            out = self.encoder(
                input_values=input_values,
                attention_mask=attention_mask,
                output_hidden_states=layer != "last",
            )
        last = out.last_hidden_state
        if layer == "last":
            hidden, add_adapter = last, None  # None: the config decides (adapter on top or not)
        else:
            # The states as transformers reports them, which its own *ForSequenceClassification
            # weighted sum uses (imported classifiers score exactly as in transformers): for
            # stable-layer-norm (large) models the last is the last layer's output before the
            # encoder's final layer norm, unlike ``last_hidden_state``.
            states = list(out.hidden_states)
            hidden = self.layer_weights(states) if layer == "weighted" else states[layer]
            add_adapter = False
        mask = frame_mask_from_samples(self.encoder, attention_mask, hidden.shape[1], add_adapter)
        return hidden, mask

    def embed(
        self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Pooled utterance features (B x pooling.out_dim)."""
        hidden, mask = self.frames(input_values, attention_mask)
        return self.pooling(hidden, mask)

    def forward(
        self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None,
        return_frames: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Logits (B x 2): column 0 bonafide, column 1 spoof. With ``return_frames`` (a policy
        with a frame head), also the frame logits (B x T x 2) and frame mask of the same pass,
        through ``forward`` so that DDP/DeepSpeed wrappers see the call."""
        if return_frames:
            return self.frame_outputs(input_values, attention_mask)
        return self.head(self.embed(input_values, attention_mask))

    def frame_outputs(
        self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Utterance logits (B x 2), frame logits (B x T x 2) and the frame mask, from one
        encoder pass: what a loss on both levels needs."""
        if self.frame_head is None:
            raise RlspoofError("this policy has no frame head: build it with frame_head=True "
                               "(recipe key frame_head: true)")
        hidden, mask = self.frames(input_values, attention_mask)
        return self.head(self.pooling(hidden, mask)), self.frame_head(hidden), mask

    @property
    def frame_geometry(self) -> tuple[int, int] | None:
        """(receptive field, stride) in samples of the encoder's frames, where its config says."""
        cfg = self.encoder.config
        kernels, strides = getattr(cfg, "conv_kernel", None), getattr(cfg, "conv_stride", None)
        if not kernels or not strides:
            return None
        return conv_geometry(list(kernels), list(strides))

    def add_frame_head(self) -> None:
        """A new (random) frame head on a policy saved without one."""
        if self.frame_head is None:
            self.frame_head = ClassifierHead(self.hidden_size, num_labels=len(LABELS)).to(
                next(self.head.parameters()).device)
            self.config.frame_head = True

    def set_freeze(self, freeze: str) -> None:
        """Re-freeze the encoder of a loaded policy (``EncoderConfig.freeze`` modes)."""
        if self.config.encoder.lora is not None:
            raise RlspoofError("the encoder has LoRA adapters: its own weights stay frozen")
        apply_freeze(self.encoder, freeze)
        self.config.encoder.freeze = freeze

    def add_lora(self, lora: dict) -> None:
        """LoRA adapters on the encoder of a policy trained without them (e.g. a post-trained
        checkpoint): the encoder's own weights freeze, adapters and heads train, and the saved
        folder re-creates the adapters on load."""
        if self.config.encoder.lora is not None:
            raise RlspoofError(f"the encoder already has LoRA adapters ({self.config.encoder.lora})")
        self.encoder = apply_lora(self.encoder, lora)
        self.config.encoder.lora = dict(lora)

    def distribution(
        self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.distributions.Categorical:
        """The policy over the two actions (sample / log_prob / entropy)."""
        return torch.distributions.Categorical(logits=self(input_values, attention_mask).float())

    @staticmethod
    def logits_to_scores(logits: torch.Tensor) -> torch.Tensor:
        """log-odds ``logit[bonafide] - logit[spoof]``; higher = more bonafide."""
        return logits[..., LABEL2ID["bonafide"]] - logits[..., LABEL2ID["spoof"]]

    @property
    def min_samples(self) -> int:
        """The shortest input the encoder turns into a frame: its receptive field (400 samples
        for wav2vec 2.0 and the tiny preset); 1 when the config does not say."""
        geometry = self.frame_geometry
        return 1 if geometry is None else max(1, int(geometry[0]))

    @torch.no_grad()
    def score(
        self,
        waveforms: Sequence[np.ndarray] | torch.Tensor | np.ndarray,
        batch_size: int = 16,
        names: Sequence[str] | None = None,
    ) -> np.ndarray:
        """float64 log-odds per waveform (eval mode, no grad; the mode is restored after).

        Variable-length lists are sorted by length, padded per batch with trailing zeros and
        an attention mask, and returned in the input order. A clip shorter than the encoder's
        receptive field (``min_samples``), which the CNN cannot turn into a single frame, is
        first repeat-padded to that length, as training pads short clips (``crop_or_pad``).

        A NaN/Inf score is never returned: ``NonFiniteScoreError`` names the inputs (by
        ``names`` where given, else by index) after the whole list is scored.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        waves = scoring_inputs(waveforms, names, self.min_samples)
        if not waves:
            return np.empty(0, dtype=np.float64)
        out = run_batched(self, waves, lambda values, mask: self.logits_to_scores(self(values, mask).double()),
                          batch_size=batch_size)
        return check_finite_scores(out, waves, names)

    def activation_checkpointing_enable(
        self,
        activation_checkpointing_kwargs: dict | None = None,
        every_n_layers: int = 1,
        offload: bool = False,
    ) -> None:
        """For ``transformers.Trainer(activation_checkpointing=True)``: enabled on the encoder."""
        enable_checkpointing(self.encoder, activation_checkpointing_kwargs, every_n_layers, offload)

    # ------------------------------------------------------------------ save / load

    def save_pretrained(self, save_directory: str | Path, metadata: dict | None = None,
                        state_dict: dict[str, torch.Tensor] | None = None) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (``rlspoof.models.checkpoint``);
        ``metadata`` (JSON-serialisable, e.g. ``{"recipe": {...}}``) defaults to
        ``self.metadata``. ``state_dict`` replaces this module's own (the full weights the
        Trainer gathers under ZeRO-3, where each rank's parameters are empty shards)."""
        config = policy_config_json(self, self.metadata if metadata is None else metadata)
        folder = write_policy(save_directory, config,
                              self.state_dict() if state_dict is None else state_dict)
        if metadata is not None:
            self.metadata = dict(metadata)
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | Path, trust_remote_code: bool = False) -> SpoofPolicy:
        """Load a ``save_pretrained`` folder (safetensors only; strict; returned in eval mode).

        Nothing in the folder runs: the encoder is rebuilt with rlspoof's own class for its
        family. ``trust_remote_code`` is the caller's (a CLI flag or recipe field, off by
        default) and is what the loaded ``config.encoder`` carries; a value stored in the
        folder is ignored. The size the config declares is checked against the safetensors
        header before the model is allocated, and NaN/Inf weights are refused.
        """
        from rlspoof.models.hf_classifier import is_hf_classifier_folder, load_hf_classifier

        if is_hf_classifier_folder(folder):  # a transformers audio classifier: its head is kept
            return load_hf_classifier(folder, trust_remote_code).eval()
        data, config_path, weights = read_policy_folder(folder)
        try:
            policy_cfg = PolicyConfig.from_dict(data["policy"])
            enc = data["encoder"]
            model_type, enc_dict = enc["model_type"], enc["config"]
        except (KeyError, TypeError) as exc:
            raise RlspoofError(f"{config_path}: missing or malformed entry {exc}") from exc
        except RlspoofError as exc:
            raise RlspoofError(f"{config_path}: {exc}") from exc
        policy_cfg.encoder.trust_remote_code = bool(trust_remote_code)

        def build() -> SpoofPolicy:
            encoder = encoder_from_config(model_type, enc_dict, policy_cfg.encoder, str(config_path))
            return cls(policy_cfg, encoder, int(encoder.config.hidden_size),
                       int(encoder.config.num_hidden_layers) + 1)

        # Family, config values and declared size first, all before any allocation.
        check_declared_size(
            build, enc_dict if isinstance(enc_dict, dict) else {}, [weights], str(config_path)
        )
        policy = build()
        load_policy_weights(policy, weights)
        policy.metadata = dict(data.get("metadata") or {})
        return policy.eval()


def build_policy(config: PolicyConfig) -> SpoofPolicy:
    """A new policy: encoder from ``config.encoder`` (checkpoint or preset), fresh head.
    Returned in train mode."""
    encoder, hidden_size, num_hidden_states = load_encoder(config.encoder)
    return SpoofPolicy(config, encoder, hidden_size, num_hidden_states).train()
