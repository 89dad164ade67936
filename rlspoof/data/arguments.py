"""The data recipe keys of every fine-tuning method: manifests, crops, augmentation, mixture."""

from __future__ import annotations

from dataclasses import dataclass, field

from rlspoof.data.mixframe import MIX_MODES
from rlspoof.errors import ConfigError, RlspoofError
from rlspoof.recipe import check_positive, one_of


@dataclass
class DataArguments:
    """Which manifests to train and evaluate on, and how audio is cut and augmented."""

    train_manifest: list[str] | None = field(
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
    augment: list[dict] | None = field(
        default=None,
        metadata={"help": "Augmentation specs, e.g. [{name: rawboost, p: 0.5, algo: 3}] "
                          "(see rlspoof.data.augment)."},
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
    mix_weights: dict[str, float] | None = field(
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
        if self.mix_weights is not None and not isinstance(self.mix_weights, dict):
            raise ConfigError(f"mix_weights must be a mapping {{source: weight}}, got {self.mix_weights!r}")
        if self.augment is not None and not isinstance(self.augment, list):  # specs: the Augmenter
            quoted = " (a YAML list, not a quoted string)" if isinstance(self.augment, str) else ""
            raise ConfigError(f"augment must be a list of specs such as [{{name: rawboost, p: 0.5}}]"
                              f"{quoted}, got {self.augment!r}")
        if not 0 <= self.mixframe_prob <= 1:
            raise ConfigError(f"mixframe_prob must be in [0, 1], got {self.mixframe_prob}")
        lo_hi = list(self.mixframe_span_seconds)
        if len(lo_hi) != 2 or not 0 < lo_hi[0] <= lo_hi[1]:
            raise ConfigError(f"mixframe_span_seconds must be [min, max] with 0 < min <= max, got {lo_hi}")
        one_of("mixframe_mode", self.mixframe_mode, MIX_MODES)
        check_positive("mix_temperature", self.mix_temperature)
        if self.mix_weights is not None and not self.mix_by:
            raise ConfigError("mix_weights needs mix_by (the manifest column the weights are keyed by)")
        self.train_manifest = _paths(self.train_manifest)
        self._augmenter_check()

    def train_manifests(self) -> list[str]:
        return list(self.train_manifest or [])

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
        return self.augment or None


def _paths(value) -> list[str] | None:
    """One path, comma-separated paths (``--set train_manifest=a.csv,b.csv``) or a list of them,
    as a list of non-empty paths (None for none)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(f"train_manifest must be a path or a list of paths, got {value!r}")
    paths = [part.strip() for item in value for part in str(item).split(",") if part.strip()]
    return paths or None
