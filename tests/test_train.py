"""The training engine and the Ray Tune trainable, on the real digits data and real networks."""

import io
import os

import numpy as np
import pandas as pd
import pytest
import torch

import spaces
from spaces.errors import UserError
from trainables.recipes import get_recipe
from trainables.train import TrainEngine, cached_dataset

TSS = spaces.get_space("tss")
# A cheap cell that learns digits quickly: conv1x1 into a skip/avg-pool mix.
ARCH = "|nor_conv_1x1~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
NON_TIME = ("train_loss", "train_acc", "valid_loss", "valid_acc", "test_loss", "test_acc")


@pytest.fixture(scope="module")
def digits():
    torch.set_num_threads(1)
    return cached_dataset("digits")


def engine(digits, epochs, arch=ARCH, seed=0):
    return TrainEngine("tss", arch, digits, get_recipe("h0", epochs=epochs), seed, C=8, N=1)


def test_short_training_on_digits_learns(digits):
    e = engine(digits, 6)
    history = [e.run_epoch() for _ in range(6)]
    last = history[-1]
    assert last["valid_acc"] > 50 and last["test_acc"] > 50 and last["train_acc"] > 50, last
    assert history[0]["train_loss"] > last["train_loss"]
    assert all(m["epoch_time_s"] > 0 and m["eval_time_s"] > 0 for m in history)
    with pytest.raises(UserError, match="all of them ran"):
        e.run_epoch()


def test_resume_after_epoch_k_continues_identically(digits):
    straight = engine(digits, 4)
    expected = [straight.run_epoch() for _ in range(4)]

    first = engine(digits, 4)
    got = [first.run_epoch() for _ in range(2)]
    buf = io.BytesIO()
    torch.save(first.state_dict(), buf)
    del first
    torch.rand(1000)  # the process's global RNG moves on meanwhile; the state must restore it
    resumed = engine(digits, 4)
    buf.seek(0)
    resumed.load_state_dict(torch.load(buf, weights_only=False))
    got += [resumed.run_epoch() for _ in range(2)]
    for want, have in zip(expected, got):
        assert {k: want[k] for k in NON_TIME} == {k: have[k] for k in NON_TIME}


def test_same_seed_same_weights_other_seed_differs(digits):
    a, b, c = engine(digits, 1), engine(digits, 1), engine(digits, 1, seed=1)
    wa, wb, wc = (next(x.model.parameters()).detach() for x in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_checkpoint_of_another_run_is_refused(digits):
    with pytest.raises(UserError, match="restore it into a run with the same configuration"):
        engine(digits, 2, seed=1).load_state_dict(engine(digits, 2).state_dict())


# --- TrainArch -------------------------------------------------------------------------------------
def config(store, **kw):
    return {"space": "tss", "arch": ARCH, "dataset": "digits", "recipe": {"name": "h0", "epochs": 2},
            "seed": 0, "C": 8, "N": 1, "store": str(store), "device": "cpu", **kw}


def read_epochs(store):
    return pd.read_parquet(os.path.join(store, "epochs"))


@pytest.mark.parametrize("bad, message", [
    ({"fidelity": 3}, "fidelity 3 must be between 1 and the recipe's 2 epochs"),
    ({"arch": "|conv~0|"}, "has 1 node(s)"),
    ({"dataset": "mnist"}, "unknown dataset 'mnist'"),
    ({"space": "xyz"}, "unknown search space 'xyz'"),
    ({"recipe": "h7"}, "unknown recipe 'h7'"),
])
def test_train_arch_bad_config_says_what_is_wrong(tmp_path, no_home_ray_results, bad, message):
    from trainables.train import TrainArch

    with pytest.raises(UserError) as err:
        TrainArch(config=config(tmp_path, **bad))
    assert message in str(err.value)


def test_train_arch_missing_arch_names_the_decisions(tmp_path, no_home_ray_results):
    from trainables.train import TrainArch

    cfg = config(tmp_path)
    del cfg["arch"]
    with pytest.raises(UserError, match="needs 'arch'.*edge_1_0"):
        TrainArch(config=cfg)


def test_train_arch_paused_and_restored_writes_each_epoch_once(tmp_path, no_home_ray_results):
    """A trial stopped after epoch 1 (rows flushed), restored from its checkpoint on a new actor,
    finishes with exactly epochs 1..2 in the store and the same numbers as a straight run."""
    from trainables.train import TrainArch

    straight = TrainArch(config=config(tmp_path / "a"))
    want = [straight.train() for _ in range(2)]
    straight.stop()

    first = TrainArch(config=config(tmp_path / "b"))
    got = [first.train()]
    ckpt = first.save()
    first.stop()  # a scheduler pausing the trial: rows of epoch 1 reach the store here
    assert read_epochs(tmp_path / "b")["epoch"].tolist() == [1]
    second = TrainArch(config=config(tmp_path / "b"))
    second.restore(ckpt)
    got.append(second.train())
    assert got[-1]["done"]
    second.stop()
    for w, g in zip(want, got):
        assert {k: w[k] for k in NON_TIME} == {k: g[k] for k in NON_TIME}
    rows = read_epochs(tmp_path / "b").sort_values("epoch")
    assert rows["epoch"].tolist() == [1, 2] and (rows["status"] == "ok").all()
    ref = read_epochs(tmp_path / "a").sort_values("epoch")
    assert np.array_equal(rows["valid_acc"].to_numpy(), ref["valid_acc"].to_numpy())
    archs = pd.read_parquet(tmp_path / "b" / "archs")
    assert archs["arch_index"].tolist() == [TSS.parse(ARCH)] and archs["latency_ms"].iloc[0] > 0


@pytest.mark.ray
@pytest.mark.slow  # ~20 s alone (Ray start-up), ~50 s on a busy 2-core machine
def test_train_arch_under_tune_with_reused_actors_writes_its_rows(tmp_path):
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    from ray import tune

    from trainables.ray_utils import start_ray
    from trainables.train import TrainArch

    other = "|nor_conv_1x1~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|"
    # ARCH twice: the second trial (same key) must not write its epoch again.
    param_space = config(tmp_path / "store", arch=tune.grid_search([ARCH, other, ARCH]), fidelity=1)
    with start_ray(num_cpus=1):
        tuner = tune.Tuner(
            TrainArch, param_space=param_space,
            tune_config=tune.TuneConfig(reuse_actors=True, metric="valid_acc", mode="max"),
            run_config=tune.RunConfig(storage_path=str(tmp_path / "ray"), verbose=0))
        results = tuner.fit()
    assert not results.errors and len(results) == 3
    assert all(r.metrics["epoch"] == 1 and r.metrics["done"] for r in results)
    rows = read_epochs(tmp_path / "store")
    assert sorted(rows["arch_index"]) == sorted([TSS.parse(ARCH), TSS.parse(other)])
    assert set(rows["epoch"]) == {1} and set(rows["hp"].astype(int)) == {2}  # fidelity 1 of 2
    assert len(pd.read_parquet(tmp_path / "store" / "archs")) == 2


def record_lrs(engine) -> list[tuple[int, float]]:
    """(epoch, lr) of every optimizer step the engine takes from now on, in a list that grows."""
    lrs, opt_step = [], engine.optimizer.step

    def step(*args, **kwargs):
        lrs.append((engine.epoch, engine.optimizer.param_groups[0]["lr"]))
        return opt_step(*args, **kwargs)

    engine.optimizer.step = step
    return lrs


def test_engine_trains_each_epoch_at_the_reference_lr(digits):
    """The optimizer sees xautodl's per-epoch cosine (procedures/optimizers.py:91-96) at every
    batch; lr_schedule_step="iteration" moves it every batch (the old schedule)."""
    import math

    seen = {}
    for step in ("epoch", "iteration"):
        e = TrainEngine("tss", ARCH, digits, get_recipe("h0", epochs=3, lr_schedule_step=step),
                        0, C=4, N=1)
        seen[step] = record_lrs(e)
        for _ in range(3):
            e.run_epoch()
    ipe = math.ceil(len(digits.train) / 256)
    want = [(ep, 0.0 + (0.1 - 0.0) * (1 + math.cos(math.pi * ep / 3)) / 2)
            for ep in range(3) for _ in range(ipe)]
    assert seen["epoch"] == want and seen["epoch"][-1][1] > 0.02
    per_iter = [lr for _, lr in seen["iteration"]]
    assert per_iter == [0.0 + (0.1 - 0.0) * 0.5 * (1.0 + math.cos(math.pi * (k / (3 * ipe))))
                        for k in range(3 * ipe)]



@pytest.mark.parametrize("name, cls", [("adam", torch.optim.Adam), ("rmsprop", torch.optim.RMSprop)])
def test_engine_trains_with_the_recipes_optimizer_and_lr_list_and_resumes_exactly(digits, name, cls):
    """AutoHAS's retraining: the derived optimizer (torch's settings, the search's L2 weight) at
    the searched lr of every step, resampled onto the engine's steps; a checkpoint resumes it."""
    import math

    ipe = math.ceil(len(digits.train) / 256)
    steps = [0.002 * (k + 1) for k in range(ipe)]  # one epoch's worth, stretched over two
    recipe = get_recipe("h0", epochs=2, optimizer=name, lr_steps=steps, weight_decay=1e-3)
    make = lambda: TrainEngine("tss", ARCH, digits, recipe, 0, C=4, N=1)  # noqa: E731
    straight = make()
    assert type(straight.optimizer) is cls and straight.optimizer.defaults["weight_decay"] == 1e-3
    lrs = record_lrs(straight)
    expected = [straight.run_epoch() for _ in range(2)]
    assert [lr for _, lr in lrs] == [steps[j // 2] for j in range(2 * ipe)]
    first = make()
    first.run_epoch()
    resumed = make()
    resumed.load_state_dict(first.state_dict())
    last = resumed.run_epoch()
    assert {k: last[k] for k in NON_TIME} == {k: expected[1][k] for k in NON_TIME}


def test_train_arch_refuses_a_store_of_another_skeleton_before_training(tmp_path,
                                                                       no_home_ray_results):
    from trainables.train import TrainArch

    first = TrainArch(config=config(tmp_path, fidelity=1))
    first.train()
    first.stop()
    files = sorted(tmp_path.rglob("part-*.parquet"))
    with pytest.raises(UserError) as err:
        TrainArch(config=config(tmp_path, C=4))
    assert "holds tss/digits rows of skeleton C=8 N=1" in str(err.value)
    assert "this run trains C=4 N=1" in str(err.value)
    assert sorted(tmp_path.rglob("part-*.parquet")) == files


def test_train_arch_defaults_the_size_space_to_one_cell_per_stage(tmp_path, no_home_ray_results):
    from trainables.train import TrainArch

    cfg = {**config(tmp_path, space="sss", arch="8:8:8:8:8"), "C": 16}
    del cfg["N"]
    trial = TrainArch(config=cfg)
    assert trial.cfg.N == 1 and len(trial.engine.model.cells) == 5
    trial.stop()
    with pytest.raises(UserError, match="sss: N=5, but the size space has one cell per stage"):
        TrainArch(config={**cfg, "N": 5})


def test_the_embedded_store_accepts_only_its_own_per_iteration_recipe():
    """Its files predate lr_schedule_step; resuming it needs the per-iteration recipe."""
    from pathlib import Path

    from trainables.train import check_store

    embedded = Path(__file__).resolve().parents[1] / "benchmark_data" / "embedded"
    for epochs in (12, 48):
        check_store(embedded, "tss", "digits",
                    get_recipe("h0", epochs=epochs, lr_schedule_step="iteration"), C=8, N=1)
    with pytest.raises(UserError, match="differ only in lr_schedule_step"):
        check_store(embedded, "tss", "digits", get_recipe("h0"), C=8, N=1)
    with pytest.raises(UserError, match="rows of skeleton C=8 N=1"):
        check_store(embedded, "tss", "digits", get_recipe("h0", lr_schedule_step="iteration"),
                    C=16, N=5)
