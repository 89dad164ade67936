"""Reward functions, their registry and weighted combination (rlspoof.rewards).

Convention everywhere: action / label 0 = bonafide, 1 = spoof. Expected values are computed by
hand in the comments; the cost-weighted reward is cross-checked against rlspoof.metrics.dcf.
"""

from __future__ import annotations

import doctest
import math
import textwrap

import numpy as np
import pytest
import torch

import rlspoof.rewards as rewards
import rlspoof.rewards.functions as functions_module
import rlspoof.rewards.registry as registry_module
from rlspoof.data.manifest import LABEL2ID
from rlspoof.errors import ConfigError
from rlspoof.metrics import DCFParams, act_dcf
from rlspoof.rewards import (
    REWARD_FUNCS,
    compute_rewards,
    confidence_reward,
    correctness_reward,
    cost_weighted_reward,
    get_reward_func,
    make_reward,
    register_reward,
    resolve_rewards,
)

A = torch.tensor  # brevity in hand-built cases


@pytest.fixture
def clean_registry():
    """Restore REWARD_FUNCS after a test that registers functions."""
    before = dict(REWARD_FUNCS)
    yield
    REWARD_FUNCS.clear()
    REWARD_FUNCS.update(before)


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A user's reward module on sys.path: ``my_rewards_mod`` with a few functions."""
    (tmp_path / "my_rewards_pkg").mkdir()
    (tmp_path / "my_rewards_pkg" / "__init__.py").write_text("")
    (tmp_path / "my_rewards_pkg" / "mod.py").write_text(
        textwrap.dedent(
            """
            import torch

            NOT_CALLABLE = 3

            def spoof_bonus(actions, labels, *, bonus=2.0, **kwargs):
                return (actions == 1).float() * bonus

            def no_kwargs(actions, labels):
                return actions.float()

            class Holder:
                @staticmethod
                def nested(actions, labels, **kwargs):
                    return -actions.float()
            """
        )
    )
    (tmp_path / "broken_rewards_mod.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_rewards_pkg.mod"


def test_label_convention_matches_manifest():
    assert LABEL2ID == {"bonafide": rewards.BONAFIDE_ACTION, "spoof": rewards.SPOOF_ACTION}


# ------------------------------------------------------------------------------ correctness


def test_correctness_hand_values_and_ignores_unknown_kwargs():
    actions = A([[0, 1, 1], [1, 0, 0]])
    labels = A([1, 0])
    r = correctness_reward(
        actions, labels, probs=torch.rand(2, 2), attack=["A01", "-"], utt_id=["x", "y"]
    )
    assert r.dtype == torch.float32
    assert r.tolist() == [[0.0, 1.0, 1.0], [0.0, 1.0, 1.0]]
    r = correctness_reward(actions, labels, wrong=-1.0, right=0.5)
    assert r.tolist() == [[-1.0, 0.5, 0.5], [-1.0, 0.5, 0.5]]


@pytest.mark.parametrize(
    "actions, labels, match",
    [
        (A([0, 1]), A([0, 1]), r"actions must have shape \(B, G\)"),
        (A([[0, 1]]), A([0, 1]), r"labels must have shape \(B,\) = \(1,\)"),
        (A([[0, 2]]), A([0]), "actions must be 0 .* got 2"),
        (A([[0, 1]]), A([-1]), "labels must be 0 .* got -1"),
    ],
)
def test_builtins_reject_bad_layouts(actions, labels, match):
    for fn in (correctness_reward, cost_weighted_reward):
        with pytest.raises(ValueError, match=match):
            fn(actions, labels)


# ---------------------------------------------------------------------------- cost-weighted


def test_cost_weighted_hand_values_unbalanced_batch():
    # ASVspoof 5 defaults: p_spoof=.05, c_miss=1, c_fa=10, normaliser min(.95, .5) = .5.
    # Batch: 1 bonafide, 3 spoof -> f_bona = .25, f_spoof = .75.
    # miss (spoof on bonafide)        -> -1 * .95 / .5 / .25 = -7.6
    # false alarm (bonafide on spoof) -> -10 * .05 / .5 / .75 = -4/3
    actions = A([[1, 0], [0, 1], [1, 1], [0, 0]])
    labels = A([0, 1, 1, 1])
    r = cost_weighted_reward(actions, labels, attack=["-", "A01", "A02", "A03"])
    expected = [[-7.6, 0.0], [-4 / 3, 0.0], [0.0, 0.0], [-4 / 3, -4 / 3]]
    np.testing.assert_allclose(r.numpy(), expected, rtol=1e-6)
    # Mean reward = -DCF: FRR = 1/2, FAR = 3/6 -> (.95 * .5 + .5 * .5) / .5 = 1.45.
    assert float(r.mean()) == pytest.approx(-1.45, rel=1e-6)


def test_cost_weighted_follows_the_dcf_miss_convention():
    # p_spoof = .5, c_miss = 1, c_fa = 10: accepting a spoof must cost 10x rejecting a bonafide.
    actions = A([[1], [0]])  # reject the bonafide (miss), accept the spoof (false alarm)
    labels = A([0, 1])
    r = cost_weighted_reward(actions, labels, c_miss=1.0, c_fa=10.0, p_spoof=0.5)
    miss, false_alarm = r[0, 0].item(), r[1, 0].item()
    assert miss < 0 and false_alarm < 0
    assert false_alarm == pytest.approx(10 * miss)
    # Correct decisions are free.
    assert cost_weighted_reward(A([[0], [1]]), labels).tolist() == [[0.0], [0.0]]


def test_cost_weighted_fixed_data_fraction_ignores_batch_composition():
    # data_p_spoof = .5 with ASVspoof 5 costs: miss -> -.95/.5/.5 = -3.8, FA -> -.5/.5/.5 = -2.
    kw = {"data_p_spoof": 0.5}
    r1 = cost_weighted_reward(A([[1, 0]]), A([0]), **kw)  # all-bonafide batch
    r2 = cost_weighted_reward(A([[1, 0], [0, 0], [1, 1]]), A([0, 1, 1]), **kw)
    np.testing.assert_allclose(r1.numpy(), [[-3.8, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(r2.numpy(), [[-3.8, 0.0], [-2.0, -2.0], [0.0, 0.0]], rtol=1e-6)
    # On a batch whose fraction matches, fixed and batch fractions agree.
    balanced = (A([[1, 0], [0, 0]]), A([0, 1]))
    torch.testing.assert_close(
        cost_weighted_reward(*balanced, data_p_spoof=0.5), cost_weighted_reward(*balanced)
    )


@pytest.mark.parametrize(
    "params", [DCFParams(), DCFParams(p_spoof=0.3, c_miss=2.0, c_fa=3.0), DCFParams(p_spoof=0.9)]
)
def test_cost_weighted_mean_is_minus_act_dcf_at_each_threshold(params):
    # G columns = G decision thresholds applied to the same scores ("bonafide if score > t",
    # as in rlspoof.metrics.dcf). Each column's mean reward must equal -actDCF at its threshold.
    gen = np.random.default_rng(0)
    n_bona, n_spoof = 7, 23
    bona = gen.normal(1.0, 1.0, n_bona)
    spoof = gen.normal(-1.0, 1.0, n_spoof)
    scores = np.concatenate([bona, spoof])
    labels = torch.tensor([0] * n_bona + [1] * n_spoof)
    thresholds = [-np.inf, -1.5, -0.642, 0.0, 0.3, 1.2, np.inf]
    actions = torch.tensor(np.stack([(scores <= t).astype(np.int64) for t in thresholds], axis=1))
    r = cost_weighted_reward(
        actions, labels, c_miss=params.c_miss, c_fa=params.c_fa, p_spoof=params.p_spoof
    )
    got = r.double().mean(dim=0).numpy()
    want = [-act_dcf(bona, spoof, params, threshold=t) for t in thresholds]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    # Sanity of the cross-check itself: the thresholds give distinct, non-trivial costs.
    assert len({round(w, 6) for w in want}) >= 5
    # Accept-everything costs the normalised FA weight (1 for ASVspoof 5), as in dcf.py.
    assert got[0] == pytest.approx(-params.cost(0.0, 1.0))


def test_cost_weighted_expected_reward_under_policy_is_minus_soft_dcf():
    # Enumerate both actions for every utterance and weight by the policy's probabilities:
    # E[r] = -DCF(FRR = mean P(spoof | bona), FAR = mean P(bona | spoof)).
    gen = torch.Generator().manual_seed(3)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 1, 1, 1, 1])
    probs = torch.softmax(torch.randn(10, 2, generator=gen), dim=1)
    actions = torch.tensor([[0, 1]]).repeat(10, 1)
    params = DCFParams(p_spoof=0.2, c_miss=1.0, c_fa=4.0)
    r = cost_weighted_reward(
        actions, labels, c_miss=params.c_miss, c_fa=params.c_fa, p_spoof=params.p_spoof
    )
    # Expectation over the full batch of B*G decisions (column mean weighted by probs * G).
    expected_reward = (probs.double() * r.double()).sum(dim=1).mean().item()
    frr = probs[labels == 0, 1].double().mean().item()
    far = probs[labels == 1, 0].double().mean().item()
    assert expected_reward == pytest.approx(-params.cost(frr, far), rel=1e-6)
    # And a Monte-Carlo check with the trainer's sampling layout (B, G) converges to it.
    g = 4000
    sampled = torch.multinomial(probs, g, replacement=True, generator=gen)
    mc = cost_weighted_reward(
        sampled, labels, c_miss=params.c_miss, c_fa=params.c_fa, p_spoof=params.p_spoof
    )
    assert mc.double().mean().item() == pytest.approx(expected_reward, abs=0.03)


def test_cost_weighted_single_class_batch_is_finite():
    r = cost_weighted_reward(A([[1, 0, 1]]), A([0]))
    # Only bonafide: misses cost .95 / .5 / 1 = 1.9.
    np.testing.assert_allclose(r.numpy(), [[-1.9, 0.0, -1.9]], rtol=1e-6)
    r = cost_weighted_reward(A([[0, 1]]), A([1]))
    np.testing.assert_allclose(r.numpy(), [[-1.0, 0.0]], rtol=1e-6)


@pytest.mark.parametrize(
    "bad", [{"c_fa": 0.0}, {"c_miss": -1.0}, {"p_spoof": 1.0}, {"data_p_spoof": 0.0}]
)
def test_cost_weighted_rejects_bad_settings(bad):
    with pytest.raises(ValueError):
        cost_weighted_reward(A([[0]]), A([0]), **bad)
    with pytest.raises(ConfigError, match="cost_weighted"):
        get_reward_func("cost_weighted", **bad)


# ------------------------------------------------------------------------------- confidence


def test_confidence_hand_values():
    actions = A([[0, 1, 0], [0, 1, 1]])
    labels = A([0, 1])
    probs = A([[0.9, 0.1], [0.3, 0.7]])
    r = confidence_reward(actions, labels, probs=probs, attack=["-", "A07"])
    # Row 0 (bonafide): correct 0 -> +.9, wrong 1 -> -.1 (an unsure mistake costs little).
    # Row 1 (spoof): wrong 0 -> -.3, correct 1 -> +.7.
    np.testing.assert_allclose(r.numpy(), [[0.9, -0.1, 0.9], [-0.3, 0.7, 0.7]], rtol=1e-6)
    # A confident mistake costs the most.
    assert confidence_reward(A([[1]]), A([0]), probs=A([[0.05, 0.95]])).item() == pytest.approx(
        -0.95
    )


def test_confidence_expected_reward_is_affine_in_accuracy():
    probs = A([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    labels = A([1, 1, 0])
    r = confidence_reward(A([[0, 1]] * 3), labels, probs=probs)
    expected = (probs * r).sum(dim=1)
    p_correct = probs.gather(1, labels[:, None]).squeeze(1)
    torch.testing.assert_close(expected, 2 * p_correct - 1)


def test_confidence_needs_valid_probs():
    with pytest.raises(ValueError, match="confidence_reward needs probs"):
        confidence_reward(A([[0]]), A([0]))
    with pytest.raises(ValueError, match=r"probs must have shape \(2, 2\)"):
        confidence_reward(A([[0], [1]]), A([0, 1]), probs=A([[0.5, 0.5]]))
    with pytest.raises(ValueError, match="finite and in"):
        confidence_reward(A([[0]]), A([0]), probs=A([[float("nan"), 0.5]]))


# ---------------------------------------------------------------------- factories / registry


def test_registered_names():
    assert {"correctness", "cost_weighted", "confidence"} <= set(REWARD_FUNCS)
    assert REWARD_FUNCS["correctness"] is correctness_reward
    assert get_reward_func("confidence") is confidence_reward


def test_make_reward_binds_settings_and_keeps_name():
    fn = make_reward("cost_weighted", c_fa=1.0, p_spoof=0.5)
    assert fn.__name__ == "cost_weighted_reward"
    # c_miss = c_fa = 1, p_spoof = .5, balanced batch: every error costs .5 / .5 / .5 = 2.
    assert fn(A([[1], [0]]), A([0, 1])).tolist() == [[-2.0], [-2.0]]
    # The unbound default differs (c_fa = 10), so the setting really was bound.
    assert cost_weighted_reward(A([[1], [0]]), A([0, 1]), p_spoof=0.5).tolist() != [[-2.0], [-2.0]]
    assert make_reward(correctness_reward, right=2.0)(A([[1]]), A([1])).tolist() == [[2.0]]
    assert make_reward("correctness") is correctness_reward


def test_unknown_setting_is_a_config_error_listing_valid_settings():
    with pytest.raises(ConfigError, match="c_FA.*valid: c_miss, c_fa, p_spoof, data_p_spoof"):
        make_reward("cost_weighted", c_FA=10)
    with pytest.raises(ConfigError, match="no setting"):
        make_reward("correctness", probs_scale=1.0)


def test_unknown_name_lists_valid_names_and_suggests():
    with pytest.raises(ConfigError) as exc:
        get_reward_func("cost_weigthed")
    msg = str(exc.value)
    assert "'cost_weigthed'" in msg
    assert "did you mean 'cost_weighted'" in msg
    for name in ("confidence", "correctness", "cost_weighted"):
        assert name in msg
    with pytest.raises(ConfigError) as exc:
        get_reward_func("zzz")
    assert "did you mean" not in str(exc.value) and "correctness" in str(exc.value)


@pytest.mark.parametrize("sep", [":", "."])
def test_dotted_path_loads_user_function(user_module, sep):
    fn = get_reward_func(f"{user_module}{sep}spoof_bonus", bonus=3.0)
    assert fn.__name__ == "spoof_bonus"
    assert fn(A([[0, 1]]), A([0]), probs=None, attack=["-"]).tolist() == [[0.0, 3.0]]
    nested = get_reward_func(f"{user_module}:Holder.nested")
    assert nested(A([[1, 0]]), A([1])).tolist() == [[-1.0, 0.0]]


def test_bad_dotted_paths_are_config_errors_naming_them(user_module):
    cases = {
        "no_such_pkg_xyz.mod:fn": "cannot import module 'no_such_pkg_xyz.mod'",
        "broken_rewards_mod:fn": "boom at import",
        f"{user_module}:missing": "has no attribute 'missing'",
        f"{user_module}.NOT_CALLABLE": "is not callable",
        f"{user_module}:no_kwargs": r"must accept \*\*kwargs",
        f"{user_module}:": "expected 'package.module:function'",
    }
    for path, match in cases.items():
        with pytest.raises(ConfigError, match=match) as exc:
            get_reward_func(path)
        assert path in str(exc.value)
    with pytest.raises(ConfigError, match="no setting.*valid: bonus"):
        get_reward_func(f"{user_module}:spoof_bonus", bonsu=1.0)


def test_register_reward_decorator(clean_registry):
    @register_reward("spoof_always")
    def spoof_always(actions, labels, **_):
        return (actions == 1).float()

    assert REWARD_FUNCS["spoof_always"] is spoof_always
    funcs, _ = resolve_rewards(["spoof_always"])
    assert funcs[0][1](A([[1, 0]]), A([0])).tolist() == [[1.0, 0.0]]

    with pytest.raises(ValueError, match="already registered"):
        register_reward("spoof_always")(lambda actions, labels, **_: actions.float())
    register_reward("spoof_always", overwrite=True)(correctness_reward)
    assert REWARD_FUNCS["spoof_always"] is correctness_reward
    for bad in ("my.reward", "pkg:fn", ""):
        with pytest.raises(ValueError, match="without '.' or ':'"):
            register_reward(bad)


def test_clean_registry_fixture_restored():
    assert "spoof_always" not in REWARD_FUNCS


# ------------------------------------------------------------------------- resolve_rewards


def test_resolve_rewards_defaults_and_settings():
    settings = {"cost_weighted": {"c_fa": 3.0, "p_spoof": 0.5}}
    funcs, w = resolve_rewards(["correctness", "cost_weighted"], None, settings)
    assert [n for n, _ in funcs] == ["correctness", "cost_weighted"]
    assert w.dtype == torch.float32 and w.tolist() == [1.0, 1.0]
    # Balanced batch, normaliser min(.5, 1.5) = .5: FA -> 1.5 / .5 / .5 = 6, miss -> .5 / .5 / .5 = 2.
    # (With the default costs the false alarm would cost 2, not 6.)
    actions, labels = A([[0], [1]]), A([1, 0])
    assert funcs[1][1](actions, labels).tolist() == [[-6.0], [-2.0]]
    assert cost_weighted_reward(actions, labels).tolist()[0] == [-2.0]
    funcs, w = resolve_rewards("confidence", [0.25])
    assert [n for n, _ in funcs] == ["confidence"] and w.tolist() == [0.25]


def test_resolve_rewards_errors():
    with pytest.raises(ConfigError, match=r"got 1 reward weight\(s\) for 2 reward function\(s\)"):
        resolve_rewards(["correctness", "confidence"], [1.0])
    with pytest.raises(ConfigError, match=r"got 3 reward weight\(s\) for 2"):
        resolve_rewards(["correctness", "confidence"], [1.0, 2.0, 3.0])
    with pytest.raises(ConfigError, match="'confidence', which is not among"):
        resolve_rewards(["correctness"], None, {"confidence": {}})
    with pytest.raises(ConfigError, match="listed twice: correctness"):
        resolve_rewards(["correctness", "correctness"])
    with pytest.raises(ConfigError, match="no reward functions"):
        resolve_rewards([])
    with pytest.raises(ConfigError, match="finite"):
        resolve_rewards(["correctness"], [math.nan])
    with pytest.raises(ConfigError, match="unknown reward function 'corectness'"):
        resolve_rewards(["corectness"])


# ------------------------------------------------------------------------- compute_rewards


def test_compute_rewards_weighted_sum_and_kwargs_passthrough():
    seen = {}

    def spy(actions, labels, **kwargs):
        seen.update(kwargs)
        return torch.ones(actions.shape, dtype=torch.int64)  # ints are cast to float

    funcs, w = resolve_rewards(["correctness", "confidence"], [2.0, -1.0])
    funcs.append(("spy", spy))
    w = torch.cat([w, torch.tensor([0.5])])
    actions = A([[0, 1], [1, 1]])
    labels = A([0, 1])
    probs = A([[0.75, 0.25], [0.5, 0.5]])
    total, per = compute_rewards(
        funcs, w, actions, labels, probs=probs, attack=["-", "A01"], utt_id=["u1", "u2"]
    )
    assert set(per) == {"correctness", "confidence", "spy"}
    assert per["correctness"].tolist() == [[1.0, 0.0], [1.0, 1.0]]
    assert per["confidence"].tolist() == [[0.75, -0.25], [0.5, 0.5]]
    assert per["spy"].dtype == torch.float32
    # total = 2 * correctness - 1 * confidence + .5 * 1
    assert total.tolist() == [[1.75, 0.75], [2.0, 2.0]]
    assert seen["attack"] == ["-", "A01"] and seen["utt_id"] == ["u1", "u2"]
    assert seen["probs"] is probs


def test_compute_rewards_errors_name_the_function():
    actions, labels = A([[0, 1], [1, 1]]), A([0, 1])

    def wrong_shape(actions, labels, **_):
        return torch.zeros(actions.shape[0])

    def has_nan(actions, labels, **_):
        out = torch.zeros(actions.shape)
        out[1, 0] = float("nan")
        return out

    def has_inf(actions, labels, **_):
        return torch.full(actions.shape, float("inf"))

    def not_tensor(actions, labels, **_):
        return [[0.0, 0.0], [0.0, 0.0]]

    cases = [
        ("wrong_shape", wrong_shape, r"'wrong_shape' returned shape \(2,\), expected \(2, 2\)"),
        ("has_nan", has_nan, r"'has_nan' returned 1 non-finite"),
        ("has_inf", has_inf, r"'has_inf' returned 4 non-finite"),
        ("not_tensor", not_tensor, r"'not_tensor' returned list"),
    ]
    for name, fn, match in cases:
        funcs = [("correctness", correctness_reward), (name, fn)]
        with pytest.raises(ValueError, match=match):
            compute_rewards(funcs, torch.ones(2), actions, labels)
    with pytest.raises(ValueError, match=r"got 1 reward weight\(s\) for 2"):
        compute_rewards(
            [("a", correctness_reward), ("b", correctness_reward)], [1.0], actions, labels
        )
    with pytest.raises(ValueError, match=r"labels must be a \(2,\) tensor"):
        compute_rewards([("a", correctness_reward)], [1.0], actions, A([0]))


# --------------------------------------------------------------------------------- doctests


@pytest.mark.parametrize("module", [functions_module, registry_module, rewards])
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0
    if module is not rewards:
        assert result.attempted >= 5


def test_all_exports_exist():
    for name in rewards.__all__:
        assert hasattr(rewards, name), name
    for name in (
        "make_reward",
        "get_reward_func",
        "resolve_rewards",
        "compute_rewards",
        "register_reward",
    ):
        assert name in rewards.__all__
