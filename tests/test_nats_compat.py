"""The NATS-Bench-compatible facade answers call by call as the official ``nats_bench`` API.

Each check opens the same tiny official-format archive twice: with ``nats_bench.create`` and, after
our import, with ``benchmark_data.nats_compat.create``. Floats agree to float32 precision (the store
keeps float32). The only expected differences are the documented gaps: test / valtest evaluation
times, which the store does not keep, are ``None``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import random
import re
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from nats_bench import create as official_create

from benchmark_data import schema as S
from benchmark_data import writer as W
from benchmark_data.importers import import_nats_archive, import_nats_table
from benchmark_data.nats_compat import NATSCompat, StoreArchResults, create
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
        # the size space's text shows cifar10-valid's test set too
        assert ours.query_by_arch(1, hp) == official.query_by_arch(1, hp)
        assert "test : [" in ours.query_by_arch(1, hp).splitlines()[3]


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
    # A store without results for the space cannot answer at all.
    (tmp_path / "epochs").mkdir()
    with pytest.raises(UserError, match="has no results for space 'tss'; import an official "
                                        "archive .* or build one"):
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


# --- the rest of nats_bench's surface ---------------------------------------------------------
def load_all(official) -> None:
    """Fast-mode nats_bench knows only the records it has loaded: load every one first."""
    for i in range(len(official)):
        official.query_meta_info_by_index(i, "12")


def printed(call) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        call()
    return buf.getvalue()


def test_iteration_and_indexing_behave_like_a_list(apis):
    official, ours = apis
    assert ours.index_kind == "nats"
    assert list(ours) == list(official) == [official.arch(i) for i in range(5)]
    assert ours[-1] == official[-1] and ours[1:3] == official[1:3]
    for api in (official, ours):
        with pytest.raises(IndexError):
            api[5]


def test_net_config_and_weights(apis, tmp_path):
    official, ours = apis
    for i in range(5):
        for dataset in DATASETS:
            assert ours.get_net_config(i, dataset) == official.get_net_config(i, dataset)
    trial = ours.query_by_index(1, "cifar100", "12")[777]
    assert trial.get_config(None) == official.query_by_index(1, "cifar100", "12")[777].get_config(None)
    assert list(trial.get_config(len)) == ["name", "C", "N", "genotype", "num_classes"]
    with pytest.raises(UserError, match="dataset 'mnist' is not in the store"):
        ours.get_net_config(1, "mnist")
    with pytest.raises(UserError, match="the store holds no trained weights"):
        ours.get_net_param(1, "cifar10", None, hp="200")
    with pytest.raises(UserError, match="is not in this benchmark"):
        ours.get_net_param("|bad|", "cifar10", None)
    assert ours.clear_params(1) is None and ours.clear_params(1, "12") is None
    assert ours.reload() is None and ours.reload(None, 3) is None
    ours.reset_fast_mode(False)
    assert ours.fast_mode is True  # the store is read lazily whatever is asked
    # size space: the fixed cell and the channel string
    src = write_archive(tmp_path / "src", space="sss", num_archs=2, datasets=("cifar100",), hps=("01",))
    import_nats_archive(src, tmp_path / "store", progress=False)
    size_official = official_create(str(src), "sss", fast_mode=True, verbose=False)
    size_ours = create(tmp_path / "store", "sss")
    assert size_ours.get_net_config(1, "cifar100") == size_official.get_net_config(1, "cifar100")
    with pytest.raises(UserError, match="get_unique_str is a topology-space"):
        size_ours.get_unique_str(0)


def test_query_info_strings_and_show_print_what_nats_bench_prints(apis):
    official, ours = apis
    for i in range(5):
        for hp in ("12", "200"):
            assert ours.query_by_arch(i, hp) == official.query_by_arch(i, hp)
            assert ours.query_info_str_by_arch(official.arch(i), hp) == \
                official.query_info_str_by_arch(official.arch(i), hp)
        assert printed(lambda i=i: ours.show(i)) == printed(lambda i=i: official.show(i))
    assert printed(lambda: ours.show(7)) == printed(lambda: official.show(7))
    everything = printed(lambda: ours.show())  # (nats_bench's own show(-1) raises a KeyError)
    assert everything.count("-th architecture! ") == 5 and everything.count(" 200 epochs ") == 5
    with pytest.warns(UserWarning, match="Find this arch-index : -1, but this arch is not evaluated"):
        assert ours.query_by_arch(get_space("tss").to_str(0), "12") is None
    with pytest.raises(UserError, match=r"only has hyper-parameters of \['12', '200'\] instead of 90"):
        ours.query_by_arch(1, "90")


def test_arch_results_views_answer_like_nats_bench_objects(apis):
    official, ours = apis
    compared = 0
    for i in range(5):
        for hp in ("12", "200"):
            theirs, mine = official.query_meta_info_by_index(i, hp), ours.query_meta_info_by_index(i, hp)
            assert isinstance(mine, StoreArchResults) and ours.query_by_index(i, hp=hp).arch_index == i
            assert (mine.arch_index, mine.arch_str, mine.arch_idx_str()) == \
                (theirs.arch_index, theirs.arch_str, theirs.arch_idx_str())
            assert mine.get_dataset_names() == theirs.get_dataset_names()
            assert mine.get_total_epoch() == theirs.get_total_epoch() == int(hp)
            for dataset in theirs.get_dataset_names():
                assert mine.get_dataset_seeds(dataset) == theirs.get_dataset_seeds(dataset)
                assert sorted(ours.query_by_index(i, dataset, hp)) == sorted(official.query_by_index(i, dataset, hp))
                costs = mine.get_compute_costs(dataset)
                assert_same({k: costs[k] for k in theirs.get_compute_costs(dataset)},
                            theirs.get_compute_costs(dataset))
                sets = ["train", "valid"] + {"cifar10": ["ori-test"], "cifar10-valid": ["x-valid", "ori-test"]
                                             }.get(dataset, ["x-valid", "x-test", "ori-test"])
                for setname in sets:
                    for iepoch in (None, 0, 5):
                        for is_random in (False, True, 777):
                            if i == 2 and dataset == "cifar100" and setname == "ori-test" and \
                                    iepoch is not None:  # the documented gap (see above)
                                with pytest.raises(UserError, match="the store has no ori-test "
                                                                    "accuracy of this run"):
                                    mine.get_metrics(dataset, setname, iepoch, is_random)
                                continue
                            got = call_both(theirs, mine, "get_metrics", dataset, setname, iepoch, is_random)
                            if got is None:
                                continue
                            want, have = got
                            gaps = set() if setname in ("train", "valid", "x-valid") else {"cur_time", "all_time"}
                            assert list(have) == list(want)
                            assert_same({k: v for k, v in have.items() if k not in gaps},
                                        {k: v for k, v in want.items() if k not in gaps})
                            assert all(have[k] is None for k in gaps)
                            compared += 1
    assert compared > 500
    with pytest.raises(UserError, match=r"invalid dataset-name : mnist vs. \['cifar10-valid', 'cifar10', 'cifar100'\]"):
        ours.query_by_index(1, "mnist")
    view = ours.query_meta_info_by_index(1, "12")
    with pytest.raises(UserError, match="cifar10 has no evaluation set 'x-test'"):
        view.get_metrics("cifar10", "x-test")
    with pytest.raises(UserError, match="invalid iepoch=12 < 12"):
        view.query("cifar10", 777).get_train(12)
    with pytest.raises(UserError, match="the store holds no trained weights"):
        view.get_net_param("cifar10")
    with pytest.raises(UserError, match=r"key=\('cifar10', 999\) not in"):
        view.query("cifar10", 999)
    with pytest.raises(UserError, match="invalid dataset-name : ImageNet16-120"):
        view.get_dataset_seeds("ImageNet16-120")


def test_statistics_evaluated_indexes_and_unique_strings(apis):
    official, ours = apis
    load_all(official)
    assert ours.evaluated_indexes == official.evaluated_indexes == set(range(5))
    for dataset in DATASETS:
        for hp in ("12", 200):
            assert ours.statistics(dataset, hp) == official.statistics(dataset, hp)
    with pytest.raises(UserError, match="mnist not in"):
        ours.statistics("mnist", "12")
    for i in range(5):
        assert ours.get_unique_str(i) == official.get_unique_str(i) == \
            ours.get_unique_str(official.arch(i))
    # the isomorphism key, on strings chosen to exercise zero and skip edges
    tss = get_space("tss")
    rng = np.random.default_rng(4)
    for index in rng.choice(tss.size, 40, replace=False):
        s = tss.to_str(int(index))
        assert NATSCompat.str2lists(s) == type(official).str2lists(s)
        np.testing.assert_array_equal(NATSCompat.str2matrix(s), type(official).str2matrix(s))
    with pytest.raises(UserError, match=re.escape("architecture '|none~0|' is not in this benchmark")):
        ours.get_unique_str("|none~0|")
    with pytest.raises(UserError, match=r"this op \(conv\) is not in"):
        NATSCompat.str2matrix("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    with pytest.raises(UserError, match="invalid input length : nor_conv_3x3"):
        NATSCompat.str2lists("|nor_conv_3x3|+|none~0|none~1|")


def test_unique_str_matches_nats_bench_on_many_topologies():
    """330 topologies against nats_bench's own structure code (no store needed: the key depends
    on the string alone)."""
    from nats_bench.genotype_utils import topology_str2structure
    tss = get_space("tss")
    rng = np.random.default_rng(9)
    strings = [tss.to_str(int(i)) for i in rng.choice(tss.size, 300, replace=False)]
    strings += [tss.to_str(i) for i in range(30)]  # many none / skip edges
    api = NATSCompat.__new__(NATSCompat)  # only meta_archs and the index lookup are needed
    api.space, api.meta_archs = "tss", strings
    api.archstr2index = {s: i for i, s in enumerate(strings)}
    api._to_project = np.arange(len(strings))
    for s in strings:
        assert api.get_unique_str(s) == topology_str2structure(s).to_unique_str(consider_zero=True), s


def test_a_store_without_official_indices_answers_by_project_index(tmp_path, epoch_rows):
    rows = epoch_rows(archs=range(4), seeds=(0, 1))
    W.write_fragment(tmp_path, "epochs", rows, metadata=S.provenance(skeleton={"C": 8, "N": 1}))
    with pytest.warns(UserWarning, match="holds no official NATS-Bench indices .* answers by the "
                                         "project index"):
        api = create(tmp_path, "tss")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per store, not at every create
        again = create(tmp_path, "tss")
    assert api.index_kind == again.index_kind == "project" and len(api) == get_space("tss").size
    names = list(api)
    assert len(names) == len(api) and names[7] == get_space("tss").to_str(7) == api.arch(7)
    assert api.query_index_by_arch(names[3]) == 3 and api.evaluated_indexes == {0, 1, 2, 3}
    info = api.get_more_info(3, "digits", hp=12, is_random=False)
    assert info["valid-accuracy"] == pytest.approx(3 + 0.05 + 0.012, rel=1e-6)
    assert api.get_net_config(3, "digits") == {"name": "infer.tiny", "C": 8, "N": 1,
                                               "arch_str": names[3], "num_classes": 10}
    assert api.statistics("digits", 12) == {2: 4}
    with pytest.raises(UserError, match="has no results of architecture 9 on digits"):
        api.get_more_info(9, "digits")


@pytest.mark.skipif(not (Path(__file__).resolve().parents[1] / "benchmark_data/embedded/epochs").is_dir(),
                    reason="no embedded benchmark in this checkout")
def test_the_embedded_benchmark_opens_by_project_index():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        api = create(None, "tss")
    assert api.index_kind == "project" and "digits" in api._datasets
    valid, _, cost, _ = api.simulate_train_eval(5, "digits", hp="12")
    assert 0 <= valid <= 100 and cost > 0
