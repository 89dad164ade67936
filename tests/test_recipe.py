"""GRPOConfig / HybridConfig validation and GRPO recipes: every mistake is a ConfigError that
says what to write instead."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from rlspoof.data.arguments import DataArguments
from rlspoof.errors import ConfigError
from rlspoof.models.arguments import ModelArguments
from rlspoof.recipe import load_recipe, save_resolved
from rlspoof.trainers.grpo_config import GRPOConfig
from rlspoof.trainers.hybrid_config import HybridConfig


def _grpo(tmp_path, cls=GRPOConfig, **fields):
    return cls(output_dir=str(tmp_path / "out"), report_to="none", **fields)


# ------------------------------------------------------------------------------ GRPOConfig


def test_defaults_are_trl_s(tmp_path):
    cfg = _grpo(tmp_path)
    assert (cfg.method, cfg.num_generations, cfg.loss_type, cfg.scale_rewards) == (
        "grpo", 8, "dapo", "group")
    assert (cfg.beta, cfg.epsilon, cfg.num_iterations, cfg.learning_rate) == (0.0, 0.2, 1, 1e-6)
    assert cfg.reward_funcs == ["correctness"] and cfg.reward_weights is None
    assert cfg.remove_unused_columns is False  # utt_id / attack reach the reward functions
    assert cfg.use_bias_correction_kl is True  # TRL 1.16's default: k3 * pi / pi_old
    assert cfg.rollout_policy == "old"  # PPO / TRL: the sampler is the ratio's denominator


@pytest.mark.parametrize(("fields", "message"), [
    ({"loss_type": "ppo"}, "loss_type must be one of grpo, bnpo, dr_grpo, dapo; got 'ppo'"),
    ({"estimator": "exakt"}, "estimator must be one of sampled, exact; got 'exakt'"),
    ({"scale_rewards": "std"}, "scale_rewards must be one of group, batch, none; got 'std'"),
    ({"advantage_center": "mean"}, "advantage_center must be one of group, batch, none"),
    ({"num_generations": 0}, "num_generations must be >= 1, got 0"),
    ({"num_generations": 1}, "num_generations=1 with advantage_center=group makes every "
                             "advantage zero: use G >= 2"),
    ({"num_iterations": 2, "old_policy_sync_steps": 100},
     "use either num_iterations > 1 (TRL) or old_policy_sync_steps (the published method), "
     "not both"),
    ({"sync_ref_model": True}, "sync_ref_model needs a reference policy: set beta > 0"),
    ({"reward_funcs": ["correctness"], "reward_weights": [1.0, 0.5]},
     "reward_weights has 2 values for 1 reward_funcs"),
    ({"reward_funcs": ["correctness", "confidence"], "reward_weights": [1.0]},
     "reward_weights has 1 values for 2 reward_funcs"),
    ({"temperature": 0.0}, "temperature must be > 0, got 0.0"),
    ({"num_iterations": 0}, "num_iterations must be >= 1, got 0"),
    ({"old_policy_sync_steps": -1}, "old_policy_sync_steps must be >= 0 (0 = off)"),
    ({"beta": -0.1}, "beta must be >= 0, got -0.1"),
    ({"epsilon_high": -0.2}, "epsilon_high must be >= 0 or null"),
    ({"advantage_eps": 0.0}, "advantage_eps must be > 0"),
    # YAML is read once, by the recipe loader: text given in code is not parsed again
    ({"reward_kwargs": "{cost_weighted: {c_fa: 3}}"}, "reward_kwargs must be a mapping"),
    ({"reward_kwargs": [1, 2]}, "reward_kwargs must be a mapping"),
    ({"max_steps": 0}, "max_steps must be a positive number of optimizer steps, or -1"),
    ({"max_steps": -2}, "got -2"),
    ({"max_steps": -1, "num_train_epochs": 0}, "num_train_epochs must be > 0"),
    ({"learning_rate": float("nan")}, "learning_rate must be positive, got nan"),
    ({"per_device_train_batch_size": 0}, "per_device_train_batch_size must be >= 1, got 0"),
    ({"gradient_accumulation_steps": 0}, "gradient_accumulation_steps must be >= 1, got 0"),
    ({"learning_rate": 0.0}, "learning_rate must be positive"),  # SFTConfig's check still runs
    ({"rollout_policy": "new"}, "rollout_policy must be one of old, current; got 'new'"),
    # silently ignored before: GRPO has no cross-entropy for them to weight
    ({"class_weights": [1.0, 4.0]}, "class_weights has no effect on GRPO"),
    ({"label_smoothing_factor": 0.1}, "label_smoothing_factor has no effect on GRPO"),
])
def test_grpo_config_errors_say_how_to_fix(tmp_path, fields, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        _grpo(tmp_path, **fields)


def test_grpo_config_accepts_the_valid_neighbours_of_those_errors(tmp_path):
    # G = 1 is fine where nothing is centred on the group, and in exact mode (G is unused)
    assert _grpo(tmp_path, num_generations=1, advantage_center="batch").num_generations == 1
    assert _grpo(tmp_path, num_generations=1, estimator="exact").estimator == "exact"
    assert _grpo(tmp_path, sync_ref_model=True, beta=0.04).sync_ref_model
    assert _grpo(tmp_path, num_iterations=2).num_iterations == 2
    assert _grpo(tmp_path, old_policy_sync_steps=1000).old_policy_sync_steps == 1000
    assert _grpo(tmp_path, reward_funcs=["correctness", "confidence"],
                 reward_weights=[1.0, 0.5]).reward_weights == [1.0, 0.5]


@pytest.mark.parametrize(("value", "expected"), [(True, "group"), (False, "none"),
                                                 ("batch", "batch")])
def test_trl_boolean_scale_rewards_become_names(tmp_path, value, expected):
    assert _grpo(tmp_path, scale_rewards=value).scale_rewards == expected


def test_structured_values_reach_their_config_as_yaml_values_never_as_text(tmp_path):
    """augment (a list of mappings), mix_weights and reward_kwargs (mappings) bypass argparse:
    from the recipe and from --set (YAML or JSON) they arrive as written, and the resolved recipe
    saved beside a run loads back to the same values."""
    recipe = {**GRPO_RECIPE, "augment": [{"name": "noise", "p": 0.5, "snr_db": [5, 20]}],
              "mix_by": "attack", "mix_weights": {"a01": 1.0, "a02": 3.0},
              "train_manifest": ["data/a.csv", "data/b.csv"]}
    _, data, cfg = load_recipe(_write(tmp_path, recipe), TYPES)
    assert data.augment == [{"name": "noise", "p": 0.5, "snr_db": [5, 20]}]
    assert data.mix_weights == {"a01": 1.0, "a02": 3.0}
    assert data.train_manifests() == ["data/a.csv", "data/b.csv"]
    _, data, cfg = load_recipe(_write(tmp_path, recipe), TYPES, [
        'reward_kwargs={"cost_weighted": {"c_fa": 3}}', "augment=[{name: rawboost, algo: 3}]",
        "mix_weights={a01: 2}", "train_manifest=data/c.csv,data/d.csv"])
    assert cfg.reward_kwargs == {"cost_weighted": {"c_fa": 3}}
    assert data.augment == [{"name": "rawboost", "algo": 3}] and data.mix_weights == {"a01": 2}
    assert data.train_manifests() == ["data/c.csv", "data/d.csv"]
    _, data, _ = load_recipe(_write(tmp_path, recipe), TYPES, ["augment=null"])
    assert data.augment is None

    resolved = save_resolved(load_recipe(_write(tmp_path, recipe), TYPES), tmp_path / "run")
    text = yaml.safe_load(resolved.read_text())
    assert text["augment"] == recipe["augment"] and text["mix_weights"] == recipe["mix_weights"]
    _, again, _ = load_recipe(_write(tmp_path, {k: text[k] for k in recipe}, "again.yaml"), TYPES)
    assert (again.augment, again.mix_weights) == (recipe["augment"], recipe["mix_weights"])


def test_a_quoted_structure_or_bad_yaml_in_an_override_is_refused_with_its_name(tmp_path):
    path = _write(tmp_path, {**GRPO_RECIPE, "augment": "[{name: noise}]"})
    with pytest.raises(ConfigError, match=re.escape("(a YAML list, not a quoted string)")):
        load_recipe(path, TYPES)
    with pytest.raises(ConfigError, match=re.escape("--set reward_kwargs is not valid YAML (line 1")):
        load_recipe(_write(tmp_path, GRPO_RECIPE), TYPES, ["reward_kwargs={cost_weighted: 1"])


def test_pinned_memory_is_off_without_an_accelerator(tmp_path):
    """torch warns on every run that pins memory with nothing to pin it for."""
    import torch

    cfg = _grpo(tmp_path)
    assert cfg.dataloader_pin_memory is torch.accelerator.is_available()
    assert _grpo(tmp_path, use_cpu=True).dataloader_pin_memory is False


# ---------------------------------------------------------------------------- HybridConfig


@pytest.mark.parametrize(("fields", "message"), [
    ({"schedule": "sft_first", "max_steps": 10},
     "schedule must be one of sft_then_grpo, grpo_then_sft, mixed; got 'sft_first'"),
    ({"schedule": "mixed", "sft_weight": 1.5}, "sft_weight must be in [0, 1], got 1.5"),
    ({"schedule": "mixed", "sft_weight_end": -0.1}, "sft_weight_end must be in [0, 1], got -0.1"),
    ({"switch_step": -1}, "switch_step must be >= 0, got -1"),
    ({"schedule": "sft_then_grpo"},
     "schedule sft_then_grpo needs switch_step (or max_steps to switch at half)"),
    ({"schedule": "grpo_then_sft"},
     "schedule grpo_then_sft needs switch_step (or max_steps to switch at half)"),
    ({"schedule": "mixed", "loss_type": "ppo"}, "loss_type must be one of"),  # GRPO's checks too
    ({"switch_step": 99, "max_steps": 10},
     "switch_step 99 is not before max_steps 10: the sft_then_grpo run would never switch"),
])
def test_hybrid_config_errors_say_how_to_fix(tmp_path, fields, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        _grpo(tmp_path, HybridConfig, **fields)


def test_hybrid_config_valid_schedules(tmp_path):
    assert _grpo(tmp_path, HybridConfig, max_steps=10).schedule == "sft_then_grpo"
    assert _grpo(tmp_path, HybridConfig, switch_step=5).switch_step == 5  # no max_steps needed
    mixed = _grpo(tmp_path, HybridConfig, schedule="mixed", sft_weight=1.0, sft_weight_end=0.0)
    assert (mixed.method, mixed.sft_weight, mixed.sft_weight_end) == ("hybrid", 1.0, 0.0)
    assert mixed.reset_optimizer_at_switch is True  # as two runs (GRPO from an SFT folder) have
    # a hybrid's cross-entropy part uses them, so they stay valid there
    weighted = _grpo(tmp_path, HybridConfig, max_steps=10, class_weights=[1.0, 4.0],
                     label_smoothing_factor=0.1)
    assert (weighted.class_weights, weighted.label_smoothing_factor) == ([1.0, 4.0], 0.1)


def test_a_grpo_recipe_with_class_weights_names_the_field(tmp_path):
    recipe = tmp_path / "grpo.yaml"
    recipe.write_text("method: grpo\nencoder_preset: tiny\ntrain_manifest: t.csv\n"
                      f"output_dir: {tmp_path / 'out'}\nreport_to: none\nclass_weights: [1, 9]\n")
    with pytest.raises(ConfigError, match="class_weights has no effect on GRPO"):
        load_recipe(recipe, (ModelArguments, DataArguments, GRPOConfig))


PAPER = Path(__file__).parents[1] / "recipes" / "paper"


@pytest.mark.parametrize("name", ["grpo", "grpo_s", "grpo_raw_reward"])
def test_paper_recipes_use_the_published_sampling_rule_and_plain_k3(name):
    _, _, cfg = load_recipe(PAPER / f"{name}.yaml", (ModelArguments, DataArguments, GRPOConfig),
                            ["fp16=false"])
    assert cfg.rollout_policy == "current" and cfg.use_bias_correction_kl is False


# --------------------------------------------------------------------------------- recipes

GRPO_RECIPE = {
    "method": "grpo", "encoder_preset": "tiny", "train_manifest": "data/train.csv",
    "crop_seconds": 1.0, "learning_rate": 1e-3, "max_steps": 10, "num_generations": 4,
    "reward_funcs": ["correctness", "cost_weighted"], "reward_weights": [1.0, 0.5],
    "reward_kwargs": {"cost_weighted": {"c_fa": 10}}, "scale_rewards": True, "beta": 0.04,
}
TYPES = (ModelArguments, DataArguments, GRPOConfig)


def _write(tmp_path, recipe: dict, name: str = "grpo.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump({**recipe, "output_dir": str(tmp_path / "out")}))
    return path


def test_load_grpo_recipe_with_overrides(tmp_path):
    path = _write(tmp_path, GRPO_RECIPE)
    model, data, cfg = load_recipe(path, TYPES)
    assert model.encoder_preset == "tiny" and data.crop_seconds == 1.0
    assert (cfg.num_generations, cfg.beta, cfg.learning_rate) == (4, 0.04, 1e-3)
    assert cfg.reward_funcs == ["correctness", "cost_weighted"]
    assert cfg.reward_weights == [1.0, 0.5]
    assert cfg.reward_kwargs == {"cost_weighted": {"c_fa": 10}}
    assert cfg.scale_rewards == "group"  # YAML `true`, TRL's boolean

    _, _, cfg = load_recipe(path, TYPES, [
        "beta=0.1", "num_generations=16", "estimator=exact", "reward_weights=[2, 1]",
        'reward_kwargs={"cost_weighted": {"c_fa": 3}}',
    ])
    assert (cfg.beta, cfg.num_generations, cfg.estimator) == (0.1, 16, "exact")
    assert cfg.reward_weights == [2.0, 1.0]
    assert cfg.reward_kwargs == {"cost_weighted": {"c_fa": 3}}
    assert cfg.learning_rate == 1e-3  # untouched keys keep the recipe's value


def test_grpo_recipe_typo_suggests_the_right_key(tmp_path):
    recipe = {**GRPO_RECIPE, "num_generation": 8}
    del recipe["num_generations"]
    path = _write(tmp_path, recipe)
    with pytest.raises(ConfigError, match=r"grpo\.yaml: unknown key 'num_generation'; "
                                          r"did you mean 'num_generations'\?"):
        load_recipe(path, TYPES)


def test_grpo_override_typo_suggests_the_right_key(tmp_path):
    path = _write(tmp_path, GRPO_RECIPE)
    with pytest.raises(ConfigError, match=r"--set: unknown key 'bta'; did you mean 'beta'\?"):
        load_recipe(path, TYPES, ["bta=0.1"])


def test_grpo_recipe_with_an_invalid_value_is_a_config_error(tmp_path):
    path = _write(tmp_path, {**GRPO_RECIPE, "loss_type": "ppo"})
    with pytest.raises(ConfigError, match="loss_type must be one of grpo, bnpo, dr_grpo, dapo"):
        load_recipe(path, TYPES)
    with pytest.raises(ConfigError, match=re.escape("reward_weights has 3 values for 2")):
        load_recipe(path, TYPES, ["loss_type=dapo", "reward_weights=[1, 1, 1]"])


def test_a_wrong_type_names_the_recipe_line_or_the_override(tmp_path):
    path = _write(tmp_path, {**GRPO_RECIPE, "num_generations": "eight"})
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1)
                if text.startswith("num_generations:"))
    with pytest.raises(ConfigError, match=rf"grpo\.yaml:{line}: num_generations: invalid int value: 'eight'"):
        load_recipe(path, TYPES)
    with pytest.raises(ConfigError, match=r"^--set beta: invalid float value: 'high'$"):
        load_recipe(_write(tmp_path, GRPO_RECIPE), TYPES, ["beta=high"])


def test_mixing_and_mix_frame_values_are_checked(tmp_path):
    with pytest.raises(ConfigError, match=r"mixframe_span_seconds must be \[min, max\]"):
        load_recipe(_write(tmp_path, {**GRPO_RECIPE, "mixframe_span_seconds": [0.5, 0.1]}), TYPES)
    with pytest.raises(ConfigError, match="mixframe_mode must be one of splice, blend"):
        load_recipe(_write(tmp_path, GRPO_RECIPE), TYPES, ["mixframe_mode=paste"])
    with pytest.raises(ConfigError, match="mix_weights must be a mapping"):
        load_recipe(_write(tmp_path, {**GRPO_RECIPE, "mix_by": "source", "mix_weights": "[1, 2]"}), TYPES)
    _, data, _ = load_recipe(_write(tmp_path, {**GRPO_RECIPE, "mix_by": "source",
                                               "mix_weights": {"a": 1, "b": 3},
                                               "train_manifest": ["a.csv", "b.csv"]}), TYPES)
    assert data.mix_weights == {"a": 1, "b": 3} and data.train_manifests() == ["a.csv", "b.csv"]


def test_hybrid_recipe_with_overrides_and_a_typo(tmp_path):
    types = (ModelArguments, DataArguments, HybridConfig)
    path = _write(tmp_path, {**GRPO_RECIPE, "method": "hybrid", "schedule": "sft_then_grpo",
                             "switch_step": 4}, "hybrid.yaml")
    _, _, cfg = load_recipe(path, types, ["schedule=mixed", "sft_weight=1.0",
                                          "sft_weight_end=0.0"])
    assert (cfg.schedule, cfg.sft_weight, cfg.sft_weight_end, cfg.switch_step) == (
        "mixed", 1.0, 0.0, 4)
    with pytest.raises(ConfigError, match="unknown key 'schedul'; did you mean 'schedule'"):
        load_recipe(path, types, ["schedul=mixed"])


# --- the shipped recipes ----------------------------------------------------------------------

RECIPES = sorted(p for p in (Path(__file__).parents[1] / "recipes").rglob("*.yaml")
                 if p.name != "pretrain.yaml" and not p.name.startswith("compare"))
COMPARE_RECIPES = sorted((Path(__file__).parents[1] / "recipes").rglob("compare*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_recipe_parses_into_its_method_config(recipe):
    from rlspoof.trainers.run import METHODS, recipe_method

    method = recipe_method(recipe, [])
    config_cls, _ = METHODS[method]
    # fp16 needs a GPU; everything else is parsed and validated exactly as on the GPU machine
    overrides = ["fp16=false"] if "fp16" in recipe.read_text() else []
    _, data_args, train_args = load_recipe(recipe, (ModelArguments, DataArguments, config_cls), overrides)
    assert type(train_args) is config_cls and train_args.method == method
    assert data_args.train_manifest and train_args.output_dir.startswith("runs/")
    data_args.augment_specs()  # the augmentation list is valid YAML of specs


@pytest.mark.parametrize("recipe", COMPARE_RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_compare_recipes_name_existing_training_recipes(recipe):
    from rlspoof.evaluation.compare import CompareConfig

    cfg = CompareConfig.from_yaml(recipe)
    root = Path(__file__).parents[1]
    assert cfg.reference == "sft" and len(cfg.methods) >= 2
    for method_recipe in cfg.methods.values():
        assert (root / method_recipe).is_file(), method_recipe


# --- hostile recipes and overrides (issue 13): one ConfigError that names the culprit -----------


@pytest.mark.parametrize(("text", "message"), [
    ("- method: sft\n", "a recipe must be a YAML mapping of config keys (key: value lines), got a list"),
    ("sft\n", "got a str"),
    ("learning_rate: [1, 2\n", "invalid YAML"),
])
def test_a_recipe_that_is_not_a_mapping_is_one_line_naming_the_file(tmp_path, text, message):
    from rlspoof.trainers.run import recipe_method

    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    for parse in (lambda: load_recipe(path, TYPES), lambda: recipe_method(path, [])):
        with pytest.raises(ConfigError, match=re.escape(message)) as err:
            parse()
        assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_binary_recipe_or_a_folder_is_a_config_error(tmp_path):
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00\x81binary")
    with pytest.raises(ConfigError, match=r"bin\.yaml: not a text file"):
        load_recipe(tmp_path / "bin.yaml", TYPES)
    with pytest.raises(ConfigError, match="it is a folder"):
        load_recipe(tmp_path, TYPES)


@pytest.mark.parametrize("override", ["learning_rate=[1,", "augment=[{name: noise", "beta={a: 1"])
def test_an_unparsable_set_value_names_the_key(tmp_path, override):
    key = override.partition("=")[0]
    with pytest.raises(ConfigError, match=rf"^--set {key} is not valid YAML \(line 1, column \d+: ") as err:
        load_recipe(_write(tmp_path, GRPO_RECIPE), TYPES, [override])
    assert "\n" not in str(err.value)


def test_set_values_are_yaml_like_the_recipe(tmp_path):
    path = _write(tmp_path, GRPO_RECIPE)
    model, data, cfg = load_recipe(path, TYPES, [
        "train_manifest=[a.csv, b.csv]",  # a list for a field that parses its own YAML
        "reward_weights=[3, 1]",  # a list field: the values are spread
        "augment=[{name: noise, snr_db: [5, 20]}]",
        "output_dir=-odd-name",  # a value that starts with "-" is still a value
        "encoder_preset=null", f"model_name_or_path={tmp_path}",  # null unsets a recipe key
        'run_name="@exp 1"',  # quoted as in YAML (@ cannot start a plain YAML string)
    ])
    assert data.train_manifests() == ["a.csv", "b.csv"]
    assert cfg.reward_weights == [3.0, 1.0] and cfg.output_dir == "-odd-name"
    assert data.augment_specs() == [{"name": "noise", "snr_db": [5, 20]}]
    assert model.encoder_preset is None and model.model_name_or_path == str(tmp_path)
    assert cfg.run_name == "@exp 1"


def test_null_for_a_field_that_needs_a_value_names_the_line_or_the_override(tmp_path):
    path = _write(tmp_path, {**GRPO_RECIPE, "max_steps": None})
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if text.startswith("max_steps:"))
    with pytest.raises(ConfigError, match=rf"grpo\.yaml:{line}: max_steps: cannot be null"):
        load_recipe(path, TYPES)
    with pytest.raises(ConfigError, match=r"^--set beta: cannot be null"):
        load_recipe(_write(tmp_path, GRPO_RECIPE), TYPES, ["beta="])


@pytest.mark.parametrize(("augment", "message"), [
    ("{name: rawboost}", "augment must be a list of specs"),
    ("[noise]", "augment: augmentation spec #0 must be a mapping, got 'noise'"),
    ("[{p: 0.5}]", "augment: augmentation spec #0 has no 'name'"),
    ("[{name: rawboost, algo: 12}]", "augment: augmentation spec #0 (rawboost): RawBoost algo must be one of"),
    ("[{name: noise, snr_db: loud}]", "augment: augmentation spec #0 (noise): could not convert string"),
    ("[{name: noise, snr_db: .nan}]", "augment: augmentation 'noise': snr_db must be finite"),
    ("[{name: rawboost, params: {nBands: x}}]", "augment: augmentation 'rawboost': params:"),
    ("[{name: noise}", "grpo.yaml:21: invalid YAML (expected ',' or ']'"),
])
def test_a_malformed_augment_spec_fails_when_the_recipe_is_read(tmp_path, augment, message):
    path = _write(tmp_path, GRPO_RECIPE)
    path.write_text(path.read_text() + f"augment: {augment}\n")  # as a user writes it
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        load_recipe(path, TYPES)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("fields", "message"), [
    ({"crop_seconds": float("nan")}, "crop_seconds must be positive, got nan"),
    ({"crop_seconds": float("inf")}, "crop_seconds must be positive, got inf"),
    ({"eval_crop_seconds": 0.0}, "eval_crop_seconds must be positive"),
    ({"train_manifest": {"a.csv": 1}}, "train_manifest must be a path or a list of paths"),
    ({"augment": "[{name: noise}]"}, "(a YAML list, not a quoted string)"),
    ({"mix_by": "attack", "mix_weights": [1, 2]}, "mix_weights must be a mapping"),
])
def test_data_arguments_refuse_non_finite_and_unparsable_values(fields, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        DataArguments(**fields)


def test_output_dir_checks_protect_the_start_and_a_finished_run(tmp_path):
    from rlspoof.recipe import check_output_dir

    start, run = tmp_path / "start", tmp_path / "run"
    start.mkdir()
    for out, where in ((start, "is"), (start / "sub", "is inside"), (tmp_path, "contains")):
        with pytest.raises(ConfigError, match=f"output_dir {out} {where} model_name_or_path"):
            check_output_dir(out, "model.safetensors", start=start, overwrite=True)
    check_output_dir(run, "model.safetensors", start=start)  # a new folder
    check_output_dir(tmp_path, "model.safetensors", start="org/hub-model")  # a hub id is not a path here
    run.mkdir()
    (run / "model.safetensors").write_bytes(b"weights")
    with pytest.raises(ConfigError, match="holds a finished run .*overwrite_output_dir: true"):
        check_output_dir(run, "model.safetensors", start=start)
    check_output_dir(run, "model.safetensors", resuming=True)
    check_output_dir(run, "model.safetensors", overwrite=True)
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        check_output_dir(run / "model.safetensors", "model.safetensors")
