"""The search-space declaration language: sampling, mutation, validation and converters."""

import numpy as np
import pytest

from spaces.errors import UserError
from spaces.hparams import BasisMixture, Categorical, Float, Integer, SearchSpace

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def mixed_space() -> SearchSpace:
    return SearchSpace([
        Categorical("op", OPS),
        Categorical("channels", tuple(range(8, 65, 8))),
        Integer("layers", 1, 20),
        Integer("batch", 16, 512, log=True),
        Float("lr", 1e-4, 1.0, log=True),
        Float("momentum", 0.0, 0.99),
        BasisMixture("wd", (5e-4, 1e-5, 1e-3)),
    ])


def test_sample_is_deterministic_valid_and_keeps_python_types():
    space = mixed_space()
    a = [space.sample(np.random.default_rng(3)) for _ in range(2)]
    assert a[0] == a[1]
    assert space.sample(np.random.default_rng(4)) != a[0]
    rng = np.random.default_rng(0)
    for _ in range(200):
        cfg = space.sample(rng)
        assert list(cfg) == list(space.names)
        assert space.validate(cfg) == cfg
        assert type(cfg["op"]) is str and type(cfg["channels"]) is int
        assert type(cfg["layers"]) is int and type(cfg["batch"]) is int
        assert type(cfg["lr"]) is float and type(cfg["wd"]) is float
        assert 1e-5 <= cfg["wd"] <= 1e-3


def test_sampling_is_uniform_over_choices_and_log_spaced():
    rng = np.random.default_rng(1)
    space = mixed_space()
    draws = [space.sample(rng) for _ in range(5000)]
    counts = np.array([sum(d["op"] == op for d in draws) for op in OPS])
    assert counts.min() > 900 and counts.max() < 1100
    # log-uniform on [1e-4, 1]: a quarter of the mass below 1e-3
    assert 0.22 < np.mean([d["lr"] < 1e-3 for d in draws]) < 0.28
    batches = {d["batch"] for d in draws}
    assert 16 in batches and 512 in batches


def test_mutate_changes_exactly_one_parameter():
    space = mixed_space()
    rng = np.random.default_rng(7)
    changed_names = set()
    for _ in range(500):
        cfg = space.sample(rng)
        new = space.mutate(cfg, rng)
        diff = [n for n in space.names if new[n] != cfg[n]]
        assert len(diff) == 1
        changed_names.update(diff)
        assert space.validate(new) == new
    assert changed_names == set(space.names)


def test_mutate_skips_single_valued_parameters_and_refuses_a_frozen_space():
    space = SearchSpace([Categorical("a", ("x",)), Integer("n", 3, 3), Categorical("b", (1, 2))])
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert space.mutate({"a": "x", "n": 3, "b": 1}, rng) == {"a": "x", "n": 3, "b": 2}
    frozen = SearchSpace([Categorical("a", ("x",))])
    with pytest.raises(UserError, match="single value"):
        frozen.mutate({"a": "x"}, rng)


def test_validate_converts_library_types_back():
    space = mixed_space()
    cfg = {"op": np.str_("none"), "channels": np.int64(16), "layers": np.int32(3),
           "batch": 32.0, "lr": np.float32(0.5), "momentum": 0, "wd": 1e-4}
    out = space.validate(cfg)
    assert type(out["op"]) is str and type(out["channels"]) is int
    assert type(out["layers"]) is int and type(out["batch"]) is int
    assert type(out["lr"]) is float and type(out["momentum"]) is float


@pytest.mark.parametrize("patch, message", [
    ({"op": "conv_5x5"}, "not a valid value of 'op'"),
    ({"channels": "16"}, "not a valid value of 'channels'"),
    ({"channels": True}, "not a valid value of 'channels'"),
    ({"layers": 2.5}, "'layers' must be an integer"),
    ({"layers": 21}, r"'layers' must lie in \[1, 20\]"),
    ({"lr": float("nan")}, "must be finite"),
    ({"lr": 2.0}, r"'lr' must lie in"),
    ({"momentum": "high"}, "must be a number"),
    ({"wd": 0.1}, r"'wd' must lie in"),
    ({"typo": 1}, r"unknown parameter\(s\) \['typo'\]"),
    ({"fidelity": 12}, r"unknown parameter\(s\) \['fidelity'\]"),
])
def test_validate_rejects_bad_configs_with_clear_messages(patch, message):
    space = mixed_space()
    cfg = {**space.sample(np.random.default_rng(0)), **patch}
    with pytest.raises(UserError, match=message):
        space.validate(cfg)


def test_validate_clamps_float_rounding_at_the_bounds():
    space = mixed_space()
    cfg = {**space.sample(np.random.default_rng(0)), "lr": 1.0 + 1e-15, "momentum": -1e-17}
    out = space.validate(cfg)
    assert (out["lr"], out["momentum"]) == (1.0, 0.0)


def test_validate_rejects_missing_names_and_non_dicts():
    space = mixed_space()
    cfg = space.sample(np.random.default_rng(0))
    del cfg["lr"]
    with pytest.raises(UserError, match=r"lacks parameter\(s\) \['lr'\]"):
        space.validate(cfg)
    with pytest.raises(UserError, match="must be a dict"):
        space.validate(["none"] * 7)
    with pytest.raises(UserError, match="unknown parameter 'nope'"):
        space["nope"]


@pytest.mark.parametrize("make, message", [
    (lambda: Categorical("a", ()), "at least one choice"),
    (lambda: Categorical("a", "abc"), "tuple or list"),
    (lambda: Categorical("a", (1, 1)), "duplicates"),
    (lambda: Categorical("a", ([1], 2)), "must be a Python str, int, float or bool"),
    (lambda: Categorical("", (1, 2)), "non-empty string"),
    (lambda: Categorical("fidelity", (1, 2)), "reserved"),
    (lambda: Integer("n", 5, 1), "must not exceed"),
    (lambda: Integer("n", 1.5, 3), "must be an integer"),
    (lambda: Integer("n", 0, 3, log=True), "needs low > 0"),
    (lambda: Float("x", 1.0, 1.0), "needs low < high"),
    (lambda: Float("x", 0.0, float("inf")), "must be finite"),
    (lambda: Float("x", "0", 1.0), "must be a number"),
    (lambda: BasisMixture("w", (0.1,)), "at least two distinct"),
    (lambda: BasisMixture("w", (0.1, 0.1)), "at least two distinct"),
    (lambda: SearchSpace([]), "at least one parameter"),
    (lambda: SearchSpace([Integer("n", 1, 2), Integer("n", 1, 3)]), r"repeated: \['n'\]"),
    (lambda: SearchSpace(["n"]), "takes Categorical"),
])
def test_bad_declarations_raise_user_errors(make, message):
    with pytest.raises(UserError, match=message):
        make()


def test_basis_mixture_round_trips_between_weights_and_value():
    p = BasisMixture("wd", (5e-4, 1e-5, 1e-3))
    assert (p.low, p.high) == (1e-5, 1e-3)
    w = p.value_to_weights(7e-4)
    np.testing.assert_allclose(w, [0.6, 0.0, 0.4])  # neighbours 5e-4 and 1e-3, basis order kept
    assert p.weights_to_value(w) == pytest.approx(7e-4)
    np.testing.assert_allclose(p.value_to_weights(1e-5), [0, 1, 0])
    np.testing.assert_allclose(p.value_to_weights(1e-3), [0, 0, 1])
    assert p.weights_to_value([1 / 3] * 3) == pytest.approx((5e-4 + 1e-5 + 1e-3) / 3)
    rng = np.random.default_rng(0)
    for _ in range(100):
        v = p.sample(rng)
        w = p.value_to_weights(v)
        assert w.min() >= 0 and w.sum() == pytest.approx(1) and (w > 0).sum() <= 2
        assert p.weights_to_value(w) == pytest.approx(v)
    with pytest.raises(UserError, match="sum to 1"):
        p.weights_to_value([0.5, 0.5, 0.5])
    with pytest.raises(UserError, match="needs 3 weights"):
        p.weights_to_value([0.5, 0.5])
    with pytest.raises(UserError, match="must lie in"):
        p.value_to_weights(1.0)


def test_configspace_conversion_samples_valid_configs():
    space = mixed_space()
    cs = space.to_configspace(seed=0)
    assert sorted(cs.keys()) == sorted(space.names)
    for _ in range(50):
        raw = dict(cs.sample_configuration())
        cfg = space.validate(raw)
        assert type(cfg["channels"]) is int and type(cfg["op"]) is str
    assert dict(space.to_configspace(seed=5).sample_configuration()) == \
        dict(space.to_configspace(seed=5).sample_configuration())


def test_optuna_and_tune_conversions_describe_the_same_ranges():
    from ray.tune.search import sample as tune_sample

    space = mixed_space()
    dists = space.to_optuna()
    assert dists["channels"].choices == tuple(range(8, 65, 8))
    assert (dists["batch"].low, dists["batch"].high, dists["batch"].log) == (16, 512, True)
    assert (dists["wd"].low, dists["wd"].high, dists["wd"].log) == (1e-5, 1e-3, False)
    tune_space = space.to_tune()
    assert isinstance(tune_space["op"], tune_sample.Categorical)
    assert list(tune_space["op"].categories) == list(OPS)
    assert (tune_space["layers"].lower, tune_space["layers"].upper) == (1, 21)  # exclusive
    assert isinstance(tune_space["lr"].get_sampler(), tune_sample.LogUniform)


def test_space_container_protocol():
    space = mixed_space()
    assert len(space) == 7 and "lr" in space and "fidelity" not in space
    assert [p.name for p in space] == list(space.names)
    assert space["op"].choices == OPS
    assert space == mixed_space() and hash(space) == hash(mixed_space())
    assert space["op"].index("nor_conv_3x3") == 3
