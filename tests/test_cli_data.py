"""Hostile input to ``rlspoof data ...``, ``compare`` and ``embed`` (issue 13).

Each bad value must end as one ``RlspoofError`` line naming the option, file or line (``main()``
prints it and exits 2), before any work is done and without writing anything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from rlspoof.cli import app
from rlspoof.data.audio import write_audio
from rlspoof.errors import RlspoofError

runner = CliRunner()


def _refused(args: list[str], *needles: str) -> str:
    """Run ``rlspoof ARGS``; it must stop with one RlspoofError line holding every needle."""
    result = runner.invoke(app, [str(a) for a in args])
    assert isinstance(result.exception, RlspoofError), (result.output, result.exception)
    message = str(result.exception)
    assert "\n" not in message, message
    for needle in needles:
        assert needle in message, message
    return message


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def user(tmp_path: Path) -> Path:
    """A user's folder: two clips in bonafide/ and spoof/, and a manifest of them."""
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(3200) / 16000)
    write_audio(tmp_path / "bonafide" / "a.wav", tone)
    write_audio(tmp_path / "spoof" / "tts" / "b.wav", tone)
    (tmp_path / "m.csv").write_text("utt_id,path,label,attack,duration\n"
                                    "a,bonafide/a.wav,bonafide,-,0.2\nb,spoof/tts/b.wav,spoof,tts,0.2\n")
    return tmp_path


# --- data validate / synth ----------------------------------------------------------------------


@pytest.mark.parametrize("rate", ["0", "-16000", "999", "100000000"])
def test_validate_sample_rate_out_of_range(user, rate):
    _refused(["data", "validate", user / "m.csv", "--sample-rate", rate], "--sample-rate", rate)


def test_validate_out_must_not_be_the_manifest_or_a_folder_or_another_format(user):
    before = _files(user)
    _refused(["data", "validate", user / "m.csv", "--out", user / "m.csv"], "is the MANIFEST")
    _refused(["data", "validate", user / "m.csv", "--out", user / "good.txt"], "good.txt", ".jsonl")
    _refused(["data", "validate", user / "m.csv", "--out", user / "bonafide"], "bonafide")
    assert _files(user) == before


def test_validate_writes_no_empty_manifest_when_nothing_is_usable(user):
    (user / "bonafide" / "a.wav").unlink()
    (user / "spoof" / "tts" / "b.wav").unlink()
    _refused(["data", "validate", user / "m.csv", "--skip-bad", "--out", user / "good.csv"],
             "no usable rows", "good.csv")
    assert not (user / "good.csv").exists() and (user / "m.skipped.csv").is_file()


@pytest.mark.parametrize("option, value", [("--jobs", "-1"), ("--seed", "-1")])
def test_synth_negative_jobs_or_seed(tmp_path, option, value):
    _refused(["data", "synth", "--size", "tiny", option, value, "--out", tmp_path / "s"], option)
    assert not (tmp_path / "s").exists()


def test_synth_will_not_write_into_a_folder_of_other_files(user, tmp_path):
    before = _files(user)
    _refused(["data", "synth", "--size", "tiny", "--jobs", "1", "--out", user],
             "bonafide, m.csv, spoof", "not part of a synthetic corpus")
    _refused(["data", "synth", "--size", "tiny", "--jobs", "1", "--out", user / "m.csv"],
             "is a file")
    assert _files(user) == before


def test_outputs_that_cannot_be_written_fail_before_the_work(user):
    _refused(["data", "prepare", "folder", user, "--out", user / "m.csv" / "o.csv"],
             "m.csv is not a folder")
    _refused(["data", "validate", user / "m.csv", "--out", user / "m.csv" / "o.csv"],
             "m.csv is not a folder")
    (user / "m.skipped.csv").mkdir()
    _refused(["data", "validate", user / "m.csv", "--skip-bad"], "m.skipped.csv", "is a folder")
    (user / "o.skipped.csv").mkdir()
    _refused(["data", "prepare", "folder", user, "--out", user / "o.csv"], "o.skipped.csv")
    assert not (user / "o.csv").exists()


def test_synth_may_rebuild_or_finish_its_own_corpus(tmp_path):
    """A folder holding only what synth writes (a killed run, an earlier build) is accepted."""
    from rlspoof.cli.data import _check_synth_out

    (tmp_path / "audio" / "train").mkdir(parents=True)
    for name in ("manifest.csv", "train.csv", "corpus.json", "dev.csv.tmp"):
        (tmp_path / name).write_text("x")
    _check_synth_out(tmp_path, {"audio", "manifest.csv", "train.csv", "dev.csv", "corpus.json"})
    _check_synth_out(tmp_path / "new", {"audio"})


# --- data summary ---------------------------------------------------------------------------------


@pytest.mark.parametrize("duration", ["nan", "-3", "inf"])
def test_summary_json_never_prints_nan(user, duration):
    (user / "m.csv").write_text("utt_id,path,label,duration\na,a.wav,bonafide,1\n"
                                f"b,b.wav,spoof,{duration}\n")
    _refused(["data", "summary", user / "m.csv", "--json"], "m.csv:3:", "duration")


def test_summary_json_is_valid_json_with_unknown_durations(user):
    (user / "m.csv").write_text("utt_id,path,label,duration\na,a.wav,bonafide,\nb,b.wav,spoof,-\n")
    result = runner.invoke(app, ["data", "summary", str(user / "m.csv"), "--json"])
    assert result.exit_code == 0, result.output
    assert {row["hours"] for row in json.loads(result.output)} == {None}


def test_summary_strips_a_byte_order_mark(user):
    text = (user / "m.csv").read_text()
    (user / "m.csv").write_text(text, encoding="utf-8-sig")
    result = runner.invoke(app, ["data", "summary", str(user / "m.csv"), "--json"])
    assert result.exit_code == 0, result.output
    assert sum(row["bonafide"] + row["spoof"] for row in json.loads(result.output)) == 2


@pytest.mark.parametrize("name, content, needles", [
    ("missing.csv", None, ["missing.csv", "does not exist"]),
    ("empty.csv", "", ["empty.csv:1:", "file is empty"]),
    ("header.csv", "utt_id,path,label\n", ["header.csv", "no rows"]),
    ("folder.csv", "<dir>", ["folder.csv", "is a folder"]),
    ("binary.csv", b"\xff\xfe\x00garbage", ["binary.csv:1:", "UTF-8"]),
    ("short.csv", "utt_id,path,label\na,a.wav\n", ["short.csv:2:", "fewer cells"]),
    ("bad.jsonl", '{"utt_id": "a"\n', ["bad.jsonl:1:", "invalid JSON"]),
    ("notes.txt", "hello\n", ["notes.txt", ".jsonl"]),
])
def test_summary_bad_manifests_name_file_and_line(tmp_path, name, content, needles):
    path = tmp_path / name
    if content == "<dir>":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    _refused(["data", "summary", path], *needles)


# --- data prepare ---------------------------------------------------------------------------------


def test_prepare_refuses_an_out_that_summary_would_refuse(user, tmp_path):
    """`--out x.txt` used to write a CSV that `data summary` then refused."""
    _refused(["data", "prepare", "folder", user, "--out", tmp_path / "x.txt"], "x.txt", ".csv")
    _refused(["data", "prepare", "folder", user, "--out", user / "bonafide"], "is a folder")
    assert not (tmp_path / "x.txt").exists()
    result = runner.invoke(app, ["data", "prepare", "folder", str(user), "--out",
                                 str(tmp_path / "x.jsonl")])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["data", "summary", str(tmp_path / "x.jsonl")]).exit_code == 0


def test_prepare_will_not_overwrite_its_input_manifest(user):
    before = _files(user)
    _refused(["data", "prepare", "folder", user / "m.csv", "--out", user / "m.csv"],
             "is the corpus root")
    assert _files(user) == before


@pytest.mark.parametrize("args, needles", [
    (["nonsense", ".", "--out", "o.csv"], ["unknown corpus 'nonsense'"]),
    (["folder", "missing", "--out", "o.csv"], ["missing", "does not exist"]),
    (["fake_or_real", "m.csv", "--out", "o.csv"], ["must be a folder"]),
    (["folder", ".", "--out", "o.csv", "--option", "x"], ["--option expects key=value"]),
    (["folder", ".", "--out", "o.csv", "--check-audio", "maybe"], ["check_audio"]),
])
def test_prepare_bad_arguments(user, monkeypatch, args, needles):
    monkeypatch.chdir(user)
    _refused(["data", "prepare", *args], *needles)
    assert not (user / "o.csv").exists()


# --- compare --------------------------------------------------------------------------------------


@pytest.fixture
def recipe(user) -> Path:
    (user / "sft.yaml").write_text("method: sft\n")
    path = user / "compare.yaml"
    path.write_text(yaml.safe_dump({
        "output_dir": str(user / "cmp"), "methods": {"sft": str(user / "sft.yaml")},
        "suite": {"dev": {"manifest": str(user / "m.csv")}}}))
    return path


def test_compare_missing_or_malformed_recipe(user, recipe):
    _refused(["compare", user / "missing.yaml"], "missing.yaml", "does not exist")
    bad = user / "bad.yaml"
    for text, needle in (("- a\n", "must be a YAML mapping"), ("a: [1,\n", "bad.yaml:2:"),
                         ("output_dir: x\n", "missing methods, suite")):
        bad.write_text(text)
        _refused(["compare", bad], needle)
    assert not (user / "cmp").exists()


@pytest.mark.parametrize("seeds, needle", [("abc", "--seeds"), ("1,x", "--seeds"), ("", "--seeds"),
                                           ("1,1", "distinct"), ("-1", ">= 0")])
def test_compare_bad_seeds(user, recipe, seeds, needle):
    _refused(["compare", recipe, "--seeds", seeds], needle)
    assert not (user / "cmp").exists()


def test_compare_set_names_cannot_escape_the_output_folder(user, recipe):
    spec = yaml.safe_load(recipe.read_text())
    spec["suite"] = {"../../x": {"manifest": str(user / "m.csv")}}
    recipe.write_text(yaml.safe_dump(spec))
    _refused(["compare", recipe], str(recipe), "'../../x'", "plain file name")
    assert not (user / "cmp").exists()


def test_compare_missing_training_recipe_or_bad_set_fails_before_training(user, recipe):
    (user / "sft.yaml").unlink()
    _refused(["compare", recipe], "sft.yaml", "not found")
    (user / "sft.yaml").write_text("method: sft\n")
    _refused(["compare", recipe, "--set", "max_steps"], "--set expects key=value")
    assert not (user / "cmp").exists()


# --- embed ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("option, value", [("--batch-size", "0"), ("--crop-seconds", "nan"),
                                           ("--crop-seconds", "-1"), ("--crop-seconds", "1e9"),
                                           ("--max-per-attack", "0"), ("--seed", "-1")])
def test_embed_bad_options_fail_before_loading_a_model(user, option, value):
    _refused(["embed", "--model", user / "no_model", "--manifest", user / "m.csv",
              "--out", user / "emb", option, value], option)
    assert not (user / "emb").exists()


def test_embed_bad_manifest_or_out(user):
    embed = ["embed", "--model", user / "no_model", "--out", user / "emb"]
    _refused([*embed, "--manifest", user / "missing.csv"], "missing.csv", "does not exist")
    (user / "h.csv").write_text("utt_id,path,label\n")
    _refused([*embed, "--manifest", user / "h.csv"], "h.csv", "no rows")
    _refused([*embed, "--manifest", user / "m.csv", "--split", "train"], "no rows of split")
    _refused(["embed", "--model", user / "no_model", "--manifest", user / "m.csv",
              "--out", user / "m.csv"], "--out", "is a file")


def test_main_exits_2_with_one_line_and_no_traceback(user):
    """Through the real entry point: exit code 2 and one line on stderr."""
    (user / "m.csv").write_text("utt_id,path,label,duration\na,a.wav,bonafide,nan\n")
    proc = subprocess.run([sys.executable, "-m", "rlspoof", "data", "summary", "--json",
                           str(user / "m.csv")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "m.csv:2:" in proc.stderr
