import math
from pathlib import Path

import pytest

from spaces.errors import UserError
from trainables.recipes import RECIPES, get_recipe, recorded_recipe

EMBEDDED = Path(__file__).resolve().parents[1] / "benchmark_data" / "embedded"


def test_reference_recipes_match_nats_bench():
    # configs/nas-benchmark/hyper-opts/{12,200,90}E.config: cos, eta_min 0, warmup 0, LR 0.1,
    # decay 5e-4, momentum 0.9, nesterov, batch 256; the cosine steps per epoch.
    assert {n: r.epochs for n, r in RECIPES.items()} == {"h0": 12, "h1": 200, "h2": 90}
    for r in RECIPES.values():
        assert (r.lr, r.lr_min, r.momentum, r.nesterov, r.weight_decay, r.batch_size,
                r.lr_schedule_step) == (0.1, 0.0, 0.9, True, 5e-4, 256, "epoch")
        assert r.hp == r.epochs


def reference_epoch_lr(base, eta_min, epoch, t_max):
    """xautodl CosineAnnealingLR.get_lr after warm-up (procedures/optimizers.py:91-96)."""
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * epoch / t_max)) / 2


@pytest.mark.parametrize("lr_min", [0.0, 0.01])
def test_cosine_steps_per_epoch_as_nats_bench(lr_min):
    r = get_recipe("h0", epochs=5, lr_min=lr_min)
    ipe = 7
    for e in range(5):
        want = reference_epoch_lr(0.1, lr_min, e, 5)
        # exactly the reference value, for every batch of the epoch
        assert [r.lr_at(e, i, ipe) for i in range(ipe)] == [want] * ipe
    assert r.lr_at(0, 0, ipe) == 0.1
    # the last epoch still trains above the floor; the floor is the lr after the schedule
    assert r.lr_at(4, ipe - 1, ipe) > lr_min + 0.0009
    assert r.lr_at(5, 0, ipe) == lr_min


def test_cosine_schedule_per_iteration():
    r = get_recipe("h0", lr_schedule_step="iteration")  # 12 epochs
    ipe = 10
    assert r.lr_at(0, 0, ipe) == pytest.approx(0.1)
    # Halfway through the schedule the cosine is at half the range.
    assert r.lr_at(6, 0, ipe) == pytest.approx(0.05)
    assert r.lr_at(12, 0, ipe) == pytest.approx(0.0, abs=1e-12)
    # Changes within an epoch (per-iteration), monotone non-increasing over the whole run.
    lrs = [r.lr_at(e, i, ipe) for e in range(12) for i in range(ipe)]
    assert lrs[1] < lrs[0]
    assert all(b <= a for a, b in zip(lrs, lrs[1:]))
    t = (3 * ipe + 4) / (12 * ipe)
    assert r.lr_at(3, 4, ipe) == pytest.approx(0.05 * (1 + math.cos(math.pi * t)))
    floor = get_recipe("h0", lr_min=0.01, lr_schedule_step="iteration")
    assert floor.lr_at(12, 0, ipe) == pytest.approx(0.01)
    # bit for bit the schedule the embedded benchmark was trained with
    old = [0.0 + 0.1 * 0.5 * (1.0 + math.cos(math.pi * ((e * ipe + i) / (12 * ipe))))
           for e in range(12) for i in range(ipe)]
    assert lrs == old


def test_recipe_records_its_schedule_step_and_old_records_read_as_per_iteration():
    per_epoch, per_iter = get_recipe("h0"), get_recipe("h0", lr_schedule_step="iteration")
    assert per_epoch.hash != per_iter.hash
    assert '"lr_schedule_step": "epoch"' in per_epoch.to_json()
    assert '"lr_schedule_step": "iteration"' in per_iter.to_json()
    assert recorded_recipe({**per_epoch.to_dict(), "hash": per_epoch.hash}) == per_epoch
    # The embedded store predates the field: its files record the per-iteration recipe's hash.
    import pyarrow.parquet as pq

    for hp, epochs in ((12, 12), (48, 48)):
        path = next((EMBEDDED / "epochs" / "space=tss" / "dataset=digits" / f"hp={hp}").glob(
            "part-*.parquet"))
        text = pq.read_schema(path).metadata[b"recipe"].decode()
        assert "lr_schedule_step" not in text
        assert recorded_recipe(text) == get_recipe("h0", epochs=epochs, lr_schedule_step="iteration")
    assert per_iter.hash == "2a0ee0492c37"  # as the embedded data card states
    with pytest.raises(UserError, match="says hash 123"):
        recorded_recipe({**per_epoch.to_dict(), "hash": "123"})


def test_overrides_and_hash():
    r48 = get_recipe("h0", epochs=48, batch_size=128)
    assert (r48.name, r48.epochs, r48.batch_size, r48.hp) == ("h0", 48, 128, 48)
    assert r48.hash != get_recipe("h0").hash
    # Same procedure, same hash, whatever it is called; the hash is short and stable.
    assert get_recipe("h1", epochs=12).hash == get_recipe("h0").hash
    assert get_recipe("H0").hash == get_recipe("h0").hash and len(r48.hash) == 12
    assert get_recipe({"name": "h0", "epochs": 48, "batch_size": 128}) == r48
    assert get_recipe(r48) is r48


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        (("h9",), {}, "unknown recipe 'h9': choose one of ['h0', 'h1', 'h2']"),
        (("h0",), {"epoch": 3}, "unknown recipe field(s) ['epoch']"),
        (("h0",), {"epochs": 0}, "epochs must be an integer >= 1"),
        (("h0",), {"lr": -1.0}, "lr must be a positive finite number"),
        (({"epochs": 3},), {}, "needs a 'name'"),
        (("h0",), {"lr_schedule_step": "batch"},
         "lr_schedule_step must be one of epoch, iteration, got 'batch'"),
        (("h0",), {"optimizer": "lamb"}, "optimizer must be one of sgd, adam, rmsprop, got 'lamb'"),
        (("h0",), {"lr_steps": [0.1, 0.0]}, "every lr_steps value must be a positive finite number"),
        (("h0",), {"lr_steps": [0.1, float("nan")]}, "every lr_steps value must be a positive finite number"),
    ],
)
def test_bad_recipes_say_what_to_do(args, kwargs, message):
    with pytest.raises(UserError) as err:
        get_recipe(*args, **kwargs)
    assert message in str(err.value)


def test_an_over_long_optimizer_name_is_quoted_by_a_short_prefix_only():
    with pytest.raises(UserError) as err:
        get_recipe("h0", optimizer="x" * 10_000)
    assert f"got '{'x' * 40}'" in str(err.value) and len(str(err.value)) < 200


def test_an_explicit_lr_list_is_resampled_onto_the_training_steps():
    steps = [0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
    same = get_recipe("h0", epochs=3, lr_steps=steps)  # 3 epochs x 2 batches: the list as it is
    assert [same.lr_at(e, i, 2) for e in range(3) for i in range(2)] == steps
    longer = get_recipe("h0", epochs=3, lr_steps=steps)  # 3 x 4 batches: every value twice
    assert [longer.lr_at(e, i, 4) for e in range(3) for i in range(4)] == [v for v in steps for _ in (0, 1)]
    shorter = get_recipe("h0", epochs=3, lr_steps=steps)  # 3 x 1: every second value
    assert [shorter.lr_at(e, 0, 1) for e in range(3)] == [0.5, 0.3, 0.1]
    assert same.lr_at(3, 0, 2) == 0.05  # past the end: the last value
    # A Tune config's list becomes a tuple (frozen and hashable); JSON round-trips it.
    assert same.lr_steps == tuple(steps) and hash(same)
    assert recorded_recipe({**same.to_dict(), "hash": same.hash}) == same


def test_optimizer_and_lr_list_at_their_defaults_leave_records_and_hashes_as_before():
    """Every recipe recorded before the fields existed must read, compare and hash the same."""
    plain = get_recipe("h0")
    assert "optimizer" not in plain.to_json() and "lr_steps" not in plain.to_json()
    assert get_recipe("h0", optimizer="sgd", lr_steps=()) == plain
    assert get_recipe("h0", optimizer="sgd").hash == plain.hash == "382c58e33747"
    assert get_recipe("h0", lr_schedule_step="iteration").hash == "2a0ee0492c37"
    adam, listed = get_recipe("h0", optimizer="adam"), get_recipe("h0", lr_steps=[0.1])
    assert len({plain.hash, adam.hash, listed.hash}) == 3
    assert '"optimizer": "adam"' in adam.to_json() and '"lr_steps": [0.1]' in listed.to_json()
