"""Distributed training on CPU: 2 processes (gloo) through the real command line, SFT and GRPO,
DeepSpeed ZeRO-2, and the shipped accelerate configs.

Each distributed run is ``rlspoof train RECIPE`` under ``accelerate launch`` or ``torchrun`` as
a subprocess. One runs the documented command verbatim; the others go through
``tests/dist_helpers.py``, which runs ``rlspoof.cli.main`` exactly as ``python -m rlspoof`` does,
with trainers that also save every rank's final weights and a record of what the rank did
(world size, micro-batches, rollouts). A single-process run of the same recipe, in-process, is
the reference; the 2-process run halves ``per_device_train_batch_size`` so the global batch is
the same.

Why the runs are comparable, and why not bitwise:

* Data. The Trainer's sampler is accelerate's ``SeedableRandomSampler``: the same permutation
  (from ``seed``) on every rank and on one process; rank r takes batches r, r + 2, ... of
  ``per_device_train_batch_size``. So step k of the 2-process run sees the utterances of step k
  of the 1-process run (tested below), and the training crops are seeded per item, not per
  rank, so the audio is the same too.
* Dropout. Each rank draws its dropout / SpecAugment masks from its own RNG stream, which one
  process does not reproduce; the compared runs turn them off (GRPO's ``disable_dropout``; for
  SFT, ``dist_helpers --no-dropout`` applies the same function to the policy).
* Optimizer. Plain SGD: Adam divides by the gradient's running RMS, which turns a 1e-7 rounding
  difference in a near-zero gradient (the attention q/k weights at init) into a full ``lr``
  step of either sign: with AdamW at lr 1e-3 the same two runs differed by 4e-3 after 4 steps.
* Rounding. What remains is float32 summation order: the forward pass on 4 instead of 8 clips
  blocks its matmuls/convolutions differently, and DDP averages two per-rank mean gradients
  instead of taking one mean over 8. Measured on this machine (4 steps, SGD lr 0.05, gradient
  clipping at 1): weights within 6e-6 (abs), logged losses and grad norms within 5e-5 (rel),
  dev loss within 1e-5 (rel), GRPO advantages within 3e-5. The tolerances below are 10-20x
  that; a wrong global batch or gradient scale moves these numbers by 1e-2 or more.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from typer.testing import CliRunner

from rlspoof.accelerate_configs import CONFIG_NAMES, config_path
from rlspoof.algos import group_advantages
from rlspoof.cli import app
from rlspoof.errors import RlspoofError
from rlspoof.models import SpoofPolicy
from rlspoof.trainers.rollouts import rollout_advantages
from rlspoof.trainers.run import train_from_recipe

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HELPER = Path(__file__).with_name("dist_helpers.py")
CROP = 1.0
WEIGHT_ATOL = 1e-4  # measured 6e-6
LOSS_RTOL = 1e-3  # measured 5e-5
ADVANTAGE_ATOL = 5e-4  # measured 3e-5; rank-local batch statistics are off by 1.6e-2 to 0.25


# ------------------------------------------------------------------------------- helpers


def _recipe(tmp_path: Path, corpus, name: str, **fields) -> Path:
    folder, _ = corpus
    recipe = {
        "encoder_preset": "tiny", "freeze": "none",
        "train_manifest": str(folder / "train.csv"), "eval_manifest": str(folder / "dev.csv"),
        "crop_seconds": CROP, "eval_crop_seconds": CROP, "output_dir": str(tmp_path / name),
        "optim": "sgd", "learning_rate": 0.05, "lr_scheduler_type": "constant",
        "per_device_train_batch_size": 8, "per_device_eval_batch_size": 8, "max_steps": 4,
        "logging_steps": 1, "eval_strategy": "steps", "eval_steps": 4, "save_strategy": "no",
        "dataloader_num_workers": 0, "seed": 5, "report_to": "none", "use_cpu": True,
        "disable_tqdm": True, **fields,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _launch(launcher: list[str], helper_args: list[str], cwd: Path, timeout: int = 600) -> None:
    """``launcher`` + ``dist_helpers.py`` + ``helper_args`` as a subprocess; fails with its log."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([*launcher, str(HELPER), *helper_args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    log = f"{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
    assert proc.returncode == 0, f"{' '.join(launcher)} failed:\n{log}"


def _torchrun(nproc: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={nproc}"]


def _accelerate(config: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
            *options]


def _records(out: Path, n: int) -> list[dict]:
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(n)]


def _weights(out: Path, rank: int) -> dict[str, torch.Tensor]:
    return load_file(str(out / f"rank{rank}.safetensors"))


def _history(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "trainer_state.json").read_text())["log_history"]


def _reference(tmp_path: Path, recipe: Path, *, no_dropout: bool = False) -> Path:
    """The single-process run, in-process, recorded like the distributed ones."""
    from dist_helpers import instrument

    out = tmp_path / "record"
    restore = instrument(out, no_dropout=no_dropout)
    try:
        train_from_recipe(recipe)
    finally:
        restore()
    return out


def _assert_two_ranks(records: list[dict]) -> None:
    """Both processes joined one gloo group of 2, and the Trainer saw it."""
    assert [r["dist_world_size"] for r in records] == [2, 2]
    assert [r["dist_rank"] for r in records] == [0, 1]
    assert [r["process_index"] for r in records] == [0, 1]
    assert [r["world_size"] for r in records] == [2, 2]
    assert all(r["dist_backend"] == "gloo" and r["global_step"] == 4 for r in records)


def _assert_same_global_batches(records: list[dict], reference: dict, accumulation: int = 1):
    """Optimizer step k of the 2-process run saw the utterances of step k on one process."""
    steps = len(reference["batches"])
    assert all(len(r["batches"]) == steps * accumulation for r in records)
    for k in range(steps):
        global_batch = [utt for r in records
                        for batch in r["batches"][k * accumulation:(k + 1) * accumulation]
                        for utt in batch]
        assert len(global_batch) == len(set(global_batch)) == len(reference["batches"][k])
        assert sorted(global_batch) == sorted(reference["batches"][k]), k


def _assert_ranks_identical(out: Path) -> dict[str, torch.Tensor]:
    rank0, rank1 = _weights(out, 0), _weights(out, 1)
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)  # bitwise: DDP keeps them in sync
    return rank0


def _assert_close_to_reference(out: Path, run_dir: Path, ref_out: Path, ref_dir: Path):
    weights, ref_weights = _weights(out, 0), _weights(ref_out, 0)
    assert weights.keys() == ref_weights.keys()
    for key in ref_weights:
        torch.testing.assert_close(weights[key], ref_weights[key], atol=WEIGHT_ATOL, rtol=0,
                                   msg=lambda m, key=key: f"{key}: {m}")
    history, ref_history = _history(run_dir), _history(ref_dir)
    for key in ("loss", "grad_norm", "eval_loss"):
        values = [h[key] for h in history if key in h]
        ref_values = [h[key] for h in ref_history if key in h]
        assert len(values) == len(ref_values) > 0, key
        # abs: GRPO's first loss is 0 up to rounding (ratio 1, advantages summing to ~0)
        assert values == pytest.approx(ref_values, rel=LOSS_RTOL, abs=1e-6), key
    # 8 global clips per step over 32 training rows: epoch 0.25 per step on 2 ranks, as on one
    # (one rank alone with the halved batch would log 0.125)
    assert [h["epoch"] for h in history if "loss" in h] == [0.25, 0.5, 0.75, 1.0]


@pytest.fixture(scope="module")
def sft_reference(tiny_corpus, tmp_path_factory, one_torch_thread):
    tmp = tmp_path_factory.mktemp("sft_reference")
    recipe = _recipe(tmp, tiny_corpus, "run", method="sft")
    return _reference(tmp, recipe, no_dropout=True), tmp / "run"


# ------------------------------------------------------------------- accelerate configs


def test_every_shipped_accelerate_config_exists_and_parses():
    from accelerate.commands.config.config_args import load_config_from_file

    expected = {"multi_gpu": "MULTI_GPU", "zero2": "DEEPSPEED", "zero3": "DEEPSPEED",
                "cpu_ddp": "MULTI_GPU"}
    assert set(CONFIG_NAMES) == set(expected)
    for name in CONFIG_NAMES:
        path = config_path(name)
        assert path.is_file() and path == config_path(f"{name}.yaml")
        config = load_config_from_file(str(path))
        assert config.distributed_type == expected[name], name
    zero2, zero3 = (load_config_from_file(str(config_path(n))) for n in ("zero2", "zero3"))
    assert zero2.deepspeed_config["zero_stage"] == 2 and zero3.deepspeed_config["zero_stage"] == 3
    for config in (zero2, zero3):  # left to the recipe's TrainingArguments
        assert config.deepspeed_config["gradient_accumulation_steps"] == "auto"
        assert config.mixed_precision == "bf16"
    cpu = load_config_from_file(str(config_path("cpu_ddp")))
    assert cpu.num_processes == 2 and cpu.use_cpu and cpu.mixed_precision == "no"


def test_unknown_accelerate_config_lists_the_valid_names():
    with pytest.raises(RlspoofError, match="valid: multi_gpu, zero2, zero3, cpu_ddp"):
        config_path("zero4")


def test_accelerate_config_command_prints_the_path():
    result = CliRunner().invoke(app, ["accelerate-config", "zero2"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(config_path("zero2"))
    result = CliRunner().invoke(app, ["accelerate-config", "nope"])
    assert result.exit_code != 0


# ----------------------------------------------------------- batch statistics across ranks


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("center,scale", [("batch", "batch"), ("batch", "none"),
                                          ("group", "batch"), ("group", "group")])
def test_rank_advantages_are_rows_of_the_global_batch_advantages(exact, center, scale):
    """``rollout_advantages`` with a gather: each rank's advantages are its rows of those one
    process computes on the concatenated batch (ranks simulated in-process, 3 + 5 utterances)."""
    from types import SimpleNamespace

    args = SimpleNamespace(advantage_center=center, scale_rewards=scale, advantage_eps=1e-4)
    g = torch.Generator().manual_seed(0)
    rewards = torch.rand(8, 2 if exact else 4, generator=g)
    weights = torch.softmax(torch.randn(8, 2, generator=g), -1) if exact else None
    parts = [slice(0, 3), slice(3, 8)]
    expected = group_advantages(rewards, center=center, scale=scale, eps=1e-4, weights=weights)
    for rank, own in enumerate(parts):
        # what GRPOTrainer.gather_rows returns on this rank: the rewards, then the weights
        gathered = iter([rewards, weights])
        local_weights = None if weights is None else weights[own]
        got = rollout_advantages(rewards[own], local_weights, args,
                                 lambda t, own=own, gathered=gathered: (next(gathered), own))
        torch.testing.assert_close(got, expected[own], rtol=0, atol=0)
        alone = rollout_advantages(rewards[own], local_weights, args)  # one process, no gather
        if "batch" in (center, scale):
            assert not torch.allclose(alone, expected[own]), rank
        else:  # group statistics are local to the rank holding the utterance
            torch.testing.assert_close(alone, expected[own], rtol=0, atol=0)


@pytest.mark.slow
def test_gather_rows_handles_ranks_with_different_batch_sizes(tmp_path):
    _launch(_torchrun(), ["--gather-check", str(tmp_path / "out")], cwd=tmp_path)
    results = [json.loads((tmp_path / "out" / f"gather{r}.json").read_text()) for r in range(2)]
    assert [r["world_size"] for r in results] == [2, 2]
    everything = torch.tensor(results[0]["rewards"] + results[1]["rewards"])  # 2 + 3 rows
    assert all(torch.equal(torch.tensor(r["rows"]), everything) for r in results)
    assert [r["own"] for r in results] == [[0, 2], [2, 5]]
    expected = group_advantages(everything, center="batch", scale="batch", eps=1e-4)
    got = torch.tensor(results[0]["advantages"] + results[1]["advantages"])
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------ SFT, DDP


@pytest.mark.slow
def test_sft_on_two_cpu_ranks_matches_one_process(tiny_corpus, tmp_path, sft_reference):
    """`accelerate launch --config_file $(rlspoof accelerate-config cpu_ddp)`: 2 gloo ranks."""
    ref_out, ref_dir = sft_reference
    recipe = _recipe(tmp_path, tiny_corpus, "run", method="sft", per_device_train_batch_size=4)
    out = tmp_path / "record"
    _launch(_accelerate(config_path("cpu_ddp")),
            ["--no-dropout", str(out), "train", str(recipe)], cwd=tmp_path)

    records = _records(out, 2)
    _assert_two_ranks(records)
    assert not any(r["deepspeed"] for r in records)
    _assert_same_global_batches(records, _records(ref_out, 1)[0])
    _assert_ranks_identical(out)
    _assert_close_to_reference(out, tmp_path / "run", ref_out, ref_dir)


@pytest.mark.slow
def test_the_documented_launch_command_trains_on_two_cpu_ranks(tiny_corpus, tmp_path):
    """Verbatim: accelerate launch --config_file $(rlspoof accelerate-config cpu_ddp)
    -m rlspoof train RECIPE (no test helper in the way)."""
    printed = subprocess.run([sys.executable, "-m", "rlspoof", "accelerate-config", "cpu_ddp"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert printed == str(config_path("cpu_ddp"))
    recipe = _recipe(tmp_path, tiny_corpus, "run", method="sft", per_device_train_batch_size=4,
                     max_steps=2, eval_strategy="no")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                           printed, "-m", "rlspoof", "train", str(recipe)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-8000:]
    # 4 clips per rank: the logged epoch advances by 8 / 32 rows per step, so 2 ranks trained
    epochs = [h["epoch"] for h in _history(tmp_path / "run") if "loss" in h]
    assert epochs == [0.25, 0.5]
    assert SpoofPolicy.from_pretrained(tmp_path / "run").metadata["trainer"] == "SFTTrainer"


# ----------------------------------------------------------------------- SFT, DeepSpeed


@pytest.mark.slow
def test_sft_with_deepspeed_zero2_on_two_cpu_ranks_matches_one_process(
        tiny_corpus, tmp_path, sft_reference):
    """The shipped zero2.yaml (CPU: ``--mixed_precision no``, 2 processes), with gradient
    accumulation 2 x 2 clips per rank = the reference's 8: the config's ``auto`` values must
    come from the recipe. The first run on a machine compiles DeepSpeed's shm_comm op (g++,
    ~40 s-2.5 min), cached in ~/.cache/torch_extensions afterwards."""
    pytest.importorskip("deepspeed",
                        reason="deepspeed is not installed (pip install 'rlspoof[deepspeed]')")
    ref_out, ref_dir = sft_reference
    recipe = _recipe(tmp_path, tiny_corpus, "run", method="sft", per_device_train_batch_size=2,
                     gradient_accumulation_steps=2)
    out = tmp_path / "record"
    _launch(_accelerate(config_path("zero2"), "--num_processes", "2", "--mixed_precision", "no"),
            ["--no-dropout", str(out), "train", str(recipe)], cwd=tmp_path, timeout=900)

    records = _records(out, 2)
    _assert_two_ranks(records)
    for record in records:
        assert record["deepspeed"] and record["zero_stage"] == 2
        assert record["ds_config"] == {"train_micro_batch_size_per_gpu": 2,
                                       "gradient_accumulation_steps": 2, "train_batch_size": 8,
                                       "gradient_clipping": 1.0}
    _assert_same_global_batches(records, _records(ref_out, 1)[0], accumulation=2)
    _assert_ranks_identical(out)  # ZeRO-2 partitions optimizer state, not the weights
    _assert_close_to_reference(out, tmp_path / "run", ref_out, ref_dir)


# ---------------------------------------------------------------------------------- GRPO


GRPO = dict(method="grpo", beta=0.04, disable_dropout=True, advantage_center="batch",
            scale_rewards="batch")


@pytest.mark.slow
def test_grpo_batch_advantages_on_two_ranks_equal_one_process(tiny_corpus, tmp_path):
    """``advantage_center/scale_rewards: batch`` use the statistics of the global batch: the
    advantages of each utterance equal those of one process on the same 8 utterances. Exact
    estimator, so that no sampling differs between the runs (the ranks' generators do)."""
    (tmp_path / "ref").mkdir()
    ref_recipe = _recipe(tmp_path / "ref", tiny_corpus, "run", **GRPO, estimator="exact")
    ref_out = _reference(tmp_path / "ref", ref_recipe)
    recipe = _recipe(tmp_path, tiny_corpus, "run", **GRPO, estimator="exact",
                     per_device_train_batch_size=4)
    out = tmp_path / "record"
    _launch(_torchrun(), [str(out), "train", str(recipe)], cwd=tmp_path)

    records, reference = _records(out, 2), _records(ref_out, 1)[0]
    _assert_two_ranks(records)
    _assert_same_global_batches(records, reference)
    local_gap = 0.0
    for k, ref_rollout in enumerate(reference["rollouts"]):
        expected = dict(zip(ref_rollout["utt_ids"], ref_rollout["advantages"], strict=True))
        for record in records:
            rollout = record["rollouts"][k]
            got = torch.tensor(rollout["advantages"])
            want = torch.tensor([expected[u] for u in rollout["utt_ids"]])
            torch.testing.assert_close(got, want, atol=ADVANTAGE_ATOL, rtol=0)
            # what the rank's own micro-batch statistics would have given
            alone = group_advantages(torch.tensor(rollout["rewards"]), center="batch",
                                     scale="batch", eps=1e-4,
                                     weights=torch.tensor(rollout["sample_weights"]))
            local_gap = max(local_gap, (alone - want).abs().max().item())
    assert local_gap > 20 * ADVANTAGE_ATOL, local_gap  # the test tells the two apart
    _assert_ranks_identical(out)
    _assert_close_to_reference(out, tmp_path / "run", ref_out, tmp_path / "ref" / "run")


@pytest.mark.slow
def test_grpo_sampled_on_two_ranks_seeds_each_process_and_logs_its_metrics(tiny_corpus, tmp_path):
    """`torchrun --nproc_per_node 2 ... rlspoof train`: G = 4 sampled decisions per utterance,
    AdamW as in a real run (no 1-process comparison: each rank samples with its own generator)."""
    recipe = _recipe(tmp_path, tiny_corpus, "run", **GRPO, estimator="sampled",
                     num_generations=4, per_device_train_batch_size=4, optim="adamw_torch",
                     learning_rate=1e-3)
    out = tmp_path / "record"
    _launch(_torchrun(), [str(out), "train", str(recipe)], cwd=tmp_path)

    records = _records(out, 2)
    _assert_two_ranks(records)
    # sampling_generator: seed + process_index, so the ranks draw different decisions
    assert [r["generator_seed"] for r in records] == [5, 6]
    actions = [torch.tensor([x["actions"] for x in r["rollouts"]]) for r in records]
    assert actions[0].shape == actions[1].shape == (4, 4, 4)  # steps x utterances x G
    assert not torch.equal(actions[0], actions[1])
    # batch statistics over both ranks' rewards: each rank holds its rows of the global result
    for k in range(4):
        rewards = torch.tensor(records[0]["rollouts"][k]["rewards"]
                               + records[1]["rollouts"][k]["rewards"])
        expected = group_advantages(rewards, center="batch", scale="batch", eps=1e-4)
        got = torch.tensor(records[0]["rollouts"][k]["advantages"]
                           + records[1]["rollouts"][k]["advantages"])
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    weights = _assert_ranks_identical(out)
    assert all(torch.isfinite(w).all() for w in weights.values())

    train_logs = [h for h in _history(tmp_path / "run") if "loss" in h]
    assert [h["epoch"] for h in train_logs] == [0.25, 0.5, 0.75, 1.0]  # 8 clips a step: 2 ranks
    for log in train_logs:
        for key in ("reward", "reward_std", "kl", "frac_reward_zero_std", "accuracy"):
            assert key in log and math.isfinite(log[key]), (key, log)
    assert train_logs[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # disable_dropout, equal weights
    # logged metrics are means over both ranks' micro-batches, not rank 0's alone
    for k, log in enumerate(train_logs):
        rewards = [torch.tensor(r["rollouts"][k]["rewards"]).mean().item() for r in records]
        assert log["reward"] == pytest.approx(sum(rewards) / 2, abs=1e-6), (k, log, rewards)


@pytest.mark.slow
def test_sft_with_zero3_saves_the_full_policy(tiny_corpus, tmp_path, sft_reference):
    """ZeRO-3 partitions the weights themselves (threshold 0: every parameter), so each rank's
    module holds empty shards; the saved folder must hold the weights the Trainer gathers."""
    pytest.importorskip("deepspeed",
                        reason="deepspeed is not installed (pip install 'rlspoof[deepspeed]')")
    ds_config = tmp_path / "zero3.json"
    ds_config.write_text(json.dumps({
        "zero_optimization": {"stage": 3, "stage3_param_persistence_threshold": 0,
                              "stage3_gather_16bit_weights_on_model_save": True},
        "train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto",
        "train_batch_size": "auto", "gradient_clipping": "auto"}))
    recipe = _recipe(tmp_path, tiny_corpus, "run", method="sft", per_device_train_batch_size=4,
                     deepspeed=str(ds_config), eval_strategy="no")
    _launch(_torchrun(), ["--no-dropout", str(tmp_path / "record"), "train", str(recipe)],
            cwd=tmp_path, timeout=900)
    saved = load_file(str(tmp_path / "run" / "model.safetensors"))
    reference = load_file(str(sft_reference[1] / "model.safetensors"))
    assert saved.keys() == reference.keys()
    for key in reference:
        assert saved[key].shape == reference[key].shape, key  # not an empty shard
        torch.testing.assert_close(saved[key], reference[key], atol=WEIGHT_ATOL, rtol=0)
    SpoofPolicy.from_pretrained(tmp_path / "run")
