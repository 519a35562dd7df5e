"""Multi-trial searchers: the ask/tell contract, determinism, exact resume and that they learn."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from orchestrator.searchers import FIDELITY, FINISHED, SEARCHERS, make_searcher, searcher_class
from orchestrator.searchers.bohb import hyperband_budgets
from orchestrator.searchers.reinforce import Adam, MovingAverageBaseline
from spaces.errors import UserError
from spaces.hparams import Categorical, Float, Integer, SearchSpace

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ("edge_1_0", "edge_2_0", "edge_2_1", "edge_3_0", "edge_3_1", "edge_3_2")
TSS_LIKE = SearchSpace([Categorical(e, OPS) for e in EDGES])
# A separable objective with one interaction, fixed once: learnable but not trivial.
_W = np.random.default_rng(123).normal(0.0, 1.0, size=(len(EDGES), len(OPS)))
FAST_KNOBS = {"bohb": {"min_fidelity": 1, "max_fidelity": 9}}  # 3 rungs: 1, 3, 9 epochs


def objective(cfg: dict) -> float:
    """Larger is better; lower fidelities see a shrunken, shifted value (ranking preserved)."""
    ops = [OPS.index(cfg[e]) for e in EDGES]
    value = float(sum(_W[i, o] for i, o in enumerate(ops))) + (1.5 if ops[0] == ops[5] else 0.0)
    fidelity = cfg.get(FIDELITY)
    return value if fidelity is None else value * fidelity / 9 - (9 - fidelity)


class Driver:
    """Keeps ``inflight`` trials pending, like an asynchronous scheduler; every 7th tell fails."""

    def __init__(self, inflight: int = 2) -> None:
        self.inflight, self.next_id, self.pending, self.log = inflight, 0, [], []

    def run(self, searcher, steps: int) -> list:
        for _ in range(steps):
            if len(self.pending) < self.inflight:
                tid = f"t{self.next_id}"
                cfg = searcher.ask(tid)
                if isinstance(cfg, dict):
                    self.next_id += 1
                    self.pending.append((tid, cfg))
                    self.log.append(("ask", tid, cfg))
                    continue
            tid, cfg = self.pending.pop(0)
            if len(self.log) % 7 == 6:
                searcher.tell(tid, None, status="error")
                self.log.append(("fail", tid))
            else:
                value = objective(cfg)
                searcher.tell(tid, value)
                self.log.append(("tell", tid, value))
        return self.log

    def copy(self) -> Driver:
        other = Driver(self.inflight)
        other.next_id, other.pending, other.log = self.next_id, list(self.pending), list(self.log)
        return other


def build(name: str, seed: int = 0, space: SearchSpace = TSS_LIKE, **knobs):
    return make_searcher(name, space, seed, **{**FAST_KNOBS.get(name, {}), **knobs})


# ----- registry and bad input -------------------------------------------------------------
def test_registry_lists_the_five_searchers_and_flags_multi_fidelity():
    assert SEARCHERS == ("random", "rea", "reinforce", "bohb", "tpe")
    assert [searcher_class(n).multi_fidelity for n in SEARCHERS] == [False] * 3 + [True, False]
    assert all(searcher_class(n).name == n for n in SEARCHERS)


def test_unknown_searcher_name_lists_the_valid_ones():
    with pytest.raises(UserError, match="unknown searcher 'evolution'; choose one of random, rea, "
                                        "reinforce, bohb, tpe"):
        make_searcher("evolution", TSS_LIKE, 0)


def test_fidelity_knobs_reach_only_multi_fidelity_searchers():
    rea = make_searcher("rea", TSS_LIKE, 0, min_fidelity=1, max_fidelity=12, population_size=5)
    assert rea.population_size == 5
    bohb = make_searcher("bohb", TSS_LIKE, 0, min_fidelity=2, max_fidelity=18)
    assert bohb.budgets == [2, 6, 18]


@pytest.mark.parametrize("name, knobs, message", [
    ("rea", {"population": 5}, r"has no knob\(s\) \['population'\]; its knobs are"),
    ("rea", {"population_size": 0}, "population_size must be >= 1"),
    ("rea", {"sample_size": 2.5}, "sample_size must be an integer"),
    ("reinforce", {"learning_rate": -0.1}, r"learning_rate must lie in \(0.0"),
    ("reinforce", {"baseline_momentum": 1.5}, "baseline_momentum must lie in"),
    ("bohb", {"min_fidelity": 0}, "min_fidelity must be >= 1"),
    ("bohb", {"min_fidelity": 12, "max_fidelity": 4}, r"max_fidelity \(4\) must be >= min_fidelity"),
    ("bohb", {"eta": 1}, "eta must be >= 2"),
    ("bohb", {"random_fraction": 2}, "random_fraction must lie in"),
    ("bohb", {"top_n_percent": 100}, "top_n_percent must be < 100"),
    ("bohb", {"categorical_kernel_fix": 1}, "categorical_kernel_fix must be True or False"),
    ("tpe", {"multivariate": "yes"}, "multivariate must be True or False"),
    ("tpe", {"n_ei_candidates": 0}, "n_ei_candidates must be >= 1"),
    ("random", {"max_trials": 0}, "max_trials must be >= 1"),
])
def test_bad_knobs_raise_user_errors(name, knobs, message):
    with pytest.raises(UserError, match=message):
        make_searcher(name, TSS_LIKE, 0, **knobs)


def test_bad_seed_and_space_raise_user_errors():
    with pytest.raises(UserError, match="seed must be >= 0"):
        make_searcher("random", TSS_LIKE, -1)
    with pytest.raises(UserError, match="seed must be an integer"):
        make_searcher("random", TSS_LIKE, "1")
    with pytest.raises(UserError, match="needs a spaces.hparams.SearchSpace"):
        make_searcher("random", {"edge": OPS}, 0)


def test_reinforce_refuses_numeric_parameters():
    space = SearchSpace([Categorical("op", OPS), Float("lr", 1e-3, 1.0, log=True)])
    with pytest.raises(UserError, match=r"Categorical parameters only; \['lr'\]"):
        make_searcher("reinforce", space, 0)


@pytest.mark.parametrize("name", SEARCHERS)
def test_ask_tell_misuse_raises_clear_errors(name):
    s = build(name)
    cfg = s.ask("a")
    assert isinstance(cfg, dict)
    with pytest.raises(UserError, match="'a' was already asked"):
        s.ask("a")
    with pytest.raises(UserError, match="tell for trial 'zz', which was never asked"):
        s.tell("zz", 1.0)
    with pytest.raises(UserError, match="status must be one of"):
        s.tell("a", 1.0, status="crashed")
    with pytest.raises(UserError, match="value must be a number or None"):
        s.tell("a", "0.9")
    with pytest.raises(UserError, match="trial ids must be str or int"):
        s.ask(1.5)
    s.tell("a", 1.0)
    with pytest.raises(UserError, match="'a', which was already told"):
        s.tell("a", 1.0)


# ----- the contract, for every searcher ---------------------------------------------------
@pytest.mark.parametrize("name", SEARCHERS)
def test_configs_are_valid_and_same_seed_gives_same_trajectory(name):
    logs = [Driver().run(build(name, seed), 60) for seed in (7, 7, 8)]
    assert logs[0] == logs[1]
    assert logs[0] != logs[2]
    for entry in logs[0]:
        if entry[0] == "ask":
            cfg = dict(entry[2])
            fidelity = cfg.pop(FIDELITY, None)
            assert TSS_LIKE.validate(cfg) == cfg
            assert all(type(v) is str for v in cfg.values())
            assert (fidelity is not None) == searcher_class(name).multi_fidelity


@pytest.mark.parametrize("name", SEARCHERS)
def test_resume_from_a_checkpoint_continues_exactly(name):
    uninterrupted = Driver().run(build(name), 90)

    first, driver = build(name), Driver()
    driver.run(first, 50)
    state = json.loads(json.dumps(first.state_dict()))  # plain data, trial ids pending inside
    assert first.num_pending == 2
    resumed = build(name)
    resumed.load_state_dict(state)
    resumed_log = driver.copy().run(resumed, 40)
    continued_log = driver.run(first, 40)  # taking the checkpoint must not perturb the run
    assert continued_log == uninterrupted
    assert resumed_log == uninterrupted
    assert resumed.best() == first.best()
    assert resumed.state_dict() == first.state_dict()


@pytest.mark.parametrize("name", SEARCHERS)
def test_checkpoint_refuses_a_differently_configured_searcher(name):
    state = build(name, seed=1).state_dict()
    with pytest.raises(UserError, match="checkpoint has seed=1 but this searcher has 2"):
        build(name, seed=2).load_state_dict(state)
    with pytest.raises(UserError, match="checkpoint has searcher="):
        build("random" if name != "random" else "rea", seed=1).load_state_dict(state)
    with pytest.raises(UserError, match="not a searcher checkpoint"):
        build(name, seed=1).load_state_dict({"weights": []})


@pytest.mark.parametrize("name", SEARCHERS)
def test_best_is_the_top_value_at_the_highest_fidelity(name):
    s = build(name)
    assert s.best() is None
    Driver().run(s, 60)
    told = [r for r in s.history if r["value"] is not None]
    top = max(r["fidelity"] or 0 for r in told)
    expected = max((r for r in told if (r["fidelity"] or 0) == top), key=lambda r: r["value"])
    assert s.best() == expected["config"] and FIDELITY not in s.best()


@pytest.mark.parametrize("name", SEARCHERS)
def test_failures_and_nan_are_failed_evaluations(name):
    s = build(name)
    for i in range(30):
        s.ask(i)
        s.tell(i, float("nan") if i % 2 else None, status="ok")
    assert s.best() is None
    assert all(r["value"] is None for r in s.history)
    assert isinstance(s.ask(99), dict)  # still proposing


@pytest.mark.parametrize("name", SEARCHERS)
def test_searchers_leave_numpy_global_rng_alone(name):
    np.random.seed(42)
    expected = np.random.random(3)
    np.random.seed(42)
    Driver().run(build(name), 60)
    np.testing.assert_array_equal(np.random.random(3), expected)


def test_max_trials_finishes_the_search():
    s = make_searcher("random", TSS_LIKE, 0, max_trials=2)
    assert isinstance(s.ask(0), dict) and isinstance(s.ask(1), dict)
    assert s.ask(2) == FINISHED


# REINFORCE with NATS-Bench's lr 0.01 barely moves its policy in 120 steps (as in NATS-Bench,
# where it is close to random at small budgets); its learning is tested on its own below.
@pytest.mark.parametrize("name", ["rea", "bohb", "tpe"])
def test_learning_searchers_beat_random_on_a_structured_objective(name):
    def best_found(searcher_name: str, seed: int) -> float:
        s = build(searcher_name, seed, **({"min_fidelity": 9} if searcher_name == "bohb" else {}))
        for i in range(120):
            cfg = s.ask(i)
            cfg.pop(FIDELITY, None)
            s.tell(i, objective(cfg))
        return objective(s.best())

    seeds = range(6)
    mine = np.mean([best_found(name, seed) for seed in seeds])
    rand = np.mean([best_found("random", seed) for seed in seeds])
    assert mine > rand


# ----- algorithm specifics ----------------------------------------------------------------
def test_rea_fills_the_population_randomly_then_mutates_one_decision():
    s = make_searcher("rea", TSS_LIKE, 3, population_size=10, sample_size=3)
    for i in range(10):
        s.tell(i, objective(s.ask(i)))
    population = [r["config"] for r in s.history]
    for i in range(10, 40):
        child = s.ask(i)
        # one decision away from some member (it may coincide with another member by chance)
        assert 1 in [sum(child[e] != p[e] for e in EDGES) for p in population]
        s.tell(i, objective(child))
        population = population[1:] + [child]  # the oldest dies


@pytest.mark.parametrize("name", ["random", "rea", "bohb", "tpe"])
def test_searchers_handle_mixed_numeric_spaces(name):
    from spaces.hparams import BasisMixture

    space = SearchSpace([Categorical("width", (8, 16, 32)), Integer("layers", 1, 20),
                         Integer("batch", 16, 512, log=True), Float("lr", 1e-4, 1.0, log=True),
                         BasisMixture("wd", (1e-5, 5e-4, 1e-3))])
    s = make_searcher(name, space, 0, **({"min_fidelity": 3, "max_fidelity": 3}
                                         if name == "bohb" else {}))
    for i in range(40):
        cfg = s.ask(i)
        cfg.pop(FIDELITY, None)
        assert space.validate(cfg) == cfg and type(cfg["width"]) is int
        s.tell(i, -abs(math.log10(cfg["lr"]) + 2) - abs(cfg["layers"] - 7) + cfg["width"] / 32)
    if name == "bohb":
        assert s.model_based_picks > 0  # the KDE also works with continuous dimensions


def test_rea_mutates_numeric_spaces_too():
    space = SearchSpace([Integer("layers", 1, 20), Float("lr", 1e-4, 1.0, log=True)])
    s = make_searcher("rea", space, 0, population_size=3, sample_size=2)
    for i in range(20):
        cfg = s.ask(i)
        assert space.validate(cfg) == cfg
        s.tell(i, -abs(math.log10(cfg["lr"]) + 2) - abs(cfg["layers"] - 7))


def test_reinforce_policy_concentrates_on_the_rewarded_choice():
    s = make_searcher("reinforce", TSS_LIKE, 0)
    for i in range(400):
        cfg = s.ask(i)
        s.tell(i, 90.0 + sum(cfg[e] == "nor_conv_3x3" for e in EDGES))
    probs = [p[OPS.index("nor_conv_3x3")] for p in s.policy.probs()]
    assert min(probs) > 0.4  # from 0.2 (uniform over five ops)


def test_moving_average_baseline_is_bias_corrected():
    b = MovingAverageBaseline(0.9)
    b.update(80.0)
    assert b.value() == pytest.approx(80.0)
    b.update(90.0)
    assert b.value() == pytest.approx((0.9 * 0.1 * 80 + 0.1 * 90) / (0.9 * 0.1 + 0.1))


def test_numpy_adam_matches_torch_adam():
    import torch

    rng = np.random.default_rng(0)
    ours = [rng.normal(size=(3, 5))]
    theirs = torch.nn.Parameter(torch.tensor(ours[0].copy(), dtype=torch.float64))
    opt_ours, opt_theirs = Adam(ours, lr=0.01), torch.optim.Adam([theirs], lr=0.01)
    for _ in range(20):
        g = rng.normal(size=(3, 5))
        opt_ours.step([g])
        theirs.grad = torch.tensor(g)
        opt_theirs.step()
    np.testing.assert_allclose(ours[0], theirs.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_hyperband_budgets_follow_hpbandster():
    assert hyperband_budgets(1, 12, 3) == [1, 4, 12]
    assert hyperband_budgets(1, 200, 3) == [2, 7, 22, 67, 200]  # 200 / 3**4 = 2.5
    assert hyperband_budgets(12, 12, 3) == [12]
    assert hyperband_budgets(1, 2, 3) == [2]


def test_bohb_runs_hyperband_brackets_with_successive_halving():
    s = make_searcher("bohb", TSS_LIKE, 0, min_fidelity=1, max_fidelity=12)
    fidelities, rung0 = [], []
    for i in range(20):  # one HyperBand round: brackets of 9+3+1, 3+1 and 3 trials
        cfg = s.ask(i)
        fidelities.append(cfg[FIDELITY])
        if i < 9:
            rung0.append(cfg)
        if 9 <= i < 12:  # the best three of the first rung, in proposal order
            by_value = sorted(range(9), key=lambda k: -objective(rung0[k]))[:3]
            assert cfg == {**rung0[sorted(by_value)[i - 9]], FIDELITY: 4}
        s.tell(i, objective(cfg))
    assert fidelities == [1] * 9 + [4] * 3 + [12] + [4] * 3 + [12] + [12] * 3


def test_bohb_opens_brackets_or_waits_as_configured():
    s = make_searcher("bohb", TSS_LIKE, 0, max_active_brackets=1)
    for i in range(9):
        assert s.ask(i)[FIDELITY] == 1
    assert s.ask(9) is None  # the first rung is out; nothing to do until results come back
    unlimited = make_searcher("bohb", TSS_LIKE, 0)
    fidelities = [unlimited.ask(i)[FIDELITY] for i in range(12)]
    assert fidelities == [1] * 9 + [4] * 3  # the next bracket starts instead of idling


def test_bohb_proposes_from_its_kde_model_once_it_has_data():
    s = make_searcher("bohb", TSS_LIKE, 0, min_fidelity=12, max_fidelity=12)
    for i in range(60):
        cfg = s.ask(i)
        assert cfg[FIDELITY] == 12
        s.tell(i, objective(cfg))
    # A KDE needs 2 * (6 + 1) results; after that every pick must come from the model, not from
    # a silent fallback to random sampling (hpbandster logs and falls back on any exception).
    assert s.model_based_picks >= 60 - 15


def test_categorical_kde_stays_finite_and_favours_the_agreed_choice():
    from statsmodels.nonparametric.kernel_density import KDEMultivariate

    from orchestrator.searchers.bohb import CategoricalKDE

    # Column 0: five choices on which every good point agrees (statsmodels: NaN); column 1:
    # continuous, where the density must equal statsmodels' Gaussian product kernel.
    rng = np.random.default_rng(0)
    data = np.column_stack([np.full(8, 2.0), rng.random(8)])
    kde = CategoricalKDE(data, np.array([0.0, 0.2]), np.array([5, 0]), min_bandwidth=0.3)
    assert kde.bw[0] == 0.3  # statsmodels' bandwidth of a constant column is 0; floored
    agreed, other = kde.pdf([2, 0.5]), kde.pdf([3, 0.5])
    assert np.isfinite(agreed) and agreed == pytest.approx(other * 0.7 / 0.075)
    # A bandwidth past (c - 1) / c would make the kernel prefer the other choices: capped there,
    # where the kernel is flat.
    wide = CategoricalKDE(data, np.array([1.7, 0.2]), np.array([5, 0]), min_bandwidth=0.3)
    assert wide.bw[0] == pytest.approx(0.8)
    assert wide.pdf([2, 0.5]) == pytest.approx(wide.pdf([3, 0.5]))
    sm = KDEMultivariate(data[:, 1:], var_type="c", bw=[0.2])
    only_cont = CategoricalKDE(data[:, 1:], np.array([0.2]), np.array([0]), min_bandwidth=0.0)
    for x in (0.1, 0.5, 0.9):
        assert only_cont.pdf([x]) == pytest.approx(float(sm.pdf([x])))


# ----- BOHB's fast KDE model: the same numbers as hpbandster's --------------------------------
def _kde_data(rng: np.random.Generator, n: int, vartypes: np.ndarray, agree: bool) -> np.ndarray:
    """n stored configs as hpbandster holds them: choice indices, continuous values in [0, 1]."""
    cols = [rng.integers(0, t, n).astype(np.float64) if t else rng.random(n) for t in vartypes]
    data = np.column_stack(cols)
    if agree:  # every stored config agrees on dimension 0, the case statsmodels turns into NaN
        data[:, 0] = 1.0
    return data


def _kde_points(rng: np.random.Generator, data: np.ndarray, vartypes: np.ndarray, k: int) -> list:
    """Candidates as hpbandster draws them: stored configs with some dimensions redrawn."""
    points = []
    for _ in range(k):
        row = data[rng.integers(len(data))]
        points.append([(int(m) if rng.random() < 0.5 else int(rng.integers(t))) if t
                       else float(np.clip(m + rng.normal(0, 0.2), 0, 1)) for m, t in zip(row, vartypes)])
    return points


@pytest.mark.parametrize("fix", [True, False], ids=["categorical_kernel_fix", "statsmodels_kde"])
@pytest.mark.parametrize("vartypes", [[5] * 6, [8] * 5, [3, 0, 4, 0, 2]], ids=["tss", "sss", "mixed"])
def test_vectorized_densities_equal_the_scalar_pdf_bit_for_bit(fix, vartypes):
    """The densities of many candidates in one call are exactly the scalar pdf's, so the picks
    of the fast BOHB cannot differ from hpbandster's (an ulp would flip a near-tie)."""
    from statsmodels.nonparametric.kernel_density import KDEMultivariate

    from orchestrator.searchers.bohb_density import CategoricalKDE, ProductKernel

    vartypes = np.array(vartypes)
    rng = np.random.default_rng(7)
    for trial in range(12):
        n = int(rng.integers(len(vartypes) + 1, 3000))
        data = _kde_data(rng, n, vartypes, agree=trial % 3 == 0)
        bw = rng.uniform(0.0, 1.2, len(vartypes))
        if fix:
            kde = CategoricalKDE(data, bw, vartypes, min_bandwidth=float(rng.choice([0.0, 0.3])))
        else:
            kde = KDEMultivariate(data, var_type="".join("u" if t else "c" for t in vartypes),
                                  bw="normal_reference")
            kde.bw = np.clip(kde.bw, 0.3, None)
        points = _kde_points(rng, data, vartypes, 6)
        with np.errstate(all="ignore"):
            expected = np.array([float(kde.pdf(p)) for p in points])
        kernel = ProductKernel.of(kde, vartypes)
        assert (kernel._bits is not None) == bool((vartypes > 0).all())  # the table path runs
        np.testing.assert_array_equal(kernel.densities(points), expected)
        if not fix and trial % 3 == 0:
            # statsmodels' kernel on an agreed column (inf for any other choice): the failure
            # CategoricalKDE exists for, reproduced as well
            assert not np.isfinite(expected).all()


def test_bandwidth_rule_and_legacy_draws_reproduce_their_originals():
    from statsmodels.nonparametric.kernel_density import KDEMultivariate

    from orchestrator.searchers.bohb_density import normal_reference_bandwidth
    from orchestrator.searchers.legacy_draws import LegacyDraws

    rng = np.random.default_rng(3)
    for n, d in [(7, 6), (300, 5), (2500, 3)]:
        data = rng.integers(0, 5, (n, d)).astype(np.float64)
        np.testing.assert_array_equal(normal_reference_bandwidth(data),
                                      KDEMultivariate(data, var_type="u" * d, bw="normal_reference").bw)
    for seed in (0, 1, 2 ** 32 - 1, 12345):
        ours, theirs = np.random.RandomState(0), np.random.RandomState(0)
        ours.seed(seed)
        theirs.seed(seed)
        draws = LegacyDraws(ours)
        for _ in range(2000):  # more than one block of raw outputs
            n = int(rng.choice([1, 2, 5, 8, 1000, 2 ** 31]))
            if rng.random() < 0.5:
                assert draws.rand() == theirs.rand()
            else:
                assert draws.randint(n) == theirs.randint(n)


def _reference_generator(space: SearchSpace, fix: bool, **knobs):
    """hpbandster's generator as BOHB drove it before KDEModel (with CategoricalKDE when fixed)."""
    import warnings

    from hpbandster.optimizers.config_generators.bohb import BOHB as KDEGenerator

    from orchestrator.searchers.bohb_reference import FixedKDEGenerator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return (FixedKDEGenerator if fix else KDEGenerator)(space.to_configspace(seed=0), **knobs)


@pytest.mark.parametrize("fix", [True, False], ids=["categorical_kernel_fix", "statsmodels_kde"])
@pytest.mark.parametrize("space_name", ["tss", "mixed"])
def test_fast_kde_model_proposes_exactly_what_hpbandster_proposes(fix, space_name):
    """Fed the same results, KDEModel.sample(budget, seed) returns hpbandster's get_config(budget)
    after seeding numpy and ConfigSpace with that seed, for every seed, with or without a model."""
    from types import SimpleNamespace

    from orchestrator.searchers.bohb_kde import KDEModel, seeded_global_rng

    space = TSS_LIKE if space_name == "tss" else SearchSpace(
        [Categorical("width", (8, 16, 32)), Float("lr", 1e-4, 1.0, log=True), Integer("layers", 1, 9)])
    knobs = dict(top_n_percent=15, num_samples=4, random_fraction=0.2, bandwidth_factor=3.0,
                 min_bandwidth=0.3)
    reference = _reference_generator(space, fix, **knobs)
    fast = KDEModel(space, categorical_kernel_fix=fix, **knobs)
    rng = np.random.default_rng(11)
    model_based = 0
    for i in range(160):
        budget = int(rng.choice([1, 3, 9], p=[0.5, 0.3, 0.2]))
        seed = int(rng.integers(2 ** 32))
        with seeded_global_rng(seed):
            reference.configspace.seed(seed)
            raw, info = reference.get_config(budget)
        expected = space.validate(dict(raw))
        got, got_model_based = fast.sample(budget, seed)
        assert got == expected and list(got) == list(space.names), i
        assert got_model_based == bool(info.get("model_based_pick"))
        model_based += got_model_based
        # Results with many ties (accuracies are few distinct numbers) and some failures.
        value = None if i % 11 == 5 else float(rng.integers(0, 20)) if space_name == "tss" else (
            -abs(math.log10(got["lr"]) + 2) - abs(got["layers"] - 4))
        job = SimpleNamespace(id=i, exception=None, result=None if value is None else {"loss": -value},
                              kwargs={"budget": budget, "config": got})
        with seeded_global_rng(i + 1):
            reference.new_result(job)
        fast.add_result(got, budget, None if value is None else -value, seed=i + 1)
        assert sorted(fast.kde_models) == sorted(reference.kde_models)
        for b, models in reference.kde_models.items():
            for key in ("good", "bad"):
                np.testing.assert_array_equal(fast.kde_models[b][key].data, models[key].data)
                np.testing.assert_array_equal(fast.kde_models[b][key].bw, models[key].bw)
    assert model_based > 60  # the fast path itself was compared, not only the fallback


def test_a_choice_space_samples_what_one_draw_per_parameter_would():
    """SearchSpace.sample draws all choice indices in one call; the configs (and the generator's
    state after them) must be those of one draw per parameter, or every trajectory would change."""
    from spaces import get_space

    for space in (TSS_LIKE, get_space("sss").hparams, SearchSpace([Categorical("a", (1,)), Categorical("b", OPS)])):
        ours, reference = np.random.default_rng(5), np.random.default_rng(5)
        for _ in range(300):
            assert space.sample(ours) == {p.name: p.sample(reference) for p in space}
            assert ours.random() == reference.random()


def test_categorical_index_finds_equal_numbers_but_not_other_kinds():
    widths = Categorical("w", (8, 16, 32))
    assert widths.index(16) == widths.index(np.int64(16)) == widths.index(16.0) == 1
    for wrong in ("16", True, [16], 17):
        with pytest.raises(UserError, match="is not a valid value of 'w'"):
            widths.index(wrong)
    flags = Categorical("f", (True, False, 0))
    assert flags.index(False) == 1 and flags.index(0) == 2 and flags.index(np.bool_(True)) == 0


@pytest.mark.parametrize("space_name", ["tss", "mixed"])
def test_tpe_with_the_fixed_space_sampler_asks_what_plain_optuna_asks(space_name):
    """FixedSpaceTPESampler and the direct tell skip work, not numbers: the same run as Optuna's own
    TPESampler driven through Study.tell, with trials in flight and failures."""
    import warnings

    from optuna.samplers import TPESampler
    from optuna.trial import TrialState

    from orchestrator.searchers.tpe import TPE

    class PlainOptunaTPE(TPE):
        def __init__(self, space, seed):
            super().__init__(space, seed)
            self._distributions = space.to_optuna()  # Optuna's own distribution objects
            self._study = self._new_study()

        def _sampler(self, seed):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return TPESampler(seed=seed, n_startup_trials=10, n_ei_candidates=24, multivariate=True,
                                  constant_liar=True)

        def _observe(self, record):
            number = self._numbers.pop(record["trial_id"])
            if record["value"] is None:
                self._study.tell(number, state=TrialState.FAIL)
            else:
                self._study.tell(number, record["value"])

    space = TSS_LIKE if space_name == "tss" else SearchSpace(
        [Categorical("width", (8, 16, 32)), Float("lr", 1e-4, 1.0, log=True), Integer("layers", 1, 9)])
    value = objective if space_name == "tss" else (lambda c: -abs(math.log10(c["lr"]) + 2) - abs(c["layers"] - 4))

    def run(searcher) -> list:
        log, pending = [], []
        for i in range(90):  # three trials in flight, every fifth result a failure
            pending.append((i, searcher.ask(i)))
            if len(pending) == 3:
                tid, cfg = pending.pop(0)
                searcher.tell(tid, None if tid % 5 == 4 else value(cfg))
            log.append(pending[-1][1])
        return log + [searcher.best()]

    assert run(make_searcher("tpe", space, 4)) == run(PlainOptunaTPE(space, 4))


def test_kde_model_draws_configspaces_random_configs_without_configspace():
    """For a space of choices the model never imports ConfigSpace: its dimension order (by name),
    its choice order and its random configs must be ConfigSpace's own."""
    import warnings

    from ConfigSpace.util import deactivate_inactive_hyperparameters

    from orchestrator.searchers.bohb_kde import KDEModel
    from spaces import get_space

    unsorted = SearchSpace([Categorical("zeta", (3, 1, 2)), Categorical("Alpha", ("x", "y")),
                            Categorical("a10", (True, False)), Categorical("a2", (0.5,))])
    for space in (TSS_LIKE, get_space("sss").hparams, unsorted):
        cs = space.to_configspace(seed=0)
        model = KDEModel(space, categorical_kernel_fix=True, top_n_percent=15, num_samples=4,
                         random_fraction=0.0, bandwidth_factor=3.0, min_bandwidth=0.3)
        assert model._names == list(cs.keys())
        assert [list(cs[n].choices) for n in model._names] == [list(c) for c in model._choices]
        for seed in (0, 1, 7, 2 ** 32 - 1):
            cs.seed(seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                expected = deactivate_inactive_hyperparameters(configuration=dict(cs.sample_configuration()),
                                                               configuration_space=cs)
            assert model._random_config(seed) == space.validate(dict(expected))
        assert model._configspace is None and model._reference_generator is None  # never built
