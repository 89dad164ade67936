"""``rlspoof compare``: methods x seeds, resumable, a failed run reported without losing others."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from rlspoof.errors import ConfigError, DataError
from rlspoof.evaluation.compare import CompareConfig, compare, run_dir
from rlspoof.models import EncoderConfig, PolicyConfig, build_policy

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _fake_train(calls):
    """Stands in for train_from_recipe: a seeded random tiny policy and a short log history;
    the recipe named ``broken.yaml`` fails like a bad run would."""

    def train(recipe, overrides):
        calls.append((recipe, overrides))
        if recipe.endswith("broken.yaml"):
            raise RuntimeError("out of memory (injected)")
        settings = dict(item.split("=", 1) for item in overrides)
        torch.manual_seed(int(settings["seed"]) + len(recipe))
        folder = settings["output_dir"]
        policy = build_policy(PolicyConfig(encoder=EncoderConfig(preset="tiny")))
        policy.save_pretrained(folder)
        history = [{"step": s, "loss": 1.0 / s, "reward": 0.1 * s} for s in (1, 2, 3)]
        (policy_dir := __import__("pathlib").Path(folder)).joinpath("trainer_state.json").write_text(
            json.dumps({"log_history": history}))
        return policy_dir

    return train


def _config(tiny_corpus, tmp_path, methods, baseline=None):
    folder, _ = tiny_corpus
    return CompareConfig(
        output_dir=str(tmp_path / "cmp"), methods=methods, seeds=[1, 2], baseline=baseline,
        suite={"dev": {"manifest": str(folder / "dev.csv"), "role": "target"},
               "unseen": {"manifest": str(folder / "eval_unseen_attack.csv"), "role": "ood"}},
        n_boot=20,
    )


def test_compare_reports_every_method_set_seed_and_survives_a_failed_run(tiny_corpus, tmp_path):
    calls = []
    methods = {"sft": "sft.yaml", "grpo": "grpo.yaml", "broken": "broken.yaml"}
    cfg = _config(tiny_corpus, tmp_path, methods)
    results = compare(cfg, train_fn=_fake_train(calls), log=lambda *_: None)

    assert len(calls) == 6
    assert results["runs"]["broken/seed1"]["status"] == "failed"
    assert "out of memory" in results["runs"]["broken/seed1"]["error"]
    assert (run_dir(cfg, "broken", 1) / "FAILED.txt").is_file()
    for method in ("sft", "grpo"):
        for seed in ("1", "2"):
            assert set(results["metrics"][method][seed]) == {"dev", "unseen"}
    assert results["synthetic"] is True
    pair = results["paired"]["grpo-sft"]["dev"]
    diffs = [p["diff"] for p in pair["per_seed"].values()]
    assert pair["eer_diff"]["mean"] == pytest.approx(sum(diffs) / 2)
    expected = [results["metrics"]["grpo"][s]["dev"]["eer"] - results["metrics"]["sft"][s]["dev"]["eer"]
                for s in ("1", "2")]
    assert diffs == pytest.approx(expected)

    out = tmp_path / "cmp"
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["runs"] == results["runs"]
    report = (out / "report.md").read_text()
    assert "SYNTHETIC" in report and "broken/seed2 | failed" in report
    for png in ("det_dev.png", "det_unseen.png", "scores_unseen.png", "training_curves.png",
                "eer_heatmap.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png

    # resumable: finished runs and their score files are reused, only the failed one reruns
    calls.clear()
    score_file = run_dir(cfg, "sft", 1) / "eval" / "scores" / "dev.tsv"
    before = score_file.stat().st_mtime_ns
    again = compare(cfg, train_fn=_fake_train(calls), log=lambda *_: None)
    assert [c[0] for c in calls] == ["broken.yaml", "broken.yaml"]
    assert (run_dir(cfg, "broken", 1) / "FAILED.txt").is_file()  # rewritten by the retry
    assert score_file.stat().st_mtime_ns == before
    for method in ("sft", "grpo"):  # same decisions (score files keep 6 decimals)
        for seed, by_set in results["metrics"][method].items():
            for set_name, metrics in by_set.items():
                assert again["metrics"][method][seed][set_name]["eer"] == metrics["eer"]


def test_compare_redoes_what_a_newer_start_or_rebuilt_manifest_made_stale(tiny_corpus, tmp_path):
    """Reuse is by file time and content: after the start checkpoint is retrained every run is
    trained again, and after a set's manifest is rewritten (a new corpus version) its scores
    are recomputed, even though the old files are complete and newer than the runs."""
    import contextlib
    import os
    import shutil

    folder, _ = tiny_corpus
    calls = []
    cfg = _config(tiny_corpus, tmp_path, {"sft": "sft.yaml"})
    _fake_train([])("sft.yaml", ["seed=9", f"output_dir={tmp_path / 'start'}"])
    cfg.start = str(tmp_path / "start")
    manifest = tmp_path / "unseen.csv"
    shutil.copy(folder / "eval_unseen_attack.csv", manifest)
    manifest.write_text(manifest.read_text().replace("audio/", f"{folder}/audio/"))
    cfg.suite["unseen"]["manifest"] = str(manifest)
    bars: dict[str, list] = {}

    @contextlib.contextmanager
    def progress(description):  # as the CLI's rich bar: one per scored set
        bars[description] = []
        yield lambda done, total: bars[description].append((done, total))

    compare(cfg, train_fn=_fake_train(calls), log=lambda *_: None, progress_factory=progress)
    assert len(calls) == 2
    assert set(bars) == {f"scoring {m} on {s}" for m in ("sft seed 1", "sft seed 2") for s in ("dev", "unseen")}
    assert all(updates[-1][0] == updates[-1][1] > 0 for updates in bars.values())

    dev_scores = run_dir(cfg, "sft", 1) / "eval" / "scores" / "dev.tsv"
    unseen_scores = run_dir(cfg, "sft", 1) / "eval" / "scores" / "unseen.tsv"
    kept = dev_scores.stat().st_mtime_ns
    # the manifest is rewritten with one row fewer, and dated after every score file
    lines = manifest.read_text().splitlines(keepends=True)
    manifest.write_text("".join(lines[:-1]))
    later = unseen_scores.stat().st_mtime + 5
    os.utime(manifest, (later, later))
    calls.clear()
    again = compare(cfg, train_fn=_fake_train(calls), log=lambda *_: None)
    assert calls == [] and dev_scores.stat().st_mtime_ns == kept
    assert again["metrics"]["sft"]["1"]["unseen"]["n_spoof"] + again["metrics"]["sft"]["1"]["unseen"][
        "n_bonafide"] == len(lines) - 2

    # the start checkpoint is retrained: every run is stale
    weights = tmp_path / "start" / "model.safetensors"
    later = max(p.stat().st_mtime for p in (tmp_path / "cmp").rglob("*")) + 5
    os.utime(weights, (later, later))
    logged = []
    compare(cfg, train_fn=_fake_train(calls), log=logged.append)
    assert sorted(c[1][-1] for c in calls) == [f"model_name_or_path={cfg.start}"] * 2
    assert any("trained from an older" in line for line in logged)


def test_compare_measures_forgetting_against_a_baseline(tiny_corpus, tmp_path):
    calls = []
    cfg = _config(tiny_corpus, tmp_path, {"sft": "sft.yaml"})
    _fake_train([])("sft.yaml", ["seed=9", f"output_dir={tmp_path / 'base'}"])
    cfg.baseline = str(tmp_path / "base")
    results = compare(cfg, train_fn=_fake_train(calls), log=lambda *_: None)
    forgetting = results["forgetting"]["sft"]
    dev = forgetting["sets"]["dev"]["eer"]
    assert dev["before"] == pytest.approx(results["baseline"]["dev"]["eer"])
    assert dev["delta"] == pytest.approx(dev["after"] - dev["before"])
    assert (tmp_path / "cmp" / "forgetting.png").is_file()


def test_compare_recipe_errors_name_the_problem(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"output_dir": "x", "methods": {"a": "a.yaml"}, "suite": {},
                                    "seed": [1]}))
    with pytest.raises(ConfigError, match="did you mean 'seeds'"):
        CompareConfig.from_yaml(path)
    with pytest.raises(ConfigError, match="role must be one of"):
        CompareConfig("x", {"a": "a.yaml"}, {"dev": {"manifest": "d.csv", "role": "new"}})
    with pytest.raises(ConfigError, match="reference 'b'"):
        CompareConfig("x", {"a": "a.yaml"}, {}, reference="b")


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", "", " padded", "a\\b", 7])
@pytest.mark.parametrize("where", ["suite", "methods"])
def test_set_and_method_names_must_be_plain_file_names(name, where):
    """They become runs/NAME/ and scores/NAME.tsv: '../../x' wrote outside output_dir."""
    methods, suite = {"sft": "s.yaml"}, {"dev": {"manifest": "d.csv"}}
    if where == "suite":
        suite = {name: {"manifest": "d.csv"}}
    else:
        methods = {"sft": "s.yaml", name: "s.yaml"}
    with pytest.raises(ConfigError, match="plain file name"):
        CompareConfig("x", methods, suite)


@pytest.mark.parametrize("field, value, needle", [
    ("seeds", [1, 1], "distinct"), ("seeds", ["a"], "integers"), ("seeds", [-1], ">= 0"),
    ("seeds", [True], "integers"), ("seeds", 3, "list"), ("n_boot", 0, "n_boot"),
    ("overrides", ["no_equals_sign"], "key=value"), ("overrides", "a=1", "list"),
    ("methods", ["sft"], "mapping"), ("suite", {}, "suite is empty"),
    ("suite", {"dev": {"manifest": ["d.csv"]}}, "needs"), ("baseline", ["b"], "baseline"),
    ("output_dir", "", "output_dir"),
])
def test_compare_recipe_values_are_checked(field, value, needle):
    values = {"output_dir": "x", "methods": {"sft": "s.yaml"},
              "suite": {"dev": {"manifest": "d.csv"}}, field: value}
    with pytest.raises(ConfigError, match=needle):
        CompareConfig(**values)


def test_compare_recipe_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml does not exist"):
        CompareConfig.from_yaml(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a folder"):
        CompareConfig.from_yaml(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("output_dir: x\nmethods: [1,\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:3: invalid YAML"):
        CompareConfig.from_yaml(bad)
    for text in ("- a\n- b\n", "sft\n"):
        bad.write_text(text)
        with pytest.raises(ConfigError, match="must be a YAML mapping"):
            CompareConfig.from_yaml(bad)
    bad.write_bytes(b"output_dir: \xff\n")
    with pytest.raises(ConfigError, match="invalid UTF-8"):
        CompareConfig.from_yaml(bad)
    bad.write_text(yaml.safe_dump({"output_dir": "x", "methods": {"sft": "s.yaml"},
                                   "suite": {"../x": {"manifest": "d.csv"}}}))
    with pytest.raises(ConfigError, match=r"compare recipe .*bad.yaml: suite set name '../x'"):
        CompareConfig.from_yaml(bad)


def test_suite_and_baseline_are_checked_before_any_training(tiny_corpus, tmp_path):
    calls = []
    cfg = _config(tiny_corpus, tmp_path, {"sft": "sft.yaml"}, baseline=str(tmp_path / "none"))
    with pytest.raises(ConfigError, match="baseline .* is not a policy folder"):
        compare(cfg, train_fn=_fake_train(calls), log=lambda *_: None)
    cfg = _config(tiny_corpus, tmp_path, {"sft": "sft.yaml"})
    cfg.suite["dev"]["manifest"] = str(tmp_path / "missing.csv")
    with pytest.raises(DataError, match="missing.csv: manifest file does not exist"):
        compare(cfg, train_fn=_fake_train(calls), log=lambda *_: None)
    assert calls == [] and not (tmp_path / "cmp").exists()
    (tmp_path / "cmp").write_text("a file")
    with pytest.raises(ConfigError, match="is a file"):
        compare(_config(tiny_corpus, tmp_path, {"sft": "sft.yaml"}), train_fn=_fake_train(calls))


@pytest.mark.slow
def test_compare_command_end_to_end_with_real_training(tiny_corpus, tmp_path):
    """The CLI over real SFT / GRPO / hybrid runs (a few steps each) on the tiny corpus."""
    from typer.testing import CliRunner

    from rlspoof.cli import app

    folder, _ = tiny_corpus
    common = {"encoder_preset": "tiny", "freeze": "none", "train_manifest": str(folder / "train.csv"),
              "crop_seconds": 0.5, "max_steps": 3, "per_device_train_batch_size": 4, "logging_steps": 1,
              "save_strategy": "no", "use_cpu": True, "disable_tqdm": True, "report_to": "none",
              "learning_rate": 1e-3, "output_dir": "unused"}
    methods = {}
    for name, extra in {"sft": {"method": "sft"},
                        "grpo": {"method": "grpo", "num_generations": 4, "beta": 0.04},
                        "hybrid": {"method": "hybrid", "schedule": "mixed", "num_generations": 4}}.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({**common, **extra}))
        methods[name] = str(path)
    recipe = tmp_path / "compare.yaml"
    recipe.write_text(yaml.safe_dump({
        "output_dir": str(tmp_path / "cmp"), "methods": methods, "seeds": [1, 2], "n_boot": 20,
        "suite": {"dev": {"manifest": str(folder / "dev.csv"), "role": "target"},
                  "unseen": {"manifest": str(folder / "eval_unseen_attack.csv"), "role": "ood"}},
    }))
    result = CliRunner().invoke(app, ["compare", str(recipe)])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "cmp" / "results.json").read_text())
    assert {name: run["status"] for name, run in results["runs"].items()} == {
        f"{m}/seed{s}": "ok" for m in methods for s in (1, 2)}
    for method in methods:
        assert set(results["metrics"][method]) == {"1", "2"}
        assert all(set(by_set) == {"dev", "unseen"} for by_set in results["metrics"][method].values())
    assert set(results["paired"]) == {"grpo-sft", "hybrid-sft"}
    for png in ("det_dev.png", "det_unseen.png", "scores_unseen.png", "training_curves.png",
                "eer_heatmap.png"):
        assert (tmp_path / "cmp" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    unwrapped = result.output.replace("\n", "")  # rich folds long tmp paths at 80 columns
    assert "EER % (SYNTHETIC corpus" in result.output and "report.md" in unwrapped
    for method in methods:  # the cost table: parameters saved with each policy, Trainer wall time
        cost = results["cost"][method]
        assert cost["trainable"] == cost["total"] > 0 and cost["train_runtime_s"]["mean"] > 0
    assert "## Cost" in (tmp_path / "cmp" / "report.md").read_text()
    html = (tmp_path / "cmp" / "report.html").read_text()
    assert html.count("<table>") >= 3 and '<img alt="det_dev" src="det_dev.png"' in html
