"""``rlspoof data ...``: build the synthetic corpus, import real corpora, validate audio."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from rlspoof.cli.console import console, progress_bar
from rlspoof.data.corpora import list_corpora, prepare_corpus
from rlspoof.data.manifest import (
    Manifest,
    check_manifest_path,
    check_output_file,
    read_manifest,
    relocate,
    summarize,
    write_manifest,
)
from rlspoof.errors import RlspoofError

data_app = typer.Typer(help="Corpora and manifests: synthesise, prepare, validate, summarise.",
                       no_args_is_help=True)


def _print_summary(manifest: Manifest, title: str) -> None:
    table = Table(title=title, title_justify="left")
    for column, justify in [("split", "left"), ("attack", "left"), ("bonafide", "right"),
                            ("spoof", "right"), ("speakers", "right"), ("hours", "right")]:
        table.add_column(column, justify=justify, overflow="fold")
    rows = summarize(manifest)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    hours = [r["hours"] for r in rows]
    table.add_section()
    table.add_row("total", "", str(sum(r["bonafide"] for r in rows)), str(sum(r["spoof"] for r in rows)),
                  str(len({r.speaker for r in manifest})),
                  "" if None in hours else f"{sum(hours):.3f}")
    console.print(table)


def _parse_options(options: list[str]) -> dict[str, str]:
    parsed = {}
    for item in options:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise RlspoofError(f"--option expects key=value, got {item!r}")
        parsed[key.strip()] = value.strip()
    return parsed


@data_app.command()
def synth(
    out: Path = typer.Option(Path("data/mini"), "--out", help="Folder to write the corpus into."),
    size: str = typer.Option("small", help="tiny (tests, seconds), small (demo, < 2 min), medium (benchmarks)."),
    seed: int = typer.Option(1234, help="Generation seed: same seed, same corpus, bit for bit."),
    jobs: int = typer.Option(0, help="Worker processes (0 = all CPU cores)."),
) -> None:
    """Build the built-in SYNTHETIC benchmark corpus (audio + manifests + corpus.json)."""
    from rlspoof.data.synth.corpus import SIZES, build_corpus, split_specs

    if size not in SIZES:
        raise RlspoofError(f"unknown --size {size!r}; choose one of: {', '.join(SIZES)}")
    if jobs < 0:
        raise RlspoofError(f"--jobs must be >= 0 (0 = all CPU cores), got {jobs}")
    if seed < 0:
        raise RlspoofError(f"--seed must be >= 0, got {seed}")
    _check_synth_out(out, {"audio", "manifest.csv", "corpus.json",
                           *(f"{split.name}.csv" for split in split_specs(SIZES[size]))})
    with progress_bar(f"synthesising {size} corpus") as update:
        manifest = build_corpus(out, size=size, seed=seed, n_jobs=jobs or None, progress=update)
    _print_summary(manifest, f"SYNTHETIC corpus '{size}' (seed {seed}) in {out}")
    console.print(f"manifest: {out / 'manifest.csv'}  (per split: {out}/<split>.csv; card: {out / 'corpus.json'})")


@data_app.command()
def prepare(
    corpus: str = typer.Argument(..., help=f"Corpus layout: {', '.join(list_corpora())}."),
    root: Path = typer.Argument(..., help="Corpus folder (for antideepfake: the protocol CSV)."),
    out: Path = typer.Option(..., "--out", help="Manifest to write (.csv, .tsv or .jsonl)."),
    check_audio: str = typer.Option("exists", help="none | exists | read (open each header)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Leave out rows with missing/unreadable audio and list them."),
    option: list[str] = typer.Option([], "--option", "-o", help="Adapter option key=value (e.g. protocol=..., bonafide_root=...)."),
) -> None:
    """Turn a real corpus on disk into a manifest and print its per-split, per-attack counts."""
    _check_out(out, root, "corpus root")
    check_output_file(_skipped_path(out))  # written beside it when rows are skipped
    result = prepare_corpus(corpus, root, check_audio=check_audio, skip_bad=skip_bad,
                            **_parse_options(option))
    manifest = relocate(result.manifest, out.parent)
    write_manifest(manifest, out)
    _print_summary(manifest, f"{corpus}: {len(manifest)} utterances -> {out}")
    if result.skipped:
        skipped_path = _skipped_path(out)
        _write_rows(skipped_path, ["item", "reason"], result.skipped)
        console.print(f"[yellow]skipped {len(result.skipped)} item(s); listed in {skipped_path}[/]")


@data_app.command()
def validate(
    manifest_path: Path = typer.Argument(..., metavar="MANIFEST"),
    sample_rate: int = typer.Option(16000, help="Rate the audio will be used at."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Report bad files instead of stopping at the first."),
    out: Path = typer.Option(None, "--out", help="With --skip-bad: write the manifest of good rows here."),
) -> None:
    """Open every file of a manifest; stop at the first bad one, or list them all with --skip-bad."""
    from rlspoof.data.audio import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
    from rlspoof.data.dataset import validate_manifest, write_skipped

    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise RlspoofError(f"--sample-rate must be {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz, "
                           f"got {sample_rate}")
    if out is not None:
        _check_out(out, manifest_path, "MANIFEST")
    if skip_bad:
        check_output_file(_skipped_path(manifest_path))
    manifest = read_manifest(manifest_path)
    with progress_bar("validating audio") as update:
        good, skipped = validate_manifest(manifest, sample_rate, skip_bad=skip_bad, progress=update)
    console.print(f"{len(good)} of {len(manifest)} files usable")
    if skipped:
        report = _skipped_path(manifest_path)
        write_skipped(skipped, report)
        console.print(f"[yellow]{len(skipped)} bad file(s) listed in {report}[/]")
    if out is not None and not good:
        raise RlspoofError(f"{manifest_path}: no usable rows, so --out {out} was not written")
    if out is not None:
        write_manifest(relocate(good, out.parent), out)
        console.print(f"good rows written to {out}")


@data_app.command()
def summary(
    manifest_path: Path = typer.Argument(..., metavar="MANIFEST"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Per-split, per-attack counts of a manifest."""
    manifest = read_manifest(manifest_path)
    if as_json:
        # allow_nan=False: the reader rejects NaN durations, so a NaN here is a bug to show
        print(json.dumps(summarize(manifest), indent=2, allow_nan=False))
    else:
        _print_summary(manifest, str(manifest_path))


def _check_out(out: Path, source: Path, what: str) -> None:
    """Check ``--out`` before the work: a manifest ``data summary`` can read back, not a
    folder, and not the input it is made from (that would be replaced by its own result)."""
    check_manifest_path(out, output=True)
    if out.exists() and out.resolve() == source.resolve():
        raise RlspoofError(f"--out {out} is the {what} itself; write the result elsewhere")


def _skipped_path(manifest: Path) -> Path:
    return manifest.with_name(manifest.stem + ".skipped.csv")


def _check_synth_out(out: Path, ours: set[str]) -> None:
    """``--out`` may hold only what synth writes (``ours``): rebuilding a corpus, or finishing
    a killed run, rewrites the same bytes, but anything else would be mixed with the corpus
    or overwritten by it."""
    if out.exists() and not out.is_dir():
        raise RlspoofError(f"--out {out} is a file, not a folder")
    foreign = sorted(p.name for p in out.iterdir()
                     if p.name.removesuffix(".tmp") not in ours) if out.is_dir() else []
    if foreign:
        raise RlspoofError(f"--out {out} holds files that are not part of a synthetic corpus "
                           f"({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}); "
                           "choose a new or empty folder")


def _write_rows(path: Path, header: list[str], rows) -> None:
    import csv

    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
