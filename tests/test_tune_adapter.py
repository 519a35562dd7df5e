"""The Ray Tune adapter: status mapping and checkpoints directly, then real Tuner runs."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from orchestrator.searchers import FIDELITY, SEARCHERS, make_searcher
from orchestrator.tune_adapter import TuneSearcher
from spaces.errors import UserError
from spaces.hparams import Categorical, SearchSpace

OPS = ("none", "skip_connect", "nor_conv_3x3")
SPACE = SearchSpace([Categorical(f"edge_{i}", OPS) for i in range(3)])
# A deterministic "benchmark table": one accuracy per architecture of the 27.
TABLE = {i: float(v) for i, v in enumerate(np.random.default_rng(5).uniform(60, 95, 27))}
KNOBS = {"bohb": {"min_fidelity": 1, "max_fidelity": 3}, "rea": {"population_size": 3}}


def arch_index(config: dict) -> int:
    return sum(OPS.index(config[f"edge_{i}"]) * 3 ** (2 - i) for i in range(3))


def adapter(name: str = "random", **kwargs) -> TuneSearcher:
    searcher = make_searcher(name, SPACE, 0, **KNOBS.get(name, {}))
    return TuneSearcher(searcher, **{"metric": "loss", "mode": "min", **kwargs})


# ----- without a Ray runtime: the mapping itself ------------------------------------------
def test_min_mode_is_told_negated_and_statuses_are_mapped():
    a = adapter()
    ids = [f"t{i}" for i in range(5)]
    for tid in ids:
        assert isinstance(a.suggest(tid), dict)
    a.on_trial_complete("t0", {"loss": 0.25})
    a.on_trial_complete("t1", {"loss": 0.5}, error=True)
    a.on_trial_complete("t2", None)
    a.on_trial_complete("t3", {"accuracy": 3.0})           # metric missing
    a.on_trial_complete("t4", {"loss": float("nan")})
    told = {r["trial_id"]: r["value"] for r in a.inner.history}
    assert told == {"t0": -0.25, "t1": None, "t2": None, "t3": None, "t4": None}
    assert a.inner.best() is not None


def test_a_trial_stopped_while_paused_is_told_its_last_result_not_an_error():
    # Ray's synchronous HyperBand stops a paused trial with on_trial_complete(result=None).
    a = adapter("random", fidelity_key="training_iteration")
    a.suggest("t0")
    a.suggest("t1")
    a.on_trial_result("t0", {"loss": 0.75, "training_iteration": 1})
    a.on_trial_result("t0", {"loss": 0.5, "training_iteration": 3})
    a.on_trial_complete("t0", None)
    a.on_trial_result("t1", {"loss": 0.1, "training_iteration": 1})
    a.on_trial_complete("t1", None, error=True)  # a crash stays a failed evaluation
    told = {r["trial_id"]: (r["value"], r["fidelity"]) for r in a.inner.history}
    assert told == {"t0": (-0.5, 3), "t1": (None, None)}
    assert a.get_state()["last"] == {}


def test_late_duplicate_and_foreign_completions_are_ignored_quietly():
    a = adapter()
    a.suggest("t0")
    a.on_trial_complete("t0", {"loss": 1.0})
    a.on_trial_complete("t0", {"loss": 0.0})        # duplicate
    a.on_trial_complete("never-suggested", {"loss": 0.0})
    a.on_trial_result("t0", {"loss": 0.0})          # late intermediate result
    assert [r["value"] for r in a.inner.history] == [-1.0]


def test_fidelity_comes_from_the_config_or_the_result():
    a = adapter("bohb", fidelity_key="training_iteration")
    cfg = a.suggest("t0")
    assert cfg[FIDELITY] == 1
    a.on_trial_complete("t0", {"loss": 0.1, "training_iteration": 1})
    b = adapter("bohb")
    b.suggest("t0")
    b.on_trial_complete("t0", {"loss": 0.1})
    assert a.inner.history[0]["fidelity"] == b.inner.history[0]["fidelity"] == 1


def play(a: TuneSearcher, start: int, stop: int) -> list:
    """Suggest and complete trials t<start>..t<stop-1> in order; the configs suggested."""
    out = []
    for i in range(start, stop):
        cfg = a.suggest(f"t{i}")
        out.append(cfg)
        a.on_trial_complete(f"t{i}", {"loss": -TABLE[arch_index(cfg)]})
    return out


@pytest.mark.parametrize("name", SEARCHERS)
def test_save_and_restore_continue_the_same_search(tmp_path, name):
    """Every searcher, BOHB included (ray #14667: BOHB's restore failed), continues the very
    search it saved: the same proposals as an uninterrupted one (history and RNG restored)."""
    reference = play(adapter(name), 0, 20)
    first = adapter(name)
    play(first, 0, 12)
    first.save(str(tmp_path / "searcher.pkl"))
    restored = adapter(name, metric=None, mode=None)
    restored.restore(str(tmp_path / "searcher.pkl"))
    assert (restored.metric, restored.mode) == ("loss", "min")
    assert len(restored.inner.history) == 12  # not reset (ray #30861)
    assert reference[12:] == play(restored, 12, 20)


@pytest.mark.parametrize("name", SEARCHERS)
def test_rays_experiment_checkpoint_saves_and_restores_the_adapter(tmp_path, name):
    from ray.tune.search import SearchGenerator

    reference = play(adapter(name), 0, 16)
    first = adapter(name)
    play(first, 0, 9)
    SearchGenerator(first).save_to_dir(str(tmp_path), session_str="s")  # as Tune's checkpoints
    restored = adapter(name)
    SearchGenerator(restored).restore_from_dir(str(tmp_path))
    assert reference[9:] == play(restored, 9, 16)


def test_bad_adapter_input_raises_user_errors():
    with pytest.raises(UserError, match="mode must be 'min' or 'max', got 'maximize'"):
        adapter(mode="maximize")
    with pytest.raises(UserError, match="wraps an orchestrator.searchers Searcher"):
        TuneSearcher(object(), metric="loss", mode="min")
    with pytest.raises(UserError, match="needs a metric and a mode"):
        adapter(metric=None, mode=None).suggest("t0")


def test_finished_maps_to_ray_finished():
    from ray.tune.search import Searcher as RaySearcher

    a = TuneSearcher(make_searcher("random", SPACE, 0, max_trials=1), metric="loss", mode="min")
    assert isinstance(a.suggest("t0"), dict)
    assert a.suggest("t1") == RaySearcher.FINISHED


# ----- real Ray Tune runs -----------------------------------------------------------------
def trainable(config: dict) -> None:
    """Reads the table; reports one result per epoch up to the asked fidelity.

    Crashes when ``edge_0`` equals the constant ``crash_edge_0`` of the param_space (only one
    run sets it: a crashed trial costs a new worker process).
    """
    from ray import tune

    if config["edge_0"] == config.get("crash_edge_0"):
        raise RuntimeError("this architecture crashes on purpose")
    acc = TABLE[arch_index(config)]
    epochs = config.get(FIDELITY, 1)
    for epoch in range(1, epochs + 1):
        tune.report({"loss": -(acc - 10 * (3 - epoch)), "epoch": epoch})


@pytest.fixture(scope="module")
def local_ray():
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # address="local": always a private instance, never one another process started
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    # Workers cannot import this test module; ship the trainable and its table by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    ray.shutdown()


@pytest.mark.ray
@pytest.mark.parametrize("name", SEARCHERS)
def test_tuner_runs_each_searcher(name, local_ray, tmp_path):
    from ray import tune

    trials = 6
    searcher = make_searcher(name, SPACE, 0, max_trials=trials, **KNOBS.get(name, {}))
    if name == "random":
        # A non-empty param_space: Tune forwards metric/mode through set_search_properties and
        # merges the constant into every suggested config.
        wrapped, param_space = TuneSearcher(searcher), {"crash_edge_0": "none"}
    else:  # with an empty param_space Tune forwards nothing: the adapter needs metric/mode
        wrapped, param_space = TuneSearcher(searcher, metric="loss", mode="min"), {}
    tuner = tune.Tuner(
        trainable, param_space=param_space,
        tune_config=tune.TuneConfig(search_alg=wrapped, metric="loss", mode="min",
                                    num_samples=-1,  # run until the searcher says FINISHED
                                    max_concurrent_trials=2, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
    )
    results = tuner.fit()
    history = wrapped.inner.history
    assert len(results) == len(history) == trials and wrapped.inner.num_pending == 0
    # BOHB evaluates a promoted config again at a higher fidelity: key by both
    told = {(tuple(r["config"].values()), r["fidelity"]): r["value"] for r in history}
    for result in results:
        config = {k: result.config[k] for k in SPACE.names}
        value = told[tuple(config.values()), result.config.get(FIDELITY)]
        if config["edge_0"] == param_space.get("crash_edge_0"):
            assert result.error is not None and value is None
        else:  # told -loss of the last epoch, i.e. the accuracy at the asked fidelity
            fidelity = result.config.get(FIDELITY, 1)
            assert value == pytest.approx(TABLE[arch_index(config)] - 10 * (3 - fidelity))
            assert result.metrics["epoch"] == fidelity
    if name == "random":
        assert None in told.values()  # seed 0 draws a crashing architecture: errors are mapped
    if name == "bohb":  # which bracket serves the 6th ask depends on Ray's timing
        assert sorted(r["fidelity"] for r in history) in ([1, 1, 1, 3, 3, 3], [1, 1, 1, 1, 3, 3])
