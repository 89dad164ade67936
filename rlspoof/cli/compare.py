"""``rlspoof compare RECIPE``: methods x seeds from one checkpoint -> a report folder."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer
from rich.table import Table

from rlspoof.cli.console import console, progress_bar
from rlspoof.errors import RlspoofError


def headline_table(cfg, results: dict) -> Table:
    """EER % per method and set (mean over seeds), the baseline's row, and forgetting's summary."""
    corpus = "SYNTHETIC corpus" if results["synthetic"] else "evaluation sets"
    roles = "; ".join(f"{role}: {', '.join(n for n, r in cfg.roles.items() if r == role)}"
                      for role in dict.fromkeys(cfg.roles.values()))
    table = Table(title=f"EER % ({corpus}; mean over seeds {cfg.seeds}). {roles}",
                  title_justify="left")
    table.add_column("method", no_wrap=True)
    for name in cfg.suite:
        table.add_column(name.replace("_", " "), justify="right", overflow="fold")
    forgetting = results.get("forgetting") or {}
    if forgetting:
        table.add_column("target gain pp", justify="right", overflow="fold")
        table.add_column("old forget pp", justify="right", overflow="fold")
    for method, by_set in results["per_method"].items():
        if not by_set:
            continue
        row = [method] + [f"{100 * by_set[n]['eer']['mean']:.1f}" for n in cfg.suite]
        if forgetting:
            summary = forgetting[method]["summary"]["eer"]
            row += [_pp(summary["target_gain"]), _pp(summary["average_forgetting"])]
        table.add_row(*row)
    if results.get("baseline"):
        table.add_row("[dim]before[/]",
                      *[f"[dim]{100 * results['baseline'][n]['eer']:.1f}[/]" for n in cfg.suite],
                      *([""] * (2 if forgetting else 0)))
    return table


def _pp(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def compare(
    recipe: Path = typer.Argument(..., help="Compare recipe (see recipes/mini/compare.yaml)."),
    set_: list[str] = typer.Option([], "--set", help="Override applied to every run: --set max_steps=100."),
    seeds: str = typer.Option(None, help="Comma-separated seeds, replacing the recipe's."),
) -> None:
    """Train every method x seed not yet done, evaluate all on the suite, write the report."""
    from rlspoof.evaluation.compare import CompareConfig
    from rlspoof.evaluation.compare import compare as run_compare

    cfg = CompareConfig.from_yaml(recipe)
    changes: dict = {"overrides": [*cfg.overrides, *set_]}
    if seeds is not None:
        try:
            changes["seeds"] = [int(s) for s in seeds.split(",")]
        except ValueError:
            raise RlspoofError(f"--seeds expects comma-separated integers, got {seeds!r}") from None
    cfg = dataclasses.replace(cfg, **changes)  # re-runs the recipe's checks on the new values
    missing = [f"{name}: {path}" for name, path in cfg.methods.items() if not Path(path).is_file()]
    if missing:
        raise RlspoofError(f"compare recipe {recipe}: training recipe(s) not found: "
                           f"{'; '.join(missing)}")
    results = run_compare(cfg, log=console.print, progress_factory=progress_bar)
    failed = [name for name, run in results["runs"].items() if run["status"] != "ok"]
    out = Path(cfg.output_dir)
    console.print(headline_table(cfg, results))
    console.print(f"report: {out / 'report.md'}   numbers: {out / 'results.json'}   figures: {out}/*.png")
    if failed:
        console.print(f"[bold red]{len(failed)} run(s) failed:[/] {', '.join(failed)} (see FAILED.txt in each)")
        raise typer.Exit(1)
