"""One GRPO and one SFT optimizer step of an XLS-R-300M-sized policy: steps/s, peak memory, MFU.

    python benchmarks/gpu_step.py --device cuda --count-flops \
        --out benchmarks/results/gpu_step_xlsr300m_h200.json

The "GPU check, prepared" of issue 14: whoever holds a CUDA device runs this one command and gets
the step time, the peak memory and the model FLOPs utilisation (MFU) of a full-size detector
(``xlsr-300m`` preset: wav2vec 2.0 large / XLS-R 300M architecture, RANDOM init, no download)
under bf16 autocast, for both methods, with and without gradient checkpointing. The test suite
runs the same code at ``--preset tiny`` on CPU (``tests/test_benchmarks_gpu_step.py``).

Configurations (each on a fresh copy of one seeded policy, with its own AdamW, so every peak
memory is that configuration's alone): {sft, grpo} x gradient checkpointing {off, on}.
Checkpointing is ``SpoofPolicy.activation_checkpointing_enable()`` (non-reentrant, every
encoder layer), as ``activation_checkpointing: true`` in a recipe does.

One step, timed between ``torch.cuda.synchronize()`` calls, on one fixed batch of ``--batch``
clips of ``--seconds`` seconds of random audio (``grpo_step_time.synthetic_batch``)::

    with torch.autocast(device, bfloat16):      # fp32 master weights, as Trainer(bf16=True)
        logits = policy(batch)                  # ONE forward pass, (B, 2)
        [ref_logits = reference(batch)]         # no grad; GRPO with --beta > 0
        [old_logits = old_policy(batch)]        # no grad; GRPO with --old-policy
    loss = sft_loss(logits, labels)                                     # SFT (rlspoof.trainers.sft)
    loss = grpo_loss(action_log_probs(logits, sample_actions(logits, G)),
                     old_logp, group_advantages(compute_rewards(...)),
                     ref_logp=..., beta=...)                            # GRPO (rlspoof.algos)
    loss.backward(); AdamW.step(); zero_grad()

GRPO is wired exactly as ``GRPOTrainer.grpo_loss`` wires rlspoof's pure functions: G decisions
per utterance drawn from the one forward pass (``sample_actions``), ``compute_rewards`` of the
recipe's reward functions, ``group_advantages``, ``grpo_loss`` with a frozen reference
(``frozen_copy``, the trainer's own) for the k3 KL when ``--beta > 0`` (default 0.04, the
published method; 0 = TRL's default, no reference). With ``--old-policy`` a second frozen copy
gives the old log-probabilities (the published method's ``old_policy_sync_steps``; the decisions
are still drawn from the current policy, the published rule). Every other GRPO setting is
``GRPOConfig``'s default and is written to the JSON. AdamW is torch's (fused on CUDA, as
Trainer's default ``adamw_torch_fused``), lr 1e-6, no weight decay; gradient clipping, LR
schedule and the Trainer's bookkeeping are left out (they cost the same for both methods).

FLOPs per step (analytic, "model FLOPs": gradient-checkpointing recomputation is NOT counted,
so MFU drops when checkpointing is on, by design). With B clips of S samples, T frames per clip
(``_get_feat_extract_output_lengths``), conv layers i = 0..K-1 with kernel k_i, stride s_i,
channels C_i (C_-1 = 1) and T_i output frames, n transformer layers of width D::

    conv_fwd = 2 * B * sum_i T_i * C_(i-1) * C_i * k_i             # CNN feature extractor
    tok_fwd  = 2 * N_tok * B * T + 4 * n * D * B * T^2             # linear layers + attention
    head_fwd = 2 * N_head * B                                      # layer weights, pooling, head
    fwd      = conv_fwd + tok_fwd + head_fwd
    step     = 3 * (tok_fwd + head_fwd)                            # forward + backward (2x)
               + conv_fwd * (1 if the CNN is frozen, the recipe default, else ~3)
               + fwd * (number of frozen copies run: reference if beta > 0, old policy)

N_tok = encoder parameters outside the CNN (feature projection, positional convolution, the
transformer layers; every one of them is applied once per frame), i.e. the ``6 * params *
tokens`` rule for the transformer plus its attention term ``12 * n * D * T^2`` per clip. A
trainable CNN's backward is 2x its forward except the first layer's (no gradient w.r.t. the
waveform). Sampling, rewards, advantages and the loss are O(B * G) and ignored.
MFU = step FLOPs / mean seconds per step / ``--peak-tflops`` (default 989, the H100/H200 SXM
bf16 dense peak, on CUDA; none on CPU, where MFU is null unless given). ``--count-flops`` also
runs one untimed step per configuration under ``torch.utils.flop_counter.FlopCounterMode`` and
records what torch counted beside the formula. That count is not the formula's: it includes
checkpoint recomputation, any backward through a frozen CNN (below), and torch's counter charges
a grouped convolution's backward (the positional convolution) several times its true cost.

``unneeded_flops_per_step``: transformers' CNN marks the waveform as requiring grad unless
its ``_freeze_parameters()`` was called; with ``freeze: feature_extractor`` done by
``requires_grad_(False)`` on the parameters only, the backward still computes input gradients
through the whole frozen CNN (about ``conv_fwd`` FLOPs). They are reported, not counted in MFU.

Memory: ``torch.cuda.max_memory_allocated`` from the configuration's start (weights, frozen
copies, optimizer state, activations); on CPU the process's resident set after the timed steps
(``/proc/self/statm``; null elsewhere), which is not a per-configuration peak. A configuration
that runs out of device memory is recorded with ``error`` and the others still run.

The input is synthetic (random audio, random weights): the numbers are about speed, not
detection, and the JSON says so (``synthetic_input: true``).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import gc
import inspect
import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from grpo_step_time import available_cores, summary, synthetic_batch

from rlspoof.algos import action_log_probs, group_advantages, grpo_loss, sample_actions
from rlspoof.models import EncoderConfig, PolicyConfig, build_policy, count_parameters
from rlspoof.provenance import device_name, emit_report, run_facts
from rlspoof.rewards import compute_rewards, resolve_rewards
from rlspoof.trainers.grpo import frozen_copy
from rlspoof.trainers.grpo_config import GRPOConfig
from rlspoof.trainers.sft import sft_loss

#: H100 / H200 SXM dense bf16 tensor-core peak (TFLOP/s), the default MFU denominator on CUDA.
DEFAULT_CUDA_PEAK_TFLOPS = 989.0
METHODS = ("sft", "grpo")
#: GRPOConfig fields the GRPO step reads (their defaults are used and recorded).
GRPO_FIELDS = ("num_generations", "temperature", "reward_funcs", "scale_rewards",
               "advantage_center", "advantage_eps", "loss_type", "epsilon", "epsilon_high",
               "use_clipping", "learning_rate", "use_bias_correction_kl")
#: Keywords of ``grpo_loss`` this checkout has (newer ones are passed only where they exist).
LOSS_PARAMS = frozenset(inspect.signature(grpo_loss).parameters)


def grpo_defaults() -> dict:
    """``GRPOConfig``'s defaults for ``GRPO_FIELDS``, read from the dataclass (no instance)."""
    out = {}
    for f in dataclasses.fields(GRPOConfig):
        if f.name in GRPO_FIELDS:
            out[f.name] = f.default_factory() if f.default is dataclasses.MISSING else f.default
    return out


# --------------------------------------------------------------------------- FLOPs


def conv_layers(encoder_config, samples: int) -> list[dict]:
    """Per CNN layer: kernel, stride, channels in/out, output frames and MACs for one clip."""
    layers, frames, c_in = [], samples, 1
    for c_out, k, s in zip(encoder_config.conv_dim, encoder_config.conv_kernel,
                           encoder_config.conv_stride, strict=True):
        frames = (frames - k) // s + 1
        layers.append({"kernel": k, "stride": s, "c_in": c_in, "c_out": c_out, "frames": frames,
                       "macs": frames * c_in * c_out * k})
        c_in = c_out
    return layers


def flops_per_step(policy, batch: int, samples: int, method: str, frozen_copies: int) -> dict:
    """The analytic FLOPs of one optimizer step (see the module docstring for the formula)."""
    enc = policy.encoder
    cfg = enc.config
    convs = conv_layers(cfg, samples)
    frames = convs[-1]["frames"]
    if hasattr(enc, "_get_feat_extract_output_lengths"):
        hf_frames = int(enc._get_feat_extract_output_lengths(torch.tensor(samples)))
        if hf_frames != frames:
            raise RuntimeError(f"frame count {frames} != the encoder's own {hf_frames}")
    n_conv = sum(p.numel() for p in enc.feature_extractor.parameters())
    spec = getattr(enc, "masked_spec_embed", None)
    n_spec = spec.numel() if spec is not None else 0  # a mask vector, not applied as weights
    n_enc = sum(p.numel() for p in enc.parameters())
    n_tok = n_enc - n_conv - n_spec
    n_head = sum(p.numel() for p in policy.parameters()) - n_enc
    layers, width = cfg.num_hidden_layers, cfg.hidden_size

    conv_fwd = 2 * batch * sum(c["macs"] for c in convs)
    linear_fwd = 2 * n_tok * batch * frames
    attn_fwd = 4 * layers * width * batch * frames**2
    head_fwd = 2 * n_head * batch
    fwd = conv_fwd + linear_fwd + attn_fwd + head_fwd
    conv_trainable = any(p.requires_grad for p in enc.feature_extractor.parameters())
    # Backward of a trainable CNN: weight grads (1x) + input grads (1x, not for the waveform).
    conv_bwd = 2 * batch * (2 * sum(c["macs"] for c in convs) - convs[0]["macs"]) if conv_trainable else 0
    train = 3 * (linear_fwd + attn_fwd + head_fwd) + conv_fwd + conv_bwd
    copies = frozen_copies if method == "grpo" else 0
    # transformers' CNN sets requires_grad on the waveform while its ``_requires_grad`` flag is
    # set, which freezing the parameters alone leaves on: the backward then also computes input
    # gradients through the frozen CNN, ~conv_fwd FLOPs that no weight needs (not model FLOPs).
    cnn_backpropagated = conv_trainable or bool(getattr(enc.feature_extractor, "_requires_grad", False))
    return {
        "frames_per_clip": frames, "tokens": batch * frames,
        "params_conv": n_conv, "params_per_token": n_tok, "params_head": n_head,
        "conv_trainable": conv_trainable,
        "forward": {"conv": conv_fwd, "linear": linear_fwd, "attention": attn_fwd,
                    "head": head_fwd, "total": fwd},
        "frozen_copy_forwards": copies,
        "frozen_cnn_backpropagated": cnn_backpropagated and not conv_trainable,
        "unneeded_flops_per_step": conv_fwd if cnn_backpropagated and not conv_trainable else 0,
        "per_step": train + copies * fwd,
    }


# --------------------------------------------------------------------------- steps


def autocast(device: torch.device, dtype: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16")


def sft_step(policy, inputs, opt, s: dict) -> torch.Tensor:
    with autocast(s["device"], s["dtype"]):
        logits = policy(inputs["input_values"], attention_mask=inputs.get("attention_mask"))
    loss = sft_loss(logits.float(), inputs["labels"])
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.detach()


def grpo_step(policy, inputs, opt, s: dict) -> torch.Tensor:
    g = s["grpo"]
    x, mask, labels = inputs["input_values"], inputs.get("attention_mask"), inputs["labels"]
    with autocast(s["device"], s["dtype"]):
        logits = policy(x, attention_mask=mask)
        with torch.no_grad():
            ref_logits = None if s["ref"] is None else s["ref"](x, attention_mask=mask)
            old_logits = None if s["old"] is None else s["old"](x, attention_mask=mask)
    temp = g["temperature"]
    actions = sample_actions(logits, g["num_generations"], temp, s["generator"])
    probs = torch.softmax(logits.detach().float() / temp, dim=-1)
    rewards, _ = compute_rewards(s["reward_funcs"], s["reward_weights"], actions, labels, probs=probs)
    advantages = group_advantages(rewards, center=g["advantage_center"], scale=g["scale_rewards"],
                                  eps=g["advantage_eps"])
    logp = action_log_probs(logits, actions, temp)
    old_logp = logp.detach() if old_logits is None else action_log_probs(old_logits, actions, temp)
    ref_logp = None if ref_logits is None else action_log_probs(ref_logits, actions, temp)
    extra = {}
    if "use_bias_correction_kl" in g and "use_bias_correction_kl" in LOSS_PARAMS:
        extra["use_bias_correction_kl"] = g["use_bias_correction_kl"]
    if old_logits is not None and "sampling_logp" in LOSS_PARAMS:
        extra["sampling_logp"] = logp.detach()  # the current policy drew the actions
    loss, _ = grpo_loss(logp, old_logp, advantages, ref_logp=ref_logp, beta=s["beta"],
                        epsilon_low=g["epsilon"], epsilon_high=g["epsilon_high"],
                        policy_loss="clipped" if g["use_clipping"] else "unclipped", **extra)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.detach()


STEPS = {"sft": sft_step, "grpo": grpo_step}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rss_bytes() -> int | None:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def free_device_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def run_config(master, method: str, checkpointing: bool, inputs: dict, args, s: dict) -> dict:
    device = s["device"]
    row = {"method": method, "gradient_checkpointing": "on" if checkpointing else "off"}
    policy = opt = params = None
    s = dict(s, ref=None, old=None)
    try:
        free_device_memory(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        policy = copy.deepcopy(master).to(device).train()
        if method == "grpo" and args.beta > 0:
            s["ref"] = frozen_copy(policy)
        if method == "grpo" and args.old_policy:
            s["old"] = frozen_copy(policy)
        if checkpointing:
            policy.activation_checkpointing_enable()
        enc = policy.encoder
        flag = ("is_activation_checkpointing" if hasattr(type(enc), "is_activation_checkpointing")
                else "is_gradient_checkpointing")  # transformers >= 5.x name, else the old one
        row["checkpointing_active"] = bool(getattr(enc, flag, False))
        params = [p for p in policy.parameters() if p.requires_grad]
        row["trainable_parameters"] = sum(p.numel() for p in params)
        opt = torch.optim.AdamW(params, lr=s["grpo"]["learning_rate"], weight_decay=0.0,
                                fused=device.type == "cuda")
        s["generator"] = torch.Generator(device=device).manual_seed(args.seed)
        step = STEPS[method]
        copies = int(s["ref"] is not None) + int(s["old"] is not None)
        flops = flops_per_step(policy, args.batch, inputs["input_values"].shape[-1], method, copies)
        if device.type == "cuda":
            row["memory_static_bytes"] = torch.cuda.memory_allocated(device)
        for _ in range(args.warmup):
            step(policy, inputs, opt, s)
        times, losses = [], []
        for _ in range(args.steps):
            sync(device)
            start = time.perf_counter()
            loss = step(policy, inputs, opt, s)
            sync(device)
            times.append(time.perf_counter() - start)
            losses.append(float(loss))
        if device.type == "cuda":
            row["memory"] = {"kind": "torch.cuda.max_memory_allocated",
                             "bytes": torch.cuda.max_memory_allocated(device)}
        else:
            row["memory"] = {"kind": "process_rss_after_steps", "bytes": rss_bytes()}
        if args.count_flops:
            from torch.utils.flop_counter import FlopCounterMode

            with FlopCounterMode(display=False) as counter:
                step(policy, inputs, opt, s)
            row["counted_flops_per_step"] = counter.get_total_flops()
            row["counted_flops_by_op"] = {str(op): n for op, n in
                                          counter.get_flop_counts().get("Global", {}).items()}
    except torch.OutOfMemoryError as exc:
        row["error"] = f"out of memory: {str(exc).splitlines()[0]}"
        return row
    finally:
        del policy, opt, s, params
        free_device_memory(device)

    mean = float(np.mean(times))
    row.update({
        "steps_per_second": args.steps / float(np.sum(times)),
        "seconds_per_step": {"mean": mean, **summary(times, 6)},
        "seconds_raw": [round(t, 6) for t in times],
        "loss_last": losses[-1],
        "loss_finite": all(math.isfinite(v) for v in losses),
        "flops": flops,
        "achieved_tflops": flops["per_step"] / mean / 1e12,
        "mfu": None if args.peak_tflops is None else flops["per_step"] / mean / (args.peak_tflops * 1e12),
    })
    if "counted_flops_per_step" in row:
        row["counted_over_analytic"] = round(row["counted_flops_per_step"] / flops["per_step"], 4)
    return row


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default=None,
                        help="default: cuda when one is visible, else cpu")
    parser.add_argument("--preset", choices=["xlsr-300m", "tiny"], default="xlsr-300m",
                        help="random-init encoder (rlspoof.models.encoders.PRESETS)")
    parser.add_argument("--batch", type=int, default=16, help="clips per step (B)")
    parser.add_argument("--seconds", type=float, default=4.0,
                        help="clip length (default: the recipes' crop_seconds)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--num-generations", type=int, default=None,
                        help="G, decisions per utterance (default: GRPOConfig's, 8)")
    parser.add_argument("--beta", type=float, default=0.04,
                        help="KL weight; > 0 runs the frozen reference (default 0.04, the published "
                             "method; 0 = TRL's default, no reference)")
    parser.add_argument("--old-policy", action="store_true",
                        help="GRPO also runs a frozen old policy for the ratio (published method)")
    parser.add_argument("--grad-checkpointing", choices=["both", "on", "off"], default="both")
    parser.add_argument("--methods", default="sft,grpo", help="comma-separated subset of sft,grpo")
    parser.add_argument("--freeze", choices=["feature_extractor", "none"], default="feature_extractor",
                        help="encoder freezing (default: the recipes' default)")
    parser.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16",
                        help="bf16 = torch.autocast(bfloat16) over fp32 weights")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help=f"MFU denominator (default: {DEFAULT_CUDA_PEAK_TFLOPS:g} on CUDA, the "
                             "H100/H200 bf16 dense peak; none on CPU -> MFU null)")
    parser.add_argument("--count-flops", action="store_true",
                        help="also count one untimed step's FLOPs with torch's FlopCounterMode")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible")
    if args.batch < 1 or args.steps < 1 or args.warmup < 0 or args.seconds <= 0:
        parser.error("--batch and --steps must be >= 1, --warmup >= 0, --seconds > 0")
    if args.peak_tflops is not None and args.peak_tflops <= 0:
        parser.error("--peak-tflops must be > 0")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be >= 1")
    args.method_list = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not args.method_list or any(m not in METHODS for m in args.method_list):
        parser.error(f"--methods: a comma-separated subset of {','.join(METHODS)}")
    args.peak_tflops_source = "--peak-tflops" if args.peak_tflops is not None else None
    if args.peak_tflops is None and args.device == "cuda":
        args.peak_tflops = DEFAULT_CUDA_PEAK_TFLOPS
        args.peak_tflops_source = "default: H100/H200 SXM bf16 dense"
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    wall_start = time.perf_counter()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads or available_cores())
    if device.type == "cuda" and args.dtype == "bf16" and not torch.cuda.is_bf16_supported():
        raise SystemExit("this CUDA device has no bf16 support: use --dtype fp32")

    g = grpo_defaults()
    if args.num_generations is not None:
        g["num_generations"] = args.num_generations
    reward_funcs, reward_weights = resolve_rewards(g["reward_funcs"])
    ckpt_settings = {"both": [False, True], "on": [True], "off": [False]}[args.grad_checkpointing]

    torch.manual_seed(args.seed)
    master = build_policy(PolicyConfig(
        encoder=EncoderConfig(preset=args.preset, freeze=args.freeze),
        crop_seconds=args.seconds)).train()
    trainable, total = count_parameters(master)
    batch = synthetic_batch(args.batch, args.seconds, args.seed)
    inputs = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    settings = {"device": device, "dtype": args.dtype, "grpo": g, "beta": args.beta,
                "reward_funcs": reward_funcs, "reward_weights": reward_weights.to(device)}

    results = []
    for checkpointing in ckpt_settings:
        for method in args.method_list:
            results.append(run_config(master, method, checkpointing, inputs, args, settings))

    cuda = {}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        cuda = {"cuda_version": torch.version.cuda, "cudnn_version": torch.backends.cudnn.version(),
                "capability": f"{props.major}.{props.minor}", "total_memory_bytes": props.total_memory,
                "bf16_supported": torch.cuda.is_bf16_supported()}
    report = {
        "benchmark": "gpu_step",
        "synthetic_input": True,
        "note": "random-init weights and random audio: speed and memory only",
        "device": device.type,
        "device_name": device_name(device),
        "torch_version": torch.__version__,
        **({"cuda": cuda} if cuda else {}),
        "torch_threads": torch.get_num_threads() if device.type == "cpu" else None,
        "settings": {
            "preset": args.preset, "parameters": total, "trainable_parameters": trainable,
            "freeze": args.freeze, "batch": args.batch, "seconds": args.seconds,
            "input_shape": list(batch["input_values"].shape), "dtype": args.dtype,
            "autocast": "torch.autocast(bfloat16), fp32 weights" if args.dtype == "bf16" else None,
            "steps": args.steps, "warmup": args.warmup, "seed": args.seed,
            "grad_checkpointing": args.grad_checkpointing, "methods": args.method_list,
            "beta": args.beta, "reference_model": args.beta > 0, "old_policy": args.old_policy,
            "grpo": g,
            "optimizer": "torch.optim.AdamW(lr=GRPOConfig.learning_rate, weight_decay=0, "
                         f"fused={device.type == 'cuda'})",
            "step": "forward (+ frozen copies, no grad) + loss + backward + AdamW.step + zero_grad",
            "peak_tflops": args.peak_tflops, "peak_tflops_source": args.peak_tflops_source,
            "flops_formula": "step = 3*(2*N_tok*B*T + 4*n_layers*D*B*T^2 + 2*N_head*B) + conv_fwd "
                             "[+ 2*conv_bwd if CNN trainable] + frozen_copies * forward; "
                             "checkpoint recomputation not counted",
        },
        "results": results,
        "wall_seconds": round(time.perf_counter() - wall_start, 1),
        **run_facts(),
    }
    emit_report(report, args.out)
    print_table(report)
    return report


def print_table(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    s = report["settings"]
    table = Table(
        title=f"gpu_step: {s['preset']} ({s['parameters'] / 1e6:.1f}M params, random init), "
              f"batch {s['batch']} x {s['seconds']} s, {s['dtype']}",
        caption=f"{report['device_name']}; torch {report['torch_version']}; {s['steps']} timed steps "
                f"after {s['warmup']} warm-up; GRPO G={s['grpo']['num_generations']}, beta={s['beta']}"
                f"{', old policy' if s['old_policy'] else ''}; MFU vs {s['peak_tflops']} TFLOP/s; "
                "synthetic input",
    )
    table.add_column("method", no_wrap=True)
    for col in ("ckpt", "steps/s", "s/step", "peak mem GiB", "TFLOP/step", "TFLOP/s", "MFU"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in report["results"]:
        if "error" in r:
            table.add_row(r["method"], r["gradient_checkpointing"], r["error"], "", "", "", "", "")
            continue
        mem = r["memory"]["bytes"]
        table.add_row(r["method"], r["gradient_checkpointing"], f"{r['steps_per_second']:.3f}",
                      f"{r['seconds_per_step']['mean']:.4f}",
                      "-" if mem is None else f"{mem / 2**30:.2f}",
                      f"{r['flops']['per_step'] / 1e12:.3f}", f"{r['achieved_tflops']:.2f}",
                      "-" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%")
    console = Console()
    console.width = max(console.width, 110)
    console.print(table)
    console.print(f"wall time {report['wall_seconds']} s")


if __name__ == "__main__":
    main()
