"""Benchmark builder: train a whole search space (or a subset) into a Parquet store, on Ray.

    python -m benchmark_data build --space tss --dataset digits --recipe h0 --seeds 0 \\
        --archs all --C 8 --N 1 --out STORE --workers 2

Work is split into chunks of isomorphism classes; each chunk is one Ray task (num_cpus=1, one
torch thread: on small networks two 1-thread processes do more than one 2-thread process) that
trains one representative per class with ``trainables.train.TrainEngine`` and writes ONE fragment
of ``epochs`` rows (and one of ``archs`` rows) for everything it trained.

What gets rows (``--archs``):
  * ``all``: every architecture of the space. The class representative (smallest index, see
    ``space.iso_class_ids()``) is trained; every other member gets a copy of its rows with status
    ``iso_copy`` (``diverged`` when the representative diverged).
  * ``unique``: the representatives only.
  * ``N``: N classes drawn uniformly without replacement from all classes by
    ``numpy.random.default_rng(--sample-seed)`` (default 0), every member recorded.
  * ``FILE``: the classes of the architectures listed in FILE (one index or canonical string per
    line, ``#`` comments), every member recorded.
Cells with no path from the cell input to its output compute a constant (zero) cell output, so they
are all one class (the space's iso rule already merges them): its representative is trained once
and every member, the representative included, is recorded with status ``no_path``.

Costs: ``params_m``/``flops_m`` come from ``space.cost`` per member; ``latency_ms`` (median of 3
eval-mode forwards of one batch of ``batch_size`` images on one CPU thread, after a warm-up) is
measured on the representative and copied to its members. ``archs`` rows are only written for
architectures the store does not have yet.

Skeleton and recipe: ``--N`` defaults to 5 (NATS-Bench's tss skeleton); the size space has one
cell per stage only, so sss defaults to 1 and refuses any other N. A store (``--out``) whose
(space, dataset) files record another skeleton, or whose (space, dataset, hp) files record another
recipe hash, is refused before anything is planned: neither is a key column, so those rows would
count as done. The embedded digits benchmark was trained with ``--lr-schedule-step iteration``.

Resuming: rerunning the same command skips every (arch, seed) whose epochs are all in the store
and never writes a key twice (a chunk's fragment appears atomically, so an interrupted build loses
at most the chunks in flight). Work is shuffled (seeded) so the ETA is representative early on.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from spaces.errors import UserError

# One unit of work: (representative, seed, [(member, {epochs already stored})], [members needing
# an archs row]).
Unit = tuple[int, int, list[tuple[int, list[int]]], list[int]]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmark_data build",
        description="Train architectures of a search space into a Parquet benchmark store "
                    "(resumable: rerun the same command to complete an interrupted build).")
    p.add_argument("--space", default="tss", help="search space: tss or sss (default tss)")
    p.add_argument("--dataset", default="digits", help="dataset name (default digits)")
    p.add_argument("--data-dir", default=None, help="where the dataset files are")
    p.add_argument("--recipe", default="h0", help="training recipe: h0, h1 or h2 (default h0)")
    p.add_argument("--epochs", type=int, default=None,
                   help="override the recipe's length (becomes the store's hp), e.g. 48")
    p.add_argument("--lr-schedule-step", choices=("epoch", "iteration"), default=None,
                   help="cosine lr stepped per epoch (the recipes' default, as NATS-Bench) or per "
                        "iteration (how the embedded digits benchmark was built)")
    p.add_argument("--seeds", default="0", help="comma-separated training seeds (default 0)")
    p.add_argument("--archs", default="all",
                   help="all | unique | N (random classes) | FILE of arch indices/strings")
    p.add_argument("--sample-seed", type=int, default=0, help="seed of the --archs N draw")
    p.add_argument("--C", type=int, default=None,
                   help="skeleton channels (default 16; not for sss, whose channels are the "
                        "architecture)")
    p.add_argument("--N", type=int, default=None,
                   help="cells per stage (default 5 for tss, as NATS-Bench; sss has 1 only)")
    p.add_argument("--out", required=True, help="store root folder (created if missing)")
    p.add_argument("--workers", type=int, default=2,
                   help="parallel Ray tasks, one CPU each (0: run in this process, no Ray)")
    p.add_argument("--chunk-size", type=int, default=None,
                   help="classes per Ray task / fragment (default: about 20 chunks per worker, "
                        "at most 32)")
    p.add_argument("--address", default=None, help="Ray cluster address (default: local Ray)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (2 with ``error: ...`` on bad input)."""
    args = _parser().parse_args(argv)
    try:
        build(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


# --- planning ---------------------------------------------------------------------------------------
def _parse_seeds(text: str) -> list[int]:
    try:
        seeds = sorted({int(s) for s in str(text).split(",") if s.strip()})
    except ValueError:
        raise UserError(f"--seeds {text!r}: give comma-separated integers, e.g. 0,1,2") from None
    if not seeds or min(seeds) < 0:
        raise UserError(f"--seeds {text!r}: give at least one seed, all >= 0")
    return seeds


def select_classes(space: Any, archs: str, sample_seed: int = 0) -> tuple[np.ndarray, bool]:
    """(sorted class ids to build, whether to record every member) for an ``--archs`` value."""
    ids = space.iso_class_ids()
    classes = np.unique(ids)
    text = str(archs).strip()
    if text == "all":
        return classes, True
    if text == "unique":
        return classes, False
    if text.isdigit():
        n = int(text)
        if not 1 <= n <= len(classes):
            raise UserError(f"--archs {n}: the {space.name} space has {len(classes)} isomorphism "
                            f"classes; give a number between 1 and {len(classes)}")
        rng = np.random.default_rng(sample_seed)
        return np.sort(rng.choice(classes, size=n, replace=False)), True
    path = Path(text)
    if not path.is_file():
        raise UserError(f"--archs {text!r} is neither all, unique, a number of classes nor an "
                        "existing file of architectures (one index or string per line)")
    chosen = set()
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            chosen.add(int(ids[space.resolve(line)]))
        except UserError as exc:
            raise UserError(f"{path}:{lineno}: {exc}") from None
    if not chosen:
        raise UserError(f"--archs file {path} lists no architectures")
    return np.array(sorted(chosen)), True


def plan(space: Any, classes: np.ndarray, every_member: bool, seeds: list[int], hp: int,
         stored: Any, stored_archs: set[int]) -> list[Unit]:
    """The units still to do, given what the store already holds (``stored``: arch, seed, epoch)."""
    ids = space.iso_class_ids()
    members: dict[int, list[int]] = defaultdict(list)
    if every_member:
        wanted = np.isin(ids, classes)
        for m in np.flatnonzero(wanted):
            members[int(ids[m])].append(int(m))
    else:
        for c in classes:
            members[int(c)].append(int(c))
    have: dict[tuple[int, int], set[int]] = defaultdict(set)
    for a, s, e in zip(stored["arch_index"].to_numpy(), stored["seed"].to_numpy(),
                       stored["epoch"].to_numpy()):
        have[(int(a), int(s))].add(int(e))
    full = set(range(1, hp + 1))
    units: list[Unit] = []
    for c in classes:
        for s in seeds:
            todo = [(m, sorted(have[(m, s)])) for m in members[int(c)] if not full <= have[(m, s)]]
            if todo:
                need_arch = [m for m, _ in todo if m not in stored_archs]
                units.append((int(c), int(s), todo, need_arch))
    return units


# --- the work -----------------------------------------------------------------------------------------
def run_chunk(spec: dict[str, Any], units: list[Unit]) -> dict[str, float]:
    """Train the representatives of ``units`` and write their rows: one epochs fragment per chunk.

    Runs inside a Ray worker (or in-process with --workers 0). Returns timing for the overhead
    figure: seconds spent training/evaluating and seconds in the whole task.
    """
    t_task = time.perf_counter()
    import pandas as pd
    import torch

    from benchmark_data.writer import write_fragment
    from trainables.recipes import get_recipe
    from trainables.train import TrainEngine, arch_row, cached_dataset, epoch_row, get_space, \
        store_metadata

    torch.set_num_threads(1)
    space = get_space(spec["space"])
    dataset = cached_dataset(spec["dataset"], spec["data_dir"])
    recipe = get_recipe(spec["recipe"])
    C, N = spec["C"], spec["N"]
    has_path = getattr(space, "has_path", None)
    epoch_rows: list[dict] = []
    arch_rows: list[dict] = []
    t_train = 0.0
    for rep, seed, todo, need_arch in units:
        t0 = time.perf_counter()
        engine = TrainEngine(space, rep, dataset, recipe, seed, C=C, N=N)
        history = [engine.run_epoch() for _ in range(recipe.epochs)]
        latency = engine.latency_ms(recipe.batch_size) if need_arch else None
        t_train += time.perf_counter() - t0
        no_path = has_path is not None and not has_path(rep)
        for member, skip in todo:
            if no_path:
                status = "no_path"
            elif member == rep:
                status = None  # ok / diverged, from the engine
            else:
                status = "diverged" if engine.diverged else "iso_copy"
            for epoch, metrics in enumerate(history, 1):
                if epoch not in skip:
                    epoch_rows.append(epoch_row(engine, epoch, metrics, arch_index=member,
                                                status=status))
        for member in need_arch:
            arch_rows.append(arch_row(space, member, dataset, C=C, N=N, iso_class=rep,
                                      latency_ms=latency))
    extra = {"seeds": spec["seeds"], "archs": spec["archs"], "writer": "builder"}
    # archs first: if the task dies between the two writes, the rerun retrains the chunk but
    # finds these archs rows present and does not write them again.
    if arch_rows:
        write_fragment(spec["out"], "archs", pd.DataFrame(arch_rows),
                       metadata=store_metadata("archs", recipe, dataset, C=C, N=N, extra=extra,
                                               space=space))
    if epoch_rows:
        write_fragment(spec["out"], "epochs", pd.DataFrame(epoch_rows),
                       metadata=store_metadata("epochs", recipe, dataset, C=C, N=N, extra=extra,
                                               space=space))
    return {"archs": sum(len(u[2]) for u in units), "trained": len(units), "train_s": t_train,
            "task_s": time.perf_counter() - t_task}


def build(args: argparse.Namespace) -> dict[str, float]:
    """Plan, then run the chunks on Ray (or in-process) with a progress bar; returns figures."""
    from trainables.recipes import get_recipe
    from trainables.train import (cached_dataset, check_store, default_N, get_space, stored_archs,
                                  stored_epochs)

    t_start = time.perf_counter()
    space = get_space(args.space)
    overrides = {} if args.epochs is None else {"epochs": args.epochs}
    if getattr(args, "lr_schedule_step", None) is not None:
        overrides["lr_schedule_step"] = args.lr_schedule_step
    recipe = get_recipe(args.recipe, **overrides)
    seeds = _parse_seeds(args.seeds)
    if space.name == "sss" and args.C is not None:  # it would be ignored: never silently
        raise UserError(f"--C {args.C}: the size space's channels are the architecture (five "
                        "channel counts), it has no C; drop --C for --space sss")
    if args.C is None:
        args.C = 16
    if args.N is None:
        args.N = default_N(space)
    for name in ("C", "N"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if space.name == "sss":
        from spaces.nats_size import check_cells_per_stage

        check_cells_per_stage(args.N, "--N")
    if args.workers < 0:
        raise UserError(f"--workers must be >= 0 (0 = no Ray), got {args.workers}")
    if args.chunk_size is not None and args.chunk_size < 1:
        raise UserError(f"--chunk-size must be >= 1, got {args.chunk_size}")
    classes, every_member = select_classes(space, args.archs, args.sample_seed)
    dataset = cached_dataset(args.dataset, args.data_dir)  # UserError early for bad names/files
    out = Path(args.out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder (it is created when missing)")
    # Before planning: rows of another skeleton or recipe would count as done (same keys).
    check_store(out, space, dataset.name, recipe, C=args.C, N=args.N, flag="--out")
    out.mkdir(parents=True, exist_ok=True)
    stored = stored_epochs(out, space.name, dataset.name, recipe.hp)
    units = plan(space, classes, every_member, seeds, recipe.hp, stored,
                 stored_archs(out, space.name, dataset.name))
    # A fixed shuffle: chunks mix cheap and expensive cells, so the ETA is right early on.
    order = np.random.default_rng(12345).permutation(len(units))
    units = [units[i] for i in order]
    total_archs = sum(len(u[2]) for u in units)
    workers = max(args.workers, 1)
    chunk = args.chunk_size or max(1, min(32, math.ceil(len(units) / (workers * 20))))
    chunks = [units[i:i + chunk] for i in range(0, len(units), chunk)]
    spec = {"space": space.name, "dataset": dataset.name, "data_dir": args.data_dir,
            "recipe": recipe.to_dict(), "C": args.C, "N": args.N, "out": str(out),
            "seeds": seeds, "archs": str(args.archs)}
    print(f"build: {space.name}/{dataset.name} recipe {recipe.name} ({recipe.epochs} epochs, hash "
          f"{recipe.hash}) C={args.C} N={args.N} seeds {seeds}: {len(units)} trainings for "
          f"{total_archs} (arch, seed) rows sets to do, {len(chunks)} chunks of <= {chunk}, "
          f"{args.workers} worker(s) -> {out}", file=sys.stderr, flush=True)
    stats = {"archs": 0, "trained": 0, "train_s": 0.0, "task_s": 0.0}
    t_run = time.perf_counter()
    if chunks:
        from tqdm import tqdm

        with tqdm(total=total_archs, unit="arch", disable=args.quiet, smoothing=0.05) as bar:
            for result in _execute(spec, chunks, args.workers, args.address):
                for k in stats:
                    stats[k] += result[k]
                bar.update(result["archs"])
    wall = time.perf_counter() - t_run
    figures = {
        "archs_written": stats["archs"], "trained": stats["trained"], "wall_s": wall,
        "total_s": time.perf_counter() - t_start,
        "train_s_per_trained_arch": stats["train_s"] / max(stats["trained"], 1),
        # Share of worker time not spent training: Ray scheduling, task start-up, imports,
        # dataset load, fragment writes and idle workers at the end.
        "overhead_share": 1.0 - stats["train_s"] / (wall * workers) if wall > 0 else 0.0,
        "ray_task_overhead_share": 1.0 - stats["task_s"] / (wall * workers) if wall > 0 else 0.0,
    }
    for k, v in figures.items():
        print(f"{k}: {v:.4g}", file=sys.stderr)
    return figures


def _execute(spec: dict, chunks: list[list[Unit]], workers: int, address: str | None):
    """Yield each chunk's stats as it finishes (Ray tasks, or in order with workers=0)."""
    if workers == 0:
        for c in chunks:
            yield run_chunk(spec, c)
        return
    import ray

    from trainables.ray_utils import start_ray

    if address is None:
        # Ray starts workers at nice 15 by default, so that the raylet stays responsive; but here
        # the workers ARE the job, and on a shared machine a niced build got ~20 % of a core.
        os.environ.setdefault("RAY_worker_niceness", "0")
    with start_ray(address, None if address else workers):
        # Ray already sets OMP_NUM_THREADS=1 for a 1-CPU task; run_chunk also pins torch.
        # One retry covers a lost worker; a chunk writes its fragments only at its very end.
        task = ray.remote(num_cpus=1, max_retries=1)(run_chunk)
        spec_ref = ray.put(spec)
        pending = [task.remote(spec_ref, c) for c in chunks]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])


if __name__ == "__main__":
    sys.exit(main())
