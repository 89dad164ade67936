"""``rlspoof train RECIPE``: fine-tune a detector as a recipe says."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from rlspoof.cli.console import console

OVERWRITE_HELP = ("Replace the model a finished run saved in output_dir (the recipe's "
                  "overwrite_output_dir: true); without it such a run is refused unless it resumes.")


def with_overwrite(overrides: list[str], overwrite: bool) -> list[str]:
    """``--overwrite`` is the recipe key ``overwrite_output_dir``, set last so that it wins."""
    return [*overrides, "overwrite_output_dir=true"] if overwrite else list(overrides)


def train(
    recipe: Path = typer.Argument(..., help="YAML recipe; keys are config fields (see recipes/)."),
    set_: list[str] = typer.Option([], "--set", help="Override a recipe key: --set learning_rate=3e-5 (repeatable)."),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
) -> None:
    """Train a detector (the recipe's `method` key: sft | grpo | hybrid | posttrain | mldg)."""
    from rlspoof.trainers.run import train_from_recipe

    out = train_from_recipe(recipe, with_overwrite(set_, overwrite))
    if int(os.environ.get("RANK", "0")) == 0:  # once, not once per process of a distributed run
        console.print(f"policy saved to {out}  (load with SpoofPolicy.from_pretrained or "
                      f"`rlspoof eval --model {out}`)")
