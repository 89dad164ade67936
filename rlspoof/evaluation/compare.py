"""``rlspoof compare``: several methods x several seeds from one checkpoint, one report.

The comparison is fair by construction: every run starts from ``start`` with the same data,
step budget and overrides, and only its method recipe differs. The flow reads top to bottom:

    compare recipe -> train each (method, seed) unless already done -> score every run on the
    evaluation suite -> per-set metrics -> mean and CI over seeds, paired differences against
    the reference method, forgetting against the baseline -> results.json + report.md + figures

A run that fails is recorded with its error and the others go on; a rerun reuses every run
and every score file that is already complete (delete a run's folder to redo it).
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
from scipy import stats

from rlspoof.data.manifest import Manifest, read_manifest
from rlspoof.data.synth.corpus import is_synthetic
from rlspoof.errors import ConfigError
from rlspoof.evaluation import (
    ScoredSet,
    is_plain_name,
    read_score_file,
    score_manifest,
    set_metrics,
    write_score_file,
)
from rlspoof.metrics.forgetting import ROLES, forgetting_report
from rlspoof.metrics.report import mean_ci, paired_bootstrap_diff
from rlspoof.models import SpoofPolicy
from rlspoof.models.checkpoint import WEIGHTS_NAME
from rlspoof.recipe import check_keys, parse_overrides, read_recipe

REPORTED = ("eer", "min_dcf", "cllr")


@dataclass
class CompareConfig:
    """The keys of a compare recipe (``recipes/mini/compare.yaml``)."""

    output_dir: str
    methods: dict[str, str]  # name -> training recipe
    suite: dict[str, dict]  # set name -> {manifest: path, role: target | old | ood}
    seeds: list[int] = field(default_factory=lambda: [1234])
    start: str | None = None  # model_name_or_path given to every run (None: each recipe's own)
    baseline: str | None = None  # a policy folder scored as "before" (forgetting)
    reference: str | None = None  # the method others are compared with (default: sft, else the first)
    overrides: list[str] = field(default_factory=list)  # applied to every run, e.g. max_steps=100
    n_boot: int = 1000

    def __post_init__(self) -> None:
        if not isinstance(self.output_dir, str) or not self.output_dir.strip():
            raise ConfigError("compare: output_dir must be a folder path")
        for key in ("start", "baseline", "reference"):
            if not isinstance(getattr(self, key), str | None):
                raise ConfigError(f"compare: {key} must be a string, got {getattr(self, key)!r}")
        if not self.methods or not isinstance(self.methods, dict):
            raise ConfigError("compare: methods must be a non-empty mapping of name: recipe")
        for name, recipe in self.methods.items():
            _plain_name("method", name)
            if not isinstance(recipe, str):
                raise ConfigError(f"compare: method {name!r} needs a recipe path, got {recipe!r}")
        if not isinstance(self.suite, dict):
            raise ConfigError("compare: suite must be a mapping of set name: {manifest, role}")
        for name, spec in self.suite.items():
            _plain_name("suite set", name)
            if not isinstance(spec, dict) or not isinstance(spec.get("manifest"), str):
                raise ConfigError(f"compare: suite set {name!r} needs {{manifest: PATH, role: ...}}")
            spec.setdefault("role", "target")
            if spec["role"] not in ROLES:
                raise ConfigError(f"compare: suite set {name!r} role must be one of {ROLES}")
        self.reference = self.reference or ("sft" if "sft" in self.methods else next(iter(self.methods)))
        if self.reference not in self.methods:
            raise ConfigError(f"compare: reference {self.reference!r} is not among the methods")
        if (not isinstance(self.seeds, list) or not self.seeds
                or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                           for s in self.seeds)
                or len(set(self.seeds)) != len(self.seeds)):
            raise ConfigError("compare: seeds must be a non-empty list of distinct integers >= 0, "
                              f"got {self.seeds!r}")
        if isinstance(self.n_boot, bool) or not isinstance(self.n_boot, int) or self.n_boot < 1:
            raise ConfigError(f"compare: n_boot must be an integer >= 1, got {self.n_boot!r}")
        if not isinstance(self.overrides, list) or not all(isinstance(o, str) for o in self.overrides):
            raise ConfigError("compare: overrides must be a list of key=value strings")
        parse_overrides(self.overrides)  # a malformed one fails now, not in every run
        if not self.suite:
            raise ConfigError("compare: suite is empty; name at least one evaluation set")

    @property
    def roles(self) -> dict[str, str]:
        return {name: spec["role"] for name, spec in self.suite.items()}

    @classmethod
    def from_yaml(cls, path: str | Path) -> CompareConfig:
        path = Path(path)
        data = read_recipe(path)  # a missing file, a folder, bad YAML or a non-mapping: one line
        check_keys(data, [cls], f"compare recipe {path}")
        missing = [key for key in ("output_dir", "methods", "suite") if key not in data]
        if missing:
            raise ConfigError(f"compare recipe {path}: missing {', '.join(missing)}")
        try:
            return cls(**data)
        except ConfigError as exc:  # name the file: "compare: ..." -> "compare recipe PATH: ..."
            raise ConfigError(f"compare recipe {path}: {str(exc).removeprefix('compare: ')}") from None


def _plain_name(kind: str, name: object) -> None:
    """Method and set names become paths (``runs/NAME/``, ``scores/NAME.tsv``,
    ``det_NAME.png``): only a plain file name keeps every write inside ``output_dir``."""
    if not is_plain_name(name) or name != name.strip():
        raise ConfigError(f"compare: {kind} name {name!r} must be a plain file name "
                          "(no path separators, not . or ..)")


def run_dir(cfg: CompareConfig, method: str, seed: int) -> Path:
    return Path(cfg.output_dir) / "runs" / method / f"seed{seed}"


def is_finished(folder: Path) -> bool:
    return (folder / WEIGHTS_NAME).is_file() and (folder / "trainer_state.json").is_file()


def newer_than(path: Path, *sources: Path | str | None) -> bool:
    """Whether ``path`` was written after every existing file among ``sources``: a run trained
    from an older start checkpoint, or a score file made from an older manifest, is stale."""
    written = path.stat().st_mtime
    return all(written >= Path(s).stat().st_mtime for s in sources if s and Path(s).is_file())


def train_runs(cfg: CompareConfig, train_fn, log=print) -> dict[tuple[str, int], str | None]:
    """Train every (method, seed) not finished yet; returns the error text of each failure."""
    errors: dict[tuple[str, int], str | None] = {}
    start_weights = Path(cfg.start) / WEIGHTS_NAME if cfg.start else None
    for method, recipe in cfg.methods.items():
        for seed in cfg.seeds:
            folder = run_dir(cfg, method, seed)
            if is_finished(folder):
                if newer_than(folder / WEIGHTS_NAME, start_weights):
                    log(f"reusing {folder}")
                    errors[(method, seed)] = None
                    continue
                log(f"{folder} was trained from an older {cfg.start}: training it again")
            # auto: a run killed after a checkpoint continues from it (with save_strategy=no it
            # starts afresh); the folder is compare's own, so an unfinished one may be replaced
            overrides = [*cfg.overrides, f"seed={seed}", f"output_dir={folder}",
                         "resume_from_checkpoint=auto", "overwrite_output_dir=true"]
            if cfg.start:
                overrides.append(f"model_name_or_path={cfg.start}")
            log(f"training {method} seed {seed} -> {folder}")
            (folder / "FAILED.txt").unlink(missing_ok=True)  # from an earlier attempt
            try:
                train_fn(recipe, overrides)
                errors[(method, seed)] = None
            except Exception as exc:  # noqa: BLE001 - a failed run is reported, not fatal
                text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "FAILED.txt").write_text(traceback.format_exc())
                log(f"FAILED {method} seed {seed}: {text}")
                errors[(method, seed)] = text
    return errors


def score_suite(policy_dir: Path, suite: dict[str, Manifest], out: Path,
                progress_factory=None, label: str = "") -> dict[str, ScoredSet]:
    """Score files per suite set, reusing one only if it is newer than the policy's weights and
    the set's manifest and holds exactly the manifest's utterances (a rebuilt corpus or a
    retrained run is scored again)."""
    scored, policy = {}, None
    for name, manifest in suite.items():
        path = out / "scores" / f"{name}.tsv"
        if path.is_file() and newer_than(path, policy_dir / WEIGHTS_NAME, manifest.origin):
            previous = read_score_file(path, name)
            if sorted(previous.utt_ids) == sorted(row.utt_id for row in manifest):
                scored[name] = previous
                continue
        policy = policy or SpoofPolicy.from_pretrained(policy_dir)
        if progress_factory is None:
            scored[name] = score_manifest(policy, manifest, name)
        else:  # scoring every run on every set takes minutes: show it
            with progress_factory(f"scoring {label or policy_dir.name} on {name}") as update:
                scored[name] = score_manifest(policy, manifest, name, progress=update)
        write_score_file(scored[name], path)
    return scored


def run_cost(folder: Path) -> dict:
    """What a finished run cost: trainable / total parameters (saved with the policy) and the
    Trainer's wall time and throughput (its last log)."""
    config = json.loads((folder / "config.json").read_text())
    history = json.loads((folder / "trainer_state.json").read_text())["log_history"]
    final = next((h for h in reversed(history) if "train_runtime" in h), {})
    return {**config.get("metadata", {}).get("parameters", {}),
            "train_runtime_s": final.get("train_runtime"),
            "train_samples_per_second": final.get("train_samples_per_second")}


def summarise_cost(runs: list[dict]) -> dict:
    """Parameters of the method's runs (equal across seeds) and mean wall time over seeds."""
    times = [r["train_runtime_s"] for r in runs if r.get("train_runtime_s") is not None]
    return {"trainable": runs[0].get("trainable"), "total": runs[0].get("total"),
            "train_runtime_s": mean_ci(times) if times else None}


def summarise(cfg: CompareConfig, metrics: dict, scores: dict, before: dict | None) -> dict:
    """Every number of the report, from per-run metrics and score files (pure bookkeeping)."""
    summary = {"per_method": {}, "paired": {}, "forgetting": {}}
    for method, by_seed in metrics.items():
        summary["per_method"][method] = {
            set_name: {m: mean_ci([by_seed[s][set_name][m] for s in by_seed]) for m in REPORTED}
            for set_name in cfg.suite
        } if by_seed else {}
    ref = cfg.reference
    for method in metrics:
        if method == ref:
            continue
        pairs = {}
        for set_name in cfg.suite:
            seeds = [s for s in cfg.seeds if s in metrics[method] and s in metrics.get(ref, {})]
            if not seeds:
                continue
            per_seed = [paired_bootstrap_diff(scores[ref][s][set_name].scores,
                                              scores[method][s][set_name].scores,
                                              scores[ref][s][set_name].labels,
                                              n_boot=cfg.n_boot, seed=s) for s in seeds]
            diffs = [p["diff"] for p in per_seed]
            pairs[set_name] = {"eer_diff": mean_ci(diffs), "per_seed": dict(zip(seeds, per_seed, strict=True))}
            if len(diffs) > 1:
                pairs[set_name]["paired_t_p"] = float(stats.ttest_1samp(diffs, 0.0).pvalue)
        summary["paired"][f"{method}-{ref}"] = pairs
    if before is not None:
        for method, by_seed in metrics.items():
            if by_seed:
                mean_after = {n: {m: float(np.mean([by_seed[s][n][m] for s in by_seed]))
                                  for m in ("eer", "min_dcf")} for n in cfg.suite}
                summary["forgetting"][method] = forgetting_report(before, mean_after, cfg.roles)
    return summary


def compare(cfg: CompareConfig, train_fn=None, log=print, progress_factory=None) -> dict:
    """Train, score, summarise and write the report folder; returns ``results.json``'s content.
    ``progress_factory(description)`` gives a progress callback per scored set (the CLI's bar)."""
    from rlspoof.reports.compare_report import write_report

    if train_fn is None:
        from rlspoof.trainers.run import train_from_recipe as train_fn
    out = Path(cfg.output_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"compare: output_dir {out} is a file, not a folder")
    # inputs are checked before hours of training, not after
    suite = {name: read_manifest(spec["manifest"]) for name, spec in cfg.suite.items()}
    if cfg.baseline and not (Path(cfg.baseline) / WEIGHTS_NAME).is_file():
        raise ConfigError(f"compare: baseline {cfg.baseline} is not a policy folder "
                          f"(no {WEIGHTS_NAME})")
    out.mkdir(parents=True, exist_ok=True)
    errors = train_runs(cfg, train_fn, log)

    metrics: dict[str, dict[int, dict]] = {m: {} for m in cfg.methods}
    scores: dict[str, dict[int, dict[str, ScoredSet]]] = {m: {} for m in cfg.methods}
    costs: dict[str, list[dict]] = {m: [] for m in cfg.methods}
    for (method, seed), error in errors.items():
        if error is None:
            folder = run_dir(cfg, method, seed)
            costs[method].append(run_cost(folder))
            scored = score_suite(folder, suite, folder / "eval", progress_factory, f"{method} seed {seed}")
            scores[method][seed] = scored
            metrics[method][seed] = {n: set_metrics(s, n_boot=cfg.n_boot)["pooled"] for n, s in scored.items()}

    before = None
    if cfg.baseline:
        scored = score_suite(Path(cfg.baseline), suite, out / "baseline_eval", progress_factory, "before")
        before = {n: set_metrics(s, n_boot=cfg.n_boot)["pooled"] for n, s in scored.items()}

    results = {
        "synthetic": is_synthetic(suite.values()),
        "config": {f.name: getattr(cfg, f.name) for f in fields(cfg)},
        "runs": {f"{m}/seed{s}": {"status": "failed" if e else "ok", "error": e,
                                  "folder": str(run_dir(cfg, m, s))} for (m, s), e in errors.items()},
        "metrics": {m: {str(s): v for s, v in by_seed.items()} for m, by_seed in metrics.items()},
        "baseline": before,
        "cost": {m: summarise_cost(c) for m, c in costs.items() if c},
        **summarise(cfg, metrics, scores, before),
    }
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    write_report(cfg, results, scores, out)
    return results

