"""``rlspoof eval`` (metrics on labelled sets) and ``rlspoof detect`` (scores for any audio)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import typer
from rich.table import Table

from rlspoof.cli.console import console, progress_bar
from rlspoof.errors import RlspoofError

TRUST_REMOTE_CODE_HELP = ("Allow the policy folder's encoder to run Python code it ships "
                          "(transformers trust_remote_code). Off: a downloaded folder runs nothing.")


def named_paths(items: list[str], option: str, default_name) -> dict[str, Path]:
    """``NAME=PATH`` items, or bare paths named by ``default_name(path)``; names must be unique
    plain file names, since each names a file or folder under ``--out``."""
    from rlspoof.evaluation import check_name

    named = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            name, path = default_name(Path(item)), item
        check_name(name, option)
        if name in named:
            raise RlspoofError(f"{option} name {name!r} given twice; name them: {option} NAME=PATH")
        named[name] = Path(path)
    return named


def check_out_file(out: Path, inputs: list[Path], overwrite: bool) -> None:
    """Refuse an ``--out`` that would destroy something, before any work: one of the inputs
    (``detect x.wav --out x.wav`` replaced the audio with CSV), even with ``--overwrite``; a
    folder or special file; any other existing file unless ``overwrite``. Creates its folder."""
    if out.exists():
        if not out.is_file():
            raise RlspoofError(f"--out {out} is a folder or special file; give a file name")
        if any(p.exists() and out.samefile(p) for p in inputs):
            raise RlspoofError(f"--out {out} is one of the inputs; write the results elsewhere")
        if not overwrite:
            raise RlspoofError(f"--out {out} exists; pass --overwrite to replace it")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RlspoofError(f"--out {out}: cannot create its folder ({exc.strerror})") from None



def check_out_folder(out: Path, overwrite: bool) -> None:
    """Refuse an ``--out`` folder that holds something (or is a file) unless ``overwrite``: an
    export or a conversion writes into it and would mix with, or replace, what is there."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not overwrite)):
        raise RlspoofError(f"--out {out} exists and is not an empty folder; pass --overwrite to write into it")


def evaluate(
    models: list[str] = typer.Option(..., "--model", help="Policy folder, or NAME=FOLDER (repeatable: "
                                                         "several models give a side-by-side table)."),
    sets: list[str] = typer.Option(..., "--set", help="NAME=MANIFEST (repeatable); a bare path uses its file name."),
    out: Path = typer.Option(None, "--out", help="Results folder (default: MODEL/eval; OUT/NAME for several)."),
    batch_size: int = typer.Option(16, help="Utterances per forward pass."),
    max_seconds: float = typer.Option(None, help="Score only the first N seconds of each clip."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip unreadable audio and report it."),
    per_attack: bool = typer.Option(True, help="Print the per-attack table too."),
    group_by: list[str] = typer.Option([], "--group-by", help="Also break the metrics down by this "
                                       "manifest column, e.g. channel, source, speaker (repeatable)."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help=TRUST_REMOTE_CODE_HELP),
) -> None:
    """Score labelled sets: ASVspoof score files, metrics.json, and an EER/minDCF/Cllr table."""
    from rlspoof.data.manifest import read_manifest
    from rlspoof.data.synth.corpus import is_synthetic
    from rlspoof.evaluation import evaluate_sets
    from rlspoof.evaluation.calibration import ScoreCalibration
    from rlspoof.models import SpoofPolicy

    folders = named_paths(models, "--model", lambda p: p.resolve().name)  # "." names its folder
    named_sets = named_paths(sets, "--set", lambda p: p.stem)
    manifests = {name: read_manifest(path) for name, path in named_sets.items()}
    kind = "SYNTHETIC corpus" if is_synthetic(manifests.values()) else "evaluation"
    all_results = {}
    for name, folder in folders.items():
        policy = SpoofPolicy.from_pretrained(folder, trust_remote_code=trust_remote_code)
        target = (out / name if len(folders) > 1 else out) if out else folder / "eval"
        results = evaluate_sets(policy, manifests, target, batch_size, max_seconds, skip_bad, progress_bar,
                                group_by, ScoreCalibration.load(folder))
        all_results[name] = results
        if len(folders) == 1:
            console.print(_metrics_table(f"{folder} ({kind})", results, per_attack))
        console.print(f"scores: {target / 'scores'}/<set>.tsv   metrics: {target / 'metrics.json'}")
    if len(folders) > 1:
        console.print(_side_by_side(f"EER % (95% CI) by set, {kind}", all_results))


def _metrics_table(title: str, results: dict, per_attack: bool) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("set", "group", "EER %", "95% CI", "minDCF", "actDCF", "Cllr", "n bona/spoof"):
        table.add_column(column, justify="left" if column in ("set", "group") else "right")
    for name, result in results.items():
        p = result["pooled"]
        table.add_row(name, "pooled", f"{100 * p['eer']:.2f}",
                      f"{100 * p['eer_ci95'][0]:.1f}-{100 * p['eer_ci95'][1]:.1f}",
                      f"{p['min_dcf']:.3f}", f"{p['act_dcf']:.3f}", f"{p['cllr']:.3f}",
                      f"{p['n_bonafide']}/{p['n_spoof']}")
        rows = dict(result["per_attack"]) if per_attack else {}
        for column, table_of_groups in result["per_group"].items():
            rows.update({f"{column}={group}": m for group, m in table_of_groups.items()})
        for group, m in rows.items():
            table.add_row("", group, f"{100 * m['eer']:.2f}", "", f"{m['min_dcf']:.3f}",
                          f"{m['act_dcf']:.3f}", f"{m['cllr']:.3f}", f"{m['n_bonafide']}/{m['n_spoof']}")
        if "calibrated" in result:
            c = result["calibrated"]
            table.add_row("", "calibrated", f"{100 * c['eer']:.2f}", "", f"{c['min_dcf']:.3f}",
                          f"{c['act_dcf']:.3f}", f"{c['cllr']:.3f}", f"{c['n_bonafide']}/{c['n_spoof']}")
        table.add_section()
        for utt_id_reason in result["skipped"]:
            console.print(f"[yellow]skipped {utt_id_reason['utt_id']}: {utt_id_reason['reason']}[/]")
    return table


def _side_by_side(title: str, all_results: dict[str, dict]) -> Table:
    """One row per set, one column per model: the comparison the toolkit exists for."""
    table = Table(title=title, title_justify="left")
    table.add_column("set")
    for model in all_results:
        table.add_column(model, justify="right")
    set_names = list(next(iter(all_results.values())))
    for set_name in set_names:
        cells = []
        for results in all_results.values():
            p = results[set_name]["pooled"]
            cells.append(f"{100 * p['eer']:.1f} ({100 * p['eer_ci95'][0]:.0f}-{100 * p['eer_ci95'][1]:.0f})")
        table.add_row(set_name, *cells)
    return table


def _write_detect_csv(handle, rows: list[dict], calibrated: bool) -> None:
    from rlspoof.evaluation import DETECT_CALIBRATED_CSV_HEADER, DETECT_CSV_HEADER

    writer = csv.writer(handle)
    writer.writerow(DETECT_CALIBRATED_CSV_HEADER if calibrated else DETECT_CSV_HEADER)
    for r in rows:
        middle = ([f"{r['llr']:.6f}", f"{r['p_spoof']:.6f}", r["decision"]] if calibrated
                  else [r["decision"], f"{r['p_bonafide']:.6f}"])
        writer.writerow([r["path"], f"{r['score']:.6f}", *middle, len(r["window_scores"])])


def detect(
    inputs: list[Path] = typer.Argument(..., help="Audio files, folders, or .txt lists of paths."),
    model: Path = typer.Option(..., "--model", help="Policy folder, or a graph `rlspoof export --format "
                                                    "onnx` wrote (DIR or DIR/model.onnx, run with onnxruntime)."),
    output_format: str = typer.Option("csv", "--format", help="csv | json"),
    out: Path = typer.Option(None, "--out", help="Write here instead of stdout (never over an input)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
    window: float = typer.Option(4.0, help="Window length (s) for long recordings."),
    hop: float = typer.Option(2.0, help="Window hop (s): at least 0.01 (one encoder frame), at most --window."),
    threshold: float = typer.Option(None, help="Decision threshold on the raw log-odds score (default 0; "
                                               "not with a calibrated policy)."),
    prior: float = typer.Option(0.05, help="P(spoof) of the application, for a calibrated policy's "
                                           "P(spoof) and Bayes decision (0.05: ASVspoof 5)."),
    c_miss: float = typer.Option(1.0, help="Cost of rejecting bonafide speech (calibrated policy)."),
    c_fa: float = typer.Option(10.0, help="Cost of accepting a spoof (calibrated policy)."),
    no_calibration: bool = typer.Option(False, "--no-calibration",
                                        help="Ignore the policy's calibration.json."),
    batch_size: int = typer.Option(16, help="Windows per forward pass."),
    strict: bool = typer.Option(False, "--strict", help="Stop at the first bad file."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help=TRUST_REMOTE_CODE_HELP),
) -> None:
    """Score audio files: score (log-odds, higher = bonafide), decision, P(bonafide) per file.

    A policy calibrated by `rlspoof calibrate` reports instead its LLR and P(spoof) at --prior,
    and decides at the Bayes threshold for --prior, --c-miss and --c-fa. An exported ONNX graph
    (--model DIR/model.onnx) scores the same; DIR/calibration.json calibrates it.

    Bad files (unreadable, not a regular file, a non-finite score) are skipped and listed on
    stderr (and under "errors" in JSON). Exit code 0 when at least one file was scored, 1 when
    every input failed, 2 for a usage error (bad option, list file or --out).
    """
    from rlspoof.evaluation import collect_audio_paths, detect_files
    from rlspoof.evaluation.calibration import ScoreCalibration, calibrated_decisions
    from rlspoof.metrics.dcf import DCFParams
    from rlspoof.models import SpoofPolicy
    from rlspoof.models.onnx_export import OnnxDetector, onnx_graph

    if output_format not in ("csv", "json"):
        raise RlspoofError(f"--format must be csv or json, got {output_format!r}")
    graph = onnx_graph(model)  # a graph's calibration.json lies beside it, as a policy's does
    calibration = None if no_calibration else ScoreCalibration.load(model if graph is None else graph.parent)
    if calibration is not None and threshold is not None:
        raise RlspoofError(f"{model} is calibrated: it decides at the Bayes threshold of --prior and the "
                           "costs; pass --no-calibration to decide on the raw score at --threshold")
    try:
        params = DCFParams(p_spoof=prior, c_miss=c_miss, c_fa=c_fa)
    except ValueError as exc:
        raise RlspoofError(f"--prior/--c-miss/--c-fa: {exc}") from None
    paths = collect_audio_paths(inputs)
    if not paths:
        raise RlspoofError(f"no audio files in {', '.join(map(str, inputs))}")
    if out is not None:
        check_out_file(out, [*inputs, *paths], overwrite)
    policy = (OnnxDetector(graph) if graph is not None
              else SpoofPolicy.from_pretrained(model, trust_remote_code=trust_remote_code))
    raw_threshold = 0.0 if threshold is None else threshold
    rows, errors = detect_files(policy, paths, window, hop, raw_threshold, strict, batch_size)
    rule = {"calibrated": False, "threshold": raw_threshold}
    if calibration is not None:
        calibrated_decisions(rows, calibration, params)
        rule = {"calibrated": True, "prior_p_spoof": prior, "c_miss": c_miss, "c_fa": c_fa,
                "bayes_threshold_llr": params.bayes_threshold}
    handle = out.open("w", newline="") if out else sys.stdout
    try:
        if output_format == "json":
            json.dump({"decision_rule": rule, "results": rows, "errors": errors}, handle, indent=2)
            handle.write("\n")
        else:
            _write_detect_csv(handle, rows, calibrated=calibration is not None)
    finally:
        if out:
            handle.close()
    for error in errors:
        print(f"bad file {error['path']}: {error['error']}", file=sys.stderr)
    if not rows:
        print(f"no file could be scored ({len(errors)} bad)", file=sys.stderr)
        raise typer.Exit(1)
