"""``rlspoof pretrain RECIPE``: wav2vec 2.0 contrastive pre-training of an SSL encoder."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from rlspoof.cli.console import console
from rlspoof.cli.train import OVERWRITE_HELP, with_overwrite


def pretrain(
    recipe: Path = typer.Argument(..., help="YAML recipe (see recipes/mini/pretrain.yaml)."),
    set_: list[str] = typer.Option([], "--set", help="Override a recipe key: --set max_steps=500."),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
) -> None:
    """Pre-train an SSL encoder on (bonafide) audio; saves a transformers encoder folder."""
    from rlspoof.recipe import load_recipe
    from rlspoof.trainers.pretrain import COLLAPSE_ADVICE
    from rlspoof.trainers.pretrain import pretrain as run
    from rlspoof.trainers.pretrain_config import PretrainConfig, PretrainDataArguments

    cfg, data_args = load_recipe(recipe, (PretrainConfig, PretrainDataArguments), with_overwrite(set_, overwrite))
    encoder_dir = run(cfg, data_args)
    console.print(f"encoder saved to {encoder_dir}  (use it as model_name_or_path in a fine-tuning recipe)")
    log = json.loads((Path(cfg.output_dir) / "pretrain_log.json").read_text())
    if log.get("codebook_collapsed_at_step") is not None:
        console.print(f"[bold yellow]warning:[/] the quantiser's codebooks collapsed at step "
                      f"{log['codebook_collapsed_at_step']} (one code per codebook, contrastive loss 0, "
                      f"no gradient): {COLLAPSE_ADVICE}")
