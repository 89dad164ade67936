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


def _demo_commands() -> list[list[str]]:
    """The rlspoof commands of the Makefile's demo targets, in pipeline order (each inside a
    ``$(call timed,STAGE,COMMAND)``, whose closing parenthesis ends it)."""
    text = (REPO / "Makefile").read_text().replace("\\\n", " ").replace("$(DEMO_SEEDS)", "1")
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
    recipe = yaml.safe_load((REPO / "recipes/mini/compare.yaml").read_text())
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
