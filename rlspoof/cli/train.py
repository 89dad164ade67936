"""``rlspoof train RECIPE``: fine-tune a detector as a recipe says."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from rlspoof.cli.console import console


def train(
    recipe: Path = typer.Argument(..., help="YAML recipe; keys are config fields (see recipes/)."),
    set_: list[str] = typer.Option([], "--set", help="Override a recipe key: --set learning_rate=3e-5 (repeatable)."),
) -> None:
    """Train a detector (the recipe's `method` key: sft | grpo | hybrid | posttrain | mldg)."""
    from rlspoof.trainers.run import train_from_recipe

    out = train_from_recipe(recipe, set_)
    if int(os.environ.get("RANK", "0")) == 0:  # once, not once per process of a distributed run
        console.print(f"policy saved to {out}  (load with SpoofPolicy.from_pretrained or "
                      f"`rlspoof eval --model {out}`)")
