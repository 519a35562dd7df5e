"""AutoHAS (thesis Chapter 4): the joint space, the combined update of Eq. 4.5, Eq. 4.10, resume, CLI."""

import dataclasses
import io
import math
import types

import numpy as np
import pytest
import torch
from cli_fixtures import orchestrate_cli

from spaces import UserError, get_space
from spaces.hparams import BasisMixture, Categorical
from spaces.joint import JointSpace, autohas_hparams, basis_values, derive_continuous, joint_space
from spaces.mbconv import CHOICES, MBConvSpace
from trainables.data import Split
from trainables.oneshot import JOINT_ALGORITHMS, algorithm_space, strategy_class
from trainables.oneshot.autohas import AutoHAS, AutoHASMBConv, derive_value
from trainables.oneshot.autohas_supernet import MBConvSupernet
from trainables.oneshot.search import SearchEngine
from trainables.oneshot.supernet import NUM_EDGES, TopologySupernet
from trainables.train import cached_dataset


@pytest.fixture(scope="module")
def digits():
    """192 train and 128 valid digits images: 3 search steps per epoch."""
    full = cached_dataset("digits")
    part = lambda split, n: Split(split.images[:n].contiguous(), split.labels[:n])  # noqa: E731
    return dataclasses.replace(full, train=part(full.train, 192), valid=part(full.valid, 128))


def batch(n=12, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 6, 6, generator=g, dtype=dtype), torch.randint(3, (n,), generator=g)


def strategy(cls=AutoHAS, steps=2, **knobs):
    torch.manual_seed(0)
    net = (TopologySupernet(3, C=4, N=1, in_channels=1) if cls is AutoHAS
           else MBConvSupernet(3, C=4, N=1, in_channels=1)).double()
    s = cls(net, torch.Generator().manual_seed(1), epochs=1, **knobs)
    s.bind(types.SimpleNamespace(iters_per_epoch=steps))  # all bind reads of the engine
    return s


# --- the joint space ------------------------------------------------------------------------------
@pytest.mark.parametrize("space", [joint_space("tss"),
                                   joint_space("mbconv", N=2, optimizers=("sgd", "adam", "rmsprop"))])
def test_the_mixed_encoding_round_trips(space):
    rng = np.random.default_rng(0)
    names = [p.name for p in space.hparams]
    for _ in range(20):
        config = space.search_space.sample(rng)
        encoding = space.encode(config)
        assert encoding["arch"].shape == (len(space.arch.decisions), len(space.arch.choices))
        assert set(encoding["arch"].sum(1)) == {1.0}
        back = space.decode(encoding)
        assert {k: v for k, v in back.items() if k not in names} == {k: config[k] for k in back if k not in names}
        for p in space.hparams:
            if isinstance(p, BasisMixture):
                assert back[p.name] == pytest.approx(config[p.name], rel=1e-12)
                assert np.count_nonzero(encoding[p.name]) <= 2  # the two neighbouring basis values
            else:
                assert back[p.name] == config[p.name]
    assert "optimizer" in names or len(names) == 2


def test_default_basis_is_the_default_times_the_thesis_multipliers():
    lr, wd = autohas_hparams(lr=0.1, weight_decay=1e-4)
    assert lr.basis == pytest.approx((0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0))
    assert wd.basis == pytest.approx(tuple(1e-4 * m for m in (0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)))


@pytest.mark.parametrize("make, message", [
    (lambda: basis_values("learning-rate", 0.1, (1.0, -0.5)), r"learning-rate basis value must be finite and > 0"),
    (lambda: autohas_hparams(lr=0.0), r"learning-rate basis value must be finite and > 0"),
    (lambda: autohas_hparams(multipliers=()), r"learning-rate basis is empty"),
    (lambda: JointSpace(get_space("tss"), []), r"joint space needs at least one hyperparameter"),
    (lambda: JointSpace(get_space("tss"), [Categorical("edge_1_0", (1, 2))]), r"clash"),
    (lambda: autohas_hparams(optimizers=("sgd", "lbfgs")), r"optimizers must be at least two distinct"),
    (lambda: joint_space("resnet"), r"choose tss or mbconv"),
    (lambda: MBConvSpace(0), r"N >= 1"),
])
def test_bad_joint_space_input_gets_a_clear_error(make, message):
    with pytest.raises(UserError, match=message):
        make()


def test_mbconv_space_names_and_builds_its_networks():
    space = MBConvSpace(1)
    assert space.size == 6 ** 3 and CHOICES == ("k3e3", "k3e6", "k5e3", "k5e6", "k7e3", "k7e6")
    assert space.to_str(space.default_index) == "k3e6-k3e6-k3e6"
    assert space.parse("k7e3-k3e3-k5e6") == space.index_of_choices([4, 0, 3])
    with pytest.raises(UserError, match="is not 3 choices"):
        space.parse("k9e3-k3e3-k5e6")
    net = space.build(space.parse("k7e3-k3e3-k5e6"), 10, C=4, in_channels=1)
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert [b.body[3].kernel_size for b in net.blocks] == [(7, 7), (3, 3), (5, 5)]


# --- Eq. 4.5: the combined one-step update --------------------------------------------------------
@pytest.mark.parametrize("optimizers", [None, ("sgd", "adam", "rmsprop")])
def test_hp_encoding_gradient_matches_central_finite_differences(optimizers):
    """Softmax relaxation (no noise): L_val(W'(logits)) is a smooth function of every hp logit."""
    s = strategy(relax="softmax", search="hp", optimizers=optimizers)
    train, valid = batch(seed=1), batch(seed=2)
    arch = s.arch_sample()
    encodings = [s.lr_logits, s.wd_logits] + ([s.opt_logits] if optimizers else [])
    with torch.no_grad():
        for e in encodings:  # away from uniform so that every coordinate matters differently
            e.copy_(torch.randn(e.shape, generator=torch.Generator().manual_seed(3), dtype=e.dtype))

    def val_loss():
        _, _, new = s.combined_step(train, arch, s.hp_sample(0))
        return s.validation_loss(valid, arch, new)

    grads = torch.autograd.grad(val_loss(), encodings)
    assert all(float(g.abs().sum()) > 0 for g in grads)
    assert float(grads[0][1].abs().sum()) == 0  # step 1's learning rate plays no part in step 0
    eps = 1e-6
    for e, g in zip(encodings, grads):
        flat = e.data.view(-1)
        numeric = torch.zeros_like(flat)
        for i in range(flat.numel()):
            if e is s.lr_logits and i >= e.shape[1]:
                continue
            keep = float(flat[i])
            flat[i] = keep + eps
            up = float(val_loss().detach())
            flat[i] = keep - eps
            down = float(val_loss().detach())
            flat[i] = keep
            numeric[i] = (up - down) / (2 * eps)
        assert torch.allclose(g.view(-1), numeric, rtol=1e-5, atol=1e-9), (g.view(-1), numeric)


def test_hard_forward_uses_one_basis_value_per_hp_while_the_gradient_reaches_all():
    s = strategy(relax="gumbel-hard", optimizers=("sgd", "adam"))
    train, valid = batch(seed=1), batch(seed=2)
    arch = s.arch_sample()
    assert arch.index is not None and len(arch.index) == NUM_EDGES and arch.add_unchosen
    hp = s.hp_sample(0)
    for w in hp.values():
        assert sorted(w.detach().tolist()) == [0.0] * (len(w) - 1) + [1.0]  # exactly one-hot in value
    k, j, o = (int(hp[n].detach().argmax()) for n in ("lr", "weight_decay", "optimizer"))
    lr, wd = float(s.lr_values[k]), float(s.wd_values[j])
    before = {n: p.detach().clone() for n, p in s.net.named_parameters()}
    _, _, new = s.combined_step(train, arch, hp)
    # W' is the one step under the sampled values (first step: no momentum, Adam's moments start at 0)
    for name, g in zip(dict(s.net.named_parameters()), s._grads):
        gw = g + wd * before[name]
        step = gw if s.optimizers[o] == "sgd" else ((0.1 * gw) / 0.1) / ((0.001 * gw * gw / 0.001).sqrt() + 1e-8)
        assert torch.allclose(new[name], before[name] - lr * step, rtol=1e-10, atol=1e-12)
    grads = torch.autograd.grad(s.validation_loss(valid, arch, new), [s.lr_logits, s.wd_logits, s.opt_logits,
                                                                      s.alpha])
    assert bool((grads[0][0] != 0).all()) and bool((grads[1] != 0).all()) and bool((grads[2] != 0).all())
    assert bool((grads[3] != 0).any())


# --- Eq. 4.10: derivation -------------------------------------------------------------------------
def test_derivation_follows_eq_4_10_on_a_hand_computed_example():
    probs = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    values = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    assert float(derive_value(probs.log(), values, "expectation")) == pytest.approx(0.2 + 0.6 + 2.0)
    assert float(derive_value(probs.log(), values, "argmax")) == 4.0
    assert derive_continuous([2, 3, 5], (1.0, 2.0, 4.0)) == pytest.approx(2.8)
    s = strategy(optimizers=("sgd", "adam", "rmsprop"))
    probs9 = torch.tensor([0.05, 0.05, 0.1, 0.1, 0.3, 0.2, 0.1, 0.05, 0.05], dtype=torch.float64)
    with torch.no_grad():
        s.wd_logits.copy_(probs9.log() + 7.0)  # a shift changes no probability
        s.lr_logits.copy_(torch.stack([probs9.log(), probs9.roll(1).log()]))
        s.opt_logits.copy_(torch.tensor([0.1, 2.0, 0.3]))
    mult = np.array([0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0])
    hp = s.derived_hparams()
    assert hp["weight_decay"] == pytest.approx(5e-4 * float(probs9.numpy() @ mult))
    assert hp["lr"] == pytest.approx([0.025 * float(probs9.numpy() @ mult),
                                      0.025 * float(probs9.roll(1).numpy() @ mult)])
    assert hp["optimizer"] == "adam"  # categorical: argmax
    s.rule = "argmax"
    assert s.derived_hparams()["lr"] == pytest.approx([0.025 * 1.0, 0.025 * 2.5])
    space = joint_space("tss", optimizers=("sgd", "adam"))
    arch = np.full((NUM_EDGES, 5), 0.1)
    arch[:, 2] = 0.6
    config = space.decode({"arch": arch, "lr": np.array([0.5, 0.5] + [0] * 7), "weight_decay": np.eye(9)[8],
                           "optimizer": np.array([0.4, 0.6])})
    assert config["lr"] == pytest.approx(0.025 * 0.175) and config["weight_decay"] == pytest.approx(5e-3)
    assert config["optimizer"] == "adam" and set(list(config.values())[:NUM_EDGES]) == {"nor_conv_1x1"}


# --- the search engine: variants and exact resume ---------------------------------------------------
def untimed(result):
    return {k: v for k, v in result.items() if not k.endswith("_time_s") and k != "peak_rss_mib"}


@pytest.mark.parametrize("algorithm, knobs", [
    ("autohas", {}),
    ("autohas-mbconv", {"optimizers": ("sgd", "adam", "rmsprop"), "relax": "gumbel-soft", "rule": "argmax"}),
    ("autohas", {"search": "hp", "lr_per": "epoch"}),
])
def test_autohas_resumes_exactly(algorithm, knobs, digits):
    make = lambda: SearchEngine(algorithm, digits, epochs=2, seed=3, C=4, N=1, knobs=knobs)  # noqa: E731
    straight = make()
    first, second = straight.run_epoch(), straight.run_epoch()
    for r in (first, second):
        assert r["lr"] > 0 and r["weight_decay"] > 0 and math.isfinite(r["search_loss"])
    assert len(second["lr_schedule"]) == 2 * straight.iters_per_epoch
    interrupted = make()
    assert untimed(interrupted.run_epoch()) == untimed(first)
    buffer = io.BytesIO()
    torch.save(interrupted.state_dict(), buffer)
    buffer.seek(0)
    restored = make()
    restored.load_state_dict(torch.load(buffer, weights_only=False))
    assert untimed(restored.run_epoch()) == untimed(second)
    assert torch.equal(straight.strategy.lr_logits, restored.strategy.lr_logits)
    for a, b in zip(straight.net.state_dict().values(), restored.net.state_dict().values()):
        assert torch.equal(a, b)


def test_variants_search_what_they_name(digits):
    hp_only = SearchEngine("autohas", digits, epochs=1, seed=0, C=4, N=1, knobs={"search": "hp"})
    alpha = hp_only.strategy.alpha.detach().clone()
    r = hp_only.run_epoch()
    assert torch.equal(hp_only.strategy.alpha, alpha)  # AutoHAS (HP): the architecture stays the ResNet cell
    assert r["arch"] == "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
    arch_only = SearchEngine("autohas-mbconv", digits, epochs=1, seed=0, C=4, N=1, knobs={"search": "arch"})
    r = arch_only.run_epoch()
    assert r["lr"] == pytest.approx(0.025) and r["weight_decay"] == 5e-4  # GDAS (Arch): the defaults
    assert not torch.equal(arch_only.strategy.alpha, SearchEngine(
        "autohas-mbconv", digits, epochs=1, seed=0, C=4, N=1, knobs={"search": "arch"}).strategy.alpha)
    assert algorithm_space("autohas") == "tss" and algorithm_space("autohas-mbconv") == "mbconv"
    assert JOINT_ALGORITHMS == ("autohas", "autohas-mbconv") and strategy_class("autohas-mbconv") is AutoHASMBConv


@pytest.mark.parametrize("knobs, message", [
    ({"relax": "hard"}, r"relax='hard': choose one of softmax, gumbel-soft, gumbel-hard"),
    ({"multipliers": ()}, r"learning-rate basis is empty"),
    ({"lr": -0.1}, r"learning-rate basis value must be finite and > 0"),
    ({"fixed_arch": "k3e3"}, r"not 3 choices"),
    ({"hp_lr": 0.1}, r"autohas-mbconv has no knob"),
])
def test_bad_autohas_knobs_get_clear_errors(knobs, message, digits):
    with pytest.raises(UserError, match=message):
        SearchEngine("autohas-mbconv", digits, epochs=1, seed=0, C=4, N=1, knobs=knobs)


# --- the command line -------------------------------------------------------------------------------
def test_cli_variant_names_agree_with_the_strategy():
    from orchestrator import autohas
    from trainables.oneshot import autohas as strategy_module

    assert autohas.SEARCHES == strategy_module.SEARCHES and autohas.RELAXATIONS == strategy_module.RELAXATIONS


@pytest.mark.parametrize("args, message", [
    (["--searcher", "gdas", "--relax", "softmax"], "--relax: for --searcher autohas only"),
    (["--searcher", "tas", "--retrain-epochs", "3"], "--retrain-epochs: for --searcher autohas only"),
    (["--searcher", "autohas", "--retrain-epochs", "-1"], "--retrain-epochs must be at least 0, got -1"),
    (["--searcher", "autohas", "--relax", "hard"], "invalid choice: 'hard'"),
    (["--searcher", "autohas", "--space", "sss"], "--searcher autohas searches the topology space"),
    (["--searcher", "autohas", "--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["--searcher", "gdas", "--optimizers", "sgd,adam"], "--optimizers: for --searcher autohas only"),
    (["--searcher", "gdas", "--retrain-lr", "cosine"], "--retrain-lr: for --searcher autohas only"),
    (["--searcher", "autohas", "--retrain-lr", "linear"], "invalid choice: 'linear'"),
    (["--searcher", "autohas", "--optimizers", "sgd,lamb"],
     "--optimizers: optimizers must be at least two distinct of ['sgd', 'adam', 'rmsprop'], got ['sgd', 'lamb']"),
    (["--searcher", "autohas", "--optimizers", "adam"], "optimizers must be at least two distinct"),
    (["--searcher", "autohas", "--optimizers", "sgd," + "a" * 5000], "got ['sgd', 'aaaa"),
])
def test_autohas_cli_bad_input_is_refused_before_anything_runs(tmp_path, args, message):
    code, _, err = orchestrate_cli("oneshot", *args, "--out", tmp_path / "out")
    assert code == 2 and message in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()[-1]) < 300  # a short prefix of an over-long value, not all of it
    assert not (tmp_path / "out").exists()


def test_the_optimizers_flag_becomes_the_strategys_categorical_optimizer(digits):
    from orchestrator import autohas
    from orchestrator.cli import build_parser

    args = build_parser().parse_args(["oneshot", "--searcher", "autohas", "--optimizers", "sgd, rmsprop"])
    knobs = autohas.knobs(args)
    assert knobs == {"optimizers": ["sgd", "rmsprop"]}
    engine = SearchEngine("autohas", digits, epochs=1, seed=0, C=4, N=1, knobs=knobs)
    result = engine.run_epoch()
    assert engine.strategy.optimizers == ("sgd", "rmsprop") and result["optimizer"] in ("sgd", "rmsprop")


def test_the_retraining_uses_the_derived_schedule_optimizer_and_l2_weight(digits):
    """Not the schedule's mean under a cosine, nor SGD whatever was derived: the searched lr of
    every step (stretched onto the retraining's steps), the derived optimizer and L2 weight."""
    from orchestrator.autohas import retrain_config
    from trainables.engine import TrainEngine
    from trainables.recipes import get_recipe

    run = {"arch_index": 123, "seed": 4, "lr_schedule": [0.03, 0.02, 0.01], "weight_decay": 2e-3,
           "optimizer": "rmsprop"}
    settings = types.SimpleNamespace(train_dataset="digits", data_dir=None, C=4, N=1, gpus_per_trial=0)
    config = retrain_config(run, settings, epochs=2)
    recipe = get_recipe(config["recipe"])
    assert (config["arch"], config["seed"], recipe.epochs) == (123, 4, 2)
    assert (recipe.lr_steps, recipe.optimizer, recipe.weight_decay) == ((0.03, 0.02, 0.01), "rmsprop", 2e-3)
    engine = TrainEngine("tss", 123, digits, recipe, 4, C=4, N=1)
    assert type(engine.optimizer) is torch.optim.RMSprop
    # digits subset: 1 batch per epoch, so 2 retraining steps sample the 3-step schedule at 0 and 1
    assert [recipe.lr_at(e, 0, engine.iters_per_epoch) for e in range(2)] == [0.03, 0.02]
    # --retrain-lr cosine, the departure: h0's cosine from the schedule's mean, the same optimizer and L2
    cosine = get_recipe(retrain_config(run, settings, epochs=2, lr="cosine")["recipe"])
    assert (cosine.lr, cosine.lr_steps, cosine.optimizer, cosine.weight_decay) == (
        pytest.approx(0.02), (), "rmsprop", 2e-3)
    assert cosine.lr_at(1, 0, 1) == pytest.approx(0.01)  # epoch 2 of 2: half the peak
    with pytest.raises(UserError, match="must be one of schedule, cosine, got 'step'"):
        retrain_config(run, settings, epochs=2, lr="step")


@pytest.mark.slow
def test_autohas_cli_searches_reports_plots_and_retrains(tmp_path):
    """One seed, two epochs on Ray; the derived cell retrained one epoch as its own TrainArch trial."""
    import json

    from benchmark_data.reader import Benchmark

    code, out, err = orchestrate_cli("oneshot", "--searcher", "autohas", "--epochs", "2", "--retrain-epochs", "1",
                                     "--parallel", "1", "--out", tmp_path / "out", "--experiment", "ah")
    assert code == 0, err[-3000:]
    assert "autohas seed 0 epoch 2/2: |" in out and "  lr 0.0" in out and "  L2 0.00" in out
    exp = tmp_path / "out" / "oneshot" / "ah"
    assert (exp / "autohas_schedules.png").stat().st_size > 10_000
    (retrained,) = json.loads((exp / "autohas_retrain.json").read_text())
    runs = Benchmark.open(tmp_path / "out").runs("ah")
    assert len(runs) == 2 and retrained["arch_index"] == int(runs["best_arch_index"].iloc[-1])
    assert 0 <= retrained["test_acc"] <= 100 and retrained["epochs"] == 1
    assert 0.025 * 0.1 <= retrained["lr_mean"] <= retrained["lr_peak"] <= 0.025 * 10
    assert "derived architectures retrained" in out
    # the retraining trial trained at the searched schedule itself, with the derived optimizer
    (params,) = (exp / "retrain_seed0").glob("*/params.json")
    recipe = json.loads(params.read_text())["recipe"]
    schedule = json.loads(next(exp.glob("*/result.json")).read_text().splitlines()[-1])["lr_schedule"]
    assert recipe["lr_steps"] == schedule and recipe["optimizer"] == retrained["optimizer"] == "sgd"
