"""Facts every run and benchmark records, so a number can be traced to the code that made it."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from pathlib import Path


def git_commit() -> str | None:
    """Short commit of the rlspoof checkout, or None outside a git checkout."""
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10, cwd=Path(__file__).parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def cpu_name() -> str:
    """The CPU model string (``/proc/cpuinfo``), for benchmark records."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def device_name(device=None) -> str:
    """The GPU's name for a CUDA device, else the CPU's."""
    if device is not None and getattr(device, "type", str(device)) == "cuda":
        import torch

        return torch.cuda.get_device_name(device)
    return cpu_name()


def run_facts() -> dict:
    """Machine, date, versions and commit."""
    import numpy
    import torch
    import transformers

    return {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip() + f" cpus={os.cpu_count()}",
        "date": dt.date.today().isoformat(),
        "git_commit": git_commit(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "numpy": numpy.__version__},
    }


def emit_report(report: dict, out=None) -> str:
    """Print a benchmark's JSON and, if ``out`` is given, write it there too."""
    import json

    text = json.dumps(report, indent=2)
    print(text)
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    return text
