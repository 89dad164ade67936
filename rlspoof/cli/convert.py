"""``rlspoof convert``: checkpoints of other toolkits as rlspoof-loadable folders."""

from __future__ import annotations

from pathlib import Path

import typer

from rlspoof.cli.console import console
from rlspoof.cli.evaluate import check_out_folder

convert_app = typer.Typer(help="Convert checkpoints of other toolkits into folders rlspoof loads.",
                          no_args_is_help=True)


@convert_app.command()
def fairseq(
    checkpoint: Path = typer.Argument(..., help="fairseq wav2vec 2.0 / XLS-R / MMS / HuBERT .pt "
                                                "(pre-trained or ASR fine-tuned)."),
    out: Path = typer.Option(..., "--out", help="New folder to write (a transformers encoder)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an existing folder."),
) -> None:
    """A fairseq SSL checkpoint as a transformers encoder folder (safetensors), without fairseq.

    The file is read with torch.load(weights_only=True): a checkpoint that needs more (code
    from the file to rebuild it) is refused. Pre-training and ASR heads are dropped.
    """
    from rlspoof.models.fairseq import convert_fairseq

    check_out_folder(out, overwrite)
    result = convert_fairseq(checkpoint, out)
    cfg = result.config
    console.print(f"wrote {out}: {result.family} encoder, {cfg.num_hidden_layers} layers, hidden "
                  f"{cfg.hidden_size}; dropped {len(result.dropped)} head weights")
    hint = "; its input is normalised: add normalize_input: true" if result.normalize else ""
    console.print(f"use it as model_name_or_path: {out} in a recipe{hint}")
