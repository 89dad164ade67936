"""Bias and variance of GRPO's policy-gradient estimate: G sampled decisions against ``estimator: exact``.

    python benchmarks/grpo_estimators.py --out benchmarks/results/grpo_estimators.json

A detector's policy has two actions, so the expectation over actions that GRPO estimates by
sampling G decisions per utterance can be computed exactly (both actions, each weighted by its
old-policy probability). This benchmark measures what that buys where it matters: the gradient.

Fixed setting (logits level, no model): ``B = 32`` utterances, balanced labels (``i % 2``),
logits chosen so that p(correct) runs evenly over ``0.05 .. 0.95`` (in a seeded random order);
reward ``correctness`` (1 / 0, the ``GRPOConfig`` default); ``num_iterations = 1`` (old
log-probs = current, detached; ratio 1), ``clip = True``, ``beta = 0``, every other field a
``GRPOConfig`` default. One call is the trainer's own path, ``make_rollout`` (sampling, rewards,
advantages) + ``action_log_probs`` + ``grpo_loss`` + the gradient w.r.t. the ``(B, 2)`` logits,
as ``GRPOTrainer.grpo_loss`` runs it. Advantage settings (centre / scale):

* ``trl``: group / group (TRL's default);
* ``published``: batch / batch (the published deepfake-detection GRPO);
* ``dr_grpo``: group / none, the anchor whose bias is known in closed form: ``E[g] = (1 - 1/G)
  g_exact`` (the group mean contains the draw itself).

For each setting, the exact estimator gives ``g_exact`` (deterministic); the sampled one, for
G in ``--groups``, gives ``--draws`` gradients, one per sampling seed. Reported per row:

* ``rel_bias = ||E[g] - g_exact|| / ||g_exact||``. With group centring every utterance's
  gradient depends only on its own count k ~ Binomial(G, p) of correct draws, so ``E[g]`` is
  computed EXACTLY by enumerating k through the same library functions (``rel_bias_source:
  enumeration``); batch centring couples utterances, so there it is the Monte-Carlo mean
  (``monte_carlo``), whose own sampling error ``sqrt(tr Cov / N) / ||g_exact||`` is reported as
  ``rel_bias_mc_noise`` (a bias below it is not resolved). The Monte-Carlo estimate is reported
  for every row as a check on the enumeration. ``cos_mean_exact`` (direction of ``E[g]``) and
  ``norm_ratio = ||E[g]|| / ||g_exact||`` split the bias into a turn and a shrink: a pure
  shrink (cos = 1) is only a smaller step size, absorbed by the learning rate.
* ``rel_var = E||g - E[g]||^2 / ||E[g]||^2`` (Monte Carlo, unbiased).
* ``cos_draw_median``: median cosine of ONE draw's gradient to ``g_exact``.
* ``cos_policy_gradient``: cosine of ``E[g]`` to ``-grad mean_b p_b(correct)``, the gradient
  of the expected reward itself (std scaling reweights utterances by ``1 / std``, so the exact
  TRL and published directions are not this one, by design).
* ``zero_std``: fraction of groups whose G rewards are all equal (``zero_std_fraction``, TRL's
  ``frac_reward_zero_std``), Monte Carlo and expected ``mean_b p^G + (1 - p)^G``. Under group
  centring such a group has advantage 0: no learning signal from that utterance.
* ``us_per_call``: wall time of one call (median, IQR), 1 torch thread.

Model level (one point, ``--no-model`` skips it): the same estimates mapped into the parameter
space of a seeded tiny policy (``preset tiny, freeze none``, eval mode, random audio). The loss
reaches the parameters only through the logits and ``dL/dz_b1 = -dL/dz_b0`` (softmax), so a
draw's parameter gradient is exactly ``sum_b c_b d_b``, ``c_b = dL/dz_b0`` and ``d_b`` the
gradient of utterance b's logit margin; all norms and cosines then come from the 32 x 32 Gram
matrix ``d_b . d_b'``. The probabilities are those of the logits-level setting (a fixed logit
offset per utterance, which leaves ``d_b`` unchanged, moves the random-init policy from p ~ 0.5
to them); what changes is only the geometry: utterances whose gradients align or cancel.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rlspoof.algos import action_log_probs, group_advantages, grpo_loss, zero_std_fraction
from rlspoof.data.dataset import collate_audio
from rlspoof.models import EncoderConfig, PolicyConfig, build_policy, count_parameters
from rlspoof.provenance import cpu_name, emit_report, run_facts
from rlspoof.rewards import compute_rewards, resolve_rewards
from rlspoof.trainers.grpo import make_rollout
from rlspoof.trainers.grpo_config import GRPOConfig

SAMPLE_RATE = 16_000
#: name -> (advantage_center, scale_rewards)
SETTINGS: dict[str, tuple[str, str]] = {
    "trl": ("group", "group"),
    "published": ("batch", "batch"),
    "dr_grpo": ("group", "none"),
}


# ------------------------------------------------------------------ the setting

def design_logits(batch_size: int, p_low: float, p_high: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, 2)`` logits and balanced labels with p(correct) evenly over ``[p_low, p_high]``."""
    rng = np.random.default_rng(seed)
    p_correct = rng.permutation(np.linspace(p_low, p_high, batch_size))
    labels = torch.arange(batch_size) % 2
    margin = torch.from_numpy(np.log(p_correct / (1.0 - p_correct))).float()  # logit(p)
    logits = torch.empty(batch_size, 2)
    rows = torch.arange(batch_size)
    logits[rows, labels] = margin / 2
    logits[rows, 1 - labels] = -margin / 2
    return logits, labels


def grpo_config(tmp: str, estimator: str, center: str, scale: str, num_generations: int) -> GRPOConfig:
    return GRPOConfig(output_dir=tmp, report_to="none", use_cpu=True, estimator=estimator,
                      advantage_center=center, scale_rewards=scale, num_generations=num_generations,
                      beta=0.0, use_clipping=True, num_iterations=1)


def loss_gradient(logits: torch.Tensor, actions: torch.Tensor, advantages: torch.Tensor,
                  sample_weights: torch.Tensor | None, cfg: GRPOConfig) -> torch.Tensor:
    """``GRPOTrainer.grpo_loss`` with ``num_iterations = 1`` and no reference: d loss / d logits."""
    z = logits.detach().requires_grad_(True)
    logp = action_log_probs(z, actions, cfg.temperature)
    loss, _ = grpo_loss(logp, logp.detach(), advantages, beta=cfg.beta, epsilon_low=cfg.epsilon,
                        epsilon_high=cfg.epsilon_high,
                        policy_loss="clipped" if cfg.use_clipping else "unclipped",
                        sample_weights=sample_weights)
    (grad,) = torch.autograd.grad(loss, z)
    return grad


def one_call(logits, labels, cfg, funcs, weights, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The trainer's path for one batch: rollout (sampled or exact) + loss + gradient."""
    rollout = make_rollout(logits, labels, cfg, funcs, weights, generator, {})
    grad = loss_gradient(logits, rollout.actions, rollout.advantages, rollout.sample_weights, cfg)
    return grad, rollout.rewards


def enumerated_mean(logits, labels, cfg, funcs, weights) -> torch.Tensor:
    """Exact ``E[g]`` of the sampled estimator under GROUP centring (utterances independent).

    Utterance b's gradient depends only on its count k of correct draws (the loss is a sum over
    draws), so ``E[g_b] = sum_k Binom(k; G, p_b) g_b(k)``; ``g(k)`` comes from the library on a
    batch whose every row has k correct draws (group statistics never mix rows).
    """
    num_gen = cfg.num_generations
    p_correct = torch.softmax(logits.double() / cfg.temperature, -1)[torch.arange(len(labels)), labels]
    mean = torch.zeros(logits.shape, dtype=torch.float64)
    for k in range(num_gen + 1):
        correct = (torch.arange(num_gen) < k).unsqueeze(0)  # (1, G)
        actions = torch.where(correct, labels[:, None], 1 - labels[:, None])
        rewards, _ = compute_rewards(funcs, weights, actions, labels, probs=torch.softmax(logits, -1))
        adv = group_advantages(rewards, center=cfg.advantage_center, scale=cfg.scale_rewards,
                               eps=cfg.advantage_eps)
        grad = loss_gradient(logits, actions, adv, None, cfg).double()
        pmf = math.comb(num_gen, k) * p_correct**k * (1 - p_correct) ** (num_gen - k)
        mean += pmf[:, None] * grad
    return mean


# ------------------------------------------------------------------ statistics

def gram_norm2(x: np.ndarray, gram: np.ndarray | None) -> np.ndarray:
    """Squared norms of the rows of ``x`` in the metric ``gram`` (identity if None)."""
    return (x * x).sum(-1) if gram is None else np.einsum("...i,ij,...j->...", x, gram, x)


def gram_dot(x: np.ndarray, y: np.ndarray, gram: np.ndarray | None) -> np.ndarray:
    return (x * y).sum(-1) if gram is None else np.einsum("...i,ij,...j->...", x, gram, y)


def cosine(x, y, gram) -> np.ndarray:
    denom = np.sqrt(gram_norm2(x, gram) * gram_norm2(y, gram))
    return np.where(denom > 0, gram_dot(x, y, gram) / np.where(denom > 0, denom, 1.0), 0.0)


def estimator_stats(draws: np.ndarray, exact: np.ndarray, policy_grad: np.ndarray,
                    mean_exact: np.ndarray | None, gram: np.ndarray | None) -> dict:
    """Bias / variance / cosines of ``draws`` (N, n) against ``exact`` (n,) in one metric."""
    n = draws.shape[0]
    mc_mean = draws.mean(0)
    norm_exact = math.sqrt(gram_norm2(exact, gram))
    tr_cov = float(gram_norm2(draws - mc_mean, gram).sum() / max(n - 1, 1))
    mean = mc_mean if mean_exact is None else mean_exact
    cos_draws = cosine(draws, exact[None, :], gram)
    q1, med, q3 = np.percentile(cos_draws, [25, 50, 75])
    return {
        "rel_bias": float(math.sqrt(gram_norm2(mean - exact, gram)) / norm_exact),
        "rel_bias_source": "monte_carlo" if mean_exact is None else "enumeration",
        "rel_bias_mc": float(math.sqrt(gram_norm2(mc_mean - exact, gram)) / norm_exact),
        "rel_bias_mc_noise": float(math.sqrt(tr_cov / n) / norm_exact),
        "cos_mean_exact": float(cosine(mean, exact, gram)),
        "norm_ratio": float(math.sqrt(gram_norm2(mean, gram)) / norm_exact),
        "rel_var": float(tr_cov / gram_norm2(mean, gram)),
        "cos_draw_median": float(med),
        "cos_draw_q1": float(q1),
        "cos_draw_q3": float(q3),
        "cos_policy_gradient": float(cosine(mean, policy_grad, gram)),
    }


def exact_stats(exact: np.ndarray, policy_grad: np.ndarray, gram: np.ndarray | None) -> dict:
    return {"rel_bias": 0.0, "rel_bias_source": "definition", "cos_mean_exact": 1.0, "norm_ratio": 1.0,
            "rel_var": 0.0, "cos_draw_median": 1.0, "cos_policy_gradient": float(cosine(exact, policy_grad, gram))}


def timing(us: list[float]) -> dict:
    q1, med, q3 = np.percentile(us, [25, 50, 75])
    return {"median": round(float(med), 1), "iqr": round(float(q3 - q1), 1), "calls": len(us)}


# ------------------------------------------------------------------ model level

def margin_gram(batch_size: int, crop_seconds: float, seed: int) -> tuple[np.ndarray, dict]:
    """Gram matrix of the per-utterance logit-margin gradients of a seeded tiny policy."""
    torch.manual_seed(seed)
    config = PolicyConfig(encoder=EncoderConfig(preset="tiny", freeze="none"), crop_seconds=crop_seconds)
    model = build_policy(config).eval()  # eval: no dropout / SpecAugment, a deterministic forward
    trainable, total = count_parameters(model)
    rng = np.random.default_rng(seed)
    length = int(round(crop_seconds * SAMPLE_RATE))
    batch = collate_audio([{"input_values": torch.from_numpy(0.1 * rng.standard_normal(length).astype(np.float32)),
                            "labels": i % 2, "utt_id": f"bench_{i:04d}", "attack": "A01" if i % 2 else "-"}
                           for i in range(batch_size)])
    params = [p for p in model.parameters() if p.requires_grad]
    rows, own_p = [], []
    start = time.perf_counter()
    for b in range(batch_size):  # one utterance at a time: eval-mode rows are independent
        mask = batch.get("attention_mask")
        z = model(batch["input_values"][b:b + 1], attention_mask=None if mask is None else mask[b:b + 1])
        grads = torch.autograd.grad(z[0, 0] - z[0, 1], params, allow_unused=True)
        rows.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                               for g, p in zip(grads, params, strict=True)]).double())
        own_p.append(torch.softmax(z.detach(), -1)[0, 0].item())
    jac = torch.stack(rows)  # (B, P)
    gram = (jac @ jac.T).numpy()
    norms = jac.norm(dim=1)
    cos = (jac @ jac.T) / (norms[:, None] * norms[None, :])
    off = cos[~torch.eye(batch_size, dtype=torch.bool)]
    info = {"preset": "tiny", "freeze": "none", "parameters": total, "trainable_parameters": trainable,
            "crop_seconds": crop_seconds, "seed": seed,
            "own_p_bonafide_range": [round(min(own_p), 4), round(max(own_p), 4)],
            "margin_grad_norm_range": [round(float(norms.min()), 4), round(float(norms.max()), 4)],
            "margin_grad_cos_offdiag_mean": round(float(off.mean()), 4),
            "jacobian_seconds": round(time.perf_counter() - start, 2)}
    return gram, info


# ------------------------------------------------------------------ main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=2000, help="sampling seeds per sampled row")
    parser.add_argument("--groups", default="2,4,8,16,64", help="G of the sampled estimator")
    parser.add_argument("--settings", default=",".join(SETTINGS), help=f"of {', '.join(SETTINGS)}")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--p-range", type=float, nargs=2, default=(0.05, 0.95), metavar=("LOW", "HIGH"))
    parser.add_argument("--timing-calls", type=int, default=500, help="timed calls of the exact estimator")
    parser.add_argument("--no-model", action="store_true", help="skip the parameter-space (tiny policy) point")
    parser.add_argument("--crop-seconds", type=float, default=1.0, help="audio length of the model point")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    wall_start = time.perf_counter()
    groups = [int(g) for g in args.groups.split(",") if g.strip()]
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        parser.error(f"unknown --settings {unknown}; choose from {', '.join(SETTINGS)}")
    if args.draws < 2 or any(g < 2 for g in groups) or args.batch_size % 2:
        parser.error("--draws >= 2, every G >= 2 and an even --batch-size (balanced labels) are needed")
    if not 0.0 < args.p_range[0] <= args.p_range[1] < 1.0:
        parser.error("--p-range must lie inside (0, 1)")
    torch.set_num_threads(args.threads)
    logging.getLogger("transformers").setLevel(logging.ERROR)
    load_start = os.getloadavg()

    logits, labels = design_logits(args.batch_size, *args.p_range, args.seed)
    p_correct = torch.softmax(logits.double(), -1)[torch.arange(args.batch_size), labels]
    z = logits.double().requires_grad_(True)
    (pg,) = torch.autograd.grad(-torch.softmax(z, -1)[torch.arange(args.batch_size), labels].mean(), z)
    policy_grad = pg[:, 0].numpy()  # every per-utterance logit gradient is c_b * (1, -1)

    gram, model_info = (None, None) if args.no_model else margin_gram(args.batch_size, args.crop_seconds, args.seed)
    metrics = {"logits": np.eye(args.batch_size) * 2.0}  # ||g_z||^2 = 2 ||c||^2
    if gram is not None:
        metrics["params"] = gram

    def to_c(grad: torch.Tensor) -> np.ndarray:
        """``(B, 2)`` logit gradient -> its coordinates ``c_b = dL/dz_b0`` (``dL/dz_b1 = -c_b``)."""
        if not torch.allclose(grad.sum(-1), torch.zeros(()).to(grad), atol=1e-6):
            raise AssertionError("a logit gradient does not sum to zero over the two actions")
        return grad[:, 0].double().numpy()

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in settings:
            center, scale = SETTINGS[name]
            cfg = grpo_config(tmp, "exact", center, scale, 2)
            funcs, weights = resolve_rewards(list(cfg.reward_funcs), cfg.reward_weights, cfg.reward_kwargs)
            us = []
            for _ in range(args.timing_calls):
                t0 = time.perf_counter()
                grad, _ = one_call(logits, labels, cfg, funcs, weights, None)
                us.append((time.perf_counter() - t0) * 1e6)
            exact = to_c(grad)
            results.append({"estimator": "exact", "setting": name, "center": center, "scale": scale, "G": None,
                            "zero_std_mc": None, "zero_std_expected": None,
                            **{level: exact_stats(exact, policy_grad, m) for level, m in metrics.items()},
                            "us_per_call": timing(us)})
            for num_gen in groups:
                cfg = grpo_config(tmp, "sampled", center, scale, num_gen)
                generator = torch.Generator()
                draws, zero_std, us = np.empty((args.draws, args.batch_size)), [], []
                for i in range(args.draws):
                    t0 = time.perf_counter()
                    generator.manual_seed(args.seed * 1_000_003 + i)
                    grad, rewards = one_call(logits, labels, cfg, funcs, weights, generator)
                    us.append((time.perf_counter() - t0) * 1e6)
                    draws[i] = to_c(grad)
                    zero_std.append(zero_std_fraction(rewards))
                mean_exact = to_c(enumerated_mean(logits, labels, cfg, funcs, weights)) \
                    if center == "group" else None
                row = {"estimator": "sampled", "setting": name, "center": center, "scale": scale, "G": num_gen,
                       "zero_std_mc": round(float(np.mean(zero_std)), 4),
                       "zero_std_expected": round(float((p_correct**num_gen + (1 - p_correct) ** num_gen).mean()), 4),
                       **{level: estimator_stats(draws, exact, policy_grad, mean_exact, m)
                          for level, m in metrics.items()},
                       "us_per_call": timing(us)}
                if (center, scale) == ("group", "none"):
                    row["theory_norm_ratio"] = 1.0 - 1.0 / num_gen
                results.append(row)
    load_end = os.getloadavg()

    report = {
        "benchmark": "grpo_estimators",
        "device": "cpu",
        "device_name": cpu_name(),
        "torch_threads": torch.get_num_threads(),
        "setup": {
            "batch_size": args.batch_size, "labels": "i % 2 (balanced)",
            "p_correct": f"evenly spaced over [{args.p_range[0]}, {args.p_range[1]}], seeded order",
            "p_range": list(args.p_range),
            "reward": "correctness (1 right / 0 wrong)", "loss": "grpo_loss, dapo (= mean over decisions), "
            "clip=True, beta=0, num_iterations=1 (old_logp = logp.detach()); other GRPOConfig defaults",
            "advantage_eps": GRPOConfig.advantage_eps, "draws": args.draws, "groups": groups,
            "settings": {s: {"center": SETTINGS[s][0], "scale": SETTINGS[s][1]} for s in settings},
            "gradient": "w.r.t. the (B, 2) logits; 'params' maps it through a tiny policy's margin Jacobian",
            "model": model_info, "seed": args.seed,
        },
        "load": {"cpu_count": os.cpu_count(), "loadavg_start": [round(x, 2) for x in load_start],
                 "loadavg_end": [round(x, 2) for x in load_end]},
        "results": results,
        "wall_seconds": round(time.perf_counter() - wall_start, 1),
        **run_facts(),
    }
    emit_report(report, args.out)
    print_table(report)


def print_table(report: dict) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    setup = report["setup"]
    has_params = setup["model"] is not None
    table = Table(
        title=escape(f"grpo_estimators: gradient of grpo_loss w.r.t. the logits, B = {setup['batch_size']}, "
                     f"p(correct) {setup['p_range'][0]}..{setup['p_range'][1]}, {setup['draws']} draws per row"),
        caption=escape("bias: exact enumeration of E[g] under group centring, Monte Carlo (MC) under batch centring; "
                "MC/floor: the Monte-Carlo bias and its own sampling error. "
                "cos E, |E|/|ex|: direction and size of E[g] against g_exact; cos PG: E[g] against "
                "-grad mean p(correct). Right block: the same in a tiny policy's parameter space. "
                f"{report['device_name']}, {report['torch_threads']} thread(s), "
                f"load {report['load']['loadavg_start'][0]} -> {report['load']['loadavg_end'][0]}."),
    )
    cols = ["est.", "setting", "G", "zero-std", "bias", "MC/floor", "cos E", "|E|/|ex|", "rel var",
            "med cos", "cos PG", "us/call"]
    if has_params:
        cols += ["P bias", "P rel var", "P med cos"]
    for c in cols:
        table.add_column(c, justify="left" if c in ("est.", "setting") else "right", no_wrap=True)
    previous = None
    for r in report["results"]:
        if previous is not None and r["setting"] != previous:
            table.add_section()
        previous = r["setting"]
        lg = r["logits"]
        sampled = r["estimator"] == "sampled"
        cells = [r["estimator"], f"{r['setting']} ({r['center'][0]}/{r['scale'][0]})", str(r["G"] or "-"),
                 f"{r['zero_std_mc']:.3f}" if sampled else "-",
                 f"{lg['rel_bias']:.3f}" + ("" if not sampled or lg["rel_bias_source"] == "enumeration" else "*"),
                 f"{lg['rel_bias_mc']:.3f}/{lg['rel_bias_mc_noise']:.3f}" if sampled else "-",
                 f"{lg['cos_mean_exact']:.3f}", f"{lg['norm_ratio']:.3f}", f"{lg['rel_var']:.3f}",
                 f"{lg['cos_draw_median']:.3f}", f"{lg['cos_policy_gradient']:.3f}",
                 f"{r['us_per_call']['median']:.0f}"]
        if has_params:
            pr = r["params"]
            p_bias = (f"{pr['rel_bias']:.3f}" if not sampled or pr["rel_bias_source"] == "enumeration"
                      else f"{pr['rel_bias_mc']:.3f}/{pr['rel_bias_mc_noise']:.3f}*")
            cells += [p_bias, f"{pr['rel_var']:.3f}", f"{pr['cos_draw_median']:.3f}"]
        table.add_row(*cells)
    console = Console()
    console.width = max(console.width, 200)
    console.print(table)
    console.print("* Monte-Carlo bias (batch centring couples utterances, no enumeration; P bias shows "
                  "MC/floor): not resolved where it is close to its floor.")
    if has_params:
        m = setup["model"]
        console.print(f"P = parameter space of the tiny policy ({m['parameters']} parameters, freeze none, random "
                      f"init, random audio): its utterances' margin gradients have mean cosine "
                      f"{m['margin_grad_cos_offdiag_mean']:+.3f}, so balanced labels largely cancel there.")
    console.print(f"wall time {report['wall_seconds']} s")


if __name__ == "__main__":
    main()
