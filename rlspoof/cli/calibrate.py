"""``rlspoof calibrate`` (a policy's scores -> LLRs) and ``rlspoof fuse`` (several systems' scores
-> one LLR); the regression is in :mod:`rlspoof.evaluation.calibration`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from rlspoof.cli.console import console, progress_bar
from rlspoof.cli.evaluate import TRUST_REMOTE_CODE_HELP, named_paths
from rlspoof.errors import RlspoofError

PRIOR_HELP = ("P(spoof) the regression is weighted for (default 0.345: the effective prior of the "
              "ASVspoof 5 costs, where actDCF is measured).")


def _metric_row(table: Table, label: str, m: dict) -> None:
    ci = f"{100 * m['eer_ci95'][0]:.1f}-{100 * m['eer_ci95'][1]:.1f}" if "eer_ci95" in m else ""
    table.add_row(label, f"{100 * m['eer']:.2f}", ci, f"{m['min_dcf']:.3f}", f"{m['act_dcf']:.3f}",
                  f"{m['cllr']:.3f}", f"{m['min_cllr']:.3f}")


def _metrics_table(title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("scores", "EER %", "95% CI", "minDCF", "actDCF", "Cllr", "minCllr"):
        table.add_column(column, justify="left" if column == "scores" else "right")
    return table


def calibrate(
    model: Path = typer.Argument(..., help="Policy folder; calibration.json is written into it."),
    manifest: Path = typer.Option(..., "--set", help="Labelled manifest to fit on (a dev set, not "
                                                     "the set you will report)."),
    prior: float = typer.Option(None, help=PRIOR_HELP),
    batch_size: int = typer.Option(16, help="Utterances per forward pass."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip unreadable audio and report it."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help=TRUST_REMOTE_CODE_HELP),
) -> None:
    """Fit a logistic-regression calibration of the policy's scores to log-likelihood ratios.

    Afterwards `rlspoof detect` reports P(spoof) at a stated prior and decides at the Bayes
    threshold, and `rlspoof eval` shows actDCF and Cllr before and after calibration.
    """
    from rlspoof.data.manifest import read_manifest
    from rlspoof.evaluation import score_manifest
    from rlspoof.evaluation.calibration import fit_calibration
    from rlspoof.metrics.report import score_metrics
    from rlspoof.models import SpoofPolicy

    rows = read_manifest(manifest)
    policy = SpoofPolicy.from_pretrained(model, trust_remote_code=trust_remote_code)
    with progress_bar(f"scoring {manifest.name}") as update:
        scored = score_manifest(policy, rows, manifest.stem, batch_size, None, skip_bad, update)
    for utt_id, reason in scored.skipped:
        console.print(f"[yellow]skipped {utt_id}: {reason}[/]")
    calibration = fit_calibration(scored.scores, scored.labels, prior,
                                  fitted_on={"manifest": str(manifest)})
    path = calibration.save(model)
    if calibration.weights[0] <= 0:
        console.print(f"[yellow]warning: the scores rank {manifest} backwards or not at all (weight "
                      f"{calibration.weights[0]:.4f}): the calibration flips them; is this the right "
                      "model and set?[/]")
    table = _metrics_table(f"{manifest} (the fitting set: in-sample)")
    _metric_row(table, "raw", score_metrics(scored.scores, scored.labels))
    _metric_row(table, "calibrated", score_metrics(calibration.llr(scored.scores), scored.labels))
    console.print(table)
    console.print(f"llr = {calibration.weights[0]:.4f} * score + {calibration.bias:.4f}  "
                  f"(fitted at P(spoof) = {calibration.fit_prior:.3f}) -> {path}\n"
                  "Measure it on held-out sets: rlspoof eval --model "
                  f"{model} --set NAME=MANIFEST")


def fuse(
    fit: list[str] = typer.Option(..., "--fit", help="NAME=SCORES.tsv: one system's `rlspoof eval` "
                                                    "score file of the fitting set (repeatable)."),
    apply: list[str] = typer.Option(..., "--apply", help="NAME=SCORES.tsv: the same systems' score "
                                                        "files of the set to fuse and evaluate."),
    out: Path = typer.Option(..., "--out", help="Folder for fusion.json, scores.tsv, metrics.json."),
    prior: float = typer.Option(None, help=PRIOR_HELP),
    n_boot: int = typer.Option(1000, help="Bootstrap resamples for the EER intervals."),
) -> None:
    """Fit a logistic-regression fusion of several systems on one set; evaluate it on another.

    Systems are matched by name between --fit and --apply and trials by utterance id; each
    system and the fusion are scored on the --apply set, with 95 % bootstrap CIs on EER.
    """
    from rlspoof.evaluation import ScoredSet, read_score_file, set_metrics, write_score_file
    from rlspoof.evaluation.calibration import fit_calibration, join_systems

    fit_files = named_paths(fit, "--fit", lambda p: p.parent.parent.name)
    apply_files = named_paths(apply, "--apply", lambda p: p.parent.parent.name)
    if list(fit_files) != list(apply_files):
        raise RlspoofError(f"--fit systems {list(fit_files)} and --apply systems {list(apply_files)} "
                           "must be the same names, in the same order")
    if len(fit_files) < 2:
        raise RlspoofError("fusion needs two systems or more (one system: use `rlspoof calibrate`)")
    if out.exists() and not out.is_dir():
        raise RlspoofError(f"--out {out} is a file; give a folder")
    fit_trials, fit_matrix = join_systems({n: read_score_file(p, n) for n, p in fit_files.items()})
    systems = {n: read_score_file(p, n) for n, p in apply_files.items()}
    trials, matrix = join_systems(systems)
    fusion = fit_calibration(fit_matrix, fit_trials.labels, prior, systems=list(fit_files),
                             fitted_on={name: str(path) for name, path in fit_files.items()})
    fused = ScoredSet("fused", list(trials.utt_ids), [float(x) for x in fusion.llr(matrix)],
                      list(trials.labels), list(trials.attacks))
    out.mkdir(parents=True, exist_ok=True)
    write_score_file(fused, out / "scores.tsv")
    (out / "fusion.json").write_text(json.dumps({
        "weights": dict(zip(fusion.systems, fusion.weights, strict=True)), "bias": fusion.bias,
        "fit_prior": fusion.fit_prior, "fitted_on": fusion.fitted_on}, indent=2) + "\n")
    results = {name: set_metrics(s, n_boot=n_boot) for name, s in {**systems, "fused": fused}.items()}
    (out / "metrics.json").write_text(json.dumps(results, indent=2) + "\n")
    table = _metrics_table(f"fusion of {', '.join(systems)} on the --apply set")
    for name, result in results.items():
        _metric_row(table, name, result["pooled"])
    console.print(table)
    console.print(f"weights {dict(zip(fusion.systems, (round(w, 4) for w in fusion.weights), strict=True))}, "
                  f"bias {fusion.bias:.4f} -> {out}/fusion.json, scores.tsv, metrics.json")
