"""``rlspoof drift``: has the score distribution moved? For monitoring a deployed detector."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from rlspoof.cli.console import console


def drift(
    reference: Path = typer.Option(..., help="Score file (rlspoof eval/detect TSV) of the reference period."),
    incoming: Path = typer.Option(..., help="Score file of the incoming period."),
    threshold: float = typer.Option(None, help="Alert when the Wasserstein distance exceeds this."),
    alpha: float = typer.Option(None, help="Alert when the permutation-test p-value is below this."),
    calibrate: float = typer.Option(None, help="Set the threshold to this quantile (e.g. 0.95) of the "
                                               "distance between random splits of the reference."),
    permutations: int = typer.Option(200, help="Permutations for the p-value (with --alpha)."),
    out: Path = typer.Option(None, help="Also write the JSON here."),
) -> None:
    """Wasserstein distance between two score distributions; exit code 1 on an alert."""
    from rlspoof.errors import RlspoofError
    from rlspoof.evaluation import read_score_file
    from rlspoof.metrics.drift import calibrate_threshold, detect_drift

    if threshold is None and alpha is None and calibrate is None:
        raise RlspoofError("set --threshold, --alpha or --calibrate: without one, no alert can fire")
    ref = read_score_file(reference).scores
    new = read_score_file(incoming).scores
    if calibrate is not None:
        threshold = calibrate_threshold(ref, quantile=calibrate, n_incoming=min(len(new), len(ref) - 1))
    result = detect_drift(ref, new, threshold=threshold, alpha=alpha, n_permutations=permutations)
    text = json.dumps({"reference": str(reference), "incoming": str(incoming), **result.to_dict()}, indent=2)
    console.print(text)
    if out:
        out.write_text(text + "\n")
    if result.alert:
        raise typer.Exit(1)
