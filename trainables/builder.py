"""Benchmark builder: train a whole search space (or a subset) into a Parquet store, on Ray.

    python -m benchmark_data build --store STORE --archs all --space tss --dataset digits \\
        --recipe h0 --seeds 0 --C 8 --N 1 --workers 2

Work is split into chunks of isomorphism classes; each chunk is one Ray task (num_cpus=1, one
torch thread: on small networks two 1-thread processes do more than one 2-thread process) that
trains one representative per class with ``trainables.train.TrainEngine`` and writes ONE fragment
of ``epochs`` rows (and one of ``archs`` rows) for everything it trained.

What gets rows (``--archs``, required: without it the command says what a full build of the
space is, with an estimate of its time when the store's own cells give a rate, and stops):
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
cell per stage only, so sss defaults to 1 and refuses any other N. A store (``--store``) whose
(space, dataset) files record another skeleton, or whose (space, dataset, hp) files record another
recipe hash, is refused before anything is planned: neither is a key column, so those rows would
count as done. The embedded digits benchmark was trained with ``--lr-schedule-step iteration``.

Resuming: rerunning the same command skips every (arch, seed) whose epochs are all in the store
and never writes a key twice (a chunk's fragment appears atomically, so an interrupted build loses
at most the chunks in flight); with nothing left it says so and starts neither Ray nor the data.
Work is shuffled (seeded) so the ETA is representative early on. ``--workers W`` trainings run at
once (W one-CPU Ray tasks); the progress bar counts trainings; ``--quiet`` prints the summary and
errors only (no bar, no header, no Ray worker output).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spaces.errors import UserError

# One unit of work: (representative, seed, [(member, {epochs already stored})], [members needing
# an archs row]).
Unit = tuple[int, int, list[tuple[int, list[int]]], list[int]]


def _parser() -> argparse.ArgumentParser:
    from benchmark_data.cli import Parser, add_old_store_forms, add_store_flag
    from spaces import SPACE_NAMES
    from trainables.recipes import RECIPES

    p = Parser(prog="python -m benchmark_data build",
               description="Train architectures of a search space into a Parquet benchmark store "
                           "(resumable: rerun the same command to complete an interrupted build).")
    add_store_flag(p, reads=False, required=True,
                   help="store folder the rows go into (required; created if missing)")
    # --out names a results folder everywhere else; a build has none (its output is the store)
    add_old_store_forms(p, "build", old_option="--out")
    p.add_argument("--archs", default=None, metavar="{all,unique,N,FILE}",
                   help="what to train (required): all (every architecture) | unique (one per "
                        "isomorphism class) | N (N classes drawn at random) | FILE (the "
                        "architectures listed in FILE, one index or string per line); without "
                        "it the command says what a full build is and stops")
    p.add_argument("--space", default="tss", choices=SPACE_NAMES, help="search space")
    p.add_argument("--dataset", default="digits", help="dataset name")
    p.add_argument("--data-dir", default=None,
                   help="where the dataset files are (default: the data loader's own folder)")
    p.add_argument("--recipe", default="h0", choices=sorted(RECIPES), help="training recipe")
    p.add_argument("--epochs", type=int, default=None,
                   help="override the recipe's length (becomes the store's hp), e.g. 48 "
                        "(default: the recipe's)")
    p.add_argument("--lr-schedule-step", choices=("epoch", "iteration"), default=None,
                   help="cosine lr stepped per epoch (the recipes' default, as NATS-Bench) or per "
                        "iteration (how the embedded digits benchmark was built)")
    p.add_argument("--seeds", default="0", help="comma-separated training seeds")
    p.add_argument("--sample-seed", type=int, default=0, help="seed of the --archs N draw")
    p.add_argument("--C", type=int, default=None,
                   help="skeleton channels (default: 16; not for sss, whose channels are the "
                        "architecture)")
    p.add_argument("--N", type=int, default=None,
                   help="cells per stage (default: 5 for tss, as NATS-Bench; sss has 1 only)")
    p.add_argument("--workers", type=int, default=2, metavar="W",
                   help="trainings at once, one Ray task and one CPU each (0: one at a time in "
                        "this process, no Ray)")
    p.add_argument("--chunk-size", type=int, default=None,
                   help="classes per Ray task / fragment (default: about 20 chunks per worker, "
                        "at most 32)")
    p.add_argument("--address", default=None, help="Ray cluster address (default: a local Ray)")
    p.add_argument("--quiet", action="store_true",
                   help="only the summary and errors: no progress bar, no Ray output")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point (what follows ``python -m benchmark_data build``); returns 0.

    Errors a user can cause raise UserError; ``benchmark_data.cli.run_cli`` prints them as
    ``error: ...`` with exit status 2.
    """
    build(_parser().parse_args(argv))
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
    from trainables.train import TrainEngine, arch_row, cached_dataset, epoch_row, get_space, store_metadata

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
    """Plan, then run the chunks on Ray (or in-process) with a progress bar; returns figures.

    Every check (flags, dataset, the store's skeleton and recipe, ``--archs`` given) comes before
    the dataset is loaded or Ray started; a resumed build with nothing left starts neither.
    """
    from benchmark_data import schema
    from benchmark_data.cli import store_to_write
    from trainables.recipes import get_recipe
    from trainables.train import check_store, default_N, get_space, stored_archs, stored_epochs

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
        raise UserError(f"--workers {args.workers}: give the number of trainings at once, >= 1 "
                        "(one Ray task and one CPU each), or 0 to train one at a time in this "
                        "process without Ray")
    if args.chunk_size is not None and args.chunk_size < 1:
        raise UserError(f"--chunk-size must be >= 1, got {args.chunk_size}")
    dataset_name = schema.check_dataset(args.dataset)
    out = store_to_write(args.store)
    # Before planning: rows of another skeleton or recipe would count as done (same keys).
    check_store(out, space, dataset_name, recipe, C=args.C, N=args.N, flag="--store")
    what = (f"{space.name}/{dataset_name} hp={recipe.hp} (recipe {recipe.name}, hash "
            f"{recipe.hash}) {_skeleton_text(space, args.C, args.N)} seeds {seeds}")
    if args.archs is None:
        raise UserError(_full_build_text(space, dataset_name, recipe.hp, seeds, out, what,
                                         max(args.workers, 1)))
    classes, every_member = select_classes(space, args.archs, args.sample_seed)
    stored = stored_epochs(out, space.name, dataset_name, recipe.hp)
    units = plan(space, classes, every_member, seeds, recipe.hp, stored,
                 stored_archs(out, space.name, dataset_name))
    figures = {"archs_written": 0, "trained": 0, "wall_s": 0.0, "total_s": 0.0,
               "train_s_per_trained_arch": math.nan, "overhead_share": math.nan,
               "ray_task_overhead_share": math.nan}
    if not units:
        print(f"nothing left to train: all {len(classes) * len(seeds)} trainings of {what} "
              f"(--archs {args.archs}) are in the store {out}")
        figures["total_s"] = time.perf_counter() - t_start
        return figures
    from trainables.train import cached_dataset

    dataset = cached_dataset(dataset_name, args.data_dir)  # UserError early for missing files
    out.mkdir(parents=True, exist_ok=True)
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
    if not args.quiet:
        done = len(classes) * len(seeds) - len(units)
        print(f"build: {what}: {len(units)} training(s) to do ({done} already in the store) for "
              f"{total_archs} (arch, seed) row sets, {len(chunks)} chunk(s) of <= {chunk}, "
              f"{_workers_text(args.workers)} -> {out}", file=sys.stderr, flush=True)
    stats = {"archs": 0, "trained": 0, "train_s": 0.0, "task_s": 0.0}
    t_run = time.perf_counter()
    from tqdm import tqdm

    # The bar counts trainings (each a whole recipe), an integer total that ends at 100 %.
    with tqdm(total=len(units), unit="training", disable=args.quiet, smoothing=0.05) as bar:
        for result in _execute(spec, chunks, args.workers, args.address, quiet=args.quiet):
            for k in stats:
                stats[k] += result[k]
            bar.update(result["trained"])
    wall = time.perf_counter() - t_run
    figures.update({
        "archs_written": stats["archs"], "trained": stats["trained"], "wall_s": wall,
        "total_s": time.perf_counter() - t_start,
        "train_s_per_trained_arch": stats["train_s"] / stats["trained"],
        # Share of worker time not spent training: Ray scheduling, task start-up, imports,
        # dataset load, fragment writes and idle workers at the end.
        "overhead_share": 1.0 - stats["train_s"] / (wall * workers),
        "ray_task_overhead_share": 1.0 - stats["task_s"] / (wall * workers),
    })
    for k, v in figures.items():
        print(f"{k}: {v}" if isinstance(v, int) else f"{k}: {v:.3g}")
    return figures


def _skeleton_text(space: Any, C: int, N: int) -> str:
    return f"N={N}" if space.name == "sss" else f"C={C} N={N}"


def _workers_text(workers: int) -> str:
    return "in this process (no Ray)" if workers == 0 else f"{workers} worker(s)"


def _full_build_text(space: Any, dataset: str, hp: int, seeds: list[int], out: Path, what: str,
                     workers: int) -> str:
    """Why ``--archs`` is required: what ``--archs all`` would do, and how long if measurable."""
    ids = space.iso_class_ids()
    classes = np.unique(ids)
    trainings = len(classes) * len(seeds)
    from trainables.train import stored_epochs

    stored = stored_epochs(out, space.name, dataset, hp)
    left = len(plan(space, classes, True, seeds, hp, stored, set()))
    shape = (f"{len(classes)} isomorphism classes" if len(classes) < space.size
             else f"{space.size} architectures")
    text = (f"--archs is required: say what to train. A full build of {what} trains {shape} x "
            f"{len(seeds)} seed(s) = {trainings} trainings (rows for all {space.size} "
            f"architectures); {left} of them are not in the store {out} yet. ")
    rate = _measured_training_s(out, space, dataset, hp)
    if left == 0:
        text += "Nothing is left to train for it. "
    elif rate is None:
        text += ("There is no time estimate: the store holds no cells trained with this recipe "
                 "and skeleton to measure a rate from (--archs 20 trains 20 and measures one). ")
    else:
        per, n = rate
        text += (f"At the {per:.3g} s of training and validation per training that the store's "
                 f"{n} trained cell(s) recorded, the {left} left take at least "
                 f"{_duration(left * per / workers)} on {workers} worker(s) (test evaluations "
                 "and start-up come on top). ")
    return text + ("Ask for it with --archs all, or for part of it: --archs N (N classes drawn "
                   "at random, e.g. --archs 20), --archs unique (one architecture per class, "
                   "without the copies) or --archs FILE (the architectures listed in FILE, one "
                   "index or canonical string per line)")


def _measured_training_s(out: Path, space: Any, dataset: str,
                         hp: int) -> tuple[float, int] | None:
    """(mean recorded training + validation seconds per complete training, how many) over the
    cells this builder trained into ``out`` (status ok or diverged; copies and imported rows
    carry no time of their own), or None when it holds none. ``check_store`` has made sure they
    share this build's recipe and skeleton."""
    import pandas as pd

    from benchmark_data import schema
    from benchmark_data.writer import read_fragment

    folder = schema.partition_path(out, "epochs", {"space": space.name, "dataset": dataset,
                                                   "hp": hp})
    cols = ["arch_index", "seed", "epoch", "epoch_time_s", "eval_time_s", "status"]
    parts = []
    for path in schema.list_fragments(folder):
        try:
            parts.append(read_fragment(path, "epochs", columns=cols).to_pandas())
        except (FileNotFoundError, UserError):  # the reader and compact report damaged files
            continue
    if not parts:
        return None
    rows = pd.concat(parts, ignore_index=True)
    rows = rows[rows["status"].isin(["ok", "diverged"])].drop_duplicates(["arch_index", "seed",
                                                                          "epoch"])
    rows = rows.assign(t=rows["epoch_time_s"] + rows["eval_time_s"].fillna(0.0))
    per = rows.groupby(["arch_index", "seed"]).agg(n=("epoch", "size"), t=("t", "sum"))
    per = per[(per["n"] == hp) & per["t"].notna()]
    if per.empty:
        return None
    return float(per["t"].mean()), len(per)


def _duration(seconds: float) -> str:
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 90:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def _execute(spec: dict, chunks: list[list[Unit]], workers: int, address: str | None, *,
             quiet: bool = False):
    """Yield each chunk's stats as it finishes (Ray tasks, or in order with workers=0).

    ``quiet``: the workers' output stays in Ray's log files instead of this console.
    """
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
    with start_ray(address, None if address else workers, worker_logs=not quiet):
        # Ray already sets OMP_NUM_THREADS=1 for a 1-CPU task; run_chunk also pins torch.
        # One retry covers a lost worker; a chunk writes its fragments only at its very end.
        task = ray.remote(num_cpus=1, max_retries=1)(run_chunk)
        spec_ref = ray.put(spec)
        pending = [task.remote(spec_ref, c) for c in chunks]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])


if __name__ == "__main__":
    from benchmark_data.cli import run_cli

    sys.exit(run_cli(main))
