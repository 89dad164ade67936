"""What every rlspoof trainer shares, on top of ``transformers.Trainer``.

Like TRL's trainers, a method is a ``Trainer`` subclass that implements one loss: here
``training_loss(model, inputs, outputs)``, given what ``training_forward`` computed on the batch
(by default ``{"logits": ...}`` of the policy's single forward pass; a method that needs more,
such as frame logits, or other passes, overrides ``training_forward`` too). Every method's loss
goes through the same non-finite check and the same dev loss. This base supplies the forward pass, one dev loss for every method (cross-entropy, so
methods compare), and the audio side: datasets from manifests, the padding collator, fresh crops
each epoch, ASVspoof metrics on the dev set, and checkpoints saved as ``SpoofPolicy`` folders
(config + safetensors + metadata) instead of a bare state dict plus a pickled
``training_args.bin``.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate.utils import gather_object
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import (
    PREFIX_CHECKPOINT_DIR,
    get_last_checkpoint,
    rotate_checkpoints,
)

from rlspoof.data.arguments import DataArguments
from rlspoof.data.augment import Augmenter
from rlspoof.data.dataset import AudioCollator, SpoofDataset
from rlspoof.data.manifest import LABELS, Manifest, concat_manifests, read_manifest
from rlspoof.data.mixframe import MixFrameDataset
from rlspoof.data.mixing import MixtureSampler
from rlspoof.errors import ConfigError, DataError, RlspoofError
from rlspoof.metrics.drift import sliced_wasserstein
from rlspoof.metrics.report import compute_metrics_for_trainer
from rlspoof.models.encoders import count_parameters
from rlspoof.models.inference import run_batched
from rlspoof.recipe import save_resolved


def load_split(path: str | Path, split: str | None) -> Manifest:
    """The manifest's rows (of ``split``); none is an error naming the file, not a sampler's
    traceback at the first batch."""
    manifest = read_manifest(path)
    if split is not None:
        manifest = manifest.filter(split=split)
    if len(manifest) == 0:
        raise DataError(f"no rows with split {split!r}" if split is not None else "no rows (only a header)", path)
    return manifest


def check_both_labels(manifest: Manifest, split: str | None, role: str = "training") -> None:
    """Every fine-tuning method needs both classes: cross-entropy on one label learns a
    constant, and GRPO's correctness reward is then won by always giving that answer; the dev
    set's EER is undefined on one class (it failed at the first evaluation, after training).
    (SSL pre-training on bonafide only is legal; it does not come through here.)"""
    present = sorted({row.label for row in manifest})
    if len(present) == 1:
        (missing,) = set(LABELS) - set(present)
        rows = f"rows of split {split!r}" if split is not None else "rows"
        need = "a detector needs both classes" if role == "training" else "the dev EER needs both classes"
        raise DataError(f"all {len(manifest)} {role} {rows} are {present[0]!r} and none is "
                        f"{missing!r}; {need}", manifest.origin)


def build_train_sampler(data_args: DataArguments, train: SpoofDataset, args) -> MixtureSampler | None:
    """The recipe's data mixture over the training rows (None: the Trainer's uniform shuffle)."""
    if not data_args.uses_mixture:
        return None
    return MixtureSampler(
        train.manifest, data_args.mix_by or "source", batch_size=args.per_device_train_batch_size,
        weights=data_args.mix_weights, temperature=data_args.mix_temperature,
        balance_labels=data_args.balance_labels, seed=args.seed,
    )


def build_datasets(data_args: DataArguments, seed: int) -> tuple[SpoofDataset, SpoofDataset | None]:
    """Training set (random crops + augmentation) and dev set (deterministic, whole clips)."""
    paths = data_args.train_manifests()
    if not paths:
        raise DataError("the recipe needs train_manifest")
    train_kwargs = dict(
        sample_rate=data_args.sample_rate,
        crop_seconds=data_args.crop_seconds,
        train=True,
        augmenter=Augmenter.from_config(data_args.augment_specs(), sample_rate=data_args.sample_rate),
        seed=seed,
    )
    manifest = concat_manifests([load_split(path, data_args.train_split) for path in paths])
    check_both_labels(manifest, data_args.train_split)
    if data_args.mixframe_prob > 0:
        train = MixFrameDataset(
            manifest, **train_kwargs, prob=data_args.mixframe_prob,
            span_seconds=tuple(data_args.mixframe_span_seconds), max_spans=data_args.mixframe_max_spans,
            mode=data_args.mixframe_mode, blend_weight=data_args.mixframe_blend_weight)
    else:
        train = SpoofDataset(manifest, **train_kwargs)
    dev = None
    if data_args.eval_manifest:
        dev_manifest = load_split(data_args.eval_manifest, data_args.eval_split)
        check_both_labels(dev_manifest, data_args.eval_split, role="dev")
        dev = SpoofDataset(
            dev_manifest,
            sample_rate=data_args.sample_rate,
            crop_seconds=data_args.eval_crop_seconds,
            train=False,
        )
    return train, dev


def resume_point(args) -> str | None:
    """``resume_from_checkpoint``: a checkpoint folder, ``last`` (the newest complete checkpoint
    in output_dir; an error if there is none) or ``auto`` (the newest if any, else start afresh).
    Checkpoints are renamed into place only when complete (``SpoofTrainer._save_checkpoint``), so
    a run killed mid-save resumes from the previous one. A folder that is not a checkpoint is
    an error naming it (the Trainer would fail with a traceback, or silently start afresh)."""
    value = args.resume_from_checkpoint
    if value is None or str(value).lower() in ("", "false", "none", "no"):
        return None
    if str(value).lower() not in ("last", "auto", "true"):
        checkpoint = Path(value)
        if not (checkpoint / "trainer_state.json").is_file():
            what = "is not a checkpoint folder (no trainer_state.json)" if checkpoint.is_dir() else "does not exist"
            raise ConfigError(f"resume_from_checkpoint: {checkpoint} {what}; give a checkpoint-N "
                              "folder, last or auto")
        return str(checkpoint)
    folder = Path(args.output_dir)
    last = get_last_checkpoint(str(folder)) if folder.is_dir() else None
    if last is None and str(value).lower() != "auto":
        raise ConfigError(f"resume_from_checkpoint={value}: no checkpoint-* folder in {folder}")
    return last


def refused_pickle(checkpoint: str | Path, exc: Exception) -> RlspoofError:
    """One line for a checkpoint file that ``torch.load(weights_only=True)`` refused because it
    pickles more than tensors (code could run if it were loaded): it names the file, found by
    reading each file's pickle without loading it."""
    from torch.serialization import get_unsafe_globals_in_checkpoint
    from transformers.trainer_pt_utils import safe_globals

    for path in sorted(Path(checkpoint).iterdir()):  # optimizer.pt, scheduler.pt, rng_state*.pth
        if path.suffix not in (".pt", ".pth", ".bin", ".pkl"):
            continue
        try:
            with safe_globals():  # what the Trainer itself allows in rng_state.pth
                unsafe = get_unsafe_globals_in_checkpoint(path)
            reason = f"it is a pickle that imports {', '.join(unsafe[:3])}" if unsafe else None
        except Exception:  # noqa: BLE001 - not even a torch archive: the file torch refused
            reason = "it is not a torch tensor archive (a plain pickle)"
        if reason:
            return RlspoofError(f"{path}: refused, not loaded: {reason}; only tensors are read "
                                "from a checkpoint")
    return RlspoofError(f"{checkpoint}: a file was refused, not loaded: it is a pickle with more "
                        f"than tensors ({str(exc).splitlines()[0]})")


def train_resuming(trainer: Trainer, resume: str | None):
    """``trainer.train``; a checkpoint file refused as a pickle is one line naming it."""
    try:
        return trainer.train(resume_from_checkpoint=resume)
    except pickle.UnpicklingError as exc:
        if resume is None:
            raise
        raise refused_pickle(resume, exc) from None


def nonfinite_loss_error(what: str, loss: torch.Tensor, step: int, advice: str) -> RlspoofError:
    """The error a NaN/Inf loss stops any run with (fine-tuning and pre-training alike): the
    value, the optimizer step it would have taken, and what to do. Stopping is the default
    because one NaN update poisons every later step."""
    return RlspoofError(f"non-finite {what} loss ({loss.item()}) at step {step}; {advice}")


#: Where a checkpoint is written before it is renamed into ``output_dir`` (see _save_checkpoint).
PARTIAL_DIR = ".partial"


class FreshCropsEachEpoch(TrainerCallback):
    """New random crops every epoch (the dataset seeds each item by (seed, epoch, index))."""

    def __init__(self, dataset: SpoofDataset):
        self.dataset = dataset

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.dataset.set_epoch(int(state.epoch or 0))


class EmbeddingDrift(TrainerCallback):
    """At each evaluation, the sliced Wasserstein distance between the pooled embeddings of a
    fixed sample of training and of dev utterances (``drift_samples``): a distance that grows
    while dev EER stalls says the representation drifts away from the evaluation domain."""

    def __init__(self, trainer: Trainer, n: int):
        self.trainer, self.n = trainer, n

    def _embeddings(self, dataset, policy) -> np.ndarray:
        waves = [dataset[i]["input_values"].numpy() for i in range(min(self.n, len(dataset)))]
        return run_batched(policy, waves, policy.embed, batch_size=self.n)

    def on_evaluate(self, args, state, control, model=None, **kwargs):
        policy = self.trainer.accelerator.unwrap_model(model)
        train = self._embeddings(self.trainer.train_dataset, policy)
        dev = self._embeddings(self.trainer.eval_dataset, policy)
        distance = sliced_wasserstein(train.astype(np.float32), dev.astype(np.float32))
        self.trainer.log({"eval_embedding_drift": distance})


class SkipNonFiniteSteps(TrainerCallback):
    """Drops the gradients of an optimizer step that saw a non-finite loss: with no ``.grad``,
    AdamW leaves those parameters (and their moments) untouched, so the step is a true no-op;
    only the learning-rate schedule moves on."""

    def __init__(self, trainer: SpoofTrainer):
        self.trainer = trainer

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        if self.trainer._skip_step:
            for parameter in self.trainer.model.parameters():
                parameter.grad = None
            self.trainer._skip_step = False


class SpoofTrainer(Trainer):
    """Base trainer for a ``SpoofPolicy``; subclasses implement ``training_loss`` (and may
    override ``training_forward``); none overrides ``compute_loss``."""

    def __init__(self, model, args, train_dataset=None, eval_dataset=None, *, recipe_configs=(),
                 train_sampler=None, **kwargs):
        args.label_names = ["labels"]  # the policy's forward has no `labels` to infer them from
        self.train_sampler = train_sampler
        kwargs.setdefault("data_collator", AudioCollator())
        kwargs.setdefault("compute_metrics", compute_metrics_for_trainer)
        super().__init__(model=model, args=args, train_dataset=train_dataset,
                         eval_dataset=eval_dataset, **kwargs)
        self.recipe_configs = tuple(recipe_configs)
        #: Training metrics recorded per micro-batch; each log carries their means (as TRL does).
        self._metrics: dict[str, list[float]] = defaultdict(list)
        if isinstance(train_dataset, SpoofDataset):
            self.add_callback(FreshCropsEachEpoch(train_dataset))
        self._skip_step = False
        self.add_callback(SkipNonFiniteSteps(self))
        if getattr(args, "drift_samples", 0) and train_dataset is not None and eval_dataset is not None:
            self.add_callback(EmbeddingDrift(self, args.drift_samples))

    def _get_train_sampler(self, train_dataset=None):
        if self.train_sampler is not None:
            return self.train_sampler
        return super()._get_train_sampler(train_dataset)

    def policy_logits(self, model, inputs):
        """One forward pass of the policy: logits (B, 2), index 0 bonafide, 1 spoof."""
        return model(inputs["input_values"], attention_mask=inputs.get("attention_mask"))

    def training_forward(self, model, inputs) -> dict[str, torch.Tensor]:
        """The forward pass(es) the method's loss needs, by name."""
        return {"logits": self.policy_logits(model, inputs)}

    def training_loss(self, model, inputs, outputs: dict) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement training_loss")

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if model.training:
            outputs = self.training_forward(model, inputs)
            loss = self.check_finite(self.training_loss(model, inputs, outputs), inputs)
        else:  # the same dev loss for every method, so their curves compare
            outputs = {"logits": self.policy_logits(model, inputs)}
            loss = F.cross_entropy(outputs["logits"].float(), inputs["labels"])
        return (loss, outputs) if return_outputs else loss

    def check_finite(self, loss: torch.Tensor, inputs) -> torch.Tensor:
        """A NaN/Inf loss never reaches the weights: ``nonfinite_loss: error`` stops before the
        backward pass; ``skip`` lets it run and drops the whole optimizer step (SkipNonFiniteSteps)."""
        if torch.isfinite(loss).item():
            return loss
        utts = list(inputs.get("utt_id", []))[:8]
        if getattr(self.args, "nonfinite_loss", "error") == "error":
            raise nonfinite_loss_error(
                "training", loss, self.state.global_step + 1,
                f"no update was made. Batch utterances: {utts}. Lower learning_rate, check the "
                "audio (rlspoof data validate), or set nonfinite_loss: skip")
        self._skip_step = True
        self._metrics["nonfinite_skipped"].append(1.0)
        return loss

    # ---------------------------------------------------------------- checkpoints

    def _get_output_dir(self, trial) -> str:
        staging = getattr(self, "_staging_dir", None)
        return staging if staging is not None else super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial) -> None:
        """Atomic checkpoints: the Trainer writes ``checkpoint-N`` under ``output_dir/.partial``
        and it is renamed into place only once complete, so a run killed mid-save never leaves a
        half-written checkpoint for a resume to pick up. (transformers writes in place.)"""
        root = Path(super()._get_output_dir(trial))
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        self._staging_dir = str(root / PARTIAL_DIR)
        try:
            super()._save_checkpoint(model, trial)
            self.save_resume_state(root / PARTIAL_DIR / name)
        finally:
            self._staging_dir = None
        self.accelerator.wait_for_everyone()  # every rank's shards are in the staging folder
        if not self.args.should_save:
            return
        target = root / name
        if target.exists():
            shutil.rmtree(target)
        os.replace(root / PARTIAL_DIR / name, target)
        with contextlib.suppress(OSError):  # empty now, unless a killed save left a checkpoint there
            (root / PARTIAL_DIR).rmdir()
        if self.state.best_model_checkpoint:
            self.state.best_model_checkpoint = self.state.best_model_checkpoint.replace(
                str(root / PARTIAL_DIR), str(root))
        rotate_checkpoints(output_dir=str(root), save_total_limit=self.args.save_total_limit,
                           best_model_checkpoint=self.state.best_model_checkpoint, use_mtime=True)

    def save_resume_state(self, folder: Path) -> None:
        """What a method keeps outside the model, optimizer, scheduler and RNG states that the
        Trainer checkpoints, written into checkpoint ``folder`` by every process (see GRPO)."""

    def load_resume_state(self, folder: Path) -> None:
        """Restores ``save_resume_state``'s files on resume, after the model weights."""

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        """The Trainer's, then the method's own resume state: the one hook a resume always
        passes through once, after the weights are loaded and before the first step."""
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is not None:
            self.load_resume_state(Path(checkpoint))

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Training logs carry the means of the recorded metrics over every process's
        micro-batches since the last log (every process calls ``log``)."""
        if "loss" in logs:
            recorded = {k: (sum(v), len(v)) for k, v in self._metrics.items() if v}
            self._metrics.clear()
            if self.accelerator.num_processes > 1:
                merged: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
                for part in gather_object([recorded]):
                    for key, (total, count) in part.items():
                        merged[key][0] += total
                        merged[key][1] += count
                recorded = merged
            logs = {**logs, **{k: total / count for k, (total, count) in recorded.items()}}
        super().log(logs, start_time)

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        output_dir = output_dir or self.args.output_dir
        if not self.args.should_save:
            return
        policy = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        recipe = {}
        if self.recipe_configs:
            recipe_path = save_resolved(self.recipe_configs, output_dir)
            recipe = {"recipe_file": recipe_path.name}
        trainable, total = count_parameters(policy)
        policy.save_pretrained(output_dir, state_dict=state_dict, metadata={
            "training": recipe, "trainer": type(self).__name__,
            "parameters": {"trainable": trainable, "total": total}})
        if self.recipe_configs:  # a run's folder says what it is (a checkpoint's too)
            from rlspoof.data.synth.corpus import is_synthetic
            from rlspoof.reports.model_card import model_card

            # from the rows in memory, rather than reading the manifests again at every save
            manifest = getattr(self.train_dataset, "manifest", None)
            synthetic = None if manifest is None else is_synthetic([manifest])
            (Path(output_dir) / "README.md").write_text(
                model_card(policy, output_dir, "rlspoof policy", synthetic))
