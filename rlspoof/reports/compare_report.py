"""The report folder of ``rlspoof compare``: ``report.md`` (tables) and the PNG figures.

Only formatting lives here: every number comes from ``results.json`` (``rlspoof.evaluation.compare``)
and every figure from ``rlspoof.reports.plots`` and ``rlspoof.reports.comparison_plots``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rlspoof.provenance import run_facts
from rlspoof.reports import comparison_plots, plots


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _mean_ci(entry: dict) -> str:
    text = _pct(entry["mean"])
    if entry.get("low") is not None:
        text += f" [{_pct(entry['low'])}, {_pct(entry['high'])}]"
    return text


def figures(cfg, results: dict, scores: dict, out: Path) -> list[Path]:
    """DET curves per set, score histograms, training curves, EER heatmap, forgetting bars."""
    made = []
    first_seed = {m: min(by_seed) for m, by_seed in scores.items() if by_seed}
    if not first_seed:
        return made
    for set_name in cfg.suite:
        curves = {m: (scores[m][s][set_name].scores, scores[m][s][set_name].labels)
                  for m, s in first_seed.items()}
        made.append(plots.det_curves(curves, out / f"det_{set_name}.png",
                                     title=f"DET, {set_name} (seed {min(first_seed.values())})"))
    ood = [n for n, role in cfg.roles.items() if role == "ood"] or list(cfg.suite)
    made.append(plots.score_histograms(
        {m: (scores[m][s][ood[0]].scores, scores[m][s][ood[0]].labels) for m, s in first_seed.items()},
        out / f"scores_{ood[0]}.png", title=f"Score distributions, {ood[0]}"))
    histories = {}
    for name, run in results["runs"].items():
        state = Path(run["folder"]) / "trainer_state.json"
        if run["status"] == "ok" and state.is_file():
            histories[name] = json.loads(state.read_text())["log_history"]
    if histories:
        made.append(comparison_plots.training_curves(histories, out / "training_curves.png"))
    per_method = {m: v for m, v in results["per_method"].items() if v}
    matrix = np.array([[100 * per_method[m][n]["eer"]["mean"] for n in cfg.suite] for m in per_method])
    made.append(comparison_plots.metric_heatmap(matrix, list(per_method), list(cfg.suite), out / "eer_heatmap.png",
                                     title="EER % (mean over seeds)"))
    if results["forgetting"]:
        made.append(comparison_plots.forgetting_bars(results["forgetting"], out / "forgetting.png"))
    return made


def write_report(cfg, results: dict, scores: dict, out: Path) -> Path:
    """``report.md`` (and its HTML) in ``out``: one section per kind of result, then figures."""
    out = Path(out)
    made = figures(cfg, results, scores, out)
    lines = _runs_section(cfg, results) + _eer_section(cfg, results)
    if results["paired"]:
        lines += _paired_section(cfg, results["paired"])
    if results["forgetting"]:
        lines += _forgetting_section(results["forgetting"])
    if results.get("cost"):
        lines += _cost_section(cfg, results["cost"])
    lines += ["", "## Figures", ""] + [f"![{p.stem}]({p.name})" for p in made]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    write_html(path)
    return path


def _runs_section(cfg, results: dict) -> list[str]:
    facts = run_facts()
    corpus = "SYNTHETIC corpus (rlspoof data synth)" if results["synthetic"] else "evaluation corpora"
    lines = [
        f"# Method comparison on the {corpus}",
        "",
        f"{facts['date']}, commit {facts['git_commit']}, {facts['machine']}. Start: "
        f"`{cfg.start or 'each recipe'}`; seeds {cfg.seeds}; overrides {cfg.overrides or 'none'}.",
        "",
        "## Runs",
        "",
        "| run | status |",
        "|---|---|",
    ]
    return lines + [f"| {name} | {run['status']}{': ' + run['error'] if run['error'] else ''} |"
                    for name, run in results["runs"].items()]


def _eer_section(cfg, results: dict) -> list[str]:
    sets, roles = list(cfg.suite), cfg.roles
    lines = ["", "## EER % by set (mean over seeds [95% t-interval])", "",
             "| method | " + " | ".join(f"{n} ({roles[n]})" for n in sets) + " |",
             "|---|" + "---|" * len(sets)]
    for method, by_set in results["per_method"].items():
        if by_set:
            lines.append(f"| {method} | " + " | ".join(_mean_ci(by_set[n]["eer"]) for n in sets) + " |")
    if results["baseline"]:
        lines.append("| *baseline (before)* | "
                     + " | ".join(_pct(results["baseline"][n]["eer"]) for n in sets) + " |")
    return lines


def _paired_section(cfg, paired: dict) -> list[str]:
    lines = ["", f"## Paired differences against {cfg.reference} (EER pp; negative = better)", "",
             "Per seed: paired bootstrap over the same trials; across seeds: mean [t-interval].", "",
             "| comparison | set | mean diff | per seed: diff [95% CI] (p) |", "|---|---|---|---|"]
    for comparison, by_set in paired.items():
        for set_name, entry in by_set.items():
            seeds = "; ".join(f"{s}: {_pct(p['diff'])} [{_pct(p['low'])}, {_pct(p['high'])}] "
                              f"(p={p['p_value']:.3f})" for s, p in entry["per_seed"].items())
            lines.append(f"| {comparison} | {set_name} | {_mean_ci(entry['eer_diff'])} | {seeds} |")
    return lines


def _forgetting_section(forgetting: dict) -> list[str]:
    lines = ["", "## Forgetting against the baseline (EER pp; + = worse)", "",
             "| method | target gain | old: mean change | old: average forgetting | ood: mean change |",
             "|---|---|---|---|---|"]
    for method, report in forgetting.items():
        s = report["summary"]["eer"]
        lines.append(f"| {method} | {_pct(s['target_gain'])} | {_pct(s['old_mean_change'])} | "
                     f"{_pct(s['average_forgetting'])} | {_pct(s['ood_mean_change'])} |")
    return lines


def _cost_section(cfg, costs: dict) -> list[str]:
    reference_time = (costs.get(cfg.reference) or {}).get("train_runtime_s")
    lines = ["", "## Cost", "",
             "Wall time of `Trainer.train` on this machine (mean over seeds); x = ratio to "
             f"{cfg.reference}.", "",
             "| method | trainable parameters | of total | train time s | x |", "|---|---|---|---|---|"]
    for method, cost in costs.items():
        time, trainable, total = cost["train_runtime_s"], cost.get("trainable"), cost.get("total")
        lines.append(" | ".join([
            f"| {method}",
            "–" if trainable is None else f"{trainable:,}",
            f"{trainable / total:.1%}" if trainable is not None and total else "–",
            "–" if time is None else f"{time['mean']:.0f}",
            f"{time['mean'] / reference_time['mean']:.2f} |" if time and reference_time else "– |",
        ]))
    return lines


_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title><style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
img {{ max-width: 100%; display: block; margin: 1em 0; }}
</style></head><body>
{body}
</body></html>
"""


def write_html(markdown_path: Path) -> Path:
    """``report.html`` beside ``report.md``: the same text, tables and figures, for a browser."""
    import markdown

    text = markdown_path.read_text()
    title = text.splitlines()[0].lstrip("# ")
    html = _HTML.format(title=title, body=markdown.markdown(text, extensions=["tables"]))
    path = markdown_path.with_suffix(".html")
    path.write_text(html)
    return path
