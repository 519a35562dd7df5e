"""Network pruning by TAS (issue 13): CIFAR ResNets, the searchable ResNet, KD, w/ Init, the pipeline's CLI."""

from __future__ import annotations

import math

import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F
from cli_fixtures import orchestrate_cli

from spaces.cifar_resnet import MODELS, ResNetArch, build, cost, full_arch, scaled_arch
from spaces.errors import UserError
from trainables.oneshot.size_supernet import Interpolate, cwi_matrix
from trainables.prune.kd import kd_loss
from trainables.prune.search import PruneSearch, PruneSpace
from trainables.prune.supernet import SearchableResNet, check_ratios
from trainables.prune.transfer import init_from

# He et al. (2016) / TAS' tables: (M params, MFLOPs) on 32x32x3, 10 classes
PUBLISHED = {"resnet20": (0.27, 40.8), "resnet32": (0.46, 69.1), "resnet56": (0.85, 125.5), "resnet110": (1.73, 253.0)}


@pytest.mark.parametrize("model", list(MODELS))
def test_resnet_costs_match_the_published_ones(model):
    c = cost(model)
    params, flops = PUBLISHED[model]
    assert abs(c["params_m"] / params - 1) < 0.01 + 0.005 / params  # the published figures have two digits
    assert abs(c["flops_m"] / flops - 1) < 0.01


def test_resnet_any_input_and_class_count():
    net = build(scaled_arch("resnet32", [0.5], depths=(2, 5, 1)), 7, in_channels=1)
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 7)
    assert net(torch.zeros(2, 1, 30, 30)).shape == (2, 7)  # 30 -> 15 -> 8: odd halvings
    arch = full_arch("resnet20")
    assert ResNetArch.parse(arch.to_str()) == arch and arch.depths == (3, 3, 3)


def test_depth_aggregation_is_eq_3_13_by_hand():
    """A tiny net (resnet20: 3 blocks a stage): the stage output is sum_d q_d CWI(O_d, widest), computed
    here from the blocks' outputs and the CWI matrix of the thesis' footnote."""
    torch.manual_seed(0)
    net = SearchableResNet("resnet20", 5, in_channels=1).eval()
    x = torch.randn(2, 1, 8, 8)
    two = Interpolate((5, 11), torch.tensor([0.3, 0.7]))
    widths = [two] + [Interpolate((c - 3, c), torch.tensor([0.6, 0.4])) for c in net.conv_channels[1:]]
    q = [torch.tensor([0.2, 0.5, 0.3]), torch.tensor([0.6, 0.3, 0.1]), torch.tensor([0.1, 0.1, 0.8])]
    with torch.no_grad():
        logits = net(x, widths, q)
        h, width, k = widths[0](net.stem.forward(x)), 11, 1
        for s, stage in enumerate(net.stages):
            outs = []
            for block in stage:
                h, width = block(h, width, widths[k], widths[k + 1])
                outs.append((h.clone(), width))
                k += 2
            widest = max(w for _, w in outs)
            agg = torch.zeros_like(h)
            for qd, (o, w) in zip(q[s], outs):
                agg[:, :widest] += qd * torch.einsum("oc,nchw->nohw", cwi_matrix(w, widest), o[:, :w])
            h, width = agg, widest
        expected = net.classifier(net.pool(h).flatten(1))
    assert torch.allclose(logits, expected, atol=1e-6)
    assert not torch.allclose(logits, net(x, widths, None), atol=1e-3)  # the depths do matter


@pytest.mark.parametrize("model,shape", [("resnet20", (10, 3, 32)), ("resnet32", (7, 1, 30))])
def test_derived_flops_equal_the_counter_on_the_built_network(model, shape):
    num_classes, in_channels, size = shape
    space = PruneSpace(model, num_classes=num_classes, in_channels=in_channels, input_size=size)
    gen = torch.Generator().manual_seed(1)
    for _ in range(6):
        widths = [int(torch.randint(len(c), (), generator=gen)) for c in space.candidates]
        depths = [int(torch.randint(space.n, (), generator=gen)) for _ in range(3)]
        arch = space.arch(widths, depths)
        counted = cost(arch, num_classes, in_channels=in_channels, input_size=size)["flops_m"]
        assert space.choice_flops(widths, depths) == pytest.approx(counted, rel=1e-9)


def test_search_derives_an_arch_whose_flops_it_reports_and_resumes_exactly(tmp_path):
    from trainables.prune.data import load_subset

    data = load_subset("digits", train=256, valid=128, test=64)
    kwargs = {"epochs": 2, "seed": 3, "flops_target": "50%"}
    a = PruneSearch("resnet20", data, **kwargs)
    a.run_epoch()
    torch.save(a.state_dict(), tmp_path / "s.pt")
    last = a.run_epoch()
    b = PruneSearch("resnet20", data, **kwargs)
    b.load_state_dict(torch.load(tmp_path / "s.pt", weights_only=False))
    again = b.run_epoch()
    assert again["arch"] == last["arch"]
    assert all(torch.equal(p, q) for p, q in zip([*a.alpha, *a.beta], [*b.alpha, *b.beta]))
    assert any(float(p.detach().abs().max()) > 0 for p in a.alpha)  # the architecture learned
    counted = cost(last["arch"], data.num_classes, in_channels=1, input_size=8)["flops_m"]
    assert last["derived_flops_m"] == pytest.approx(counted)


def test_kd_loss_is_eq_3_17_by_hand_and_cross_entropy_at_lambda_1():
    z = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]])
    zt = torch.tensor([[1.0, 3.0, 0.0], [0.0, 0.0, 2.0]])
    y = torch.tensor([0, 2])
    lam, T = 0.9, 4.0

    def softmax(row):
        e = [math.exp(v) for v in row]
        return [v / sum(e) for v in e]

    ce = match = 0.0
    for zi, zti, yi in zip(z.tolist(), zt.tolist(), y.tolist()):
        ce -= math.log(softmax(zi)[yi]) / 2
        p, q = softmax([v / T for v in zti]), softmax([v / T for v in zi])
        match -= sum(pi * math.log(qi) for pi, qi in zip(p, q)) / 2
    assert float(kd_loss(z, zt, y, lam=lam, temperature=T)) == pytest.approx(lam * ce + (1 - lam) * T * T * match)
    assert float(kd_loss(z, zt, y, lam=1.0, temperature=T)) == pytest.approx(float(F.cross_entropy(z, y)))
    with pytest.raises(UserError, match="lambda"):
        kd_loss(z, zt, y, lam=1.5)


def test_init_copies_exactly_the_kept_channels():
    torch.manual_seed(0)
    full = build("resnet20", 10)
    pruned_arch = ResNetArch(11, (((5, 13), (8, 16)), ((20, 32),), ((40, 64), (64, 51))))
    pruned = build(pruned_arch, 10)
    fresh = {k: v.clone() for k, v in pruned.state_dict().items()}
    init_from(pruned, full)
    src = full.state_dict()
    assert torch.equal(pruned.stem.conv.weight, src["stem.conv.weight"][:11, :3])
    assert torch.equal(pruned.stages[0][1].conv_a.conv.weight, src["stages.0.1.conv_a.conv.weight"][:8, :13])
    assert torch.equal(pruned.stages[2][1].conv_b.bn.running_var, src["stages.2.1.conv_b.bn.running_var"][:51])
    assert torch.equal(pruned.stages[1][0].downsample.conv.weight, src["stages.1.0.downsample.conv.weight"][:32, :16])
    assert torch.equal(pruned.classifier.weight, src["classifier.weight"][:, :51])
    # the projections the unpruned net lacks (11 -> 13, 13 -> 16, 64 -> 51) keep their fresh weights
    new = [name for name in fresh if name not in src]
    assert {n.rsplit(".", 2)[0] for n in new} == {"stages.0.0.downsample", "stages.0.1.downsample",
                                                         "stages.2.1.downsample"}
    for name, t in pruned.state_dict().items():
        if name in new:
            assert torch.equal(t, fresh[name]), name
        elif not name.endswith("num_batches_tracked"):  # every other tensor: the leading part of the unpruned one
            assert torch.equal(t, src[name][tuple(slice(0, n) for n in t.shape)]), name


def test_bad_widths_and_targets_are_user_errors():
    with pytest.raises(UserError, match=r"\(0, 1\]"):
        check_ratios([0.5, 1.2])
    with pytest.raises(UserError, match=r"outside \(0, 1\]"):
        scaled_arch("resnet20", [0.0])
    space = PruneSpace("resnet20", num_classes=10, in_channels=3, input_size=32)
    with pytest.raises(UserError, match="range from 1.287 to 40.81"):
        space.target("0.5")  # 0.5 MFLOPs: below the smallest candidate network
    assert space.target("50%").high == pytest.approx(40.813184 / 2)


@pytest.mark.parametrize("args,message", [
    (["--width-ratios", "0.5,1.5"], "every ratio must lie in (0, 1]"),
    (["--width-ratios", "0,0.5"], "every ratio must lie in (0, 1]"),
    (["--flops-target", "1.2"], "above the unpruned network's FLOPs"),
    (["--flops-target", "0.01", "--dataset", "digits"], "no network of pruned resnet20"),
    (["--model", "resnet18"], "unknown model 'resnet18'; choose one of resnet20, resnet32, resnet56, resnet110"),
    (["--method", "magnitude"], "--method 'magnitude': choose from tas, predefined, random"),
    (["--transfer", "kd,distil"], "--transfer 'kd,distil': choose from none, init, kd"),
    (["--subset", "10,20"], "three positive image counts"),
    (["--resume"], "--resume needs --experiment"),
])
def test_prune_cli_bad_input(tmp_path, args, message):
    code, out, err = orchestrate_cli("prune", "--out", tmp_path, *args)
    assert code == 2 and err.startswith("error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "prune").exists()


@pytest.mark.slow  # ~50 s: three Tune experiments on a real local Ray
def test_prune_cli_runs_the_pipeline_on_ray_and_writes_rows(tmp_path, no_home_ray_results):
    code, out, err = orchestrate_cli("prune", "--dataset", "digits", "--train-epochs", "1", "--search-epochs", "1",
                                     "--method", "tas,predefined", "--transfer", "none,kd", "--parallel", "2",
                                     "--subset", "256,128,128",
                                     "--quiet", "--out", tmp_path, "--experiment", "p")
    assert code == 0, err
    table = pq.read_table(tmp_path / "prune" / "p" / "prune.parquet")
    rows = table.to_pandas()
    assert sorted(zip(rows["method"], rows["transfer"])) == sorted(
        [("unpruned", "none"), ("tas", "none"), ("tas", "kd"), ("predefined", "none"), ("predefined", "kd")])
    meta = table.schema.metadata
    assert meta[b"table"] == b"prune" and meta[b"dataset_fingerprint"] and b"code_version" in meta
    for _, r in rows.iterrows():
        assert r["flops_m"] == pytest.approx(cost(r["arch"], 10, in_channels=1, input_size=8)["flops_m"])
        assert r["accuracy_drop"] == pytest.approx(r["unpruned_accuracy"] - r["accuracy"])
        assert r["flops_pruned_pct"] == pytest.approx(100 * (1 - r["flops_m"] / r["unpruned_flops_m"]))
    predefined = rows[rows["method"] == "predefined"]
    assert (predefined["flops_m"] <= predefined["flops_target_m"] + 1e-9).all()
    # everything ran: --resume reads the finished steps back and reruns nothing
    code, out, err = orchestrate_cli("prune", "--resume", "--experiment", "p", "--out", tmp_path, "--quiet")
    assert code == 0, err and "resuming" in out
    again = pq.read_table(tmp_path / "prune" / "p" / "prune.parquet").to_pandas()
    assert again[["method", "transfer", "accuracy"]].equals(rows[["method", "transfer", "accuracy"]])


def test_tas_width_and_depth_options_search_only_their_half():
    from trainables.prune.data import load_subset

    data = load_subset("digits", train=128, valid=128, test=64)
    width = PruneSearch("resnet20", data, epochs=1, seed=0, flops_target="60%", mode="width")
    widths, depths = width.sample()
    assert depths is None and all(len(w.widths) == 2 for w in widths)
    assert width.derive().depths == (3, 3, 3)
    depth = PruneSearch("resnet20", data, epochs=1, seed=0, flops_target="60%", mode="depth")
    widths, depths = depth.sample()
    assert [w.widths for w in widths] == [(c,) for c in depth.net.conv_channels] and len(depths) == 3
    assert depth.derive().to_str().startswith("16/16-16")
    assert depth.space.flops_range()[1] == pytest.approx(cost("resnet20", 10, in_channels=1, input_size=8)["flops_m"])


def test_net_trainer_resumes_exactly(tmp_path):
    from trainables.prune.data import load_subset
    from trainables.prune.engine import NetTrainer

    data = load_subset("digits", train=256, valid=64, test=64)
    arch = scaled_arch("resnet20", [0.5])
    a = NetTrainer(arch, data, model="resnet20", epochs=2, seed=1)
    a.run_epoch()
    torch.save(a.state_dict(), tmp_path / "t.pt")
    last = a.run_epoch()
    b = NetTrainer(arch, data, model="resnet20", epochs=2, seed=1)
    b.load_state_dict(torch.load(tmp_path / "t.pt", weights_only=False))
    again = b.run_epoch()
    assert again["test_acc"] == last["test_acc"] and again["train_loss"] == last["train_loss"]
    assert all(torch.equal(p, q) for p, q in zip(a.net.state_dict().values(), b.net.state_dict().values()))
