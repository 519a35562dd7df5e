"""Training throughput: our batched data pipeline vs a plain torch Dataset + DataLoader.

Both sides get the same uint8 images and the same augmentation (zero-padded random crop, flip
p=0.5, per-channel normalisation); the baseline applies it per image in ``__getitem__`` and lets
``DataLoader`` (num_workers=0: with 2 cores, worker processes only steal cores from training)
collate. Measurements alternate between the two sides repeat by repeat, so machine noise hits both
alike; each figure is the median over repeats, and the ratio is of the medians.

What to expect: ``data_only`` is the pipeline's own gain (about 12x on CPU). End to end, the gain
is bounded by the DataLoader's share of a training step: on a CPU the NATS network's step
dominates (even for the light cell on 8x8 digits), so the ``train_*`` ratios sit near 1; on a GPU,
where the step takes milliseconds and the per-image transforms stay on the CPU, they do not.

Prints ``name: value unit`` lines. One function per measurement; ``main`` runs them in order.
Usage: ``python benchmarks/bench_train.py [--repeats 3] [--quick] [--device cuda] [--arch STR]``.
With ``--device cuda`` the pipeline's data lives on the GPU and the DataLoader's batches are copied
there, which is how each side would be used for training on a GPU.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spaces import get_space  # noqa: E402
from trainables.data import Dataset, Split, iterate_batches, load_dataset  # noqa: E402

# Default cell: NATS-Bench's official index 0, a light one (avg-pool, 1x1 convs, skips; 16 MFLOPs
# on 32x32): the regime of the benchmark builder, where per-batch data overhead is a large share of
# a step. A 3x3-conv-heavy cell (--arch) makes the model dominate on CPU and the ratio tends to 1.
LIGHT_ARCH = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
BATCH = 256


def random_dataset(n: int = 4096, size: int = 32, channels: int = 3, seed: int = 0, device: str = "cpu") -> Dataset:
    """Random uint8 images shaped like CIFAR, wrapped as a Dataset with CIFAR's augmentation."""
    gen = torch.Generator().manual_seed(seed)
    split = Split(torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=gen).to(device),
                  torch.randint(0, 10, (n,), generator=gen).to(device))
    return Dataset("random", split, None, None, 10, channels, size, (0.49,) * channels, (0.25,) * channels,
                   size // 8, True, "random")


class PerImageDataset(torch.utils.data.Dataset):
    """The plain way: ToTensor -> pad + random crop -> random flip -> Normalize, one image at a time."""

    def __init__(self, ds: Dataset, split: Split) -> None:
        # A plain Dataset keeps its data in host memory; batches go to the device after collation.
        self.images, self.labels, self.pad, self.flip = split.images.cpu(), split.labels.cpu(), ds.crop_padding, ds.flip
        self.mean = torch.tensor(ds.mean).view(-1, 1, 1)
        self.std = torch.tensor(ds.std).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = self.images[i].float().div_(255)
        _, h, w = x.shape
        x = F.pad(x, (self.pad,) * 4)
        dy, dx = torch.randint(2 * self.pad + 1, (2,)).tolist()
        x = x[:, dy : dy + h, dx : dx + w]
        if self.flip and torch.rand(()) < 0.5:
            x = x.flip(-1)
        return (x - self.mean) / self.std, int(self.labels[i])


def pipeline_batches(ds: Dataset, seed: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    return iterate_batches(ds.train, BATCH, shuffle=True, augment=True, dataset=ds,
                           generator=torch.Generator().manual_seed(seed))


def dataloader_batches(ds: Dataset, seed: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(seed)  # the per-image transforms draw from the global RNG
    loader = torch.utils.data.DataLoader(PerImageDataset(ds, ds.train), batch_size=BATCH, shuffle=True,
                                         num_workers=0, generator=torch.Generator().manual_seed(seed))
    device = ds.train.images.device
    return ((x.to(device, non_blocking=True), y.to(device, non_blocking=True)) for x, y in loader)


SIDES: dict[str, Callable[[Dataset, int], Iterable]] = {"pipeline": pipeline_batches, "dataloader": dataloader_batches}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# Wall clock by default; "cpu" (process CPU time) when the machine is shared and oversubscribed,
# where wall time mostly measures how long the process waited for a core.
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = CLOCKS["wall"]


def _median_rates(run: Callable[[str, int], int], repeats: int, device: torch.device) -> dict[str, float]:
    """samples/s per side: median over repeats, sides alternating within each repeat (after a warm-up)."""
    for side in SIDES:
        run(side, -1)
    rates: dict[str, list[float]] = {side: [] for side in SIDES}
    for r in range(repeats):
        for side in SIDES:
            _sync(device)
            start = _clock()
            samples = run(side, r)
            _sync(device)
            rates[side].append(samples / (_clock() - start))
    return {side: statistics.median(v) for side, v in rates.items()}


def _lines(prefix: str, rates: dict[str, float]) -> list[str]:
    return [
        f"{prefix}_pipeline: {rates['pipeline']:.0f} samples/s",
        f"{prefix}_dataloader: {rates['dataloader']:.0f} samples/s",
        f"{prefix}_speedup: {rates['pipeline'] / rates['dataloader']:.2f} x",
    ]


def measure_pipeline_only(args: argparse.Namespace) -> list[str]:
    """Augmented batches per second with no model: the pipeline's own cost, 32x32x3."""
    ds = random_dataset(2048 if args.quick else 8192, device=args.device)

    def run(side: str, seed: int) -> int:
        return sum(len(y) for _, y in SIDES[side](ds, seed))

    return _lines("data_only_32px", _median_rates(run, args.repeats, ds.train.images.device))


def _train_rates(ds: Dataset, arch: str, steps: int, repeats: int) -> dict[str, float]:
    """samples/s of ``steps`` SGD-nesterov steps (NATS recipe) of a tss network on each side's batches."""
    torch.manual_seed(0)
    device = ds.train.images.device
    space = get_space("tss")
    model = space.build(space.parse(arch), ds.num_classes, C=16, N=5, in_channels=ds.in_channels).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    model.train()

    def run(side: str, seed: int) -> int:
        done = 0
        for step, (x, y) in enumerate(SIDES[side](ds, seed)):
            if step == steps:
                break
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += len(y)
        return done

    return _median_rates(run, repeats, device)


def measure_train_32px(args: argparse.Namespace) -> list[str]:
    """Training throughput on random 32x32x3 data (CIFAR-shaped), C=16, N=5."""
    steps = 1 if args.quick else 2
    ds = random_dataset(BATCH * steps, device=args.device)
    return _lines("train_32px", _train_rates(ds, args.arch, steps, args.repeats))


def measure_train_digits(args: argparse.Namespace) -> list[str]:
    """Training throughput on digits (8x8x1, the benchmark builder's dataset): one epoch per repeat."""
    ds = load_dataset("digits", device=args.device)
    steps = -(-len(ds.train) // BATCH)
    return _lines("train_digits", _train_rates(ds, args.arch, steps, args.repeats))


MEASUREMENTS: list[Callable[[argparse.Namespace], list[str]]] = [
    measure_pipeline_only, measure_train_32px, measure_train_digits,
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per side (median reported)")
    parser.add_argument("--quick", action="store_true", help="smaller workloads, for a smoke run")
    parser.add_argument("--device", default="cpu", help="cpu | cuda (data and model on this device)")
    parser.add_argument("--arch", default=LIGHT_ARCH, help="tss cell of the trained network")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice); 1 is what parallel builder workers "
                             "use, "
                             "and it avoids OpenMP spin-waits on an oversubscribed machine")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall time, or process CPU time (fair figures on a shared, oversubscribed machine)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    global _clock
    _clock = CLOCKS[args.clock]
    print(f"torch_threads: {torch.get_num_threads()} threads")
    print(f"clock_is_cpu_time: {int(args.clock == 'cpu')} bool")
    for measure in MEASUREMENTS:
        for line in measure(args):
            print(line, flush=True)


if __name__ == "__main__":
    main()
