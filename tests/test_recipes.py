import math

import pytest

from spaces.errors import UserError
from trainables.recipes import RECIPES, get_recipe


def test_reference_recipes_match_nats_bench():
    assert {n: r.epochs for n, r in RECIPES.items()} == {"h0": 12, "h1": 200, "h2": 90}
    for r in RECIPES.values():
        assert (r.lr, r.lr_min, r.momentum, r.nesterov, r.weight_decay, r.batch_size) == (
            0.1, 0.0, 0.9, True, 5e-4, 256)
        assert r.hp == r.epochs


def test_cosine_schedule_per_iteration():
    r = get_recipe("h0")  # 12 epochs
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
    floor = get_recipe("h0", lr_min=0.01)
    assert floor.lr_at(12, 0, ipe) == pytest.approx(0.01)


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
    ],
)
def test_bad_recipes_say_what_to_do(args, kwargs, message):
    with pytest.raises(UserError) as err:
        get_recipe(*args, **kwargs)
    assert message in str(err.value)
