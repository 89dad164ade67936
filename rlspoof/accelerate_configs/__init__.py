"""accelerate config files shipped with rlspoof, for ``accelerate launch --config_file``.

``rlspoof accelerate-config NAME`` prints a file's path, so a distributed run reads::

    accelerate launch --config_file $(rlspoof accelerate-config zero2) -m rlspoof train RECIPE

* ``multi_gpu``: DDP on the GPUs of one machine, bf16.
* ``zero2`` / ``zero3``: DeepSpeed ZeRO-2 / ZeRO-3, bf16; ``auto`` values defer to the recipe.
* ``cpu_ddp``: two processes on CPU with gloo (the recipe must say ``use_cpu: true``).
"""

from __future__ import annotations

from pathlib import Path

from rlspoof.errors import RlspoofError

__all__ = ["CONFIG_NAMES", "config_path"]

_HERE = Path(__file__).resolve().parent

CONFIG_NAMES: tuple[str, ...] = ("multi_gpu", "zero2", "zero3", "cpu_ddp")


def config_path(name: str) -> Path:
    """The path of the shipped config ``name`` (with or without ``.yaml``)."""
    stem = name[: -len(".yaml")] if name.endswith(".yaml") else name
    if stem not in CONFIG_NAMES:
        raise RlspoofError(
            f"unknown accelerate config {name!r}; valid: {', '.join(CONFIG_NAMES)}")
    return _HERE / f"{stem}.yaml"
