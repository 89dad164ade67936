"""``rlspoof drift``: has the score distribution moved? For monitoring a deployed detector.

Exit code 1 means drift (an alert), so every input problem must be a one-line error with exit
code 2 instead: a monitoring script would otherwise read a missing file as drift.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer

from rlspoof.cli.console import console

SCORE_FILE_HELP = ("a scores/<set>.tsv from `rlspoof eval`, or the CSV or JSON `rlspoof detect` "
                   "writes (--out)")


def drift(
    reference: Path = typer.Option(..., help=f"Scores of the reference period: {SCORE_FILE_HELP}."),
    incoming: Path = typer.Option(..., help="Scores of the incoming period (same formats)."),
    threshold: float = typer.Option(None, help="Alert when the Wasserstein distance exceeds this."),
    alpha: float = typer.Option(None, help="Alert when the permutation-test p-value is below this."),
    calibrate: float = typer.Option(None, help="Set the threshold to this quantile (e.g. 0.95) of the "
                                               "distance between random splits of the reference."),
    permutations: int = typer.Option(200, help="Permutations for the p-value (with --alpha)."),
    out: Path = typer.Option(None, help="Also write the JSON here."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
) -> None:
    """Wasserstein distance between two score distributions.

    Exit code 0: no drift; 1: drift (an alert); 2: an input error (a missing, empty or
    malformed score file, a non-finite score, a bad option).
    """
    from rlspoof.cli.evaluate import check_out_file
    from rlspoof.errors import RlspoofError
    from rlspoof.evaluation import read_scores
    from rlspoof.metrics.drift import calibrate_threshold, detect_drift

    if threshold is None and alpha is None and calibrate is None:
        raise RlspoofError("set --threshold, --alpha or --calibrate: without one, no alert can fire")
    if threshold is not None and not (math.isfinite(threshold) and threshold >= 0):
        raise RlspoofError(f"--threshold must be a finite distance >= 0, got {threshold}")
    if alpha is not None and not 0 < alpha < 1:
        raise RlspoofError(f"--alpha must be in (0, 1), got {alpha}")
    if calibrate is not None and not 0 < calibrate <= 1:
        raise RlspoofError(f"--calibrate must be a quantile in (0, 1], got {calibrate}")
    if permutations < 1:
        raise RlspoofError(f"--permutations must be >= 1, got {permutations}")
    if out is not None:
        check_out_file(out, [reference, incoming], overwrite)
    ref = read_scores(reference)
    new = read_scores(incoming)
    if calibrate is not None:
        if len(ref) < 2:
            raise RlspoofError(f"--calibrate splits the reference, which needs 2 scores or more: "
                               f"{reference} has {len(ref)}")
        threshold = calibrate_threshold(ref, quantile=calibrate, n_incoming=min(len(new), len(ref) - 1))
    result = detect_drift(ref, new, threshold=threshold, alpha=alpha, n_permutations=permutations)
    text = json.dumps({"reference": str(reference), "incoming": str(incoming), **result.to_dict()}, indent=2)
    console.print(text)
    if out:
        out.write_text(text + "\n")
    if result.alert:
        raise typer.Exit(1)
