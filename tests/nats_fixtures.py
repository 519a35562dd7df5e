"""Tiny archives in the official NATS-Bench ``*-simple`` format, for importer and facade tests.

Why build them with the official classes: the point of these fixtures is to be byte-for-byte the
layout the real archives have, so the records are made with ``nats_bench.ResultsCount`` /
``ArchResults`` and saved with ``nats_bench.pickle_save`` exactly as NATS-Bench's own collection
scripts do (one ``{hp: ArchResults.state_dict()}`` OrderedDict per architecture in
``<index:06d>.pickle.pbz2``, a ``meta.pickle.pbz2`` holding ``meta_archs``; training and evaluation
times set as per-epoch pseudo times; latency as a one-element list). The numbers are fake but
plausible (rising accuracies, falling losses) and fully determined by the arguments.
"""

from __future__ import annotations

import collections
import math
from pathlib import Path

import numpy as np
from nats_bench import ArchResults, ResultsCount, pickle_save

from spaces import get_space

SEEDS = (777, 888)
TSS_HPS = ("12", "200")
SSS_HPS = ("01", "12", "90")
# Evaluation sets of each dataset, as NATS-Bench names them.
EVAL_SETS = {
    "cifar10-valid": ("x-valid", "ori-test"),
    "cifar10": ("ori-test",),
    "cifar100": ("ori-test", "x-valid", "x-test"),
    "ImageNet16-120": ("ori-test", "x-valid", "x-test"),
}
NUM_CLASSES = {"cifar10-valid": 10, "cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}
# Images per split, used (as NATS-Bench does) to turn a per-image evaluation cost into set times.
SET_SIZES = {("cifar10-valid", "x-valid"): 25000, ("cifar10-valid", "ori-test"): 10000,
             ("cifar10", "ori-test"): 10000, ("cifar100", "x-valid"): 5000,
             ("cifar100", "x-test"): 5000, ("cifar100", "ori-test"): 10000,
             ("ImageNet16-120", "x-valid"): 3000, ("ImageNet16-120", "x-test"): 3000,
             ("ImageNet16-120", "ori-test"): 6000}


def official_order(space: str, count: int, shuffle_seed: int = 0) -> list[str]:
    """``count`` architecture strings in a shuffled "official" order (not the project order)."""
    sp = get_space(space)
    rng = np.random.default_rng(shuffle_seed)
    picks = rng.choice(sp.size, size=count, replace=False)
    return [sp.to_str(int(i)) for i in picks]


def _curve(rng: np.random.Generator, final: float, epochs: int, rising: bool) -> list[float]:
    """A saturating learning curve ending near ``final`` (accuracy rises, loss falls)."""
    k = 4.0 / max(epochs, 1)
    out = []
    for e in range(epochs):
        frac = 1.0 - math.exp(-k * (e + 1))
        noise = float(rng.normal(0.0, 0.3 if rising else 0.01))
        out.append(final * frac + noise if rising else final * (2.5 - 1.5 * frac) + noise)
    return out


# Sets that NAS-Bench-201-era ("old") records evaluated only after the last epoch.
OLD_STYLE_LAST_ONLY = {"cifar10-valid": ("ori-test",), "cifar100": ("x-valid", "x-test"),
                       "ImageNet16-120": ("x-valid", "x-test")}


def make_result(arch_str: str, dataset: str, seed: int, epochs: int, arch_i: int, space: str,
                old_style: bool = False) -> ResultsCount:
    """One trial, made the way NATS-Bench's collection script makes it.

    ``old_style``: evaluate the sets of ``OLD_STYLE_LAST_ONLY`` only after the last epoch, as
    NATS-Bench's collection script does for records of the older training code (the official
    API then leaves those sets out at earlier epochs).
    """
    rng = np.random.default_rng([arch_i, seed, epochs, len(dataset)])
    quality = 70.0 + 25.0 * ((arch_i * 37) % 11) / 10.0
    train_acc = _curve(rng, min(quality + 4.0, 99.9), epochs, True)
    train_loss = _curve(rng, 0.3 + (100 - quality) / 50, epochs, False)
    if space == "tss":
        arch_config = {"channel": 16, "num_cells": 5, "arch_str": arch_str,
                       "class_num": NUM_CLASSES[dataset]}
    else:
        arch_config = {"name": "infer.shape.tiny", "channels": arch_str,
                       "genotype": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
                                   "|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
                       "class_num": NUM_CLASSES[dataset]}
    params = 0.1 + 0.01 * (arch_i % 90)
    flop = 10.0 + 2.0 * (arch_i % 90)
    result = ResultsCount(dataset, None, dict(enumerate(train_acc)), dict(enumerate(train_loss)),
                          params, flop, arch_config, seed, epochs, None)
    result.update_train_info(dict(enumerate(train_acc)), None, dict(enumerate(train_loss)), None)
    result.reset_pseudo_train_times(5.0 + 0.1 * (arch_i % 7) + 0.01 * len(dataset))
    accs, losses, times = {}, {}, {}
    valid = _curve(rng, quality, epochs, True)
    test = [v + float(rng.normal(0.0, 0.4)) for v in valid]
    for name in EVAL_SETS[dataset]:
        if name == "x-valid":
            acc = valid
        elif name == "x-test" or dataset in ("cifar10", "cifar10-valid"):
            acc = test
        else:  # "ori-test" of cifar100 / ImageNet16-120: the union of x-valid and x-test
            acc = [(v + t) / 2 for v, t in zip(valid, test)]
        loss = [0.5 + (100 - a) / 40 for a in acc]
        for e in range(epochs):
            accs[f"{name}@{e}"], losses[f"{name}@{e}"] = acc[e], loss[e]
            times[f"{name}@{e}"] = 0.0
    sparse = OLD_STYLE_LAST_ONLY.get(dataset, ()) if old_style else ()
    dense = {k: v for k, v in accs.items() if k.split("@")[0] not in sparse}
    if dense:
        result.update_eval(dense, losses, times)
    last = epochs - 1
    for name in sparse:
        result.update_OLD_eval(name, {last: accs[f"{name}@{last}"]}, {last: losses[f"{name}@{last}"]})
    per_image = 1e-5 * (1 + arch_i % 5)
    for name in EVAL_SETS[dataset]:
        result.reset_pseudo_eval_times(name, per_image * SET_SIZES[(dataset, name)])
    result.update_latency([0.002 + 0.0001 * (arch_i % 13)])
    return result


def write_archive(root: Path, space: str = "tss", num_archs: int = 5,
                  datasets: tuple[str, ...] = ("cifar10-valid", "cifar10"),
                  hps: tuple[str, ...] | None = None, seeds: tuple[int, ...] = SEEDS,
                  old_style_archs: tuple[int, ...] = (), name: str | None = None,
                  shuffle_seed: int = 0, index_width: int = 6) -> Path:
    """Write ``<root>/<name>`` as an official ``*-simple`` directory and return its path.

    ``old_style_archs``: official indices recorded in the older, sparse way (see make_result).
    The first architecture is trained with one seed only on the first dataset, so per-arch seed
    sets differ (as they do in the real archive).
    """
    hps = hps or (TSS_HPS if space == "tss" else SSS_HPS)
    name = name or f"NATS-{space}-v1_0-fixture-simple"
    folder = Path(root) / name
    folder.mkdir(parents=True, exist_ok=True)
    archs = official_order(space, num_archs, shuffle_seed)
    meta = {"meta_archs": archs, "total_archs": len(archs), "arch2infos": None,
            "evaluated_indexes": set()}
    pickle_save(meta, str(folder / "meta.pickle"))
    for index, arch_str in enumerate(archs):
        hp2info = collections.OrderedDict()
        for hp in hps:
            info = ArchResults(index, arch_str)
            for d_i, dataset in enumerate(datasets):
                use_seeds = seeds[:1] if (index == 0 and d_i == 0) else seeds
                for seed in use_seeds:
                    info.update(dataset, seed, make_result(
                        arch_str, dataset, seed, int(hp), index, space,
                        old_style=index in old_style_archs))
            info.clear_params()
            hp2info[hp] = info.state_dict()
        pickle_save(hp2info, str(folder / f"{index:0{index_width}d}.pickle"))
    return folder


def write_table(path: Path, space: str = "tss", num_archs: int = 20, shuffle_seed: int = 0) -> Path:
    """A CSV in the layout of ``nats_tss_cifar10_test_acc_200ep.csv``: index,arch,<value>."""
    archs = official_order(space, num_archs, shuffle_seed)
    lines = ["index,arch,cifar10_test_acc_200ep"]
    lines += [f"{i},{a},{80.0 + (i * 7919) % 1500 / 100:.4f}" for i, a in enumerate(archs)]
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)
