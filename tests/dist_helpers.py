"""Run the ``rlspoof`` command line inside a distributed launch and record what each rank did.

    torchrun --standalone --nproc_per_node 2 tests/dist_helpers.py [--no-dropout] OUT train RECIPE
    accelerate launch --config_file CONFIG tests/dist_helpers.py [--no-dropout] OUT train RECIPE
    torchrun --standalone --nproc_per_node 2 tests/dist_helpers.py --gather-check OUT

The command is the real one (``rlspoof.cli.main``, as ``python -m rlspoof`` runs it); the only
difference is that every trainer class in ``rlspoof.trainers.run.METHODS`` is replaced by a
subclass that records, and at the end of training each rank writes

* ``OUT/rank{r}.safetensors``: that rank's final policy weights;
* ``OUT/rank{r}.json``: ``torch.distributed``'s world size and rank, the Trainer's view of them,
  whether DeepSpeed ran (and its ZeRO stage), the seed of the GRPO sampling generator, the
  utterances of every training micro-batch, and every GRPO rollout (utterances, actions,
  rewards, advantages, exact-mode action weights).

``--no-dropout`` zeroes dropout, SpecAugment and LayerDrop in the policy of any method (GRPO's
``disable_dropout``), so that a run on 2 ranks can be compared with a run on 1: each rank draws
its masks from its own RNG stream, which a single process does not reproduce.

``--gather-check`` only exercises ``GRPOTrainer.gather_rows`` on ranks holding different numbers
of rows (see ``gather_check``).

The tests also call ``instrument`` in-process for the single-process reference runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from transformers import TrainerCallback

#: DeepSpeed settings that the shipped accelerate configs leave to the Trainer ("auto").
DS_KEYS = ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "train_batch_size",
           "gradient_clipping")


class SaveRank(TrainerCallback):
    def __init__(self, trainer, out: Path):
        self.trainer, self.out = trainer, out

    def on_train_end(self, args, state, control, **kwargs):
        from safetensors.torch import save_file

        trainer = self.trainer
        rank = args.process_index
        policy = trainer.accelerator.unwrap_model(trainer.model)
        weights = {k: v.detach().to("cpu", torch.float32).clone().contiguous()
                   for k, v in policy.state_dict().items()}
        self.out.mkdir(parents=True, exist_ok=True)
        save_file(weights, str(self.out / f"rank{rank}.safetensors"))
        dist = torch.distributed
        plugin = getattr(trainer.accelerator.state, "deepspeed_plugin", None)
        generator = getattr(trainer, "_generator", None)
        record = {
            "dist_world_size": dist.get_world_size() if dist.is_initialized() else 1,
            "dist_rank": dist.get_rank() if dist.is_initialized() else 0,
            "dist_backend": dist.get_backend() if dist.is_initialized() else None,
            "world_size": args.world_size,
            "process_index": args.process_index,
            "deepspeed": bool(trainer.is_deepspeed_enabled),
            "zero_stage": plugin.zero_stage if plugin is not None else None,
            "ds_config": ({k: plugin.deepspeed_config.get(k) for k in DS_KEYS}
                          if plugin is not None else None),
            "generator_seed": generator.initial_seed() if generator is not None else None,
            "global_step": state.global_step,
            **trainer.record,
        }
        (self.out / f"rank{rank}.json").write_text(json.dumps(record))


def recording(trainer_cls, out: Path, no_dropout: bool = False):
    """``trainer_cls`` plus the records above (same class name, so saved metadata is unchanged)."""

    class Recording(trainer_cls):
        def __init__(self, model, *args, **kwargs):
            if no_dropout:
                from rlspoof.trainers.frozen import disable_stochastic_layers

                disable_stochastic_layers(model)
            super().__init__(model, *args, **kwargs)
            self.record = {"batches": [], "rollouts": []}
            self.add_callback(SaveRank(self, out))

        def compute_loss(self, model, inputs, *args, **kwargs):
            if model.training:
                self.record["batches"].append(list(inputs["utt_id"]))
            return super().compute_loss(model, inputs, *args, **kwargs)

        def current_rollout(self, model, logits, inputs):  # GRPO-family trainers only
            rollout = super().current_rollout(model, logits, inputs)
            self.record["rollouts"].append({
                "utt_ids": list(rollout.utt_ids), "actions": rollout.actions.tolist(),
                "rewards": rollout.rewards.tolist(), "advantages": rollout.advantages.tolist(),
                "sample_weights": (None if rollout.sample_weights is None
                                   else rollout.sample_weights.tolist())})
            return rollout

    Recording.__name__ = Recording.__qualname__ = trainer_cls.__name__
    return Recording


def instrument(out: str | Path, no_dropout: bool = False):
    """Swap the recording trainers into ``METHODS``; returns a function that swaps them back."""
    from rlspoof.trainers import run

    saved = dict(run.METHODS)
    for method, (config_cls, trainer_cls) in saved.items():
        run.METHODS[method] = (config_cls, recording(trainer_cls, Path(out), no_dropout))

    def restore():
        run.METHODS.clear()
        run.METHODS.update(saved)

    return restore


def gather_check(out: Path) -> None:
    """``GRPOTrainer.gather_rows`` and batch-level advantages with ranks holding different
    numbers of rows (rank r: r + 2 utterances); writes OUT/gather{r}.json."""
    from types import SimpleNamespace

    from accelerate import Accelerator

    from rlspoof.trainers.grpo import GRPOTrainer
    from rlspoof.trainers.rollouts import rollout_advantages

    accelerator = Accelerator(cpu=True)
    rank = accelerator.process_index
    generator = torch.Generator().manual_seed(rank)
    rewards = torch.randint(0, 2, (rank + 2, 4), generator=generator).float()
    trainer = SimpleNamespace(accelerator=accelerator)
    rows, own = GRPOTrainer.gather_rows(trainer, rewards)
    args = SimpleNamespace(advantage_center="batch", scale_rewards="batch", advantage_eps=1e-4)
    advantages = rollout_advantages(
        rewards, None, args, lambda t: GRPOTrainer.gather_rows(trainer, t))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"gather{rank}.json").write_text(json.dumps({
        "world_size": accelerator.num_processes, "rewards": rewards.tolist(),
        "rows": rows.tolist(), "own": [own.start, own.stop],
        "advantages": advantages.tolist()}))
    from rlspoof.cli import exit_process

    exit_process(0)  # or the process may abort at exit (see exit_process)


def main(argv: list[str]) -> None:
    if argv[0] == "--gather-check":
        gather_check(Path(argv[1]))
        return
    no_dropout = argv[0] == "--no-dropout"
    out, *command = argv[1:] if no_dropout else argv
    instrument(out, no_dropout)
    from rlspoof.cli import main as cli_main

    sys.argv = ["rlspoof", *command]
    cli_main()


if __name__ == "__main__":
    main(sys.argv[1:])
