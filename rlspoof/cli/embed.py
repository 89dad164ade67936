"""``rlspoof embed``: how checkpoints (e.g. before / after post-training) embed one set."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.table import Table

from rlspoof.cli.console import console, progress_bar
from rlspoof.cli.evaluate import named_paths
from rlspoof.errors import RlspoofError

#: Longest --crop-seconds: ten minutes, far beyond any anti-spoofing clip.
MAX_CROP_SECONDS = 600.0


def embed(
    models: list[str] = typer.Option(..., "--model", help="Policy or SSL-encoder folder, or "
                                                         "NAME=FOLDER (repeatable: one figure row "
                                                         "per model)."),
    manifest: Path = typer.Option(..., "--manifest", help="Manifest of the set to embed."),
    split: str = typer.Option(None, "--split", help="Only rows of this split."),
    max_per_attack: int = typer.Option(None, "--max-per-attack",
                                       help="At most N rows per attack (bonafide counts as one)."),
    out: Path = typer.Option(Path("runs/embeddings"), "--out", help="Folder for the PNG and JSON."),
    seed: int = typer.Option(0, help="Seed of the --max-per-attack draw."),
    batch_size: int = typer.Option(16, help="Utterances per forward pass."),
    crop_seconds: float = typer.Option(None, help="Embed the first N seconds of each clip "
                                                  "(default: whole clips)."),
) -> None:
    """PCA picture of pooled embeddings (by label and attack) and a class-separation number."""
    from rlspoof.data.manifest import read_manifest
    from rlspoof.evaluation.embeddings import embedding_report

    if max_per_attack is not None and max_per_attack < 1:
        raise RlspoofError(f"--max-per-attack must be >= 1, got {max_per_attack}")
    if batch_size < 1:
        raise RlspoofError(f"--batch-size must be >= 1, got {batch_size}")
    # capped: short clips are padded up to the crop, so 1e6 s would allocate 64 GB per clip
    if crop_seconds is not None and not (math.isfinite(crop_seconds)
                                         and 0 < crop_seconds <= MAX_CROP_SECONDS):
        raise RlspoofError(f"--crop-seconds must be in (0, {MAX_CROP_SECONDS:g}] seconds, "
                           f"got {crop_seconds}")
    if seed < 0:
        raise RlspoofError(f"--seed must be >= 0, got {seed}")
    if out.exists() and not out.is_dir():
        raise RlspoofError(f"--out {out} is a file, not a folder")
    rows = read_manifest(manifest)
    if split is not None:
        splits = sorted({row.split for row in rows})
        rows = rows.filter(split=split)
        if len(rows) == 0:
            raise RlspoofError(f"{manifest}: no rows of split {split!r} (splits: {splits})")
    folders = named_paths(models, "--model", lambda p: p.name)
    policies = {name: _load(folder) for name, folder in folders.items()}
    set_name = manifest.stem if split is None else f"{manifest.stem} (split {split})"
    report = embedding_report(policies, rows, out, max_per_attack, seed, progress_bar,
                              batch_size, crop_seconds, set_name)
    kind = "SYNTHETIC corpus" if report["synthetic"] else "embedding"
    console.print(_separation_table(f"{manifest.name} ({kind})", report["models"]))
    console.print(f"figure: {out / 'embeddings.png'}   numbers: {out / 'embeddings.json'}")


def _load(folder: Path):
    """A saved policy, or an encoder checkpoint wrapped with mean pooling (the embedding needs no
    head), so a pre-trained encoder can be the "before" of post-training."""
    from rlspoof.models import EncoderConfig, PolicyConfig, SpoofPolicy, build_policy
    from rlspoof.models.checkpoint import is_policy_folder

    if is_policy_folder(folder):
        return SpoofPolicy.from_pretrained(folder)
    return build_policy(PolicyConfig(EncoderConfig(name_or_path=str(folder)))).eval()


def _separation_table(title: str, models: dict) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("model")
    table.add_column("n", justify="right")
    table.add_column("class separation", justify="right")
    for name, result in models.items():
        separation = result["class_separation"]
        table.add_row(name, str(result["n"]), "inf" if separation is None else f"{separation:.3f}")
    return table
