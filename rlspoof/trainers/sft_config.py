"""``SFTConfig``: the recipe keys of supervised fine-tuning, the base of every method's config."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from rlspoof.errors import ConfigError
from rlspoof.recipe import check_positive, check_training_args, one_of


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
        one_of("nonfinite_loss", self.nonfinite_loss, ("error", "skip"))
        if self.drift_samples < 0:
            raise ConfigError(f"drift_samples must be >= 0 (0 = off), got {self.drift_samples}")
        if self.class_weights is not None and (
            len(self.class_weights) != 2 or min(self.class_weights) <= 0
        ):
            raise ConfigError("class_weights must be two positive numbers [bonafide, spoof]")
        super().__post_init__()
