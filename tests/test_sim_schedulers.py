"""Stopping schedulers in the simulator: the same decisions as Ray Tune's, epoch accounting, rows,
refusals, and the typed records at the simulator's boundary.

The Ray-equivalence tests run the simulator's trial loop twice on one table, once with our
scheduler and once with Ray Tune's own scheduler object (``AsyncHyperBandScheduler`` /
``HyperBandScheduler``, no Ray cluster) driven through its hooks with light trial objects, and
require the same log of decisions (every add, result, complete, removal, choice and the trials
stopped inside each call) and the same trajectory.
"""

from __future__ import annotations

import heapq
import random

import numpy as np
import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import AsyncHyperBandScheduler, HyperBandScheduler

from orchestrator.records import Event, Observation, Suggestion, to_suggestion
from orchestrator.schedulers import SCHEDULERS, make_sim_scheduler
from orchestrator.schedulers.asha import ASHA, percentile
from orchestrator.schedulers.base import SimScheduler
from orchestrator.schedulers.brackets import (
    asha_milestones,
    hpbandster_bracket,
    keep_best,
    ray_bracket,
    ray_num_brackets,
    ray_total_work,
)
from orchestrator.schedulers.hyperband import HyperBand
from orchestrator.searchers import make_searcher
from orchestrator.sim_order import EventOrder
from orchestrator.simulator import Budget, run_search
from sim_fixtures import synthetic_table
from spaces import UserError

TABLE = synthetic_table()
ONE_SEED = synthetic_table(seeds=1)
COLUMNS = ("event", "sim_time_s", "arch_index", "fidelity", "feedback", "best_arch_index", "best_test_acc")


def _tied_table():
    """Feedback rounded to whole percents: many equal values, so every tie rule is exercised."""
    table = synthetic_table()
    table.feedback[:] = np.round(table.feedback)
    return table


def _gappy_table():
    """Some cells lack a value at one epoch: those trials fail there (Ray: on_trial_error)."""
    table = synthetic_table()
    table.feedback[::7, :, 4] = np.nan
    table.feedback[3::5, :, 7] = np.nan
    table.feedback[1::9, :, 2] = np.nan
    return table


TIED, GAPPY = _tied_table(), _gappy_table()


# ----- Ray's schedulers behind our hooks ------------------------------------------------------
class _RayTrial:
    """What Ray's schedulers read of a Trial: its id and status (the loop's, Ray's spelling)."""

    is_saving = False

    def __init__(self, tid, statuses):
        self.trial_id, self._statuses = tid, statuses

    @property
    def status(self):
        return self._statuses[self.trial_id]


class _Controller:
    """The TuneController calls Ray's schedulers make: stop_trial on a paused trial runs the
    scheduler's on_trial_remove (as Ray's does) and the trial ends."""

    def __init__(self, owner):
        self.owner = owner

    def get_trials(self):
        return list(self.owner.trials.values())

    def has_resources_for_trial(self, trial):
        return True  # the loop asks only when a worker is free

    def stop_trial(self, trial):
        assert trial.status in (Trial.PAUSED, Trial.PENDING)
        self.owner.ray.on_trial_remove(self, trial)
        self.owner.stopped.append(trial.trial_id)


class RayBacked(SimScheduler):
    def __init__(self, ray_scheduler, max_t, name):
        super().__init__(max_t)
        self.ray, self.name, self.trials = ray_scheduler, name, {}
        self.ctl = _Controller(self)

    def _result(self, epoch, value):
        return {"training_iteration": epoch, "valid_acc": value}

    def on_trial_add(self, tid):
        self.trials[tid] = _RayTrial(tid, self.status)
        self.ray.on_trial_add(self.ctl, self.trials[tid])

    def on_trial_result(self, tid, epoch, value):
        return self.ray.on_trial_result(self.ctl, self.trials[tid], self._result(epoch, value))

    def on_trial_complete(self, tid, epoch, value):
        self.ray.on_trial_complete(self.ctl, self.trials[tid], self._result(epoch, value))

    def on_trial_remove(self, tid):
        self.ray.on_trial_remove(self.ctl, self.trials[tid])

    def on_trial_error(self, tid):
        self.ray.on_trial_error(self.ctl, self.trials[tid])

    def choose_trial_to_run(self):
        trial = self.ray.choose_trial_to_run(self.ctl)
        return None if trial is None else trial.trial_id

    def on_trial_start(self, tid):
        pass


class Logged(SimScheduler):
    """Delegates to ``inner`` and logs every hook call, its answer and the trials it stopped."""

    def __init__(self, inner):
        super().__init__(inner.max_t)
        self.inner, self.name, self.log = inner, inner.name, []
        inner.status = self.status

    def _call(self, hook, *args):
        answer = getattr(self.inner, hook)(*args)
        stopped, self.inner.stopped = self.inner.stopped, []
        self.stopped.extend(stopped)
        self.log.append((hook, *args, answer, tuple(stopped)))
        return answer

    def on_trial_add(self, tid):
        self._call("on_trial_add", tid)

    def on_trial_result(self, tid, epoch, value):
        return self._call("on_trial_result", tid, epoch, value)

    def on_trial_complete(self, tid, epoch, value):
        self._call("on_trial_complete", tid, epoch, value)

    def on_trial_remove(self, tid):
        self._call("on_trial_remove", tid)

    def on_trial_error(self, tid):
        self._call("on_trial_error", tid)

    def choose_trial_to_run(self):
        return self._call("choose_trial_to_run")

    def on_trial_start(self, tid):
        self.inner.on_trial_start(tid)


def _ray_scheduler(name, max_t, grace, rf):
    if name == "asha":
        return AsyncHyperBandScheduler(time_attr="training_iteration", metric="valid_acc", mode="max",
                                       max_t=max_t, grace_period=grace, reduction_factor=rf)
    return HyperBandScheduler(time_attr="training_iteration", metric="valid_acc", mode="max", max_t=max_t,
                              reduction_factor=rf)


def _both(name, table, *, workers, max_t=12, grace=1, rf=3, searcher="random", seed=0,
          budget=Budget(seconds=2500)):
    runs = []
    for sched in (make_sim_scheduler(name, max_t=max_t, grace_period=grace, reduction_factor=rf),
                  RayBacked(_ray_scheduler(name, max_t, grace, rf), max_t, name)):
        logged = Logged(sched)
        s = make_searcher(searcher, table.space.hparams, seed)
        traj = run_search(table, s, budget, workers=workers, seed=seed, scheduler=logged)
        runs.append((logged.log, traj))
    return runs


def _assert_same(runs):
    (ours, t_ours), (ray, t_ray) = runs
    assert len(ours) == len(ray)
    for i, (a, b) in enumerate(zip(ours, ray)):
        assert a == b or (a[:3] == b[:3] and np.isnan(a[3]) and np.isnan(b[3]) and a[4:] == b[4:]), \
            f"decision {i} differs: ours {a}, Ray's {b} (previous: {ours[max(0, i - 3):i]})"
    for key in COLUMNS:
        np.testing.assert_array_equal(t_ours[key], t_ray[key], err_msg=key)


@pytest.mark.parametrize("table", [TABLE, TIED, GAPPY], ids=["smooth", "tied", "gappy"])
@pytest.mark.parametrize("workers", [1, 4, 9])
def test_asha_decides_as_rays_async_hyperband(table, workers):
    runs = _both("asha", table, workers=workers)
    log = runs[0][0]
    decisions = [entry[4] for entry in log if entry[0] == "on_trial_result"]
    assert decisions.count("STOP") > 50 and decisions.count("CONTINUE") > 50  # a real test of both
    _assert_same(runs)


@pytest.mark.parametrize("max_t, grace, rf", [(9, 1, 3), (12, 2, 2), (12, 1, 4), (10, 3, 3)])
def test_asha_with_other_knobs_decides_as_ray(max_t, grace, rf):
    _assert_same(_both("asha", TIED, workers=4, max_t=max_t, grace=grace, rf=rf))


@pytest.mark.parametrize("table", [TABLE, TIED, GAPPY], ids=["smooth", "tied", "gappy"])
@pytest.mark.parametrize("workers", [1, 2, 4, 9])
def test_hyperband_decides_as_rays_hyperband_scheduler(table, workers):
    runs = _both("hyperband", table, workers=workers)
    log = runs[0][0]
    if workers >= 4:  # with fewer, Ray's first bracket never fills (see hyperband.py): FIFO
        actions = [entry[4] for entry in log if entry[0] == "on_trial_result"]
        assert actions.count("PAUSE") > 20 and actions.count("STOP") > 10
        assert any(entry[-1] for entry in log)  # paused trials stopped inside a call, too
    _assert_same(runs)


@pytest.mark.parametrize("max_t, rf", [(9, 3), (12, 2), (10, 4)])
def test_hyperband_with_other_knobs_decides_as_ray(max_t, rf):
    _assert_same(_both("hyperband", TIED, workers=6, max_t=max_t, rf=rf))


def test_schedulers_with_rea_decide_as_ray():
    for name in ("asha", "hyperband"):
        _assert_same(_both(name, TABLE, workers=4, searcher="rea", seed=3))


def test_hyperband_with_one_worker_is_fifo_as_in_ray():
    # Ray's first bracket (s = 0, every trial to max_t) counts only live trials, and one worker
    # plus one pending trial never fill its 3 places, so every trial trains to the end.
    t = run_search(TABLE, make_searcher("random", TABLE.space.hparams, 0), Budget(seconds=2000),
                   scheduler="hyperband")
    assert set(t["fidelity"]) == {12}


@pytest.mark.filterwarnings("ignore:All-NaN slice encountered:RuntimeWarning")  # Ray's all-NaN rungs
def test_asha_decisions_on_random_result_sequences_match_ray():
    # Direct: arbitrary interleavings of results (ties, NaN values), no simulator in between.
    rng = random.Random(5)
    for case in range(40):
        max_t, grace, rf = rng.choice([(12, 1, 3), (9, 1, 3), (16, 2, 2), (27, 1, 3)])
        ours = ASHA(max_t, grace, rf)
        ray = _ray_scheduler("asha", max_t, grace, rf)
        epoch, trials = {}, {}
        for step in range(300):
            if not epoch or rng.random() < 0.15:
                tid = str(len(trials))
                trials[tid] = _RayTrial(tid, {tid: Trial.RUNNING})
                ray.on_trial_add(None, trials[tid])
                epoch[tid] = 0
            tid = rng.choice(sorted(epoch))
            epoch[tid] += 1
            value = rng.choice([1.0, 2.0, 2.0, 3.0, 3.5, float("nan")])
            result = {"training_iteration": epoch[tid], "valid_acc": value}
            a = ours.on_trial_result(tid, epoch[tid], value)
            b = ray.on_trial_result(None, trials[tid], result)
            assert a == b, f"case {case} step {step}: ours {a}, Ray's {b}"
            if a == "STOP":  # the controller then completes the trial (Ray records it once more)
                ours.on_trial_complete(tid, epoch[tid], value)
                ray.on_trial_complete(None, trials[tid], result)
                del epoch[tid]


# ----- the loop: determinism, accounting, rows ------------------------------------------------
@pytest.mark.parametrize("name", ["asha", "hyperband"])
def test_same_seed_same_trajectory_and_another_seed_another(name):
    def run(seed):
        return run_search(TABLE, make_searcher("rea", TABLE.space.hparams, seed), Budget(seconds=3000),
                          workers=4, seed=seed, scheduler=name)

    a, b, c = run(1), run(1), run(2)
    for key in COLUMNS:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["arch_index"][:20], c["arch_index"][:20])


@pytest.mark.parametrize("name", ["asha", "hyperband"])
def test_epoch_increments_add_up_to_the_cost_of_the_epochs_trained(name):
    # One worker and a one-seed table: trials train one after another, so the clock at each
    # trial's end is the sum of what every ended trial cost: cost[arch, seed, epochs - 1].
    t = run_search(ONE_SEED, make_searcher("random", ONE_SEED.space.hparams, 0), Budget(seconds=3000),
                   scheduler=make_sim_scheduler(name, max_t=12))
    charged = ONE_SEED.cost[t["arch_index"], 0, t["fidelity"] - 1]
    np.testing.assert_allclose(t["sim_time_s"], np.cumsum(charged), rtol=1e-12)
    # and each row reports the feedback at its last trained epoch
    np.testing.assert_array_equal(t["feedback"], ONE_SEED.feedback[t["arch_index"], 0, t["fidelity"] - 1])
    if name == "asha":
        assert {1, 3, 9, 12} == set(t["fidelity"])  # Ray's rungs 1, 3, 9, then max_t


@pytest.mark.parametrize("name", ["asha", "hyperband"])
def test_many_workers_charge_no_more_than_they_have(name):
    t = run_search(ONE_SEED, make_searcher("random", ONE_SEED.space.hparams, 0), Budget(seconds=2000),
                   workers=4, scheduler=name)
    charged = ONE_SEED.cost[t["arch_index"], 0, t["fidelity"] - 1].sum()
    assert charged <= 4 * t["sim_time_s"][-1] + 1e-6  # ended trials alone fit in 4 workers' time
    assert np.all(np.diff(t["sim_time_s"]) >= 0)


@pytest.mark.parametrize("name", ["asha", "hyperband"])
def test_budgets_end_a_scheduled_run_as_a_plain_one(name):
    s = make_searcher("random", TABLE.space.hparams, 0)
    t = run_search(TABLE, s, Budget(seconds=2000), workers=3, scheduler=name)
    assert np.all(t["sim_time_s"][:-1] < 2000) and t["sim_time_s"][-1] >= 2000
    n = run_search(TABLE, make_searcher("random", TABLE.space.hparams, 0), Budget(evaluations=57), workers=3,
                   scheduler=name)
    assert list(n["event"]) == list(range(57))


def test_a_table_gap_fails_the_trial_there_uncharged():
    t = run_search(GAPPY, make_searcher("random", GAPPY.space.hparams, 0), Budget(seconds=3000), workers=2,
                   scheduler="asha")
    failed = np.isnan(t["feedback"])
    assert failed.any()
    assert set(t["fidelity"][failed]) == {2, 4, 7}  # trained 2, 4 or 7 epochs, the next has no value


class _Recording:
    """A searcher wrapper that records every ask and tell (to count them)."""

    def __init__(self, inner):
        self.inner, self.asked, self.told = inner, [], []

    def ask(self, trial_id):
        answer = self.inner.ask(trial_id)
        if isinstance(answer, dict):
            self.asked.append(trial_id)
        return answer

    def tell(self, trial_id, value, status="ok", fidelity=None):
        self.told.append((trial_id, value, status, fidelity))
        self.inner.tell(trial_id, value, status, fidelity)

    def best(self):
        return self.inner.best()


@pytest.mark.parametrize("name", ["asha", "hyperband"])
def test_a_searcher_under_a_scheduler_is_told_each_trial_once_when_it_ends(name):
    s = _Recording(make_searcher("rea", TABLE.space.hparams, 4))
    t = run_search(TABLE, s, Budget(seconds=3000), workers=4, scheduler=name)
    ids = [tid for tid, *_ in s.told]
    assert len(ids) == len(set(ids)) == len(t["event"])  # once per ended trial, one row each
    assert set(ids) <= set(s.asked)
    live = set(s.asked) - set(ids)  # running, paused or pending when the run ended
    assert len(live) <= (4 + 1 if name == "asha" else len(s.asked))
    told_fidelity = np.array([f for *_, f in s.told])
    np.testing.assert_array_equal(told_fidelity, t["fidelity"])  # fidelity = epochs trained
    np.testing.assert_array_equal(np.array([v for _, v, *_ in s.told], dtype=float), t["feedback"])
    assert len(set(t["fidelity"])) > 1  # the scheduler did stop some trials early


def test_incumbent_rules_under_a_scheduler():
    t = run_search(TABLE, make_searcher("random", TABLE.space.hparams, 0), Budget(seconds=3000), workers=4,
                   scheduler="asha")
    leader = [int(np.argmax(t["feedback"][: i + 1])) for i in range(len(t["event"]))]
    np.testing.assert_array_equal(t["best_arch_index"], t["arch_index"][leader])  # nats: best over all
    s = run_search(TABLE, make_searcher("random", TABLE.space.hparams, 0), Budget(seconds=3000), workers=4,
                   scheduler="asha", incumbent="searcher")
    # live mode's best_trial: the best among the trials trained the most epochs, ties to the earliest
    for i in range(len(s["event"])):
        fid, fb = s["fidelity"][: i + 1], s["feedback"][: i + 1]
        top = np.flatnonzero(fid == fid.max())
        assert s["best_arch_index"][i] == s["arch_index"][top[np.argmax(fb[top])]]


def test_fifo_is_the_plain_loop():
    assert make_sim_scheduler("fifo", max_t=12) is None
    a = run_search(TABLE, make_searcher("rea", TABLE.space.hparams, 0), Budget(seconds=2000), workers=2)
    b = run_search(TABLE, make_searcher("rea", TABLE.space.hparams, 0), Budget(seconds=2000), workers=2,
                   scheduler="fifo")
    for key in COLUMNS:
        np.testing.assert_array_equal(a[key], b[key])


# ----- refusals ---------------------------------------------------------------------------------
def _final_only_table():
    table = synthetic_table()
    table.feedback[:, :, :-1] = np.nan  # as an imported final-accuracy table: only the last epoch
    return type(table)(table.space, table.dataset, table.feedback, table.train_time, table.eval_time,
                       table.final, final_hp=12)


@pytest.mark.parametrize("name", ["asha", "hyperband"])
def test_a_table_without_per_epoch_curves_is_refused(name):
    table = _final_only_table()
    assert len(table.recorded_epochs) == 1
    s = make_searcher("random", table.space.hparams, 0)
    with pytest.raises(UserError, match=rf"{name} scheduler stops trainings early .* only at epoch 12 .*"
                                        r"final-accuracy table.*fifo"):
        run_search(table, s, Budget(evaluations=5), scheduler=name)
    assert len(run_search(table, s, Budget(evaluations=5))["event"]) == 5  # fifo still runs there


def test_a_table_with_epoch_gaps_is_refused():
    table = synthetic_table()
    table.feedback[:, :, 1::2] = np.nan
    table = type(table)(table.space, table.dataset, table.feedback, table.train_time, table.eval_time,
                        table.final, final_hp=12)
    with pytest.raises(UserError, match=r"after every epoch.* at 6 of 12 epochs \(1, 3, 5"):
        run_search(table, make_searcher("random", table.space.hparams, 0), Budget(evaluations=5),
                   scheduler="asha")


@pytest.mark.parametrize("call, message", [
    (lambda: make_sim_scheduler("ashaa", max_t=12), r"unknown scheduler 'ashaa'; choose one of fifo, asha, hyperband"),
    (lambda: make_sim_scheduler("asha", max_t=0), r"max_t must be a whole number >= 1, got 0"),
    (lambda: make_sim_scheduler("asha", max_t=12, grace_period=0), r"grace_period must be a whole number >= 1"),
    (lambda: make_sim_scheduler("asha", max_t=12, reduction_factor=1), r"reduction_factor must be .* >= 2"),
    (lambda: make_sim_scheduler("asha", max_t=12, reduction_factor=2.5), r"reduction_factor .* got 2.5"),
    (lambda: make_sim_scheduler("asha", max_t=4, grace_period=5), r"grace period \(5 epochs\) must not exceed"),
    (lambda: make_sim_scheduler("hyperband", max_t=12, grace_period=2), r"HyperBand has no grace period"),
    (lambda: run_search(TABLE, make_searcher("random", TABLE.space.hparams, 0), Budget(evaluations=3),
                        scheduler="median"), r"unknown scheduler 'median'; choose one of fifo, asha, hyperband"),
    (lambda: run_search(TABLE, make_searcher("bohb", TABLE.space.hparams, 0), Budget(evaluations=3),
                        scheduler="asha"), r"bohb runs its own HyperBand brackets.*use fifo with it"),
    (lambda: run_search(TABLE, make_searcher("random", TABLE.space.hparams, 0), Budget(evaluations=3),
                        scheduler=make_sim_scheduler("asha", max_t=20)), r"max_t \(20\) exceeds the table's 12"),
])
def test_bad_scheduler_requests_are_refused_with_a_clear_message(call, message):
    with pytest.raises(UserError, match=message):
        call()


def test_a_scheduler_serves_one_run():
    sched = make_sim_scheduler("asha", max_t=12)
    run_search(TABLE, make_searcher("random", TABLE.space.hparams, 0), Budget(evaluations=5), scheduler=sched)
    with pytest.raises(UserError, match="already served a run; build a new one per run"):
        run_search(TABLE, make_searcher("random", TABLE.space.hparams, 1), Budget(evaluations=5),
                   scheduler=sched)


def test_scheduler_names_are_listed():
    assert SCHEDULERS == ("fifo", "asha", "hyperband")


# ----- the shared bracket arithmetic ----------------------------------------------------------
@pytest.mark.parametrize("max_t, grace, rf", [(12, 1, 3), (9, 1, 3), (243, 1, 3), (200, 1, 3), (16, 2, 2),
                                              (100, 1, 4), (10, 3, 3)])
def test_asha_rungs_are_rays(max_t, grace, rf):
    ray = AsyncHyperBandScheduler(max_t=max_t, grace_period=grace, reduction_factor=rf)
    assert asha_milestones(max_t, grace, rf) == [m for m, _ in ray._brackets[0]._rungs]


@pytest.mark.parametrize("max_t, eta", [(12, 3), (81, 3), (200, 3), (9, 3), (16, 2), (10, 4)])
def test_hyperband_brackets_are_rays(max_t, eta):
    ray = HyperBandScheduler(max_t=max_t, reduction_factor=eta)
    assert ray_num_brackets(max_t, eta) == ray._s_max_1
    for s in range(ray._s_max_1):
        plan = ray_bracket(max_t, eta, s)
        if ray._get_r0(s) == 0:
            assert plan is None
            continue
        b = ray._create_bracket(s)
        budgets, sizes = [b._cumul_r], [b._n]
        while b._halves > 0:
            b._live_trials = {}
            b.successive_halving("m", 1.0)
            budgets.append(b._cumul_r)
            sizes.append(b._n)
        assert plan.budgets == tuple(budgets) and plan.sizes == tuple(sizes)
        assert ray_total_work(plan, max_t, eta) == ray._create_bracket(s)._total_work


def test_hpbandster_brackets_and_promotions():
    grid = [1, 4, 12]
    assert [hpbandster_bracket(grid, i, 3) for i in range(3)] == [
        ((1, 4, 12), (9, 3, 1)), ((4, 12), (3, 1)), ((12,), (3,))]
    values = {0: 5.0, 1: None, 2: 7.0, 3: 5.0, 4: 9.0}
    assert keep_best(sorted(values), values.get, 3, ties="earlier") == ([4, 2, 0], [3, 1])
    tied = {"a": 5.0, "b": 7.0, "c": 5.0}
    assert keep_best(list(tied), tied.get, 2, ties="later") == (["c", "b"], ["a"])
    with pytest.raises(ValueError, match="ties must be"):
        keep_best([], tied.get, 1, ties="random")


def test_asha_percentile_is_numpys_to_the_bit():
    rng = random.Random(11)
    for _ in range(20000):
        n = rng.randint(1, 25)
        vals = [float(rng.choice([rng.randint(90, 99), np.float32(rng.uniform(0, 100))])) for _ in range(n)]
        q = (1 - 1 / rng.choice([2, 3, 4])) * 100
        assert percentile(sorted(vals), q) == np.nanpercentile(vals, q)


# ----- typed records --------------------------------------------------------------------------
def test_suggestions_split_the_fidelity_and_pass_none_and_finished_through():
    assert to_suggestion("3", {"a": 1, "fidelity": 4}) == Suggestion("3", {"a": 1}, 4)
    assert to_suggestion("3", {"a": 1}) == Suggestion("3", {"a": 1}, None)
    assert to_suggestion("3", None) is None and to_suggestion("3", "FINISHED") == "FINISHED"


def test_observations_are_tells_parameters_and_events_order_by_time_then_sequence():
    s = make_searcher("random", TABLE.space.hparams, 0)
    s.ask("t")
    s.tell(*Observation("t", 91.5, "ok", 3))
    assert s.history[0]["value"] == 91.5 and s.history[0]["fidelity"] == 3
    heap = []
    for e in (Event(2.0, 0, "a", 1, 1, 0.5), Event(1.0, 2, "b", 1, 1, 0.5), Event(1.0, 1, "c", 1, 1, 0.5)):
        heapq.heappush(heap, e)
    assert [heapq.heappop(heap).trial_id for _ in range(3)] == ["c", "b", "a"]


def test_searchers_speak_the_typed_records_too():
    s = make_searcher("bohb", TABLE.space.hparams, 0, min_fidelity=1, max_fidelity=12)
    suggestion = s.suggest("t0")
    assert isinstance(suggestion, Suggestion) and suggestion.trial_id == "t0"
    assert "fidelity" not in suggestion.config and suggestion.fidelity == 1
    s.observe(Observation("t0", 80.0, "ok", suggestion.fidelity))
    assert s.history[0]["value"] == 80.0
    done = make_searcher("random", TABLE.space.hparams, 0, max_trials=1)
    done.suggest("a")
    assert done.suggest("b") == "FINISHED"


@pytest.mark.parametrize("space_name", ["tss", "sss"])
def test_the_loops_arch_index_is_config_to_index(space_name):
    from orchestrator.simulator import arch_indexer
    from spaces import get_space

    space = get_space(space_name)
    arch_of = arch_indexer(space)
    for index in np.random.default_rng(0).integers(space.size, size=500):
        assert arch_of(space.index_to_config(int(index))) == int(index)
    bad = {**space.index_to_config(0), space.decisions[0]: "conv_9x9"}
    with pytest.raises(UserError, match=r"conv_9x9.* is not one of"):
        arch_of(bad)


class _Silent:
    """A searcher that never proposes anything."""

    def ask(self, trial_id):
        return None

    def tell(self, *args):
        raise AssertionError("nothing was asked")

    def best(self):
        return None


@pytest.mark.parametrize("name", ["fifo", "asha", "hyperband"])
def test_a_searcher_that_proposes_nothing_is_reported(name):
    with pytest.raises(UserError, match="proposed nothing while no (evaluation|trial) was running"):
        run_search(TABLE, _Silent(), Budget(evaluations=3), scheduler=name)


def test_past_budget_goes_on_until_the_value_at_the_budget_is_final():
    t = run_search(TABLE, make_searcher("random", TABLE.space.hparams, 0), Budget(seconds=2000), workers=4,
                   scheduler="asha", past_budget=True)
    gap = np.abs(t["sim_time_s"] - 2000)
    # every recorded row was still nearer to the budget than the second nearest before it (the
    # run ends at the first row that is not: it and every later one cannot change the value)
    for i in range(2, len(gap)):
        assert t["sim_time_s"][i] - 2000 < np.sort(gap[:i])[1]
    plain = run_search(TABLE, make_searcher("random", TABLE.space.hparams, 0), Budget(seconds=2000), workers=4,
                       scheduler="asha")
    n = min(len(plain["event"]), len(t["event"])) - 1
    np.testing.assert_array_equal(plain["arch_index"][:n], t["arch_index"][:n])  # same run up to there


# ----- ASHA's own loop (orchestrator.sim_asha) against the per-epoch loop and Ray -------------
class _HookedASHA(ASHA):
    """Our ASHA, but not exactly the ASHA type: the simulator then drives it through its hooks,
    epoch by epoch (``sim_trials.run_trials``) instead of ASHA's own loop, which skips epochs."""


class _Hungry:
    """A searcher that answers None while ``limit`` of its trials are unfinished, and on every
    ``every``-th call: the per-epoch loop then asks again after every epoch."""

    def __init__(self, inner, limit, every):
        self.inner, self.limit, self.every, self.out, self.calls = inner, limit, every, set(), 0

    def ask(self, trial_id):
        self.calls += 1
        if len(self.out) >= self.limit or (self.every and self.calls % self.every == 0):
            return None
        answer = self.inner.ask(trial_id)
        if isinstance(answer, dict):
            self.out.add(trial_id)
        return answer

    def tell(self, trial_id, *args):
        self.out.discard(trial_id)
        self.inner.tell(trial_id, *args)

    def best(self):
        return self.inner.best()


def _negative_steps_table(gaps=False):
    """Epochs whose time cost falls (a missing time is charged nothing, so the mean validation
    time can drop): the skipping loop must go on epoch by epoch from the first one it meets."""
    table = synthetic_table()
    table.train_time[::3, :, 5] = 0.0
    table.eval_time[::3, :, 5] = 0.0
    table.train_time[1::4, :, 0] = 0.0
    table.eval_time[1::4, :, 0] = 0.0
    if gaps:
        table.feedback[::7, :, 4] = np.nan
        table.feedback[1::9, :, 0] = np.nan
    table.__post_init__()
    assert (np.diff(table.cost, axis=2) < 0).any()
    return table


NEGATIVE = _negative_steps_table()


def _asha_runs(table, *, workers, knobs=(12, 1, 3), searcher="random", seed=0, hungry=None,
               classes=(ASHA, _HookedASHA), budget=Budget(seconds=2500)):
    """(trajectory, values recorded at each rung, searcher calls) of one run per scheduler class."""
    runs = []
    for cls in classes:
        sched = cls(*knobs)
        s = make_searcher(searcher, table.space.hparams, seed)
        if hungry is not None:
            s = _Hungry(s, *hungry)
        traj = run_search(table, s, budget, workers=workers, seed=seed, scheduler=sched)
        rungs = [(r.milestone, list(r.sorted)) for r in sched._rungs]
        runs.append((traj, rungs, getattr(s, "calls", None)))
    return runs


def _same_runs(runs):
    (a, rungs_a, calls_a), (b, rungs_b, calls_b) = runs
    for key in COLUMNS:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert rungs_a == rungs_b
    assert calls_a == calls_b


@pytest.mark.parametrize("table", [TABLE, TIED, GAPPY, ONE_SEED], ids=["smooth", "tied", "gappy", "one-seed"])
@pytest.mark.parametrize("workers", [1, 4, 9])
@pytest.mark.parametrize("knobs", [(12, 1, 3), (9, 1, 3), (12, 2, 2), (10, 3, 3), (12, 1, 4)])
def test_ashas_own_loop_makes_the_per_epoch_loops_decisions(table, workers, knobs):
    # Same rows, same values recorded at every rung, for searchers that learn from the order.
    for searcher in ("random", "rea"):
        _same_runs(_asha_runs(table, workers=workers, knobs=knobs, searcher=searcher))


@pytest.mark.parametrize("table", [TABLE, TIED, GAPPY], ids=["smooth", "tied", "gappy"])
def test_ashas_own_loop_makes_rays_decisions(table):
    # Ray's AsyncHyperBandScheduler, driven epoch by epoch, against ASHA's skipping loop.
    for workers in (1, 4, 9):
        ray = RayBacked(_ray_scheduler("asha", 12, 1, 3), 12, "asha")
        runs = []
        for sched in (make_sim_scheduler("asha", max_t=12), ray):
            assert (type(sched) is ASHA) == (sched is not ray)
            s = make_searcher("rea", table.space.hparams, 1)
            runs.append(run_search(table, s, Budget(seconds=2500), workers=workers, seed=1, scheduler=sched))
        for key in COLUMNS:
            np.testing.assert_array_equal(runs[0][key], runs[1][key], err_msg=key)


def test_ashas_own_loop_needs_the_per_epoch_order_of_simultaneous_events(monkeypatch):
    # On tables whose architectures share epoch times, events tie all the time; taking them in
    # the skipping loop's own queue order instead of the per-epoch loop's changes the runs.
    monkeypatch.setattr(EventOrder, "first_of_ties", lambda self, heap, event: event)
    differ = 0
    for table, workers in ((TIED, 4), (ONE_SEED, 9), (TABLE, 9)):
        (a, *_), (b, *_) = _asha_runs(table, workers=workers, searcher="rea")
        differ += not np.array_equal(a["arch_index"], b["arch_index"])
    assert differ


@pytest.mark.parametrize("table", [TIED, NEGATIVE, _negative_steps_table(gaps=True)],
                         ids=["tied", "negative-steps", "negative-steps-gappy"])
@pytest.mark.parametrize("hungry", [None, (3, 0), (2, 5), (100, 7)])
def test_ashas_own_loop_goes_epoch_by_epoch_where_it_cannot_skip(table, hungry, monkeypatch):
    # A searcher that answers None is asked again at every epoch by the per-epoch loop, and a
    # falling time cost breaks the order argument: both turn the queue into the per-epoch one.
    turned = []
    to_steps = EventOrder.to_steps
    monkeypatch.setattr(EventOrder, "to_steps",
                        lambda self, heap, current: turned.append(1) or to_steps(self, heap, current))
    for workers in (1, 3, 9):
        _same_runs(_asha_runs(table, workers=workers, knobs=(12, 1, 3), searcher="rea", hungry=hungry))
        _same_runs(_asha_runs(table, workers=workers, knobs=(10, 3, 3), seed=1, hungry=hungry))
    assert turned or (table is TIED and hungry is None)
    if table is TIED and hungry is None:
        assert not turned  # nothing there stops it from skipping



def test_the_interpolated_cutoff_stays_between_its_two_values():
    # What lets Rung.cut decide a value below a or at least b without interpolating.
    from orchestrator.schedulers.asha import interpolate

    rng = np.random.default_rng(7)
    for scale in (1.0, 100.0, 1e-3, 1e6):
        a = np.sort(rng.normal(0, scale, size=(50000, 2)).astype(np.float32).astype(float), axis=1)
        a[::7, 1] = a[::7, 0]  # ties
        a[::11, 1] = np.nextafter(a[::11, 0], np.inf)  # neighbours
        for (lo, hi), t in zip(a.tolist(), rng.random(len(a)).tolist()):
            assert lo <= interpolate(lo, hi, t) <= hi


@pytest.mark.filterwarnings("ignore:All-NaN slice encountered:RuntimeWarning")
def test_rung_cut_is_value_below_nanpercentile_of_the_values_before():
    from orchestrator.schedulers.asha import _Rung

    rng = random.Random(3)
    for case in range(300):
        q = rng.choice([50.0, (1 - 1 / 3) * 100, 75.0])
        rung, before = _Rung(1, q), []
        for _ in range(rng.randint(1, 60)):
            value = rng.choice([float(rng.randint(0, 5)), float(np.float32(rng.uniform(0, 5))), float("nan")])
            expected = bool(before) and value == value and value < np.nanpercentile(before, q)
            assert rung.cut(value) == expected, (case, before, value)
            before.append(value)
        assert rung.sorted == sorted(v for v in before if v == v)


# ----- HyperBand skipping to its budgets (SimScheduler.next_result) ---------------------------
class _PerEpochHyperBand(HyperBand):
    """Our HyperBand shown every epoch's result, as Ray's controller shows them."""

    next_result = SimScheduler.next_result


def _bracket_states(sched):
    return [[None if b is None else (b.rung, b.progress, sorted(b.epoch.items()), sorted(b.resume), b.halved)
             for b in band] for band in sched._bands]


def _hyperband_runs(table, *, workers, knobs=(12, 3), searcher="random", seed=1, hungry=None):
    runs = []
    for cls in (HyperBand, _PerEpochHyperBand):
        sched = cls(*knobs)
        s = make_searcher(searcher, table.space.hparams, seed)
        if hungry is not None:
            s = _Hungry(s, *hungry)
        try:
            traj = run_search(table, s, Budget(seconds=2500), workers=workers, seed=seed, scheduler=sched)
        except UserError as e:  # a hungry searcher can starve a run: it must do so at the same point
            traj = {key: np.array([str(e)]) for key in COLUMNS}
        runs.append((traj, _bracket_states(sched), getattr(s, "calls", None)))
    return runs


@pytest.mark.parametrize("table", [TABLE, TIED, GAPPY, ONE_SEED, NEGATIVE],
                         ids=["smooth", "tied", "gappy", "one-seed", "negative-steps"])
@pytest.mark.parametrize("workers", [1, 4, 6, 9])
@pytest.mark.parametrize("knobs", [(12, 3), (9, 3), (12, 2), (10, 4)])
def test_hyperband_skipping_to_its_budgets_makes_the_per_epoch_loops_decisions(table, workers, knobs):
    # Same rows, and the brackets in the same state at the end (progress counts skipped epochs).
    for searcher in ("random", "rea"):
        _same_runs(_hyperband_runs(table, workers=workers, knobs=knobs, searcher=searcher))


@pytest.mark.parametrize("hungry", [(3, 0), (2, 5)])
@pytest.mark.parametrize("table", [TIED, NEGATIVE], ids=["tied", "negative-steps"])
def test_hyperband_skipping_goes_epoch_by_epoch_where_it_cannot_skip(table, hungry):
    for workers in (2, 4, 9):
        _same_runs(_hyperband_runs(table, workers=workers, searcher="rea", hungry=hungry))


def test_hyperband_skipping_makes_rays_decisions():
    for table, workers in ((TABLE, 4), (TIED, 6), (GAPPY, 9)):
        runs = []
        for sched in (make_sim_scheduler("hyperband", max_t=12), RayBacked(_ray_scheduler("hyperband", 12, 1, 3), 12,
                                                                            "hyperband")):
            s = make_searcher("rea", table.space.hparams, 2)
            runs.append(run_search(table, s, Budget(seconds=2500), workers=workers, seed=2, scheduler=sched))
        for key in COLUMNS:
            np.testing.assert_array_equal(runs[0][key], runs[1][key], err_msg=key)


def test_hyperband_skipping_needs_the_skipped_results_before_ordering_its_brackets(monkeypatch):
    # Bracket order (Ray's completion percentage) counts every epoch reported; choosing without
    # the skipped ones first (settle) changes some runs.
    choose = HyperBand.choose_trial_to_run

    def without_settle(self):
        self.__dict__.pop("settle", None)  # the class's settle: nothing delivered
        return choose(self)

    monkeypatch.setattr(HyperBand, "choose_trial_to_run", without_settle)
    (a, *_), (b, *_) = _hyperband_runs(ONE_SEED, workers=4, searcher="random")
    assert not np.array_equal(a["arch_index"], b["arch_index"])
