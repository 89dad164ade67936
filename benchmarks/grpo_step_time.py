"""Wall time of one optimizer step of GRPO against SFT, on the same batch and the same model.

    python benchmarks/grpo_step_time.py --preset tiny --out benchmarks/results/grpo_step_time_tiny_cpu.json

A detector's decision is one token over two actions, so rlspoof's ``GRPOTrainer`` draws all G
decisions of a group from ONE policy forward pass: a GRPO step should cost about an SFT step
(target: GRPO / SFT <= 1.15). This measures it. Every method is a real trainer built from its
real config (``SFTConfig`` / ``GRPOConfig``) around one shared ``SpoofPolicy``; one timed step is

    trainer.training_step(model, inputs) + optimizer.step() + optimizer.zero_grad()

(forward + loss + backward + AdamW; no gradient clipping or LR schedule, which cost the same
for every method) on one fixed batch from ``collate_audio`` of random audio. Methods:

* ``sft``: ``SFTTrainer`` (the baseline every ratio divides by);
* ``grpo_g8`` / ``grpo_g16``: ``GRPOTrainer``, sampled estimator, G = 8 / 16, beta = 0 (TRL);
* ``grpo_g8_beta0.04``: as ``grpo_g8`` plus the KL to a reference policy, i.e. one extra
  no-grad forward pass of the frozen copy (reported separately: the 1.15 target is for beta = 0);
* ``grpo_exact``: ``GRPOTrainer`` with ``estimator: exact`` (both actions, weighted);
* ``naive_repeat_g8`` / ``naive_repeat_g16``: a COUNTERFACTUAL that exists only in this file
  (``RepeatInputGRPOTrainer``): what a direct port of an LLM GRPO trainer does, the batch's
  waveforms repeated G times along the batch axis (B * G rows) and run through the policy, one
  sampled action per row. Same rewards, advantages and loss as ``grpo_g*``; only the forward
  and backward run on G times as many rows. rlspoof never trains this way.

Warm-up steps (AdamW state allocation, allocator and kernel caches) are discarded. The timed
steps are interleaved round-robin, one step per method per round in a fresh random order (seeded)
each round, so drift in machine load hits every method alike. Reported per method: ms/step (median
and IQR over rounds) and the ratio to SFT, taken per round (paired, so load shared by the two
steps of a round cancels) and summarised by its median and IQR. The load average of the machine
is recorded: on a shared CPU absolute times are noisy, the paired ratios much less so.

On a CUDA machine the same command runs on the GPU (model and batch on ``cuda``,
``torch.cuda.synchronize()`` around each timed step).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rlspoof.algos import action_log_probs, group_advantages, sample_actions
from rlspoof.algos import grpo_loss as grpo_objective
from rlspoof.data.dataset import collate_audio
from rlspoof.models import EncoderConfig, PolicyConfig, build_policy, count_parameters
from rlspoof.provenance import device_name, emit_report, run_facts
from rlspoof.rewards import compute_rewards
from rlspoof.trainers.grpo import GRPOTrainer, Rollout
from rlspoof.trainers.grpo_config import GRPOConfig
from rlspoof.trainers.sft import SFTTrainer
from rlspoof.trainers.sft_config import SFTConfig

TARGET_RATIO = 1.15
SAMPLE_RATE = 16_000


class RepeatInputGRPOTrainer(GRPOTrainer):
    """COUNTERFACTUAL, for this benchmark only; not part of rlspoof and never used to train.

    What a naive port of an LLM GRPO trainer does with a classifier: every utterance is
    repeated G times along the batch axis (``repeat_interleave``, so rows ``b*G .. b*G+G-1``
    are utterance ``b``), the policy runs on all ``B * G`` rows and each row samples ONE
    action, as each LLM generation is its own sequence. The rewards, group advantages and
    GRPO loss are those of ``GRPOTrainer`` (TRL defaults: beta = 0, old log-probs = current,
    detached); only the forward and backward pass are G times larger.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.args.beta > 0 or self.args.old_policy_sync_steps or self.args.estimator != "sampled":
            raise ValueError("the repeat-input counterfactual models only sampled GRPO with beta=0")

    def policy_logits(self, model, inputs):
        if not model.training:  # evaluation is unchanged: one row per utterance
            return super().policy_logits(model, inputs)
        g = self.args.num_generations
        mask = inputs.get("attention_mask")
        return model(inputs["input_values"].repeat_interleave(g, dim=0),
                     attention_mask=None if mask is None else mask.repeat_interleave(g, dim=0))

    def grpo_loss(self, model, inputs, logits) -> torch.Tensor:
        args, labels = self.args, inputs["labels"]
        b, g = labels.shape[0], args.num_generations
        temperature = args.temperature
        # One draw per row (B*G, 1) -> the group of utterance b is row b of a (B, G) view.
        drawn = sample_actions(logits, 1, temperature, self.sampling_generator(logits.device))
        logp = action_log_probs(logits, drawn, temperature).view(b, g)
        actions = drawn.view(b, g)
        probs = torch.softmax(logits.detach().float() / temperature, dim=-1).view(b, g, -1)[:, 0]
        columns = {k: v for k, v in inputs.items() if k not in ("input_values", "attention_mask", "labels")}
        rewards, per_func = compute_rewards(self.reward_funcs, self.reward_weights.to(logits.device),
                                            actions, labels, probs=probs, **columns)
        advantages = group_advantages(rewards, center=args.advantage_center, scale=args.scale_rewards,
                                      eps=args.advantage_eps)
        loss, metrics = grpo_objective(
            logp, logp.detach(), advantages, epsilon_low=args.epsilon, epsilon_high=args.epsilon_high,
            policy_loss="clipped" if args.use_clipping else "unclipped",
        )
        rollout = Rollout(utt_ids=list(columns.get("utt_id", [])), actions=actions, sample_weights=None,
                          old_logp=logp.detach(), rewards=rewards, rewards_per_func=per_func,
                          advantages=advantages)
        self.record_metrics(rollout, logits.detach().view(b, g, -1)[:, 0], labels, metrics)
        return loss


@dataclass
class Method:
    name: str
    trainer_cls: type
    config: dict
    counterfactual: bool = False
    forward_rows_per_utt: int = 1
    ms: list[float] = field(default_factory=list)
    trainer: object = None


def methods_to_run(naive_groups: list[int]) -> list[Method]:
    methods = [
        Method("sft", SFTTrainer, {}),
        Method("grpo_g8", GRPOTrainer, {"num_generations": 8}),
        Method("grpo_g16", GRPOTrainer, {"num_generations": 16}),
        Method("grpo_g8_beta0.04", GRPOTrainer, {"num_generations": 8, "beta": 0.04}),
        Method("grpo_exact", GRPOTrainer, {"estimator": "exact"}),
    ]
    for g in naive_groups:
        methods.append(Method(f"naive_repeat_g{g}", RepeatInputGRPOTrainer, {"num_generations": g},
                              counterfactual=True, forward_rows_per_utt=g))
    return methods


def synthetic_batch(batch_size: int, crop_seconds: float, seed: int) -> dict:
    """``collate_audio`` of random waveforms, half bonafide (label 0) and half spoof (1)."""
    rng = np.random.default_rng(seed)
    length = int(round(crop_seconds * SAMPLE_RATE))
    items = [{
        "input_values": torch.from_numpy(0.1 * rng.standard_normal(length).astype(np.float32)),
        "labels": i % 2,
        "utt_id": f"bench_{i:04d}",
        "attack": "A01" if i % 2 else "-",
    } for i in range(batch_size)]
    return collate_audio(items)


def available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def summary(values: list[float], digits: int) -> dict:
    q1, med, q3 = np.percentile(values, [25, 50, 75])
    return {"median": round(float(med), digits), "q1": round(float(q1), digits),
            "q3": round(float(q3), digits), "iqr": round(float(q3 - q1), digits),
            "min": round(float(min(values)), digits)}


def timed_step(m: Method, model, inputs, device: torch.device) -> float:
    trainer = m.trainer
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    trainer.training_step(model, inputs)
    trainer.optimizer.step()
    trainer.optimizer.zero_grad()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=["tiny", "base"], default="tiny",
                        help="random-init encoder (base: wav2vec2-base size, 95M parameters)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--crop-seconds", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed rounds, one step per method each (default: tiny 20, base 3)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="discarded rounds first (default: tiny 2, base 1)")
    parser.add_argument("--naive-groups", default="8,16",
                        help="G of the repeat-input counterfactual, comma-separated ('' skips it; its step "
                             "costs ~G SFT steps: on CPU with --preset base use 8 or '')")
    parser.add_argument("--freeze", default="feature_extractor",
                        help="encoder freezing, as the recipe key (default: the recipe default)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: every core this process may use)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    wall_start = time.perf_counter()
    repeats = args.repeats if args.repeats is not None else (20 if args.preset == "tiny" else 3)
    warmup = args.warmup if args.warmup is not None else (2 if args.preset == "tiny" else 1)
    naive_groups = [int(g) for g in args.naive_groups.split(",") if g.strip()]
    if repeats < 1 or warmup < 0:
        parser.error("--repeats must be >= 1 and --warmup >= 0")

    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be >= 1")
    torch.set_num_threads(args.threads or available_cores())
    logging.getLogger("transformers").setLevel(logging.ERROR)
    load_start = os.getloadavg()
    # torch's OpenMP threads wait for each other at every op: if another process holds a core
    # one of them needs, every op waits for it (measured here: a tiny-preset step 20x slower
    # with 2 threads on 2 cores beside a 1-core job than with 1 thread).
    cores = os.cpu_count() or 1
    oversubscribed = not use_cuda and load_start[0] + torch.get_num_threads() > cores + 0.5
    if oversubscribed and torch.get_num_threads() > 1:
        print(f"warning: load average {load_start[0]:.2f} + {torch.get_num_threads()} torch threads "
              f"> {os.cpu_count()} cores: CPU times will be inflated by thread waits; "
              f"consider --threads {max(1, cores - round(load_start[0]))}",
              file=sys.stderr)

    torch.manual_seed(args.seed)
    model = build_policy(PolicyConfig(encoder=EncoderConfig(preset=args.preset, freeze=args.freeze),
                                      crop_seconds=args.crop_seconds)).train()
    trainable, total = count_parameters(model)
    methods = methods_to_run(naive_groups)
    with tempfile.TemporaryDirectory() as tmp:
        common = {"output_dir": tmp, "per_device_train_batch_size": args.batch_size,
                  "max_steps": warmup + repeats, "report_to": "none", "save_strategy": "no",
                  "eval_strategy": "no", "disable_tqdm": True, "use_cpu": not use_cuda,
                  "seed": args.seed}
        for m in methods:
            config_cls = SFTConfig if m.trainer_cls is SFTTrainer else GRPOConfig
            m.trainer = m.trainer_cls(model, config_cls(**common, **m.config))  # one shared model
            m.trainer.create_optimizer_and_scheduler(num_training_steps=warmup + repeats)
            m.trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train's loop
        device = methods[0].trainer.args.device
        batch = synthetic_batch(args.batch_size, args.crop_seconds, args.seed)
        inputs = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}

        load_per_round = []
        order_rng = np.random.default_rng(args.seed)
        for r in range(warmup + repeats):
            # Every method once per round, in a fresh random order: a fixed cyclic order would
            # always put the same method after the large counterfactual step (whose freed
            # memory the next step re-faults), biasing that one method.
            for i in order_rng.permutation(len(methods)):
                m = methods[i]
                ms = timed_step(m, model, inputs, device)
                if r >= warmup:
                    m.ms.append(ms)
            if r >= warmup:
                load_per_round.append(round(os.getloadavg()[0], 2))
    load_end = os.getloadavg()

    sft = methods[0].ms
    results = []
    for m in methods:
        paired = [t / s for t, s in zip(m.ms, sft, strict=True)]
        is_target_row = m.trainer_cls is GRPOTrainer and m.config.get("beta", 0.0) == 0.0
        ratio = summary(paired, 3)
        results.append({
            "name": m.name,
            "trainer": m.trainer_cls.__name__,
            "counterfactual": m.counterfactual,
            "config": m.config,
            "forward_rows": args.batch_size * m.forward_rows_per_utt,
            "ms_per_step": summary(m.ms, 2),
            "ratio_to_sft": ratio,
            "ratio_of_medians": round(float(np.median(m.ms) / np.median(sft)), 3),
            "meets_target": (ratio["median"] <= TARGET_RATIO) if is_target_row else None,
            "ms_raw": [round(t, 2) for t in m.ms],
        })

    report = {
        "benchmark": "grpo_step_time",
        "device": device.type,
        "device_name": device_name(device),
        "torch_threads": torch.get_num_threads(),
        "setup": {
            "preset": args.preset, "parameters": total, "trainable_parameters": trainable,
            "freeze": args.freeze, "batch_size": args.batch_size, "crop_seconds": args.crop_seconds,
            "input_shape": list(batch["input_values"].shape), "dtype": "float32",
            "warmup_rounds": warmup, "timed_rounds": repeats,
            "step": "trainer.training_step + optimizer.step (AdamW) + optimizer.zero_grad",
            "order": "round-robin: one step per method per round, in a random order each round",
            "ratio_to_sft": "per round, this method's step / the same round's SFT step",
        },
        "target": {"grpo_over_sft_max": TARGET_RATIO,
                   "applies_to": "GRPOTrainer rows with beta = 0 (meets_target null elsewhere)"},
        "load": {"cpu_count": os.cpu_count(), "loadavg_start": [round(x, 2) for x in load_start],
                 "oversubscribed": oversubscribed,
                 "loadavg_end": [round(x, 2) for x in load_end],
                 "loadavg_1min_per_round": load_per_round},
        "results": results,
        "wall_seconds": round(time.perf_counter() - wall_start, 1),
        **run_facts(),
    }
    emit_report(report, args.out)
    print_table(report)


def print_table(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    setup, load = report["setup"], report["load"]
    table = Table(
        title=f"grpo_step_time: {setup['preset']} ({setup['parameters'] / 1e6:.2f}M params), "
              f"batch {setup['batch_size']} x {setup['crop_seconds']} s",
        caption=f"{report['device_name']}, {report['torch_threads']} threads, "
                f"{setup['timed_rounds']} rounds after {setup['warmup_rounds']} warm-up; "
                f"load avg {load['loadavg_start'][0]} -> {load['loadavg_end'][0]}; "
                f"* counterfactual (repeat-input), not rlspoof's trainer",
    )
    table.add_column("method", no_wrap=True)
    for col in ("fwd rows", "ms/step", "IQR ms", "x SFT", "IQR x", "<= 1.15"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in report["results"]:
        ok = {True: "yes", False: "NO", None: "-"}[r["meets_target"]]
        table.add_row(r["name"] + (" *" if r["counterfactual"] else ""), str(r["forward_rows"]),
                      f"{r['ms_per_step']['median']:.1f}", f"{r['ms_per_step']['iqr']:.1f}",
                      f"{r['ratio_to_sft']['median']:.3f}", f"{r['ratio_to_sft']['iqr']:.3f}", ok)
    console = Console()
    console.width = max(console.width, 100)
    console.print(table)
    console.print(f"wall time {report['wall_seconds']} s")


if __name__ == "__main__":
    main()
