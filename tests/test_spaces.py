"""The NATS topology and size spaces: encodings, isomorphism, sampling, networks and costs."""

import numpy as np
import pytest
import torch

from spaces import UserError, get_space
from spaces.nats_network import count_params_flops

TSS, SSS = get_space("tss"), get_space("sss")
BEST_C10 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def test_every_topology_index_round_trips_through_its_string_and_config():
    strings = [TSS.to_str(i) for i in range(TSS.size)]
    assert len(set(strings)) == TSS.size == 15625
    assert all(TSS.parse(s) == i for i, s in enumerate(strings))
    assert all(TSS.config_to_index(TSS.index_to_config(i)) == i for i in range(0, TSS.size, 7))


def test_topology_index_order_is_the_documented_base5_number():
    assert TSS.to_str(0) == "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    # edge 1<-0 is the most significant digit, edge 3<-2 the least.
    assert TSS.to_str(1) == "|none~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|"
    assert TSS.to_str(5 ** 5) == "|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    assert TSS.parse(BEST_C10) == TSS.index_of_choices([3, 3, 3, 1, 3, 2])


@pytest.mark.parametrize("bad, message", [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|", "has 2 node(s)"),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
     "has 1 incoming edge(s), needs 2"),
    ("|conv_5x5~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
     "unknown op 'conv_5x5'"),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~2|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
     "has source 2, expected 1"),
    ("|nor_conv_3x3~0|,|nor_conv_3x3~0|nor_conv_3x3~1|,|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
     "has 1 node(s)"),
    ("nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
     "must start and end with '|'"),
    ("|nor_conv_3x3-0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
     "is not 'op~source'"),
    ("", "has 1 node(s)"),
])
def test_malformed_topology_strings_are_rejected_with_a_specific_message(bad, message):
    with pytest.raises(UserError, match=None) as err:
        TSS.parse(bad)
    assert message in str(err.value)


def test_bad_indices_and_configs_are_rejected():
    for bad in (-1, 15625, 2.0, True, "x"):
        with pytest.raises(UserError):
            TSS.resolve(bad) if isinstance(bad, str) else TSS.check_index(bad)
    with pytest.raises(UserError, match="lacks the decisions"):
        TSS.config_to_index({"edge_1_0": "none"})
    with pytest.raises(UserError, match="is not one of"):
        TSS.config_to_index({d: "conv" for d in TSS.decisions})
    with pytest.raises(UserError, match="unknown search space 'xyz'"):
        get_space("xyz")
    assert TSS.resolve(" 42 ") == 42 and TSS.resolve(BEST_C10) == TSS.parse(BEST_C10)


def test_isomorphism_classes_merge_exactly_the_cells_that_compute_the_same_function():
    ids = TSS.iso_class_ids()
    assert len(np.unique(ids)) == 5273
    assert len(np.unique(TSS.iso_class_ids(rule="nb201"))) == 6466  # NAS-Bench-201's published count
    assert all(ids[c] == c for c in np.unique(ids))  # the id is the smallest member
    # A conv on edge 2<-1 is irrelevant when node 2 does not reach the output.
    a = TSS.parse("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|nor_conv_1x1~0|nor_conv_3x3~1|none~2|")
    b = TSS.parse("|nor_conv_3x3~0|+|none~0|none~1|+|nor_conv_1x1~0|nor_conv_3x3~1|none~2|")
    assert ids[a] == ids[b]
    # Sums commute: swapping which of two parallel paths holds which op keeps the function.
    c = TSS.parse("|skip_connect~0|+|none~0|none~1|+|nor_conv_1x1~0|nor_conv_3x3~1|none~2|")
    d = TSS.parse("|skip_connect~0|+|none~0|none~1|+|nor_conv_3x3~0|nor_conv_1x1~1|none~2|")
    assert ids[c] == ids[d]
    # ... but a 3x3 conv is not a 1x1 conv.
    e = TSS.parse("|skip_connect~0|+|none~0|none~1|+|nor_conv_3x3~0|nor_conv_3x3~1|none~2|")
    assert ids[c] != ids[e]
    # Every cell without an input->output path is one class.
    no_path = [i for i in range(0, TSS.size, 3) if not TSS.has_path(i)]
    assert len(no_path) > 100 and len({ids[i] for i in no_path}) == 1
    with pytest.raises(UserError, match="unknown isomorphism rule"):
        TSS.iso_class_ids(rule="graph")


def test_mutation_changes_exactly_one_edge_and_neighbours_are_all_single_edge_changes():
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = TSS.sample(rng)
        m = TSS.mutate(a, rng)
        assert sum(x != y for x, y in zip(TSS.choice_indices(a), TSS.choice_indices(m))) == 1
    n = TSS.neighbours(a)
    assert len(n) == len(set(n)) == 24
    assert all(sum(x != y for x, y in zip(TSS.choice_indices(a), TSS.choice_indices(b))) == 1 for b in n)
    assert [TSS.sample(np.random.default_rng(5)) for _ in range(3)] == [TSS.sample(np.random.default_rng(5))] * 3


@pytest.mark.parametrize("num_classes, size, in_ch", [(10, 32, 3), (100, 32, 3), (120, 16, 3), (10, 8, 1)])
def test_topology_networks_build_for_every_dataset_shape(num_classes, size, in_ch):
    net = TSS.build(TSS.parse(BEST_C10), num_classes, C=8, N=1, in_channels=in_ch)
    out = net(torch.randn(2, in_ch, size, size))
    assert out.shape == (2, num_classes)
    out.sum().backward()


def test_costs_fall_in_the_ranges_nats_bench_reports_and_match_full_hook_counts():
    table = TSS.cost_table(10)
    assert 0.06 < table["params_m"].min() < 0.08 and 1.5 < table["params_m"].max() < 1.56
    assert 7.5 < table["flops_m"].min() < 8.1 and 215 < table["flops_m"].max() < 225
    for i in np.random.default_rng(1).integers(TSS.size, size=4):
        params, flops = count_params_flops(TSS.build(int(i), 10), 3, 32)
        assert TSS.cost(int(i)) == pytest.approx({"params_m": params, "flops_m": flops}, rel=1e-9)
    small = TSS.cost(TSS.parse(BEST_C10), 120, input_size=16)
    assert small["flops_m"] < TSS.cost(TSS.parse(BEST_C10), 120)["flops_m"]


def test_size_space_encodes_builds_and_counts():
    assert SSS.size == 32768
    for s in ("8:8:8:8:8", "64:64:64:64:64", "8:16:32:64:64"):
        assert SSS.to_str(SSS.parse(s)) == s
    assert SSS.parse("8:8:8:8:16") == 1 and SSS.to_str(SSS.size - 1) == "64:64:64:64:64"
    for bad, msg in (("8:16:32:64", "needs 5"), ("8:16:32:64:65", "each must be one of"),
                     ("a:b:c:d:e", "each must be one of")):
        with pytest.raises(UserError, match=msg):
            SSS.parse(bad)
    small, large = SSS.cost(SSS.parse("8:8:8:8:8")), SSS.cost(SSS.parse("64:64:64:64:64"))
    assert small["params_m"] < 0.02 < 0.5 < large["params_m"] and small["flops_m"] < large["flops_m"]
    net = SSS.build(SSS.parse("8:16:24:32:40"), 100)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 100)
    rng = np.random.default_rng(0)
    a = SSS.sample(rng)
    assert sum(x != y for x, y in zip(SSS.channels(a), SSS.channels(SSS.mutate(a, rng)))) == 1
    assert len(SSS.neighbours(a)) == 35


def test_size_space_has_one_cell_per_stage_only():
    # NATS-Bench's infer.shape.tiny: 5 layers = 3 one-cell stages + 2 reduction blocks.
    net = SSS.build(SSS.parse("64:64:64:64:64"), 10)
    assert len(net.cells) == 5
    assert SSS.cost(SSS.parse("64:64:64:64:64"), 10, N=1) == SSS.cost(SSS.parse("64:64:64:64:64"))
    for call in (SSS.build, SSS.cost):
        with pytest.raises(UserError, match=r"sss: N=5, but the size space has one cell per stage"):
            call(SSS.parse("64:64:64:64:64"), 10, N=5)
