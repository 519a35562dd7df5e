"""Size search by weight sharing (issue #12): the channel supernet, TAS / FBNet-V2 / TuNAS, the cost
tables and TAS' cost loss, exact resume, and the CLI on a real local Ray against stores written in
tmp_path (a real builder store, completed by surrogate rows where a test needs predictions)."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F
from cli_fixtures import orchestrate_cli
from conftest import make_epoch_rows

from benchmark_data import schema as S
from benchmark_data import writer as W
from benchmark_data.reader import Benchmark
from spaces import UserError, get_space
from spaces.nats_size import CHANNELS
from trainables.data import Split
from trainables.oneshot import SIZE_ALGORITHMS, algorithm_space, strategy_class
from trainables.oneshot.cost_loss import resolve_target
from trainables.oneshot.fbnetv2 import FBNetV2
from trainables.oneshot.search import SearchEngine
from trainables.oneshot.size_cost import size_costs
from trainables.oneshot.size_supernet import (
    ALIGNED_LAYERS,
    MAX_WIDTH,
    Interpolate,
    SizeSupernet,
    cwi,
    path_sample,
    width_masks,
)
from trainables.oneshot.tas import TAS
from trainables.oneshot.tunas import TuNAS
from trainables.train import cached_dataset

ROOT = Path(__file__).resolve().parents[1]
SSS = get_space("sss")


@pytest.fixture(scope="module")
def digits():
    """The first 192 train and 128 valid images of digits: 3 steps per epoch keep the tests quick."""
    full = cached_dataset("digits")
    part = lambda split, n: Split(split.images[:n].contiguous(), split.labels[:n])  # noqa: E731
    return dataclasses.replace(full, train=part(full.train, 192), valid=part(full.valid, 128))


def tiny_net(seed=0):
    torch.manual_seed(seed)
    return SizeSupernet(3, in_channels=1, input_size=6)


def tiny_batch(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 6, 6, generator=g), torch.randint(3, (n,), generator=g)


# --- channel-wise interpolation and the supernet ----------------------------------------------------------
def test_cwi_equals_its_formula_on_a_hand_made_tensor():
    x = torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1).expand(2, 3, 2, 2).contiguous()
    # 3 -> 2: channel 0 = mean of inputs 0..ceil(3/2)-1 = (1+2)/2, channel 1 = inputs floor(3/2)..2 = (2+3)/2
    assert cwi(x, 2)[0, :, 0, 0].tolist() == [1.5, 2.5]
    # 2 -> 3 (non-divisible): inputs {0}, {0, 1}, {1}
    assert cwi(x[:, :2], 3)[1, :, 1, 1].tolist() == [1.0, 1.5, 2.0]
    assert cwi(x, 3) is x  # the same width: the map itself
    g = torch.Generator().manual_seed(0)
    for c_in, c_out in ((24, 64), (40, 56), (56, 40), (8, 24)):
        h = torch.randn(3, c_in, 4, 4, generator=g)
        by_formula = torch.stack([h[:, (i * c_in) // c_out: math.ceil((i + 1) * c_in / c_out)].mean(1)
                                  for i in range(c_out)], dim=1)
        torch.testing.assert_close(cwi(h, c_out), by_formula)
        # ... which is the reference's adaptive average pooling over the channels (xautodl ChannelWiseInterV2)
        torch.testing.assert_close(cwi(h, c_out), F.adaptive_avg_pool3d(h, (c_out, 4, 4)))


def test_interpolate_sums_the_aligned_widths_and_pads_with_zeros():
    h = torch.randn(2, MAX_WIDTH, 3, 3, generator=torch.Generator().manual_seed(1))
    w = torch.tensor([0.25, 0.75])
    out = Interpolate((16, 40), w)(h)
    assert out.shape == h.shape and (out[:, 40:] == 0).all()
    torch.testing.assert_close(out[:, :40], 0.25 * cwi(h[:, :16], 40) + 0.75 * h[:, :40])


def test_the_supernet_is_64_wide_with_batch_statistics_and_affine_bn_only_in_the_reductions():
    from spaces.nats_network import ResidualReduction

    net = tiny_net()
    assert net.stem[0].out_channels == MAX_WIDTH and net.classifier.in_features == MAX_WIDTH
    reductions = {id(m) for b in net.cells if isinstance(b, ResidualReduction) for m in b.modules()}
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(m.running_mean is None and not m.track_running_stats for m in bns)
    assert all(m.affine == (id(m) in reductions) for m in bns) and any(m.affine for m in bns)
    with pytest.raises(UserError, match="one cell per stage"):
        SizeSupernet(3, N=2)


def test_a_single_path_passes_exactly_its_widths_from_layer_to_layer():
    """BN before the selection: each block's input has the previous width's channels, zeros above."""
    net = tiny_net()
    choices = (2, 0, 7, 4, 1)  # 24:8:64:40:16
    seen = []
    hooks = [b.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach())) for b in net.cells]
    hooks.append(net.lastact.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach())))
    with torch.no_grad():
        net(tiny_batch()[0], path_sample(choices, tiny_batch()[0]))
    for h in hooks:
        h.remove()
    widths = [CHANNELS[choices[layer]] for layer in ALIGNED_LAYERS]  # stem, then the five layers
    for h, c in zip(seen, widths):
        assert (h[:, c:] == 0).all() and (h[:, :c] != 0).any(), c


# --- the strategies --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sampled, learns", [(1, False), (2, True)])
def test_tas_learns_nothing_from_one_sampled_width_and_something_from_two(sampled, learns):
    """Thesis Table 3.6: with |I| = 1 the re-normalised weight is exactly 1, so alpha's gradient is 0."""
    x, y = tiny_batch()
    tas = TAS(tiny_net(), torch.Generator().manual_seed(3), epochs=10, sampled_widths=sampled)
    sample = tas.search_sample()
    assert all(len(a.widths) == sampled for a in sample)
    if sampled == 1:
        assert all(float(a.weights.detach()) == 1.0 for a in sample)
    grad = torch.autograd.grad(F.cross_entropy(tas.net(x, sample), y), tas.alpha)[0]
    assert bool((grad != 0).any()) == learns
    if not learns:
        assert torch.equal(grad, torch.zeros_like(grad))


def test_tas_samples_distinct_widths_with_gumbel_weights_renormalised_over_them():
    tas = TAS(tiny_net(), torch.Generator().manual_seed(0), epochs=10)
    state = tas.generator.get_state()
    sample = tas.search_sample()
    tas.generator.set_state(state)  # the same draws again, by hand: noise, then the subset
    for layer, align in zip(ALIGNED_LAYERS, sample):
        logits = tas.gumbel_logits(layer)
        chosen = torch.multinomial(F.softmax(logits.detach(), 0) + 1e-7, 2, replacement=False, generator=tas.generator)
        assert align.widths == tuple(CHANNELS[k] for k in chosen.tolist()) and len(set(align.widths)) == 2
        torch.testing.assert_close(align.weights, F.softmax(logits[chosen], 0))
        assert float(align.weights.detach().sum()) == pytest.approx(1.0)


def test_tunas_and_fbnetv2_masks_select_exactly_the_chosen_channels():
    h = torch.randn(4, MAX_WIDTH, 3, 3, generator=torch.Generator().manual_seed(2)) + 5.0  # no zeros in h
    tunas = TuNAS(tiny_net(), torch.Generator().manual_seed(1), epochs=10)
    masks, log_p = tunas.policy_sample()
    hard = width_masks(h)
    widths = []
    for m in masks:
        (k,) = [k for k in range(len(CHANNELS)) if torch.equal(m.mask, hard[k])]  # one of the hard masks
        widths.append(k)
        c = CHANNELS[k]
        out = m(h)
        assert torch.equal(out[:, :c], h[:, :c]) and (out[:, c:] == 0).all()
    logp = F.log_softmax(tunas.alpha, dim=1)
    by_hand = sum(logp[layer, k] for layer, k in zip(ALIGNED_LAYERS, widths))
    assert float(log_p.detach()) == pytest.approx(float(by_hand.detach()))
    # FBNet-V2: channel j keeps the summed Gumbel-softmax weight of the widths above j.
    fbnet = FBNetV2(tiny_net(), torch.Generator().manual_seed(4), epochs=10)
    state = fbnet.generator.get_state()
    sample = fbnet.search_sample()
    fbnet.generator.set_state(state)
    for layer, m in zip(ALIGNED_LAYERS, sample):
        w = F.softmax(fbnet.gumbel_logits(layer), dim=0).detach()
        expected = torch.tensor([float(w[[k for k, c in enumerate(CHANNELS) if c > j]].sum())
                                 for j in range(MAX_WIDTH)])
        torch.testing.assert_close(m.mask.detach(), expected)
        assert float(m.mask[0].detach()) == pytest.approx(1.0)
    # the derivation's path: the hard masks of the chosen widths, the stem with the first layer's
    path = path_sample((1, 2, 3, 4, 5), h)
    assert [int(p.mask.sum()) for p in path] == [16, 16, 24, 32, 40, 48]


def test_the_defaults_follow_nats_benchs_search_size_py(digits):
    engine = SearchEngine("tas", digits, epochs=4, seed=0, C=None, N=1)
    tas = engine.strategy
    group = tas.arch_optimizer.param_groups[0]
    assert (group["lr"], group["weight_decay"], group["betas"]) == (3e-4, 1e-3, (0.5, 0.999))
    assert tas.sampled_widths == 2 and tas.warmup_ratio is None and tas.targets == []
    taus = []
    for epoch in range(4):
        tas.epoch = epoch
        taus.append(tas.tau())
    assert taus == pytest.approx([10.0, 6.7, 3.4, 0.1])
    tunas = SearchEngine("tunas", digits, epochs=1, seed=0, C=None, N=1).strategy
    assert tunas.arch_optimizer.param_groups[0]["weight_decay"] == 0 and tunas.baseline.momentum == 0.95
    assert tuple(SIZE_ALGORITHMS) == ("tas", "fbnetv2", "tunas")
    assert {algorithm_space(a) for a in SIZE_ALGORITHMS} == {"sss"} and algorithm_space("gdas") == "tss"


def test_warm_up_rests_the_architecture_and_trains_wide_then_random_widths(digits):
    engine = SearchEngine("fbnetv2", digits, epochs=4, seed=0, C=None, N=1, knobs={"warmup_ratio": 0.5})
    fb = engine.strategy
    hard = width_masks(fb.alpha)
    assert all(torch.equal(m.mask, hard[-1]) for m in fb.warmup_sample())  # epoch 0: every channel
    fb.epoch = 1  # keeps all 64 with probability 1/2, else a uniform width
    drawn = [int(m.mask.sum()) for _ in range(200) for m in fb.warmup_sample()]
    assert 0.55 < drawn.count(64) / len(drawn) < 0.65 and set(drawn) == set(CHANNELS)  # 1/2 + 1/2 * 1/8
    alphas = []
    for _ in range(4):
        engine.run_epoch()
        alphas.append(fb.alpha.detach().clone())
    assert torch.equal(alphas[0], alphas[1])  # epochs 0 and 1 of 4 warm up: alpha as initialised
    assert not torch.equal(alphas[1], alphas[2])  # epoch 2 of 4 = 50 %: the architecture learns
    with pytest.raises(UserError, match="warmup_ratio must be a share"):
        SearchEngine("tas", digits, epochs=1, seed=0, C=None, N=1, knobs={"warmup_ratio": 1.0})


# --- costs and the cost loss ------------------------------------------------------------------------------------
def test_the_cost_tables_give_the_flops_and_params_of_the_built_networks():
    costs = size_costs(10, 1, 8)  # digits' shape
    rng = np.random.default_rng(0)
    for index in [0, SSS.size - 1, *rng.integers(0, SSS.size, 6).tolist()]:
        built = SSS.cost(int(index), 10, input_size=8, in_channels=1)
        mine = costs.of(SSS.choice_indices(int(index)))
        assert mine == pytest.approx(built, rel=1e-9), SSS.to_str(int(index))
        assert costs.flops_m.every[index] == pytest.approx(built["flops_m"], rel=1e-9)
    # cifar's shape too (the builder's counts on 32x32x3 images, as NATS-Bench reports)
    assert size_costs(10, 3, 32).of((7,) * 5) == pytest.approx(SSS.cost(SSS.size - 1), rel=1e-9)


def test_the_expected_cost_is_exact_under_independent_layer_distributions():
    costs = size_costs(10, 1, 8)
    probs = F.softmax(torch.randn(5, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64), dim=1)
    every_prob = probs[0]
    for layer in range(1, 5):  # the probability of every configuration, first layer most significant
        every_prob = (every_prob[:, None] * probs[layer][None, :]).reshape(-1)
    for metric in ("flops_m", "params_m"):
        table = costs.table(metric)
        brute = float((torch.as_tensor(table.every) * every_prob).sum())
        assert float(table.expected(probs)) == pytest.approx(brute, rel=1e-9)


def test_the_cost_loss_takes_each_of_its_three_branches():
    every = np.array([1.0, 4.6, 10.0])
    target = resolve_target("flops_m", 5, every)  # the reference's band: [5 - 0.05 * 10, 5]
    assert (target.low, target.high) == pytest.approx((4.5, 5.0))
    expected = torch.tensor(3.0, requires_grad=True)
    too_big, fine, too_small = (target.loss(expected, derived) for derived in (10.0, 4.6, 1.0))
    assert float(too_big.detach()) == pytest.approx(math.log(3.0))
    assert float(too_small.detach()) == pytest.approx(-math.log(3.0))
    assert float(fine) == 0.0 and not fine.requires_grad
    assert torch.autograd.grad(too_big, expected)[0] > 0 > torch.autograd.grad(too_small, expected)[0]
    thesis = resolve_target("params_m", "50%", np.array([1.0, 5.1, 10.0]), band="thesis")  # 50 % of 10, +- 5 %
    assert (thesis.value, thesis.low, thesis.high) == pytest.approx((5.0, 4.75, 5.25))
    with pytest.raises(UserError, match=r"no network of the size space has 4\.75 to 5\.25 M parameters"):
        resolve_target("params_m", "50%", every, band="thesis")
    for bad, message in ((-3, "must be a positive"), ("0%", "must be a positive"), ("x", "give a cost in millions")):
        with pytest.raises(UserError, match=message):
            resolve_target("flops_m", bad, every)


def test_a_target_adds_the_cost_loss_to_the_architecture_step(digits):
    engine = SearchEngine("tas", digits, epochs=2, seed=0, C=None, N=1, knobs={"flops_target": "10%"})
    tas = engine.strategy
    with torch.no_grad():
        tas.alpha[:, -1] += 1.0  # derived: the widest network, far above 10 % of it
    def expected_flops() -> float:
        return float(engine.net.costs.flops_m.expected(F.softmax(tas.alpha.detach(), dim=1)))

    assert float(tas.cost_loss().detach()) == pytest.approx(2.0 * math.log(expected_flops()))
    grad = torch.autograd.grad(tas.cost_loss(), tas.alpha)[0]
    assert (grad[:, -1] > 0).all()  # descending it makes the widest width less likely
    with torch.no_grad():
        tas.alpha.zero_()
        tas.alpha[:, 0] += 1.0  # derived: the narrowest network, 1.6 % of the widest: below the band
    assert float(tas.cost_loss().detach()) == pytest.approx(-2.0 * math.log(expected_flops()))
    fraction = engine.net.costs.flops_m.every.max() * 0.1
    assert tas.targets[0].value == pytest.approx(fraction)
    with pytest.raises(UserError, match="flops_target 0.01: no network"):
        SearchEngine("tas", digits, epochs=1, seed=0, C=None, N=1, knobs={"flops_target": 0.01})


# --- the engine: one search epoch, exact resume ------------------------------------------------------------------
@pytest.mark.parametrize("algorithm, knobs", [
    ("tas", {}), ("fbnetv2", {"warmup_ratio": 0.4}), ("tunas", {"params_target": "40%"}),
    ("tas", {"flops_target": "50%", "warmup_ratio": 0.3}),
])
def test_every_size_strategy_reports_its_derivation_and_resumes_exactly(algorithm, knobs, digits):
    """Three epochs straight vs one epoch, a checkpoint through torch.save, a fresh engine, two more."""
    make = lambda: SearchEngine(algorithm, digits, epochs=3, seed=5, C=None, N=1, knobs=knobs)  # noqa: E731
    straight = make()
    results = [straight.run_epoch() for _ in range(3)]
    costs = straight.net.costs
    for r in results:
        assert 0 <= r["arch_index"] < SSS.size and SSS.parse(r["arch"]) == r["arch_index"]
        assert r["flops_m"] == pytest.approx(costs.flops_m.every[r["arch_index"]])
        assert r["params_m"] == pytest.approx(costs.params_m.every[r["arch_index"]])
        assert 0.0 <= r["arch_confidence"] <= 1.0 and 0.0 <= r["arch_entropy"] <= math.log(8) + 1e-6
        assert math.isfinite(r["search_loss"]) and 0 <= r["supernet_valid_acc"] <= 100
    interrupted = make()
    assert untimed(interrupted.run_epoch()) == untimed(results[0])
    buffer = io.BytesIO()
    torch.save(interrupted.state_dict(), buffer)
    buffer.seek(0)
    restored = make()
    restored.load_state_dict(torch.load(buffer, weights_only=False))
    assert [untimed(restored.run_epoch()) for _ in range(2)] == [untimed(r) for r in results[1:]]
    assert torch.equal(straight.strategy.alpha, restored.strategy.alpha)
    other = SearchEngine(algorithm, digits, epochs=3, seed=6, C=None, N=1, knobs=knobs)
    with pytest.raises(UserError, match="checkpoint is for the search"):
        other.load_state_dict(straight.state_dict())


def untimed(result: dict) -> dict:
    return {k: v for k, v in result.items() if not k.endswith("_time_s")}


def test_bad_engine_input_for_the_size_space(digits):
    with pytest.raises(UserError, match="has no C"):
        SearchEngine("tas", digits, epochs=1, seed=0, C=8, N=1)
    with pytest.raises(UserError, match="one cell per stage"):
        SearchEngine("tunas", digits, epochs=1, seed=0, C=None, N=5)
    with pytest.raises(UserError, match=r"sampled_widths \(\|I\|\) must be an integer from 1 to 8"):
        SearchEngine("tas", digits, epochs=1, seed=0, C=None, N=1, knobs={"sampled_widths": 9})
    with pytest.raises(UserError, match="cost_band 'text'"):
        SearchEngine("fbnetv2", digits, epochs=1, seed=0, C=None, N=1, knobs={"cost_band": "text"})
    with pytest.raises(UserError, match=r"tunas has no knob\(s\) \['tau_max'\]"):
        SearchEngine("tunas", digits, epochs=1, seed=0, C=None, N=1, knobs={"tau_max": 5.0})
    with pytest.raises(UserError, match="unknown one-shot algorithm 'mask_rl'.*tas, fbnetv2, tunas"):
        strategy_class("mask_rl")


# --- the command line, the store and Ray --------------------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["--searcher", "tas", "--space", "tss"], "--searcher tas searches the size space (--space sss); on --space "
                                              "tss use one of darts-v1, darts-v2, gdas, setn, enas, rsps"),
    (["--searcher", "tunas", "--flops-target", "-2"], "--flops-target '-2': a target must be a positive cost"),
    (["--searcher", "tas", "--params-target", "many"], "--params-target 'many': give a cost in millions"),
    (["--searcher", "fbnetv2", "--allow-gaps", "--flops-target", "0.05"],
     "--flops-target 0.05: no network of the size space has 0 to 0.05 MFLOPs"),
    (["--searcher", "tas", "--allow-gaps", "--flops-target", "0.1%"], "the networks range from 0.2709 to 17.08 MFLOPs"),
    (["--searcher", "gdas", "--flops-target", "50%"], "--flops-target: for the size strategies (tas, fbnetv2, tunas"),
    (["--searcher", "gdas", "--warmup-ratio", "0.2"], "--warmup-ratio: for the size strategies"),
    (["--searcher", "tas", "--warmup-ratio", "0"], "--warmup-ratio must be a share of the search epochs"),
    (["--searcher", "tas", "--C", "8"], "--C 8: the size space's channels are the architecture"),
    (["--searcher", "tas", "--N", "5"], "--N=5, but the size space has one cell per stage"),
    (["--searcher", "tas", "--allow-gaps", "--train-missing"], "--store embedded: this command writes"),
])
def test_size_search_bad_input_is_refused_before_anything_runs(tmp_path, args, message):
    code, _, err = orchestrate_cli("oneshot", *args, "--out", str(tmp_path / "out"))
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


@pytest.fixture
def size_store(tmp_path) -> tuple[Path, list[int]]:
    """A real builder store: two configurations of the size space trained on digits with a one-epoch
    h0 recipe (hp=1), completed by surrogate rows for every other configuration."""
    from trainables.builder import main as build

    root = tmp_path / "store"
    trained = [SSS.parse("8:8:8:8:8"), SSS.parse("64:64:64:64:64")]
    listing = root.parent / "archs.txt"
    listing.write_text("\n".join(map(str, trained)) + "\n")
    assert build(["--store", str(root), "--archs", str(listing), "--space", "sss", "--dataset", "digits",
                  "--recipe", "h0", "--epochs", "1", "--seeds", "0", "--N", "1", "--workers", "0", "--quiet"]) == 0
    predicted = np.setdiff1d(np.arange(SSS.size), trained)
    rows = make_epoch_rows(space="sss", hp=1, archs=predicted, seeds=(S.SURROGATE_SEED,), epochs=1, offset=1000.0)
    recipe = json.loads(Benchmark.open(root).metadata("sss", "digits", 1)["recipe"])
    W.write_fragment(root, "surrogate", rows.assign(status=S.SURROGATE_STATUS),
                     metadata=S.provenance("surrogate", recipe=recipe, skeleton={"N": 1},
                                           extra={"surrogate_model": "made-up model", "surrogate_cv": "{}"}))
    return root, trained


def test_oneshot_tas_labels_predictions_then_trains_them_into_the_store(size_store, tmp_path):
    """Two TAS seeds as parallel Tune trials on a surrogate-completed table: the per-epoch lines say
    which accuracies are predictions; --train-missing trains every derived configuration with the
    table's recipe into the store, and the runs rows are scored from the grown table."""
    root, trained = size_store
    before = set(Benchmark.open(root, surrogate=False).archs("sss", "digits", 1).tolist())
    assert before == set(trained)
    proc = subprocess.run([sys.executable, str(ROOT / "orchestrate.py"), "oneshot", "--searcher", "tas", "--space",
                           "sss", "--store", str(root), "--epochs", "2", "--runs", "2", "--parallel", "2",
                           "--train-missing", "--out", str(tmp_path / "out"), "--experiment", "size"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "one-shot tas on sss/digits (supernet trained on digits, N=1)" in out
    lines = [line for line in out.splitlines() if line.startswith("tas seed ")]
    assert len(lines) == 4 and all(" epoch " in line and "MFLOPs" in line and "confidence" in line for line in lines)
    assert any("(surrogate)" in line for line in lines)  # 2 of 32,768 trained: the derivations were predicted
    runs = Benchmark.open(tmp_path / "out").runs("size")
    assert len(runs) == 4 and sorted(set(runs["run_seed"])) == [0, 1] and set(runs["space"]) == {"sss"}
    derived = set(runs["best_arch_index"].astype(int))
    grown = Benchmark.open(root, surrogate=False)
    assert set(grown.archs("sss", "digits", 1).tolist()) == before | derived  # trained, with the table's recipe
    assert grown.metadata("sss", "digits", 1)["recipe"] == Benchmark.open(root).metadata("sss", "digits", 1)["recipe"]
    assert f"train-missing: trained {len(derived - before)} architecture(s)" in out
    for r in runs.itertuples():  # scored from the trained rows now, not the predictions (offset 1000)
        stored = grown.metrics("sss", "digits", 1, int(r.best_arch_index), epoch=1)
        assert r.best_test_acc == pytest.approx(float(np.nanmean(stored["test_acc"])), abs=1e-4)
        assert r.best_test_acc <= 100
        assert r.best_surrogate == False and r.surrogate == False  # noqa: E712 (numpy bools)
        assert r.best_arch == SSS.to_str(int(r.best_arch_index)) and r.wall_time_s > 0
    assert not any(line.startswith("surrogate:") for line in out.splitlines())  # no prediction is left


def test_oneshot_without_train_missing_keeps_the_predictions_and_says_so(size_store, tmp_path):
    root, _ = size_store
    code, out, err = orchestrate_cli("oneshot", "--searcher", "tunas", "--store", str(root), "--epochs", "1",
                                      "--quiet", "--out", str(tmp_path / "out"), "--experiment", "predicted",
                                      "--flops-target", "30%", "--warmup-ratio", "0.5")
    assert code == 0, err
    runs = Benchmark.open(tmp_path / "out").runs("predicted")
    (row,) = runs.itertuples()
    assert Benchmark.open(root).curve("sss", "digits", 1, "test_acc").surrogate[int(row.best_arch_index)]
    assert row.best_surrogate and row.surrogate  # its test accuracy and feedback are predictions
    assert row.best_test_acc == pytest.approx(row.best_arch_index + 1000.0 - 0.1 + 0.001 + 1, abs=1e-2)
    assert "surrogate: 1 of the 1 final test accuracies are predictions of made-up model" in out
    assert "(surrogate)" in out.split("derived architectures (last epoch):")[1]
    meta = pq.read_schema(next((tmp_path / "out" / "runs").rglob("*.parquet"))).metadata
    assert json.loads(meta[b"settings"])["knobs"] == {"flops_target": "30%", "warmup_ratio": 0.5}
