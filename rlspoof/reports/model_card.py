"""The model card (``README.md``) an exported detector carries: what it is, its label
convention, what it was trained on (SYNTHETIC where it was), what it measured, and what it is
not for. Written from the policy folder itself (its resolved recipe and ``eval/metrics.json``),
so it says only what the folder can show."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

RECIPE_KEYS = ("method", "model_name_or_path", "train_manifest", "eval_manifest", "max_steps",
               "learning_rate", "per_device_train_batch_size", "seed")


def _training(folder: Path, synthetic: bool | None) -> tuple[list[str], bool]:
    """Lines about the recipe, and whether its training data was the SYNTHETIC corpus (read
    from the recipe's manifests unless the caller, who has them loaded, says)."""
    from rlspoof.data.manifest import read_manifest
    from rlspoof.data.synth.corpus import is_synthetic
    from rlspoof.errors import RlspoofError

    path = folder / "recipe.resolved.yaml"
    if not path.is_file():
        return ["No resolved recipe in the policy folder: the training data is not recorded."], False
    recipe = yaml.safe_load(path.read_text()) or {}
    lines = [f"- `{key}`: {recipe[key]}" for key in RECIPE_KEYS if key in recipe]
    if synthetic is not None:
        return lines, synthetic
    manifests = recipe.get("train_manifest") or []
    synthetic = False
    for manifest in manifests if isinstance(manifests, list) else [manifests]:
        try:
            synthetic = synthetic or is_synthetic([read_manifest(manifest)])
        except (RlspoofError, OSError):
            lines.append(f"- (training manifest {manifest} not readable here)")
    return lines, synthetic


def _metrics(folder: Path) -> list[str]:
    path = folder / "eval" / "metrics.json"
    if not path.is_file():
        return ["Not measured in this folder (`rlspoof eval --model FOLDER` writes eval/metrics.json)."]
    rows = ["| set | EER % | 95 % CI | minDCF | actDCF | Cllr | trials |", "|---|---|---|---|---|---|---|"]
    for name, result in json.loads(path.read_text()).items():
        p = result["pooled"]
        low, high = p.get("eer_ci95", [float("nan")] * 2)
        rows.append(f"| {name} | {100 * p['eer']:.2f} | {100 * low:.1f}-{100 * high:.1f} | {p['min_dcf']:.3f} | "
                    f"{p['act_dcf']:.3f} | {p['cllr']:.3f} | {p['n_bonafide']}+{p['n_spoof']} |")
    return rows


def model_card(policy, source: str | Path, fmt: str, synthetic: bool | None = None) -> str:
    """The card of ``policy`` saved in ``source`` (its recipe and metrics are read from there);
    ``fmt`` names the form it is in (an rlspoof policy folder, a transformers classifier);
    ``synthetic``: whether it trained on the SYNTHETIC corpus, if the caller knows."""
    source = Path(source)
    training, synthetic = _training(source, synthetic)
    warning = ("\n**Trained on rlspoof's built-in SYNTHETIC corpus: a test bed, not a detector of real "
               "deepfakes. Its numbers are synthetic-corpus numbers.**\n" if synthetic else "")
    enc = policy.encoder.config
    return "\n".join([
        f"# Speech deepfake detector ({enc.model_type}; {fmt})",
        warning,
        "## What it is",
        f"A {enc.model_type} encoder ({enc.num_hidden_layers} layers, hidden size {enc.hidden_size}) with a "
        f"{policy.config.pooling}-pooled classification head, trained with rlspoof from `{source}`. "
        f"Input: mono audio at {policy.sample_rate} Hz"
        + (", normalised per clip to zero mean and unit variance." if policy.config.normalize_input else "."),
        "",
        "## Labels and scores",
        "Class 0 is `bonafide` (genuine speech), class 1 is `spoof`. The score rlspoof reports is "
        "`logit[bonafide] - logit[spoof]`: higher means more likely genuine. It is a log-odds "
        "learnt on the training mixture, not a calibrated likelihood ratio: calibrate it on "
        "data of your own (`rlspoof calibrate`) before reading it as a probability.",
        "",
        "## Training",
        *training,
        "",
        "## Measured",
        *_metrics(source),
        "",
        "## Intended use and limitations",
        "Research on speech anti-spoofing: scoring audio for signs of synthesis or conversion, "
        "as one signal among others. Not for decisions about people on its own. Detectors fail "
        "on attacks, channels, codecs and languages unlike their training data, and an attacker "
        "who knows the model can evade it; measure it on data like yours before relying on it.",
        "",
    ])
