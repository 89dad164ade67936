"""The demo pipeline (`make demo`) with the shipped recipes, on the tiny corpus and a few steps."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from rlspoof.cli import app

REPO = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


def _demo_commands(compare: str = "compare_all") -> list[list[str]]:
    """The rlspoof commands of the Makefile's demo targets for the default profile (mini) and
    the compare recipe ``compare`` (by default every method), in pipeline order (each inside a
    ``$(call timed,STAGE,COMMAND)``, whose closing parenthesis ends it)."""
    text = (REPO / "Makefile").read_text().replace("\\\n", " ")
    variables = {"DEMO_SEEDS": "1", "PROFILE": "mini", "RUNS": "runs", "SIZE": "small",
                 "COMPARE": compare}
    for variable, value in variables.items():
        text = text.replace(f"$({variable})", value)
    commands = re.findall(r"\$\(BIN\)/rlspoof ([^)\n]+)", text)
    return [line.split() for line in commands]


def test_the_makefile_demo_runs_end_to_end_with_the_shipped_recipes(tiny_corpus, tmp_path, monkeypatch):
    corpus, _ = tiny_corpus
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mini").symlink_to(corpus)
    (tmp_path / "recipes").symlink_to(REPO / "recipes")
    monkeypatch.chdir(tmp_path)
    short = {"pretrain": ["max_steps=4", "per_device_train_batch_size=2"],
             "train": ["max_steps=4", "eval_steps=4"],
             "compare": ["max_steps=3", "eval_steps=3", "per_device_train_batch_size=4"]}
    commands = _demo_commands()
    assert [c[0] for c in commands] == ["compare", "data", "pretrain", "train", "embed"]
    for command in [*commands[2:], commands[0]]:  # the corpus is the tiny fixture's
        extra = [arg for item in short.get(command[0], []) for arg in ("--set", item)]
        result = CliRunner().invoke(app, [*command, *extra])
        assert result.exit_code == 0, (command, result.output)

    assert (tmp_path / "runs" / "embeddings" / "embeddings.png").read_bytes()[:8] == PNG
    out = tmp_path / "runs" / "compare"
    recipe = yaml.safe_load((REPO / "recipes/mini/compare_all.yaml").read_text())
    results = json.loads((out / "results.json").read_text())
    assert results["synthetic"] is True
    for method in recipe["methods"]:
        assert results["runs"][f"{method}/seed1"]["status"] == "ok", results["runs"][f"{method}/seed1"]
        assert set(results["metrics"][method]["1"]) == set(recipe["suite"])
        assert set(results["forgetting"][method]["sets"]) == set(recipe["suite"])
    assert results["cost"]["mldg_lora"]["trainable"] < results["cost"]["sft"]["trainable"]
    figures = [f"det_{name}.png" for name in recipe["suite"]]
    figures += ["scores_unseen_attack.png", "training_curves.png", "eer_heatmap.png", "forgetting.png"]
    for name in figures:
        assert (out / name).read_bytes()[:8] == PNG, name
    report = (out / "report.md").read_text()
    assert "SYNTHETIC" in report and "## Forgetting" in report and "## Cost" in report


def test_the_default_demo_compares_sft_and_grpo_exactly_as_the_full_comparison_does():
    """`make demo` runs the two methods of the research question; compare_all adds the rest and
    changes nothing else, so the demo's runs are the headline table's runs."""
    demo, full = (yaml.safe_load((REPO / f"recipes/mini/{name}.yaml").read_text())
                  for name in ("compare", "compare_all"))
    assert demo["methods"] == {"sft": "recipes/mini/sft.yaml", "grpo": "recipes/mini/grpo.yaml"}
    assert {k: full["methods"][k] for k in demo["methods"]} == demo["methods"]
    assert set(full["methods"]) == {"sft", "grpo", "hybrid", "mixframe", "lora", "mldg_lora"}
    assert {k: v for k, v in demo.items() if k != "methods"} == {
        k: v for k, v in full.items() if k != "methods"}
    assert _demo_commands("compare")[0] == ["compare", "recipes/mini/compare.yaml", "--seeds", "1"]


def test_the_medium_profile_runs_the_same_stages_on_its_own_corpus_recipes_and_outputs(tmp_path):
    """``make medium``: every stage of the demo, each reading recipes/medium or data/medium and
    writing under runs/medium only (so the demo's runs/ stay as they are)."""
    import shutil
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    dry = subprocess.run(["make", "-n", "-B", "demo", "PROFILE=medium", "DEMO_SEEDS=1234,1,2"],
                         cwd=REPO, capture_output=True, text=True, check=True).stdout
    commands = re.findall(r"\.venv/bin/rlspoof ([^;&']+)", dry)
    stages = [c.split()[0] for c in dict.fromkeys(c.strip() for c in commands)]
    assert stages == ["data", "pretrain", "train", "embed", "compare"], stages
    text = " ".join(commands)
    assert "--size medium --out data/medium" in text and "--seeds 1234,1,2" in text
    for place in ("data", "runs", "recipes"):
        assert not re.search(rf"(?<![/\w]){place}/(?!medium\b)", text), (place, text)
    for recipe in re.findall(r"recipes/medium/\w+\.yaml", text):
        # every data or output path the recipe names, the compare suite's and overrides' included
        paths = re.findall(r"(?<![/\w])((?:data|runs)/[\w./]+)", (REPO / recipe).read_text())
        assert paths and all(re.match(r"(data|runs)/medium(/|$)", p) for p in paths), (recipe, paths)
