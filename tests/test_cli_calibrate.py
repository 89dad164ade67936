"""``rlspoof calibrate`` and ``rlspoof fuse``, and what calibration changes in ``eval`` and
``detect``: a calibrated P(spoof) at a stated prior and the Bayes decision."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from rlspoof.cli import app
from rlspoof.errors import RlspoofError
from rlspoof.evaluation import ScoredSet, write_score_file
from rlspoof.evaluation.calibration import CALIBRATION_FILE, ScoreCalibration, spoof_posterior

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def calibrated(tiny_corpus, tmp_path_factory):
    import torch

    from rlspoof.models import EncoderConfig, PolicyConfig, build_policy

    folder, _ = tiny_corpus
    torch.manual_seed(0)
    policy = tmp_path_factory.mktemp("cal") / "policy"
    build_policy(PolicyConfig(encoder=EncoderConfig(preset="tiny"))).save_pretrained(policy)
    result = runner.invoke(app, ["calibrate", str(policy), "--set", str(folder / "dev.csv")])
    assert result.exit_code == 0, result.output
    assert "calibrated" in result.output and "in-sample" in result.output
    return policy


def test_calibrate_writes_the_map_into_the_policy_folder(calibrated, tiny_corpus):
    folder, _ = tiny_corpus
    cal = ScoreCalibration.load(calibrated)
    assert cal is not None and cal.fitted_on["manifest"] == str(folder / "dev.csv")
    assert cal.fitted_on["n_bonafide"] > 0 and cal.fitted_on["n_spoof"] > 0
    assert cal.fit_prior == pytest.approx(0.5 / 1.45)


def test_eval_reports_metrics_before_and_after_calibration(calibrated, tiny_corpus, tmp_path):
    folder, _ = tiny_corpus
    result = runner.invoke(app, ["eval", "--model", str(calibrated), "--set", f"eval={folder / 'eval.csv'}",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "metrics.json").read_text())["eval"]
    cal = ScoreCalibration.load(calibrated)
    raw = [float(r["cm-score"]) for r in csv.DictReader((tmp_path / "scores" / "eval.tsv").open(),
                                                        delimiter="\t")]
    labels = [r["label"] for r in csv.DictReader((tmp_path / "scores" / "eval.tsv").open(), delimiter="\t")]
    from rlspoof.metrics.report import score_metrics

    assert metrics["calibrated"] == pytest.approx(score_metrics(cal.llr(raw), labels), abs=1e-4)  # 6-decimal files
    # an affine map keeps the ranking, or reverses it when this random policy's scores rank the
    # fitting set backwards (a negative weight; calibrate warns)
    eer = metrics["pooled"]["eer"] if cal.weights[0] > 0 else 1 - metrics["pooled"]["eer"]
    assert metrics["calibrated"]["eer"] == pytest.approx(eer, abs=0.01)
    assert "calibrated" in result.output


def test_detect_gives_p_spoof_at_the_prior_and_the_bayes_decision(calibrated, tiny_corpus, tmp_path):
    folder, manifest = tiny_corpus
    clips = [folder / row.path for row in manifest.filter(split="eval")][:6]
    out = tmp_path / "d.json"
    result = runner.invoke(app, ["detect", *map(str, clips), "--model", str(calibrated), "--format", "json",
                                 "--prior", "0.2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    cal = ScoreCalibration.load(calibrated)
    assert data["decision_rule"]["calibrated"] is True and data["decision_rule"]["prior_p_spoof"] == 0.2
    threshold = data["decision_rule"]["bayes_threshold_llr"]
    assert threshold == pytest.approx(-np.log(1 * 0.8 / (10 * 0.2)))
    for row in data["results"]:
        llr = cal.llr([row["score"]])[0]
        assert row["llr"] == pytest.approx(llr)
        assert row["p_spoof"] == pytest.approx(spoof_posterior(np.array([llr]), 0.2)[0])
        assert row["decision"] == ("bonafide" if llr > threshold else "spoof")
        assert "p_bonafide" not in row

    csv_out = tmp_path / "d.csv"
    assert runner.invoke(app, ["detect", str(clips[0]), "--model", str(calibrated), "--out", str(csv_out)]).exit_code == 0
    assert next(csv.reader(csv_out.open())) == ["path", "score", "llr", "p_spoof", "decision", "n_windows"]
    drift = runner.invoke(app, ["drift", "--reference", str(csv_out), "--incoming", str(csv_out),
                                "--threshold", "1"])
    assert drift.exit_code == 0, drift.output  # what detect writes, drift reads
    raw = tmp_path / "raw.csv"
    assert runner.invoke(app, ["detect", str(clips[0]), "--model", str(calibrated), "--no-calibration",
                               "--threshold", "0.5", "--out", str(raw)]).exit_code == 0
    assert next(csv.reader(raw.open()))[2:4] == ["decision", "p_bonafide"]


def test_detect_refuses_a_raw_threshold_for_a_calibrated_policy(calibrated, tiny_corpus, tmp_path):
    folder, manifest = tiny_corpus
    clip = folder / manifest.filter(split="eval")[0].path
    result = runner.invoke(app, ["detect", str(clip), "--model", str(calibrated), "--threshold", "1"])
    assert isinstance(result.exception, RlspoofError) and "--no-calibration" in str(result.exception)
    result = runner.invoke(app, ["detect", str(clip), "--model", str(calibrated), "--prior", "1.5"])
    assert isinstance(result.exception, RlspoofError) and "--prior" in str(result.exception)


def test_a_broken_calibration_file_is_a_clear_error(calibrated, tiny_corpus, tmp_path):
    folder, manifest = tiny_corpus
    copy = tmp_path / "policy"
    shutil.copytree(calibrated, copy)
    (copy / CALIBRATION_FILE).write_text("{not json")
    result = runner.invoke(app, ["detect", str(folder / manifest.filter(split="eval")[0].path),
                                 "--model", str(copy)])
    assert isinstance(result.exception, RlspoofError)
    assert CALIBRATION_FILE in str(result.exception) and "rlspoof calibrate" in str(result.exception)


def _system_files(tmp_path, name: str, seed: int) -> tuple:
    """Score files of one system on a fitting set and an evaluation set (same trial ids)."""
    paths = []
    for part, n in (("dev", 400), ("eval", 600)):
        rng = np.random.default_rng([seed, n])
        labels = ["bonafide"] * (n // 2) + ["spoof"] * (n // 2)
        signal = np.r_[np.ones(n // 2), -np.ones(n // 2)]
        scores = 3 * (signal + rng.normal(0, 1.5, n)) + 4  # informative, badly calibrated
        scored = ScoredSet(part, [f"{part}_{i}" for i in range(n)], list(scores), labels,
                           ["-" if lab == "bonafide" else "A1" for lab in labels])
        paths.append(write_score_file(scored, tmp_path / name / "scores" / f"{part}.tsv"))
    return tuple(paths)


def test_fuse_fits_on_one_set_and_evaluates_on_another(tmp_path):
    (a_dev, a_eval), (b_dev, b_eval) = _system_files(tmp_path, "a", 1), _system_files(tmp_path, "b", 2)
    out = tmp_path / "fused"
    result = runner.invoke(app, ["fuse", "--fit", f"a={a_dev}", "--fit", f"b={b_dev}",
                                 "--apply", f"a={a_eval}", "--apply", f"b={b_eval}", "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"a", "b", "fused"}
    assert metrics["fused"]["pooled"]["eer"] < min(metrics["a"]["pooled"]["eer"], metrics["b"]["pooled"]["eer"])
    assert metrics["fused"]["pooled"]["act_dcf"] < min(metrics[s]["pooled"]["act_dcf"] for s in "ab")
    low, high = metrics["fused"]["pooled"]["eer_ci95"]
    assert low <= metrics["fused"]["pooled"]["eer"] <= high
    fusion = json.loads((out / "fusion.json").read_text())
    assert set(fusion["weights"]) == {"a", "b"}
    rows = list(csv.reader((out / "scores.tsv").open(), delimiter="\t"))
    assert rows[0] == ["filename", "cm-score", "label", "attack"] and len(rows) == 601


@pytest.mark.parametrize("args, needle", [
    (["--fit", "a=A", "--apply", "a=A"], "two systems or more"),
    (["--fit", "a=A", "--fit", "b=B", "--apply", "b=B", "--apply", "a=A"], "same names, in the same order"),
])
def test_fuse_option_errors(tmp_path, args, needle):
    result = runner.invoke(app, ["fuse", *args, "--out", str(tmp_path / "o")])
    assert isinstance(result.exception, RlspoofError) and needle in str(result.exception)
