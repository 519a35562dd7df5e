"""The NATS-Bench-compatible facade answers call by call as the official ``nats_bench`` API.

Each check opens the same tiny official-format archive twice: with ``nats_bench.create`` and, after
our import, with ``benchmark_data.nats_compat.create``. Floats agree to float32 precision (the store
keeps float32). The only expected differences are the documented gaps: test / valtest evaluation
times, which the store does not keep, are ``None``.
"""

from __future__ import annotations

import csv
import random
import time
from pathlib import Path

import pytest
from nats_bench import create as official_create

from benchmark_data.importers import import_nats_archive, import_nats_table
from benchmark_data.nats_compat import create
from nats_fixtures import write_archive, write_table
from spaces import UserError, get_space

DATASETS = ("cifar10-valid", "cifar10", "cifar100")
TIME_GAPS = {"test-per-time", "test-all-time", "valtest-per-time", "valtest-all-time",
             "T-ori-test@epoch", "T-ori-test@total", "T-x-test@epoch", "T-x-test@total"}
REAL_TABLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / \
    "nats_tss_cifar10_test_acc_200ep.csv"
BEST_C10 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


class Genotype:
    """Stands for NATS-Bench's structure objects, which the API accepts through ``tostr()``."""

    def __init__(self, s: str):
        self.s = s

    def tostr(self) -> str:
        return self.s


@pytest.fixture(scope="module")
def apis(tmp_path_factory):
    src = write_archive(tmp_path_factory.mktemp("nats"), datasets=DATASETS, old_style_archs=(2,))
    store = tmp_path_factory.mktemp("store")
    import_nats_archive(src, store, progress=False)
    return official_create(str(src), "tss", fast_mode=True, verbose=False), create(store, "topology")


def assert_same(ours: dict, theirs: dict) -> None:
    assert list(ours) == list(theirs)
    for key, value in theirs.items():
        if key in TIME_GAPS:
            assert ours[key] is None, key
        elif isinstance(value, str) or value is None:
            assert ours[key] == value, key
        else:
            assert ours[key] == pytest.approx(value, rel=2e-6, abs=1e-6), key


def call_both(official, ours, method: str, *args, **kwargs):
    """Both answers, or both errors (ValueError; ours is its subclass UserError)."""
    results = []
    for api in (official, ours):
        random.seed(7)
        try:
            results.append(getattr(api, method)(*args, **kwargs))
        except (ValueError, KeyError) as exc:
            results.append(type(exc))
    if results[0] in (ValueError, KeyError):
        assert results[1] is UserError, (method, args, kwargs, results)
        return None
    return results


def test_indices_strings_and_length_match(apis):
    official, ours = apis
    assert len(ours) == len(official) == 5
    for i in range(len(official)):
        s = official.arch(i)
        assert ours.arch(i) == ours[i] == s
        assert ours.query_index_by_arch(s) == official.query_index_by_arch(s) == i
        assert ours.query_index_by_arch(Genotype(s)) == official.query_index_by_arch(Genotype(s))
        assert ours.query_index_by_arch(i) == i
    other = get_space("tss").to_str(0)
    assert ours.query_index_by_arch(other) == official.query_index_by_arch(other) == -1
    assert ours.query_index_by_arch(3.5) == official.query_index_by_arch(3.5) == -1
    for bad in (5, -1):
        with pytest.raises(ValueError):
            official.query_index_by_arch(bad)
        with pytest.raises(UserError, match=r"Invalid architecture index .* vs \[0, 5\]"):
            ours.query_index_by_arch(bad)
    with pytest.raises(UserError, match="invalid index"):
        ours.arch(9)
    # (fast-mode NATS-Bench lists only the hps of records it happened to load so far)
    assert ours.avaliable_hps == ["12", "200"]
    assert (ours.search_space_name, ours.is_topology, ours.full_epochs_in_paper) == \
        (official.search_space_name, official.is_topology, official.full_epochs_in_paper)
    random.seed(3)
    picks = [official.random() for _ in range(10)]
    random.seed(3)
    assert [ours.random() for _ in range(10)] == picks


def test_get_more_info_matches_for_every_seed_choice_epoch_and_recipe(apis):
    official, ours = apis
    compared = 0
    for index in range(5):
        for dataset in DATASETS:
            for hp, iepochs in (("12", (None, 0, 5, 11)), ("200", (None, 0, 99))):
                for iepoch in iepochs:
                    for is_random in (False, True, 777, 888):
                        got = call_both(official, ours, "get_more_info", index, dataset,
                                        iepoch=iepoch, hp=hp, is_random=is_random)
                        if got is None:
                            continue
                        compared += 1
                        theirs, mine = got
                        if index == 2 and dataset == "cifar100" and iepoch not in (None, int(hp) - 1):
                            # The documented gap: an old-style record has only ori-test (valtest)
                            # before its last epoch, and ori-test without its halves is not stored.
                            assert "valtest-accuracy" in theirs and "valid-accuracy" not in theirs
                            assert_same(mine, {k: v for k, v in theirs.items() if k.startswith("train")})
                            continue
                        assert_same(mine, theirs)
    # arch 0 has only seed 777 on cifar10-valid: asking for 888 is an error in both
    assert compared == 5 * 3 * 7 * 4 - 7
    # arch 2's cifar10-valid test set was evaluated only after the last epoch: keys absent
    # before, as in NATS-Bench
    assert "test-accuracy" not in ours.get_more_info(2, "cifar10-valid", iepoch=3, hp="12")
    assert "test-accuracy" in ours.get_more_info(2, "cifar10-valid", hp="12")


def test_cost_info_and_latency_match(apis):
    official, ours = apis
    for index in range(5):
        for dataset in DATASETS:
            for hp in ("12", "200"):
                theirs, mine = official.get_cost_info(index, dataset, hp), ours.get_cost_info(index, dataset, hp)
                assert sorted(mine) == sorted(theirs)
                assert_same({k: mine[k] for k in theirs}, theirs)
                assert ours.get_latency(index, dataset, hp) == pytest.approx(
                    official.get_latency(index, dataset, hp), rel=1e-6)


def test_simulate_train_eval_and_time_accounting_match(apis):
    official, ours = apis
    rng = random.Random(11)
    calls = [(official.arch(rng.randrange(5)) if rng.random() < 0.5 else rng.randrange(5),
              rng.choice(("cifar10", "cifar100")), rng.choice(("12", "200")),
              rng.choice((None, 0, 3, 10))) for _ in range(40)]
    # not arch 2 on cifar100 before its last epoch: the documented gap, checked below
    calls = [c for c in calls if not (official.query_index_by_arch(c[0]) == 2 and c[1] == "cifar100"
                                      and c[3] is not None)]
    assert len(calls) > 25
    results = []
    for api in (official, ours):
        api.reset_time()
        random.seed(5)
        results.append([api.simulate_train_eval(a, d, iepoch=e, hp=hp) for a, d, hp, e in calls])
    for theirs, mine in zip(*results):
        assert mine == pytest.approx(theirs, rel=2e-6)
    assert ours.used_time == pytest.approx(official.used_time, rel=2e-6) and ours.used_time > 0
    before = ours.used_time
    ours.simulate_train_eval(1, "cifar10", hp="12", account_time=False)
    assert ours.used_time == before
    ours.reset_time()
    assert ours.used_time == 0
    with pytest.raises(UserError, match="no validation accuracy of architecture 2 on cifar100"):
        ours.simulate_train_eval(2, "cifar100", iepoch=3, hp="200")
    with pytest.raises(UserError, match="Invalid dataset name : cifar10-valid"):
        ours.simulate_train_eval(1, "cifar10-valid")


def test_find_best_matches(apis):
    official, ours = apis
    for dataset, metric in (("cifar10", "test"), ("cifar10", "valid"), ("cifar10", "train"),
                            ("cifar100", "x-valid"), ("cifar100", "x-test"), ("cifar100", "ori-test")):
        for hp in ("12", "200"):
            for limits in ({}, {"flop_max": 14.0}, {"param_max": 0.115}):
                theirs = official.find_best(dataset, metric, hp=hp, **limits)
                mine = ours.find_best(dataset, metric, hp=hp, **limits)
                assert mine[0] == theirs[0] and mine[1] == pytest.approx(theirs[1], rel=2e-6)


def test_size_space_facade_matches(tmp_path):
    src = write_archive(tmp_path / "src", space="sss", num_archs=3, datasets=("cifar10-valid", "cifar10"))
    import_nats_archive(src, tmp_path / "store", progress=False)
    official = official_create(str(src), "size", fast_mode=True, verbose=False)
    ours = create(tmp_path / "store", "sss")
    assert ours.avaliable_hps == ["01", "12", "90"]
    assert ours.is_size and ours.search_space_name == "size"
    for hp in ("01", "90"):
        got = call_both(official, ours, "get_more_info", 1, "cifar10-valid", hp=hp, is_random=False)
        assert_same(got[1], got[0])


def test_bad_input_is_explained(apis, tmp_path):
    _, ours = apis
    with pytest.raises(UserError, match="invalid search space 'nas101'"):
        create(tmp_path, "nas101")
    archive = write_archive(tmp_path / "src", num_archs=2, datasets=("cifar10",), hps=("12",))
    with pytest.raises(UserError, match="is an official NATS-Bench archive, not a store; import it"):
        create(archive, "tss")
    with pytest.raises(UserError, match="dataset 'mnist' is not in the store .* it has: cifar10"):
        ours.get_more_info(1, "mnist")
    with pytest.raises(UserError, match="hp=7 is not in the store for tss/cifar10; it has hp 12, 200"):
        ours.get_more_info(1, "cifar10", hp="7")
    with pytest.raises(UserError, match=r"invalid iepoch=12; it must be in 0\.\.11"):
        ours.get_more_info(1, "cifar10", iepoch=12)
    with pytest.raises(UserError, match=r"can not find random seed \(999\)"):
        ours.get_more_info(1, "cifar10", is_random=999)
    with pytest.raises(UserError, match="is not in this benchmark"):
        ours.get_more_info(get_space("tss").to_str(0), "cifar10")
    # A store without any imported NATS-Bench index cannot answer by the official index.
    (tmp_path / "epochs").mkdir()
    with pytest.raises(UserError, match="no NATS-Bench indices .* import an official archive"):
        create(tmp_path, "tss")


def test_table_store_answers_what_the_table_holds(tmp_path):
    write_table(tmp_path / "t.csv", num_archs=10)
    import_nats_table(tmp_path / "t.csv", tmp_path / "store")
    api = create(tmp_path / "store", "tss")
    info = api.get_more_info(3, "cifar10", hp="200", is_random=False)
    assert set(info) == {"comment", "test-loss", "test-accuracy", "test-per-time", "test-all-time"}
    assert info["test-loss"] is None and info["test-per-time"] is None
    values = {int(r["index"]): float(r["cifar10_test_acc_200ep"]) for r in csv.DictReader(open(tmp_path / "t.csv"))}
    assert info["test-accuracy"] == pytest.approx(values[3], rel=1e-6)
    best = max(values, key=values.get)
    assert api.find_best("cifar10", "test", hp="200") == (best, pytest.approx(values[best], rel=1e-6))


@pytest.mark.skipif(not REAL_TABLE.is_file(), reason=f"{REAL_TABLE} is not available")
def test_real_published_table_maps_one_to_one_and_finds_the_published_best(tmp_path):
    tss = get_space("tss")
    with open(REAL_TABLE, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 15625
    project = [tss.parse(r["arch"]) for r in rows]
    assert all(tss.to_str(a) == r["arch"] for a, r in zip(project, rows))  # canonical round trip
    assert sorted(project) == list(range(15625))  # one-to-one onto the project index
    start = time.perf_counter()
    report = import_nats_table(REAL_TABLE, tmp_path / "store")
    print(f"\nimport of {REAL_TABLE.name}: {time.perf_counter() - start:.2f} s ({report})")
    api = create(tmp_path / "store", "tss")
    assert len(api) == 15625
    assert all(api.query_index_by_arch(r["arch"]) == int(r["index"]) for r in rows[::97])
    # 94.3733 %; official index 13714 ties it, and NATS-Bench's rule (first in official order) picks
    # the published best
    best, acc = api.find_best("cifar10", "test", hp="200")
    assert api.arch(best) == BEST_C10 and round(acc, 2) == 94.37
    assert api.get_more_info(BEST_C10, "cifar10", hp="200")["test-accuracy"] == pytest.approx(acc)
