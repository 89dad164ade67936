"""``rlspoof export``: a policy in a format other tools load, with its model card."""

from __future__ import annotations

from pathlib import Path

import typer

from rlspoof.cli.console import console
from rlspoof.cli.evaluate import TRUST_REMOTE_CODE_HELP
from rlspoof.errors import RlspoofError

FORMATS = ("hf",)


def export(
    model: Path = typer.Argument(..., help="Policy folder."),
    output_format: str = typer.Option("hf", "--format", help="hf: a transformers audio classifier "
                                                            "(pipeline('audio-classification') loads it)."),
    out: Path = typer.Option(..., "--out", help="New folder to write."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an existing folder."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help=TRUST_REMOTE_CODE_HELP),
) -> None:
    """Export a policy: model, configs and a model card (README.md)."""
    from rlspoof.models import SpoofPolicy
    from rlspoof.models.hf_classifier import export_hf_classifier
    from rlspoof.reports.model_card import model_card

    if output_format not in FORMATS:
        raise RlspoofError(f"--format must be one of {', '.join(FORMATS)}, got {output_format!r}")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not overwrite)):
        raise RlspoofError(f"--out {out} exists and is not an empty folder; pass --overwrite to write into it")
    policy = SpoofPolicy.from_pretrained(model, trust_remote_code=trust_remote_code)
    folder = export_hf_classifier(policy, out)
    (folder / "README.md").write_text(model_card(policy, model, "a transformers audio classifier exported by rlspoof"))
    console.print(f"wrote {folder} (model card: {folder / 'README.md'}); load it with "
                  f"transformers.pipeline('audio-classification', model='{folder}')")
