"""Helpers shared by the trainer tests (imported as a plain module: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file


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


def kill_after_checkpoint(recipe: Path, output_dir: Path, step: int) -> None:
    """Runs ``recipe`` in a child process and SIGKILLs it once ``checkpoint-<step>`` is in place."""
    code = "import sys; from rlspoof.trainers.run import train_from_recipe; train_from_recipe(sys.argv[1])"
    process = subprocess.Popen([sys.executable, "-c", code, str(recipe)], env={**os.environ, "OMP_NUM_THREADS": "1"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (output_dir / f"checkpoint-{step}").is_dir() and process.poll() is None:
        assert time.monotonic() < deadline, f"no checkpoint-{step} within 5 minutes"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (output_dir / "model.safetensors").exists()


def assert_same_policy_files(a: Path, b: Path, atol: float = 1e-6) -> None:
    """Two saved policies hold the same tensors, equal up to float rounding (a resumed process
    re-creates the optimizer's state from its file)."""
    first, second = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert first.keys() == second.keys()
    for key in first:
        assert torch.allclose(first[key], second[key], atol=atol, rtol=0), \
            f"{key}: max difference {(first[key] - second[key]).abs().max().item():.2e}"
