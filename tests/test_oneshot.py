"""One-shot NAS: the supernet, the six strategies, exact checkpoints, the CLI on a real local Ray."""

import dataclasses
import io
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from cli_fixtures import orchestrate_cli

from spaces import UserError, get_space
from trainables.data import Split, iterate_batches
from trainables.oneshot import ALGORITHMS, strategy_class
from trainables.oneshot.darts_v2 import unrolled_hypergradient
from trainables.oneshot.gdas import GDAS
from trainables.oneshot.search import ArchLookup, SearchEngine
from trainables.oneshot.supernet import NUM_EDGES, NUM_OPS, ArchSample, SearchCell, TopologySupernet
from trainables.train import cached_dataset

ROOT = Path(__file__).resolve().parents[1]
FAST = {"candidates": 4}  # derivation ranks few candidates: the tests check behaviour, not quality


@pytest.fixture(scope="module")
def digits():
    """The first 192 train and 128 valid images of digits: 3 steps per epoch keep the tests quick."""
    full = cached_dataset("digits")
    part = lambda split, n: Split(split.images[:n].contiguous(), split.labels[:n])  # noqa: E731
    return dataclasses.replace(full, train=part(full.train, 192), valid=part(full.valid, 128))


def tiny_net(dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    return TopologySupernet(3, C=4, N=1, in_channels=1).to(dtype)


def tiny_batch(n=12, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 6, 6, generator=g, dtype=dtype), torch.randint(3, (n,), generator=g)


@pytest.mark.parametrize("unchosen_gradient", [True, False])
def test_gdas_computes_exactly_the_sampled_op_on_every_edge_forward_and_backward(unchosen_gradient):
    net = tiny_net()
    gdas = GDAS(net, torch.Generator().manual_seed(1), epochs=10, unchosen_gradient=unchosen_gradient)
    calls = {}
    cells = [m for m in net.modules() if isinstance(m, SearchCell)]
    for c, cell in enumerate(cells):
        for e, ops in enumerate(cell.edges):
            for k, op in enumerate(ops):
                op.register_forward_hook(lambda *_, key=(c, e, k): calls.__setitem__(key, calls.get(key, 0) + 1))
    sample = gdas.gumbel_sample()
    assert sample.index is not None and len(sample.index) == NUM_EDGES
    assert sample.add_unchosen == unchosen_gradient
    loss = F.cross_entropy(net(*tiny_batch()[:1], sample), tiny_batch()[1])
    expected = {(c, e, sample.index[e]): 1 for c in range(len(cells)) for e in range(NUM_EDGES)}
    assert calls == expected  # one op per edge and cell, and it is the sampled one
    loss.backward()
    for cell in cells:
        for e, ops in enumerate(cell.edges):
            for k, op in enumerate(ops):
                for p in op.parameters():  # backward reaches the sampled op only
                    assert (p.grad is not None) == (k == sample.index[e])
    # The straight-through weight has value 1 on the chosen op, exactly 0 on the others.
    picked = sample.weights[torch.arange(NUM_EDGES), list(sample.index)]
    assert torch.allclose(picked, torch.ones(NUM_EDGES))
    others = torch.ones(NUM_EDGES, NUM_OPS, dtype=torch.bool)
    others[torch.arange(NUM_EDGES), list(sample.index)] = False
    assert (sample.weights.detach()[others] == 0).all()
    # Only the chosen op's weight: edges that drew ``none`` compute a constant zero, so their
    # logits get no gradient (the reference's gdas_v1); with NATS-Bench's form every logit does.
    for e, k in enumerate(sample.index):
        assert bool((gdas.alpha.grad[e] != 0).all()) == (unchosen_gradient or k != 0), (e, k)


def test_gdas_adds_the_zero_weights_of_unchosen_ops_as_nats_bench_forward_gdas():
    """Hand-checked on one cell: value unchanged; each unchosen weight gets the summed upstream gradient."""
    torch.manual_seed(0)
    cell = SearchCell(2, 2)
    x = torch.randn(3, 2, 4, 4)
    index = (3, 0, 1, 2, 4, 0)  # node 1 <- conv3x3, node 2 <- none + skip, node 3 <- conv1x1 + pool + none
    hard = F.one_hot(torch.tensor(index), NUM_OPS).float()
    w_plain = hard.clone().requires_grad_()
    w_nats = hard.clone().requires_grad_()
    plain = cell(x, ArchSample(w_plain, index))
    nats = cell(x, ArchSample(w_nats, index, add_unchosen=True))
    assert torch.equal(nats, plain)  # the unchosen weights are 0: the output is the chosen ops'
    nats.sum().backward()
    plain.sum().backward()
    assert torch.equal(w_plain.grad[others_mask(index)], torch.zeros(NUM_EDGES * (NUM_OPS - 1)))
    # Edges into the output node (3, 4, 5): upstream gradient 1 per output element.
    for e in (3, 4, 5):
        for k in range(NUM_OPS):
            if k != index[e]:
                assert w_nats.grad[e, k] == nats.numel()
    live = others_mask(index)
    live[[1, 2]] = False  # node 2 reaches the output only through edge 5, which drew none: dead
    assert (w_nats.grad[live] != 0).all() and (w_nats.grad[[1, 2]] == 0).all()
    assert torch.allclose(w_nats.grad[~others_mask(index)], w_plain.grad[~others_mask(index)])


def others_mask(index) -> torch.Tensor:
    mask = torch.ones(NUM_EDGES, NUM_OPS, dtype=torch.bool)
    mask[torch.arange(NUM_EDGES), list(index)] = False
    return mask


def test_gdas_by_default_gives_every_logit_gradient_and_the_chosen_ops_value():
    x, y = tiny_batch()
    grads, outputs = {}, {}
    for unchosen in (True, False):
        gdas = GDAS(tiny_net(), torch.Generator().manual_seed(5), epochs=10, unchosen_gradient=unchosen)
        sample = gdas.gumbel_sample()
        outputs[unchosen] = gdas.net(x, sample)
        F.cross_entropy(outputs[unchosen], y).backward()
        grads[unchosen] = gdas.alpha.grad.clone()
    assert torch.allclose(outputs[True], outputs[False], atol=1e-6)
    assert (grads[True] != 0).all()  # every logit of every edge, even where the edge drew none
    assert not torch.allclose(grads[True], grads[False])
    assert GDAS(tiny_net(), torch.Generator(), epochs=1).unchosen_gradient  # NATS-Bench's form by default


def test_supernet_bn_uses_batch_statistics_and_candidate_ops_have_no_affine():
    net = tiny_net()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            assert m.running_mean is None and not m.track_running_stats
    for cell in (m for m in net.modules() if isinstance(m, SearchCell)):
        for m in cell.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                assert not m.affine
    x, _ = tiny_batch()
    sample = ArchSample(torch.full((NUM_EDGES, NUM_OPS), 0.2))
    with torch.no_grad():
        train_out = net.train()(x, sample)
        assert torch.equal(net.eval()(x, sample), train_out)  # eval mode changes nothing


def test_architecture_and_weight_steps_leave_each_others_parameters_alone(digits):
    engine = SearchEngine("darts-v2", digits, epochs=2, seed=0, C=4, N=1)
    engine.run_epoch()  # momentum buffers exist now
    strategy, batch = engine.strategy, engine.rank_batch
    weights = {n: p.detach().clone() for n, p in engine.net.named_parameters()}
    grads = {n: p.grad.clone() for n, p in engine.net.named_parameters()}
    momentum = [engine.weight_optimizer.state[p]["momentum_buffer"].clone() for p in engine.net.parameters()]
    alpha = strategy.alpha.detach().clone()
    strategy.arch_step(batch, batch, engine)
    assert not torch.equal(strategy.alpha, alpha)
    for n, p in engine.net.named_parameters():
        assert torch.equal(p, weights[n]) and torch.equal(p.grad, grads[n])
    for p, m in zip(engine.net.parameters(), momentum):
        assert torch.equal(engine.weight_optimizer.state[p]["momentum_buffer"], m)
    strategy.alpha.grad = None
    F.cross_entropy(engine.net(batch[0], strategy.weight_sample()), batch[1]).backward()
    assert strategy.alpha.grad is None  # weight steps never reach alpha


def test_gdas_temperature_decays_linearly_from_10_to_0_1():
    gdas = GDAS(tiny_net(), torch.Generator().manual_seed(0), epochs=5)
    taus = []
    for epoch in range(5):
        gdas.epoch = epoch
        taus.append(gdas.tau())
    assert taus == pytest.approx([10.0, 7.525, 5.05, 2.575, 0.1])


def test_darts_v2_hypergradient_matches_finite_differences_of_the_unrolled_loss():
    torch.set_default_dtype(torch.float64)
    try:
        net = tiny_net(torch.float64, seed=3)
        # With ReLU the unrolled loss is only piecewise smooth: the virtual step's weight gradient
        # jumps where a pre-activation crosses 0, so finite differences in alpha see steps. The
        # hypergradient does not depend on the activation; a smooth one makes the check exact.
        for module in list(net.modules()):
            for name, child in list(module.named_children()):
                if isinstance(child, torch.nn.ReLU):
                    setattr(module, name, torch.nn.Softplus())
        alpha = torch.nn.Parameter(0.3 * torch.randn(NUM_EDGES, NUM_OPS, generator=torch.Generator().manual_seed(4)))
        train, valid = tiny_batch(16, torch.float64, seed=5), tiny_batch(16, torch.float64, seed=6)
        lr, wd, momentum = 0.05, 1e-3, 0.9
        params = list(net.parameters())
        before = [p.detach().clone() for p in params]
        g = torch.Generator().manual_seed(7)
        buffers = {p: 0.1 * torch.randn(p.shape, generator=g) for p in params[::2]}  # as SGD's state
        ours = unrolled_hypergradient(net, alpha, train, valid, lr=lr, weight_decay=wd, momentum=momentum,
                                      buffers=buffers)
        assert all(torch.equal(p, b) for p, b in zip(params, before))  # weights left as found

        def unrolled_valid_loss(a: torch.Tensor) -> float:
            """L_val(w - lr * (momentum * buf + dL_train/dw + wd * w), a), computed exactly."""
            sample = ArchSample(F.softmax(a, dim=1))
            grads = torch.autograd.grad(F.cross_entropy(net(train[0], sample), train[1]), params, allow_unused=True)
            with torch.no_grad():
                for p, g in zip(params, grads):
                    p.sub_(lr * ((0 if g is None else g) + wd * p + momentum * buffers.get(p, 0)))
                value = F.cross_entropy(net(valid[0], ArchSample(F.softmax(a, dim=1))), valid[1]).item()
                for p, b in zip(params, before):
                    p.copy_(b)
            return value

        eps = 1e-5
        numeric = torch.zeros_like(alpha)
        for i in range(NUM_EDGES):
            for j in range(NUM_OPS):
                a = alpha.detach().clone()
                a[i, j] += eps
                plus = unrolled_valid_loss(a)
                a[i, j] -= 2 * eps
                numeric[i, j] = (plus - unrolled_valid_loss(a)) / (2 * eps)
        first_order = torch.autograd.grad(
            F.cross_entropy(net(valid[0], ArchSample(F.softmax(alpha, dim=1))), valid[1]), alpha)[0]
        error = (ours - numeric).norm() / numeric.norm()
        assert error < 1e-2, error  # measured 0.3 %: the O(r) error of the Hessian-vector estimate
        # ... and the second-order term matters here: the first-order gradient is clearly different.
        assert (first_order - numeric).norm() / numeric.norm() > 10 * error
    finally:
        torch.set_default_dtype(torch.float32)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_strategy_derives_a_valid_architecture_and_resumes_exactly(algorithm, digits):
    """Two epochs straight vs one epoch, a checkpoint through torch.save, a fresh engine, one more."""
    make = lambda: SearchEngine(algorithm, digits, epochs=2, seed=7, C=4, N=1, knobs=FAST)  # noqa: E731
    straight = make()
    first = straight.run_epoch()
    second = straight.run_epoch()
    space = get_space("tss")
    for r in (first, second):
        assert 0 <= r["arch_index"] < space.size and space.parse(r["arch"]) == r["arch_index"]
        assert 0.0 <= r["arch_entropy"] <= math.log(NUM_OPS) + 1e-6
        assert math.isfinite(r["search_loss"]) and 0 <= r["supernet_valid_acc"] <= 100

    interrupted = make()
    assert untimed(interrupted.run_epoch()) == untimed(first)
    state = interrupted.state_dict()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    del interrupted
    restored = make()
    buffer.seek(0)
    restored.load_state_dict(torch.load(buffer, weights_only=False))
    assert untimed(restored.run_epoch()) == untimed(second)
    for a, b in zip(straight.net.state_dict().values(), restored.net.state_dict().values()):
        assert torch.equal(a, b)
    assert straight.strategy.entropy() == restored.strategy.entropy()
    with pytest.raises(UserError, match="all 2 search epochs ran"):
        restored.run_epoch()


def untimed(result: dict) -> dict:
    """A result without what the clock decides (times, peak memory)."""
    return {k: v for k, v in result.items() if not k.endswith("_time_s") and k != "peak_rss_mib"}


def test_the_tune_trainable_checkpoints_and_restores_exactly(tmp_path, no_home_ray_results):
    """OneShotSearch's own save/load (what Tune calls on pause, failure and restore), without Ray."""
    from trainables.oneshot.search import oneshot_trainable

    final = np.linspace(50, 99, get_space("tss").size)
    lookup = ArchLookup(final=final, search_valid=final - 1, final_hp=12, search_hp=12, dataset="digits")

    class WithLookup(oneshot_trainable()):  # what tune.with_parameters does, without the object store
        def setup(self, config):
            super().setup(config, lookup=lookup)

    config = {"algorithm": "gdas", "epochs": 2, "seed": 1, "C": 4, "N": 1, "device": "cpu"}
    make = lambda: WithLookup(config=dict(config))  # noqa: E731
    straight = make()
    first, second = straight.step(), straight.step()
    assert second["done"] and second["test_acc"] == final[second["arch_index"]]
    assert second["rank"] == get_space("tss").size - second["arch_index"]
    paused = make()
    assert untimed(paused.step()) == untimed(first)
    (tmp_path / "ckpt").mkdir()
    paused.save_checkpoint(str(tmp_path / "ckpt"))
    restored = make()
    restored.load_checkpoint(str(tmp_path / "ckpt"))
    assert untimed(restored.step()) == untimed(second)
    for t in (straight, paused, restored):
        t.stop()


def test_a_checkpoint_of_another_search_is_refused(digits):
    gdas = SearchEngine("gdas", digits, epochs=2, seed=0, C=4, N=1)
    other = SearchEngine("gdas", digits, epochs=2, seed=1, C=4, N=1)
    with pytest.raises(UserError, match="checkpoint is for the search"):
        gdas.load_state_dict(other.state_dict())
    knobbed = SearchEngine("gdas", digits, epochs=2, seed=0, C=4, N=1, knobs={"tau_min": 1.0})
    with pytest.raises(UserError, match="checkpoint is for the search"):
        knobbed.load_state_dict(gdas.state_dict())


def test_bad_engine_input_gets_clear_errors(digits):
    with pytest.raises(UserError, match="unknown one-shot algorithm 'darts'.*darts-v1"):
        strategy_class("darts")
    with pytest.raises(UserError, match="at least 1 epoch"):
        SearchEngine("gdas", digits, epochs=0, seed=0, C=4, N=1)
    with pytest.raises(UserError, match=r"gdas has no knob\(s\) \['tau'\].*tau_max"):
        SearchEngine("gdas", digits, epochs=1, seed=0, C=4, N=1, knobs={"tau": 1})


def test_lookup_ranks_the_best_architecture_first():
    final = np.array([90.0, np.nan, 95.0, 90.0, 80.0])
    lookup = ArchLookup(final=final, search_valid=final - 1, final_hp=200, search_hp=12, dataset="x")
    assert lookup.rank[[2, 0, 3, 4]].tolist() == [1, 2, 2, 4] and np.isnan(lookup.rank[1])
    assert lookup.figures(2) == {"test_acc": 95.0, "valid_acc_search_hp": 94.0, "rank": 1.0,
                                 "final_hp": 200, "search_hp": 12, "test_acc_surrogate": False,
                                 "feedback_surrogate": False}


def test_lookup_from_the_benchmark_task_view_scores_as_the_task_does():
    from benchmark_data.reader import Benchmark

    task = Benchmark.open().task("tss", "digits")
    lookup = ArchLookup.from_task(task)
    assert (lookup.dataset, lookup.final_hp, lookup.search_hp) == ("digits", task.final_hp, task.feedback_hp)
    np.testing.assert_array_equal(lookup.final, task.final.astype(np.float64))
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(lookup.search_valid, np.nanmean(task.feedback[:, :, -1], axis=1))
    # the ranks it serves are the task's, and the same as its own rule computes from ``final``
    own = ArchLookup(final=lookup.final, search_valid=lookup.search_valid, final_hp=200, search_hp=12, dataset="x")
    np.testing.assert_array_equal(lookup.rank, own.rank)
    figures = lookup.figures(task.best_arch)
    assert figures["rank"] == 1.0 and figures["test_acc"] == pytest.approx(task.best_final)


def orchestrate(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "orchestrate.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("args, message", [
    (["--searcher", "gdas", "--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["--searcher", "darts-v1", "--dataset", "cifar10"], "has no dataset 'cifar10'"),
    (["--searcher", "enas", "--C", "16"], "trained with C=8, N=1"),
    (["--searcher", "rsps", "--space", "sss"], "--searcher rsps searches the topology space (--space tss); on "
                                               "--space sss use one of tas, fbnetv2, tunas"),
    (["--searcher", "setn", "--budget", "2e4s"], "--budget is a flag of `orchestrate.py simulate`, not of oneshot"),
    (["oneshot", "--searcher", "gdas", "--workers", "1"], "--workers is a flag of"),
    (["oneshot", "--searcher", "darts"], "invalid choice: 'darts'"),
    (["oneshot", "--epochs", "3"], "the following arguments are required: --searcher"),
    (["oneshot", "--searcher", "gdas", "--runs", "0"], "--runs must be at least 1, got 0"),
    (["oneshot", "--searcher", "gdas", "--store", "/nowhere/at/all"], "/nowhere/at/all"),
])
def test_oneshot_cli_bad_input_is_refused_before_anything_runs(tmp_path, args, message):
    code, _, err = orchestrate_cli(*args, "--out", tmp_path / "out")
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_oneshot_cli_runs_two_seeds_on_ray_and_writes_the_runs_table(tmp_path):
    from benchmark_data.reader import Benchmark

    proc = orchestrate("oneshot", "--searcher", "rsps", "--epochs", "2", "--runs", "2", "--seed", "3", "--quiet",
                       "--parallel", "2", "--out", str(tmp_path / "out"), "--experiment", "os", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rsps" in proc.stdout and "final test acc" in proc.stdout and proc.stderr == ""
    assert "rsps seed 3: |" in proc.stdout and "rsps seed 4: |" in proc.stdout  # the derived architectures
    runs = Benchmark.open(tmp_path / "out").runs("os")
    assert len(runs) == 4 and sorted(set(runs["run_seed"])) == [3, 4]
    assert runs.groupby("run_seed")["event"].apply(list).tolist() == [[0, 1], [0, 1]]
    bench = Benchmark.open()
    for r in runs.itertuples():
        stored = bench.metrics("tss", "digits", 12, int(r.best_arch_index), epoch=12)
        assert r.best_test_acc == pytest.approx(float(np.nanmean(stored["test_acc"])), abs=1e-4)
        assert r.feedback == pytest.approx(float(np.nanmean(stored["valid_acc"])), abs=1e-4)
        assert 1 <= r.best_rank <= 15625 and r.wall_time_s > 0 and math.isfinite(r.search_loss)


# --- NATS-Bench's exact forms (items of the one-shot review) -----------------------------------------
def test_rsps_draws_every_cell_separately_and_never_an_all_none_node():
    from spaces.nats_topology import EDGES
    from trainables.oneshot.rsps import RSPS

    net = TopologySupernet(3, C=4, N=2, in_channels=1)
    rsps = RSPS(net, torch.Generator().manual_seed(0), epochs=1)
    draws = [rsps.weight_sample() for _ in range(100)]
    assert all(len(d) == net.search_cells() == 6 for d in draws)
    cells = [s.index for d in draws for s in d]
    assert len({d[0].index for d in draws} | {d[1].index for d in draws}) > 100  # cells differ
    assert any(len({s.index for s in d}) > 1 for d in draws)
    for ops in cells:  # forward_urs: each node has an incoming op that is not none
        for node in (1, 2, 3):
            assert any(ops[e] != 0 for e, (t, _) in enumerate(EDGES) if t == node), ops
    assert sum(ops[1] == 0 for ops in cells) > 0  # none still appears where another input carries
    # One sample per cell computes exactly what those cells compute with a shared sample.
    x, _ = tiny_batch()
    shared = ArchSample.single_path(cells[0])
    with torch.no_grad():
        assert torch.equal(net(x, [shared] * 6), net(x, shared))
    with pytest.raises(ValueError, match="5 cell samples for 6 search cells"):
        net(x, [shared] * 5)


def test_rsps_derives_from_distinct_uniform_candidates(digits):
    engine = SearchEngine("rsps", digits, epochs=1, seed=0, C=4, N=1)
    candidates = engine.strategy.distinct_uniform_ops(100)
    assert len(set(candidates)) == 100 and all(len(c) == NUM_EDGES for c in candidates)


def test_setn_derives_from_exactly_the_100_most_probable_cells(digits):
    import itertools

    engine = SearchEngine("setn", digits, epochs=1, seed=0, C=4, N=1)
    setn = engine.strategy
    with torch.no_grad():
        setn.alpha.copy_(torch.randn(NUM_EDGES, NUM_OPS, generator=torch.Generator().manual_seed(3)))
    logp = F.log_softmax(setn.alpha.detach().double(), dim=1).tolist()
    every = list(itertools.product(range(NUM_OPS), repeat=NUM_EDGES))  # index order
    by_prob = sorted(every, key=lambda ops: -sum(logp[e][k] for e, k in enumerate(ops)))
    assert setn.top_ops(100) == by_prob[:100]
    assert setn.top_ops(1) == [tuple(setn.alpha.argmax(1).tolist())]
    assert setn.candidates == 100 and setn.derive(engine) == engine.best_of(by_prob[:100])
    # Equal alphas: every cell ties, and ties keep index order (Python's stable sort, as return_topK).
    with torch.no_grad():
        setn.alpha.zero_()
    assert setn.top_ops(3) == every[:3]


def test_search_defaults_are_nats_benchs(digits):
    from orchestrator.oneshot import DEFAULT_EPOCHS

    assert DEFAULT_EPOCHS == 100  # weight-sharing.config
    engine = SearchEngine("darts-v1", digits, epochs=4, seed=0, C=4, N=1)
    assert engine.grad_clip is None  # search-cell.py does not clip
    lrs = []
    engine.weight_optimizer.register_step_pre_hook(lambda opt, *_: lrs.append(opt.param_groups[0]["lr"]))
    for _ in range(4):
        engine.run_epoch()
    # Per integer epoch (xautodl CosineAnnealingLR.get_lr), 0.001 + 0.024 * (1 + cos(pi e / 4)) / 2:
    per_epoch = [0.025, 0.001 + 0.012 * (1 + 0.5 ** 0.5), 0.013, 0.001 + 0.012 * (1 - 0.5 ** 0.5)]
    assert lrs == pytest.approx([lr for lr in per_epoch for _ in range(3)], rel=1e-12)
    # The knob clips where asked.
    clipped = SearchEngine("darts-v1", digits, epochs=1, seed=0, C=4, N=1, knobs={"grad_clip": 1e-3})
    norms = []
    clipped.weight_optimizer.register_step_pre_hook(lambda opt, *_: norms.append(float(torch.cat(
        [p.grad.flatten() for g in opt.param_groups for p in g["params"]]).norm())))
    clipped.run_epoch()
    assert max(norms) <= 1e-3 * (1 + 1e-4)
    with pytest.raises(UserError, match="grad_clip must be a positive number"):
        SearchEngine("darts-v1", digits, epochs=1, seed=0, C=4, N=1, knobs={"grad_clip": 0})


def test_enas_controller_follows_search_cell_py(digits):
    big_valid = Split(torch.cat([digits.valid.images] * 5), torch.cat([digits.valid.labels] * 5))
    data = dataclasses.replace(digits, valid=big_valid)  # 640 valid images: more than one reward batch
    engine = SearchEngine("enas", data, epochs=1, seed=0, C=4, N=1)
    enas = engine.strategy
    group = enas.controller_optimizer.param_groups[0]
    assert group["betas"] == (0.5, 0.999) and group["eps"] == 1e-3 and group["lr"] == 1e-3
    assert group["weight_decay"] == 0 and enas.controller_grad_clip == 5.0
    seen, norms = [], []
    engine.net.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    enas.controller_optimizer.register_step_pre_hook(lambda opt, *_: norms.append(float(torch.cat(
        [p.grad.flatten() for p in enas.controller.parameters()]).norm())))
    enas.baseline.update(-1000.0)  # an absurd baseline: a huge advantage, a gradient far over 5
    train = engine.rank_batch
    enas.arch_step(train, train, engine)
    (reward_images,) = seen
    assert reward_images.shape[0] == 512  # 512 validation images, not the 64-image arch batch
    # ... and clean ones: every reward image is one of the unaugmented validation images.
    clean, _ = next(iter(iterate_batches(digits.valid, len(digits.valid), shuffle=False, augment=False,
                                         dataset=digits, generator=None)))
    flat_clean = clean.flatten(1)
    for img in reward_images.flatten(1)[:64]:
        assert ((flat_clean - img).abs().amax(1) < 1e-6).any()
    assert norms[0] <= 5.0 * (1 + 1e-4)
    unclipped = SearchEngine("enas", data, epochs=1, seed=0, C=4, N=1, knobs={"controller_grad_clip": None})
    unclipped.strategy.controller_optimizer.register_step_pre_hook(lambda opt, *_: norms.append(float(torch.cat(
        [p.grad.flatten() for p in unclipped.strategy.controller.parameters()]).norm())))
    unclipped.strategy.baseline.update(-1000.0)
    unclipped.strategy.arch_step(train, train, unclipped)
    assert norms[1] > 5.0  # the clip was needed
