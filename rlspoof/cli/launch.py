"""``rlspoof accelerate-config NAME``: the path of a shipped accelerate config file."""

from __future__ import annotations

import typer


def accelerate_config(
    name: str = typer.Argument(..., help="multi_gpu | zero2 | zero3 | cpu_ddp."),
) -> None:
    """Print the path of a shipped accelerate config, for
    `accelerate launch --config_file $(rlspoof accelerate-config zero2) -m rlspoof train RECIPE`."""
    from rlspoof.accelerate_configs import config_path

    # plain print: a path that rich wraps or colours would break the shell substitution
    print(config_path(name))
