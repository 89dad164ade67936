"""Which encoder front end lets the tiny detector learn the built-in corpus? (issue 12)

Trains a SpoofPolicy (tiny wav2vec2 variants from random init, or ``path:FOLDER`` for a
pre-trained encoder) from scratch by plain supervised steps (AdamW, label-balanced batches of
random crops) on the old-domain ``train`` split, decoded once into memory, then scores ``dev``,
``eval`` and any other split. Prints one JSON line per run: EER per set, per attack family and
per attack-strength quarter, training seconds, parameters. SYNTHETIC corpus; results in benchmarks/results/frontend_sweep.json.

    python benchmarks/frontend_sweep.py --corpus data/mini --variant tiny --variant cnn_log \
        --steps 400 --eval dev eval --eval-crop 1.5

Variants are front ends within a transformers wav2vec2 config (plus non-rlspoof reference
CNNs), so that a preset change is measured before it is made. This is a diagnostic harness
with its own training loop (no Trainer, no checkpoints), written for speed of iteration.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from rlspoof.data.audio import load_audio
from rlspoof.data.manifest import LABEL2ID, read_manifest
from rlspoof.metrics.report import POOLED, grouped_metrics
from rlspoof.models.encoders import EncoderConfig, tiny_encoder_config
from rlspoof.models.frontends import LogSpecConv2d, front_end_geometry
from rlspoof.models.policy import PolicyConfig, build_policy

_STFT_POW = {"conv_dim": (512, 128, 128), "conv_kernel": (400, 1, 1), "conv_stride": (160, 1, 1),
             "feat_extract_norm": "group", "feat_extract_activation": "sqrtsoftplus",
             "hidden_size": 128, "intermediate_size": 256, "num_attention_heads": 4,
             "_init": "stft", "_freeze": True}
#: The log-spectrogram 2D-conv front end's conv geometry (rlspoof.models.frontends) and the
#: transformer width of the tiny-logspec preset.
_LOGSPEC = front_end_geometry({"channels": 16})
_H128 = {"hidden_size": 128, "intermediate_size": 256, "num_attention_heads": 4}
#: Encoder config overrides on the tiny wav2vec2 preset; ``_init``/``_freeze``/``_pooling`` are
#: this script's own switches. ``cnn_*`` are not rlspoof detectors: reference points (a small
#: 2D CNN on a log or linear spectrogram, or on the frozen power-law front end's output) for
#: what the corpus allows; ``pow_hybrid`` puts that CNN beside the transformer.
VARIANTS: dict[str, dict] = {
    "tiny": {},  # the current preset: learned 400/160 conv, 128 channels, layer norm
    "group_norm": {"feat_extract_norm": "group"},  # per-channel normalisation over time
    "deep3": {"conv_dim": (64, 64, 64), "conv_kernel": (64, 5, 5), "conv_stride": (8, 4, 5)},
    # a learned CNN initialised as a Hann-windowed Fourier basis (4 phases x 64 | 256 frequencies)
    "stft_group": {"conv_dim": (256, 64), "feat_extract_norm": "group", "_init": "stft"},
    "stft_layer": {"conv_dim": (256, 64), "_init": "stft"},
    "stft256_group": {"conv_dim": (1024, 256), "feat_extract_norm": "group", "_init": "stft"},
    # a frozen Fourier front end with power-law compression (three sqrtsoftplus stages, ~x^(1/8))
    "pow_frozen": {**_STFT_POW, "conv_dim": (1024, 256, 256), "hidden_size": 64,
                   "intermediate_size": 128, "num_attention_heads": 2},
    "pow512_h128_frozen": _STFT_POW,
    "pow512_h128_frozen_conv2d": {**_STFT_POW, "_pooling": "conv2d"},
    "tiny_conv2d": {"_pooling": "conv2d"},
    "pow512_h128_frozen_stats": {**_STFT_POW, "_pooling": "attentive_stats"},
    # diagnostic: an exact log spectrogram in place of the CNN, same transformer
    "logspec_h128": {"conv_dim": (512, 201), "conv_kernel": (400, 1), "conv_stride": (160, 1),
                     "hidden_size": 128, "intermediate_size": 256, "num_attention_heads": 4,
                     "_init": "logspec"},
    "cnn_log": {},
    "cnn_lin": {},
    # the reference CNN on the frozen power-law front end's output (B, 128 bins, T)
    "cnn_pow": {},
    # pow512_h128_frozen's transformer (mean-pooled) and cnn_pow's CNN on its front end, one head
    "pow_hybrid": {**_STFT_POW, "_hybrid": True},
    # a log spectrogram and 2D conv blocks (no batch norm), pooled over frequency, as the
    # encoder's front end: (B, L) -> (B, 64, T/4) frames into the transformer
    "logspec2d_h128": {**_LOGSPEC, **_H128, "_init": "logspec2d"},
    "logspec2d_h64": {**_LOGSPEC, "_init": "logspec2d"},
    "logspec2d_fixed_h128": {**_LOGSPEC, **_H128, "_init": "logspec2d_fixed"},  # = preset tiny-logspec
    "logspec2d_utt_h128": {**_LOGSPEC, **_H128, "_init": "logspec2d_utt"},
    "logspec2d_fixed_h64": {**_LOGSPEC, "_init": "logspec2d_fixed"},
    # frequency kept: each frame's conv maps (channels x F/4) flattened through a linear layer
    "logspec2d_flat_h128": {**_LOGSPEC, **_H128, "_init": "logspec2d_flat"},
    # the same front ends, mean-pooled over time straight into the head (no transformer)
    "cnn_logspec2d": {},
    "cnn_logspec2d_fixed": {},
}


def load_split(corpus: Path, split: str):
    manifest = read_manifest(corpus / f"{split}.csv")
    return list(manifest), [load_audio(manifest.audio_path(r)) for r in manifest]


def eer_by_family(rows, scores) -> dict[str, float]:
    """EER of all trials (``all``) and of each family against every bonafide trial (ASVspoof)."""
    labels = [r.label for r in rows]
    table = grouped_metrics(scores, labels, [r.attack for r in rows])
    out = {("all" if name == POOLED else name): float(m["eer"]) for name, m in table.items()}
    if any(r.extra.get("strength") for r in rows):  # how much of the EER the weak spoofs make
        bins = ["-" if r.label == "bonafide" else
                f"strength_{min(3, int(float(r.extra['strength']) * 4))}/4" for r in rows]
        out.update({name: float(m["eer"]) for name, m in grouped_metrics(scores, labels, bins).items()
                    if name != POOLED})
    return out


def run(args, variant: str, seed: int, data):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if variant.startswith("cnn_"):
        policy = SpecCNN(log=variant == "cnn_log")
        if variant.startswith("cnn_logspec2d"):
            policy = FrontEndProbe(logspec_front(variant))
        if variant == "cnn_pow":
            from transformers import Wav2Vec2Model
            spec = {k: v for k, v in _STFT_POW.items() if not k.startswith("_")}
            fe = Wav2Vec2Model(tiny_encoder_config("wav2vec2", **spec))
            stft_init(fe)
            policy.front = fe.feature_extractor.requires_grad_(False)
    elif variant.startswith("path:"):
        enc = EncoderConfig(name_or_path=variant[5:], freeze="none")
    else:
        enc = EncoderConfig(preset="tiny", freeze="none")
    if not variant.startswith("cnn_"):
        policy = build_policy(PolicyConfig(encoder=enc, crop_seconds=args.crop))
    if not variant.startswith(("path:", "cnn_")):
        from transformers import Wav2Vec2Model

        from rlspoof.models.encoders import prepare_encoder
        spec = dict(VARIANTS[variant])
        init = spec.pop("_init", None)
        freeze = spec.pop("_freeze", False)
        args.pooling = spec.pop("_pooling", "mean")
        hybrid = spec.pop("_hybrid", False)
        model = Wav2Vec2Model(tiny_encoder_config("wav2vec2", **spec))
        if init == "stft":
            stft_init(model)
        if init == "logspec":  # diagnostic: an exact log spectrogram in place of the CNN
            model.feature_extractor = LogSpec()
        if init and init.startswith("logspec2d"):
            model.feature_extractor = logspec_front(init)
        policy.encoder = prepare_encoder(model, enc)
        policy = build_policy_like(policy, args)
        if freeze:
            for p_ in policy.encoder.feature_extractor.parameters():
                p_.requires_grad_(False)
        if hybrid:
            policy = HybridPolicy(policy)
    params = sum(p.numel() for p in policy.parameters())
    opt = torch.optim.AdamW([p_ for p_ in policy.parameters() if p_.requires_grad], lr=args.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / args.warmup) * max(0.0, 1 - s / args.steps))
    rows, waves = data["train"]
    labels = np.array([LABEL2ID[r.label] for r in rows])
    by_label = [np.flatnonzero(labels == k) for k in (0, 1)]
    n = int(args.crop * 16000)
    policy.train()
    t0 = time.time()
    losses = []
    for _step in range(args.steps):
        idx = np.concatenate([rng.choice(by_label[k], args.batch // 2) for k in (0, 1)])
        batch = np.zeros((len(idx), n), np.float32)
        for i, j in enumerate(idx):
            w = waves[j]
            if len(w) >= n:
                s = rng.integers(0, len(w) - n + 1)
                batch[i] = w[s:s + n]
            else:
                batch[i] = np.resize(w, n)
        if args.normalize:
            batch = (batch - batch.mean(1, keepdims=True)) / (batch.std(1, keepdims=True) + 1e-7)
        logits = policy(torch.from_numpy(batch))
        loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels[idx]))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    train_s = time.time() - t0
    result = {"variant": variant, "seed": seed, "normalize": args.normalize, "params": params, "train_seconds": round(train_s, 1),
              "loss_first50": float(np.mean(losses[:50])), "loss_last50": float(np.mean(losses[-50:]))}
    for split in args.eval:
        rows_e, waves_e = data[split]
        waves_e = [w[: int(args.eval_crop * 16000)] for w in waves_e] if args.eval_crop else waves_e
        if args.normalize:
            waves_e = [((w - w.mean()) / (w.std() + 1e-7)).astype(np.float32) for w in waves_e]
        scores = policy.score(waves_e, batch_size=32)
        result[split] = eer_by_family(rows_e, scores)
    return result


def stft_init(model):
    """First conv = Hann-windowed sinusoids at 4 phases x (channels / 4) linear frequencies up
    to 8 kHz; second = the sum of the 4 phases of each frequency: at init the CNN computes a
    (normalised) magnitude spectrum. With ``sqrtsoftplus``, later 1x1 layers start as identity."""
    convs = model.feature_extractor.conv_layers
    w0 = convs[0].conv.weight  # (C0, 1, K)
    c0, _, k = w0.shape
    n_freq = c0 // 4
    n = np.arange(k)
    window = np.hanning(k)
    freqs = (np.arange(n_freq) + 0.5) * 8000 / n_freq
    rows = []
    for f in freqs:
        for phase in (0, np.pi / 2, np.pi, 3 * np.pi / 2):
            rows.append(window * np.cos(2 * np.pi * f * n / 16000 + phase))
    with torch.no_grad():
        w0.copy_(torch.tensor(np.array(rows) / np.sqrt(k), dtype=w0.dtype).unsqueeze(1))
        if convs[0].conv.bias is not None:
            convs[0].conv.bias.zero_()
        w1 = convs[1].conv.weight  # (C1, C0, 1)
        w1.zero_()
        for i in range(min(w1.shape[0], n_freq)):
            w1[i, 4 * i:4 * i + 4, 0] = 0.5
        if convs[1].conv.bias is not None:
            convs[1].conv.bias.zero_()
        if model.config.feat_extract_activation == "sqrtsoftplus":
            # power-law compression: scale the normalised bands up so quiet frames clear softplus's floor
            convs[0].layer_norm.weight.fill_(1e4)
            w1.mul_(0.5)
            for layer in convs[2:]:
                layer.conv.weight.zero_()
                for i in range(layer.conv.weight.shape[0]):
                    layer.conv.weight[i, i, 0] = 1.0
                layer.conv.bias.zero_()


class LogSpec(torch.nn.Module):
    """Diagnostic only: (B, L) waves -> (B, 201, T) log power spectrogram (400-sample frames,
    160 hop, as the conv front end), normalised per frequency over time."""

    def forward(self, x):
        spec = torch.stft(x, 400, 160, 400, torch.hann_window(400), center=False,
                          return_complex=True).abs() ** 2
        spec = torch.log(spec + 1e-10)
        return (spec - spec.mean(2, keepdim=True)) / (spec.std(2, keepdim=True) + 1e-5)


class FrameNormLogSpec(LogSpecConv2d):
    """The measured alternative to rlspoof's constant log-power normalisation: each frame's
    mean over frequency removed (gain invariant, but it loses the frame-energy cue)."""

    def compress(self, power):
        spec = torch.log(power + 1e-8)
        return (spec - spec.mean(1, keepdim=True)) / 5.0


class UttNormLogSpec(LogSpecConv2d):
    """Gain removed per utterance: log power standardised over the frames that carry signal
    (padding and digital silence, whose power is ~0, are left out of the statistics)."""

    def compress(self, power):
        spec = torch.log(power + 1e-8)
        valid = (power.sum(1, keepdim=True) > 1e-6).expand_as(spec).float()
        n = valid.sum((1, 2), keepdim=True).clamp(min=1)
        mean = (spec * valid).sum((1, 2), keepdim=True) / n
        std = (((spec - mean) ** 2 * valid).sum((1, 2), keepdim=True) / n).sqrt()
        return (spec - mean) / (std + 1e-5)


def logspec_front(init: str):
    if init.endswith("flat"):
        return LogSpecConv2d(frequency="flatten")
    if init.endswith("utt"):
        return UttNormLogSpec()
    return LogSpecConv2d() if init.endswith("fixed") else FrameNormLogSpec()


class FrontEndProbe(torch.nn.Module):
    """Diagnostic: a front end's frames mean-pooled over time into a linear head."""

    def __init__(self, front):
        super().__init__()
        self.front = front
        self.head = torch.nn.Linear(64, 2)

    def forward(self, x, attention_mask=None):
        return self.head(self.front(x).mean(2))

    score = None  # set below (SpecCNN.score)


class Conv2dPooling(torch.nn.Module):
    """Candidate back end (SSL-AASIST-like, simplified): frame features (B, T, D) -> a (T x 64)
    map -> 2D conv blocks with max-pooling -> global mean and max (no batch norm: GRPO scores
    in train mode and the reference in eval mode must agree)."""

    def __init__(self, dim: int, proj: int = 64, c: int = 16):
        super().__init__()
        self.proj = torch.nn.Linear(dim, proj)
        act = torch.nn.GELU
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(1, c, 3, padding=1), act(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(c, 2 * c, 3, padding=1), act(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(2 * c, 2 * c, 3, padding=1), act())
        self.out_dim = 4 * c

    def forward(self, hidden, frame_mask=None):
        x = self.net(self.proj(hidden).unsqueeze(1))  # (B, C, T/4, F/4)
        return torch.cat([x.mean((2, 3)), x.amax((2, 3))], dim=-1)


class SpecCNN(torch.nn.Module):
    """Diagnostic only (not an rlspoof detector): a small CNN on a (log) spectrogram."""

    def __init__(self, log: bool):
        super().__init__()
        self.log = log
        self.front = None  # optional frozen rlspoof front end (variant cnn_pow)
        c = 16
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(1, c, 3, padding=1), torch.nn.BatchNorm2d(c), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(c, 2 * c, 3, padding=1), torch.nn.BatchNorm2d(2 * c), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(2 * c, 2 * c, 3, padding=1), torch.nn.BatchNorm2d(2 * c), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(2 * c, 2))

    def forward(self, x, attention_mask=None):
        if self.front is not None:
            spec = self.front(x)
            spec = (spec - spec.mean((1, 2), keepdim=True)) / (spec.std((1, 2), keepdim=True) + 1e-5)
            return self.net(spec.unsqueeze(1))
        spec = torch.stft(x, 512, 160, 400, torch.hann_window(400), return_complex=True).abs() ** 2
        spec = torch.log(spec + 1e-10) if self.log else spec / (spec.mean((1, 2), keepdim=True) + 1e-10)
        spec = (spec - spec.mean((1, 2), keepdim=True)) / (spec.std((1, 2), keepdim=True) + 1e-5)
        return self.net(spec.unsqueeze(1))

    def score(self, waves, batch_size=32):
        self.eval()
        out = []
        with torch.no_grad():
            for w in waves:
                logits = self(torch.from_numpy(w).unsqueeze(0))
                out.append(float(logits[0, 0] - logits[0, 1]))
        self.train()
        return np.array(out)


FrontEndProbe.score = SpecCNN.score


class HybridPolicy(torch.nn.Module):
    """Diagnostic: the transformer's pooled frames and a 2D CNN on the (frozen) front end's
    spectrum, concatenated into one linear head."""

    def __init__(self, policy):
        super().__init__()
        self.policy = policy
        c = 16
        self.cnn = torch.nn.Sequential(
            torch.nn.Conv2d(1, c, 3, padding=1), torch.nn.BatchNorm2d(c), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(c, 2 * c, 3, padding=1), torch.nn.BatchNorm2d(2 * c), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(2 * c, 2 * c, 3, padding=1), torch.nn.BatchNorm2d(2 * c), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        self.head = torch.nn.Linear(policy.pooling.out_dim + 2 * c, 2)

    def forward(self, x, attention_mask=None):
        spec = self.policy.encoder.feature_extractor(x)
        spec = (spec - spec.mean((1, 2), keepdim=True)) / (spec.std((1, 2), keepdim=True) + 1e-5)
        return self.head(torch.cat([self.policy.embed(x), self.cnn(spec.unsqueeze(1))], -1))

    score = SpecCNN.score


def build_policy_like(policy, args):
    """Rebuild heads for the swapped encoder (its hidden size may differ)."""
    from rlspoof.models.heads import ClassifierHead, LayerWeights, build_pooling
    cfg = policy.encoder.config
    policy.hidden_size = cfg.hidden_size
    policy.layer_weights = LayerWeights(cfg.num_hidden_layers + 1)
    policy.pooling = (Conv2dPooling(cfg.hidden_size) if args.pooling == "conv2d"
                      else build_pooling(args.pooling, cfg.hidden_size))
    policy.head = ClassifierHead(policy.pooling.out_dim, None, 0.0, num_labels=2)
    return policy


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--corpus", type=Path, default=Path("data/mini"))
    p.add_argument("--variant", action="append", required=True)
    p.add_argument("--seeds", default="1234")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=40)
    p.add_argument("--crop", type=float, default=2.0)
    p.add_argument("--eval-crop", type=float, default=None)
    p.add_argument("--eval", nargs="+", default=["dev", "eval", "eval_unseen_attack", "eval_channel"])
    p.add_argument("--normalize", action="store_true", help="zero-mean unit-variance input (HF do_normalize)")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    torch.set_num_threads(2)
    data = {s: load_split(args.corpus, s) for s in ["train", *args.eval]}
    results = []
    for variant in args.variant:
        for seed in map(int, args.seeds.split(",")):
            r = run(args, variant, seed, data)
            print(json.dumps(r), flush=True)
            results.append(r)
    if args.out:
        args.out.write_text(json.dumps({"synthetic": True, "args": {k: str(v) for k, v in vars(args).items()},
                                        "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
