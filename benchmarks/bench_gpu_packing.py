#!/usr/bin/env python
"""Many small trainings per GPU: trainings per hour with 1, 4 and 16 trials packed on one GPU.

Each trial is one Ray Tune trial asking for ``1/k`` of a GPU (Ray's fractional GPUs: the same
request ``orchestrate.py train --gpus-per-trial`` makes), training a NATS cell (C=16, N=5) with
the project's engine (``trainables.engine.TrainEngine``) under H0's recipe (batch 256, SGD,
Nesterov, cosine) on CIFAR-sized tensors: 50,000 train / 10,000 valid / 10,000 test uint8 images
of 3 x 32 x 32, drawn at random (seeded; no CIFAR download here). A trial trains ``--epochs``
epochs (default 1, to fit a short device run); the figure is epochs per hour over all packed
trials, divided by H0's 12 epochs: H0 trainings per hour, against NATS-Bench's recorded ~215 s per
12-epoch training on its GPU (16.7 per hour). ``k`` trials run at once; each level runs ``k``
trials (at least ``--min-trials``) and the wall time is from the first trial's start to the last
one's end, Ray's start-up excluded.

    python benchmarks/bench_gpu_packing.py [--levels 1,4,16] [--epochs 1] [--train-images 50000]

Needs a CUDA GPU (refused with a message otherwise); ``--device cpu --levels 1,2 --train-images
512`` runs the same path on the CPU with CPU shares instead of GPU fractions, which is what the
test suite checks.
Prints ``name: value unit`` lines.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NATS_SECONDS_PER_H0 = 215.0  # NATS-Bench's recorded time of one 12-epoch training on its GPU
H0_EPOCHS = 12
# NATS-Bench's ResNet cell: the heavy end of the space (3x3 convolutions on every conv edge).
RESNET_CELL = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"


def cifar_sized(seed: int, device: str, train_images: int = 50_000):
    """A Dataset of CIFAR-10's shape (random images and labels, seeded; valid and test a fifth of
    train each, as CIFAR-10's 10,000), on ``device``."""
    import torch

    from trainables.data import Dataset, Split

    sizes = (train_images, max(1, train_images // 5), max(1, train_images // 5))
    g = torch.Generator().manual_seed(seed)
    train, valid, test = (Split(torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8).to(device),
                                torch.randint(0, 10, (n,), generator=g).to(device)) for n in sizes)
    return Dataset("cifar10", train, valid, test, num_classes=10, in_channels=3, image_size=32,
                   mean=(0.49, 0.48, 0.45), std=(0.25, 0.24, 0.26), crop_padding=4, flip=True,
                   fingerprint=f"random-{seed}")


def train_trial(config: dict) -> None:
    """One Tune trial: the engine trains ``epochs`` epochs; reports its start and end times."""
    import torch
    from ray import tune

    from trainables.engine import TrainEngine
    from trainables.recipes import get_recipe

    torch.set_num_threads(1)
    device = config["device"]
    data = cifar_sized(config["seed"], device, config["train_images"])
    engine = TrainEngine("tss", config["arch"], data, get_recipe("h0"), config["seed"], C=16, N=5, device=device)
    started = time.time()
    for _ in range(config["epochs"]):
        engine.run_epoch()
    tune.report({"started": started, "ended": time.time(), "epochs": config["epochs"]})


def level(k: int, args) -> dict:
    """Trials of ``1/k`` device each, ``k`` at once: epochs per hour over all of them."""
    from ray import tune

    share = {"gpu": 1.0 / k, "cpu": 1} if args.device == "cuda" else {"cpu": 1.0 / k}
    trials = max(k, args.min_trials)
    space = {"seed": tune.grid_search(list(range(trials))), "device": args.device, "arch": args.arch,
             "epochs": args.epochs, "train_images": args.train_images}
    with tempfile.TemporaryDirectory() as tmp:
        tuner = tune.Tuner(tune.with_resources(train_trial, share), param_space=space,
                           tune_config=tune.TuneConfig(max_concurrent_trials=k),
                           run_config=tune.RunConfig(storage_path=tmp, name=f"k{k}", verbose=0))
        results = tuner.fit()
    failed = [r.error for r in results if r.error is not None]
    if failed:
        raise SystemExit(f"error: {len(failed)} of {trials} trials failed at {k} per device: {failed[0]}")
    start = min(r.metrics["started"] for r in results)
    end = max(r.metrics["ended"] for r in results)
    epochs = sum(r.metrics["epochs"] for r in results)
    per_hour = epochs / (end - start) * 3600 / H0_EPOCHS
    return {"k": k, "trials": trials, "wall_s": end - start, "h0_per_hour": per_hour}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--levels", default="1,4,16", help="trials per device to measure (default 1,4,16)")
    p.add_argument("--epochs", type=int, default=1, help="epochs each trial trains (default 1)")
    p.add_argument("--min-trials", type=int, default=4, help="trials per level at least (default 4)")
    p.add_argument("--train-images", type=int, default=50_000,
                   help="train images per trial (default 50,000, CIFAR-10's; fewer for a smoke run)")
    p.add_argument("--arch", default=RESNET_CELL, help="the cell trained (default NATS-Bench's ResNet cell)")
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"), help="default cuda")
    args = p.parse_args(argv)
    try:
        levels = [int(v) for v in args.levels.split(",")]
    except ValueError:
        p.error(f"--levels must be integers separated by commas, got {args.levels[:40]!r}")
    if any(k < 1 for k in levels) or min(args.epochs, args.min_trials, args.train_images) < 1:
        p.error("--levels, --epochs, --min-trials and --train-images must be at least 1")

    import ray
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA GPU here; this benchmark measures GPU packing (--device cpu runs the path "
              "on the CPU)", file=sys.stderr)
        return 2
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(include_dashboard=False, log_to_driver=False)
    try:
        figures = [level(k, args) for k in levels]
    finally:
        ray.shutdown()
    print(f"{'per device':>10} {'trials':>7} {'wall s':>8} {'H0 trainings/h':>15} {'x NATS-Bench':>13}")
    for f in figures:
        print(f"{f['k']:>10} {f['trials']:>7} {f['wall_s']:>8.1f} {f['h0_per_hour']:>15.1f} "
              f"{f['h0_per_hour'] * NATS_SECONDS_PER_H0 / 3600:>12.2f}x")
    if args.train_images != 50_000:
        print(f"(epochs of {args.train_images:,} train images, not CIFAR-10's 50,000: the x NATS-Bench column "
              "does not compare like with like)")
    print()
    print(f"nats_bench_h0_per_hour: {3600 / NATS_SECONDS_PER_H0:.1f} trainings/h")
    for f in figures:
        print(f"h0_per_hour_{f['k']}_per_{args.device}: {f['h0_per_hour']:.1f} trainings/h")
    best = max(figures, key=lambda f: f["h0_per_hour"])
    print(f"packing_gain: {best['h0_per_hour'] / figures[0]['h0_per_hour']:.2f}x ({best['k']} vs {levels[0]} per "
          f"device; median wall {statistics.median(f['wall_s'] for f in figures):.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
