"""``rlspoof compare RECIPE``: methods x seeds from one checkpoint -> a report folder."""

from __future__ import annotations

from pathlib import Path

import typer

from rlspoof.cli.console import console


def compare(
    recipe: Path = typer.Argument(..., help="Compare recipe (see recipes/mini/compare.yaml)."),
    set_: list[str] = typer.Option([], "--set", help="Override applied to every run: --set max_steps=100."),
    seeds: str = typer.Option(None, help="Comma-separated seeds, replacing the recipe's."),
) -> None:
    """Train every method x seed not yet done, evaluate all on the suite, write the report."""
    from rlspoof.compare import CompareConfig
    from rlspoof.compare import compare as run_compare

    cfg = CompareConfig.from_yaml(recipe)
    cfg.overrides = [*cfg.overrides, *set_]
    if seeds:
        cfg.seeds = [int(s) for s in seeds.split(",")]
    results = run_compare(cfg, log=console.print)
    failed = [name for name, run in results["runs"].items() if run["status"] != "ok"]
    out = Path(cfg.output_dir)
    console.print((out / "report.md").read_text())
    console.print(f"report: {out / 'report.md'}   numbers: {out / 'results.json'}")
    if failed:
        console.print(f"[bold red]{len(failed)} run(s) failed:[/] {', '.join(failed)} (see FAILED.txt in each)")
        raise typer.Exit(1)
