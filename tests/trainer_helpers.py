"""Helpers shared by the trainer tests (imported as a plain module: pytest puts tests/ on sys.path)."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml


def count_forwards(module: torch.nn.Module) -> list[int]:
    """Hook counting ``module``'s forward calls (register after the trainer deep-copies the
    policy into its reference, or the copy inherits the hook)."""
    calls: list[int] = []
    module.register_forward_hook(lambda *_: calls.append(1))
    return calls


def weights_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_weights(a: torch.nn.Module | dict, b: torch.nn.Module | dict) -> bool:
    a = a if isinstance(a, dict) else a.state_dict()
    b = b if isinstance(b, dict) else b.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def write_tiny_recipe(tmp_path: Path, corpus: Path, name: str, crop: float, **fields) -> Path:
    """A short GRPO-family recipe on the tiny corpus (train/dev splits of its manifest)."""
    recipe = {
        "encoder_preset": "tiny", "freeze": "none",
        "train_manifest": str(corpus / "manifest.csv"), "train_split": "train",
        "eval_manifest": str(corpus / "manifest.csv"), "eval_split": "dev",
        "crop_seconds": crop, "eval_crop_seconds": crop, "output_dir": str(tmp_path / "run"),
        "learning_rate": 1e-3, "per_device_train_batch_size": 8,
        "per_device_eval_batch_size": 16, "num_generations": 8, "beta": 0.04, "max_steps": 4,
        "eval_strategy": "steps", "eval_steps": 4, "save_strategy": "no",
        "report_to": "none", "use_cpu": True, "disable_tqdm": True, "seed": 5,
        "lr_scheduler_type": "constant", **fields,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path
