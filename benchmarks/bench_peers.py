#!/usr/bin/env python
"""natsflow's simulator against syne-tune's on one table and one budget: time per run and per process.

The same search problem on both sides: the embedded digits benchmark (or --store), NATS-Bench's
search recipe (validation accuracy after e of the recipe's epochs, charged NATS' time cost for e
epochs), a budget of simulated seconds, one worker, the same seeds. natsflow replays it with its
event-queue simulator; syne-tune (the peer) with its simulator backend over a ``BlackboxTabular``
built from the very same arrays, exported once to an .npz file, so that the peer side needs neither
natsflow nor its store reader and can run in an interpreter of its own (``--peer-python``).

Measured interleaved, so that a drift of the machine's load hits both tools alike:
  * per run: every round starts one fresh natsflow process, then one fresh peer process; each runs
    every searcher on every seed and times each run (building the searcher and its scheduler
    included, loading the table not). Medians over all rounds.
  * per process: a fresh interpreter that imports, loads the table and does one run: natsflow's
    ``orchestrate.py simulate ... --runs 1 --quiet``, the peer's worker with one seed. Medians of
    the wall times.

Pairs (natsflow - peer): random - RandomSearch; rea - REA (population 10, sample 3, as NATS-Bench);
tpe (Optuna's TPE) - TPE (syne-tune's KDE searcher); bohb (synchronous HyperBand with hpbandster's
KDE) - BOHB (asynchronous successive halving with a KDE); asha (random search under the simulated
ASHA) - ASHA; reinforce has no peer. Each side runs its own algorithm with its own defaults, so
evaluations per run are printed too. The peer's clock moves in polling steps
(``tuner_sleep_time``; 0.1 s here gives about as many evaluations per run as natsflow's exact event
clock, syne-tune's own default of 5 s about a third as many) and it also adds its real compute time
to the simulated clock.

    python benchmarks/bench_peers.py                  # with the peer when syne-tune is importable
    python benchmarks/bench_peers.py --peer-python /path/to/peer-venv/bin/python
    python benchmarks/bench_peers.py --seeds 5 --rounds 1 --processes 1 --searchers random,bohb

Install the peer with ``pip install .[peers]`` (it resolves alongside natsflow's pins) or into a
venv of its own: ``python -m venv peer && peer/bin/pip install syne-tune==0.16.0
huggingface_hub==2.4.0``, then pass ``--peer-python peer/bin/python``.

Prints a table and ``name: value unit`` lines.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAIRS = {"random": "RandomSearch", "rea": "REA", "reinforce": None, "tpe": "TPE", "bohb": "BOHB",
         "asha": "ASHA"}
INSTALL_HINT = ("install the peer with `pip install .[peers]`, or into a venv of its own "
                "(`python -m venv peer && peer/bin/pip install syne-tune==0.16.0 huggingface_hub==2.4.0`) "
                "and pass --peer-python peer/bin/python")


# ----- natsflow's side ---------------------------------------------------------------------------
def natsflow_spec(name: str, seconds: float):
    from orchestrator.experiment import RunSpec
    from orchestrator.simulator import Budget

    if name == "asha":
        return RunSpec("random", Budget(seconds=seconds), scheduler="asha")
    return RunSpec(name, Budget(seconds=seconds))


def natsflow_worker(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT))
    from benchmark_data.reader import Benchmark
    from orchestrator.experiment import run_one

    table = Benchmark.open(args.store).task(args.space, args.dataset)
    if args.export:
        export_table(table, Path(args.export))
        return
    with open(args.out, "w") as out:
        for name in args.searchers:
            spec = natsflow_spec(name, args.budget)
            for seed in range(args.seed, args.seed + args.seeds):
                started = time.perf_counter()
                run = run_one(table, spec, seed)
                elapsed = time.perf_counter() - started
                out.write(json.dumps({"searcher": name, "seed": seed, "run_s": elapsed,
                                      "evaluations": len(run)}) + "\n")


def export_table(table, path: Path) -> None:
    """The arrays the peer replays: configs as choice names, feedback and NATS' time cost per epoch.

    A missing seed of an architecture is filled with its first recorded seed (the peer draws among
    all seeds of the table, natsflow among those recorded); a table without gaps is exported as is.
    """
    import numpy as np

    space = table.space
    names = list(space.hparams.names)
    configs = [space.index_to_config(i) for i in range(space.size)]
    feedback, cost = table.feedback.astype(np.float64), table.cost.astype(np.float64)
    first = table.seed_order[:, 0]
    for s in range(table.num_seeds):
        gap = np.isnan(feedback[:, s, :]).all(axis=1)
        feedback[gap, s], cost[gap, s] = feedback[gap, first[gap]], cost[gap, first[gap]]
    np.savez(path, names=np.array(names), configs=np.array([[str(c[n]) for n in names] for c in configs]),
             choices=np.array([json.dumps([str(v) for v in p.choices]) for p in space.hparams]),
             feedback=feedback, cost=cost)


# ----- the peer's side (imports only numpy, pandas and syne-tune) --------------------------------
def peer_worker(args: argparse.Namespace) -> None:
    import logging

    os.environ["SYNETUNE_FOLDER"] = tempfile.mkdtemp(prefix="bench-peers-")
    logging.disable(logging.WARNING)  # the tuner logs every trial
    import numpy as np
    import pandas as pd
    from syne_tune import StoppingCriterion, Tuner
    from syne_tune.backend.simulator_backend.simulator_callback import SimulatorCallback
    from syne_tune.blackbox_repository.blackbox_tabular import BlackboxTabular
    from syne_tune.blackbox_repository.simulated_tabular_backend import UserBlackboxBackend
    from syne_tune.config_space import choice, randint
    from syne_tune.optimizer import baselines

    data = np.load(args.table)
    names = [str(n) for n in data["names"]]
    space = {n: choice(json.loads(str(c))) for n, c in zip(names, data["choices"])}
    epochs = data["feedback"].shape[2]
    blackbox = BlackboxTabular(pd.DataFrame(data["configs"], columns=names), space, {"epoch": randint(1, epochs)},
                               np.stack([data["feedback"], data["cost"]], axis=-1),
                               objectives_names=["feedback", "elapsed_time"])

    def scheduler(name: str, seed: int):
        common = {"metric": "feedback", "do_minimize": False, "random_seed": seed}
        if name == "random":
            return baselines.RandomSearch(space, metrics=["feedback"], do_minimize=False, random_seed=seed)
        if name == "rea":
            return baselines.REA(space, population_size=10, sample_size=3, **common)
        if name == "tpe":
            return baselines.TPE(space, **common)
        multi = {"time_attr": "epoch", "max_t": epochs, "grace_period": 1, "reduction_factor": 3}
        return (baselines.BOHB if name == "bohb" else baselines.ASHA)(space, **multi, **common)

    with open(args.out, "w") as out:
        for name in args.searchers:
            for seed in range(args.seed, args.seed + args.seeds):
                started = time.perf_counter()
                np.random.seed(seed)  # the backend draws each trial's table seed from numpy's RNG
                backend = UserBlackboxBackend(blackbox=blackbox, elapsed_time_attr="elapsed_time",
                                              tuner_sleep_time=args.peer_sleep)
                tuner = Tuner(trial_backend=backend, scheduler=scheduler(name, seed),
                              stop_criterion=StoppingCriterion(max_wallclock_time=args.budget), n_workers=1,
                              sleep_time=0, callbacks=[SimulatorCallback()], tuner_name=f"{name}-{seed}",
                              suffix_tuner_name=False, save_tuner=False, print_update_interval=1e9,
                              results_update_interval=1e9)
                tuner.run()
                elapsed = time.perf_counter() - started
                out.write(json.dumps({"searcher": name, "seed": seed, "run_s": elapsed,
                                      "evaluations": len(backend._trial_dict)}) + "\n")


# ----- the driver --------------------------------------------------------------------------------
def run(cmd: list[str], what: str) -> float:
    """Wall seconds of one command; its stderr on failure."""
    started = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - started
    if r.returncode != 0:
        sys.exit(f"error: {what} failed (exit {r.returncode}):\n{r.stderr[-3000:]}")
    return elapsed


def worker_cmd(python: str, role: str, args: argparse.Namespace, out: Path, names: list[str], seeds: int,
               seed: int = 0, table: Path | None = None) -> list[str]:
    cmd = [python, str(Path(__file__).resolve()), "--worker", role, "--out", str(out),
           "--searchers", ",".join(names), "--seeds", str(seeds), "--seed", str(seed),
           "--budget", str(args.budget), "--space", args.space, "--peer-sleep", str(args.peer_sleep)]
    if args.store:
        cmd += ["--store", args.store]
    if args.dataset:
        cmd += ["--dataset", args.dataset]
    if table is not None:
        cmd += ["--table", str(table)]
    return cmd


def natsflow_process_cmd(name: str, seed: int, args: argparse.Namespace, out: Path) -> list[str]:
    cmd = [sys.executable, str(ROOT / "orchestrate.py"), "simulate",
           "--searcher", "random" if name == "asha" else name, "--store", args.store or "embedded",
           "--space", args.space, "--budget", f"{args.budget}s", "--runs", "1", "--seed", str(seed), "--quiet",
           "--out", str(out), "--experiment", f"process-{name}-{seed}"]
    if name == "asha":
        cmd += ["--scheduler", "asha"]
    if args.dataset:
        cmd += ["--dataset", args.dataset]
    return cmd


def read_runs(path: Path, into: dict) -> None:
    for line in path.read_text().splitlines():
        row = json.loads(line)
        into.setdefault(row["searcher"], []).append(row)


def find_peer(args: argparse.Namespace, p: argparse.ArgumentParser) -> str | None:
    if args.no_peer:
        return None
    if args.peer_python is None:
        return sys.executable if importlib.util.find_spec("syne_tune") is not None else None
    python = Path(args.peer_python).expanduser()
    if not python.is_file():
        p.error(f"--peer-python: no Python at {python}; {INSTALL_HINT}")
    r = subprocess.run([str(python), "-c", "import syne_tune.blackbox_repository, pandas"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        p.error(f"--peer-python {python} cannot import syne-tune's blackbox repository "
                f"({r.stderr.strip().splitlines()[-1] if r.stderr.strip() else 'no message'}); {INSTALL_HINT}")
    return str(python)


def median_ms(values: list[float]) -> float | None:
    return 1000 * statistics.median(values) if values else None


def fmt(value: float | None, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:,.1f}{unit}"


def ratio(peer: float | None, ours: float | None) -> str:
    return "n/a" if peer is None or ours is None or ours == 0 else f"{peer / ours:,.1f}x"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=INSTALL_HINT)
    p.add_argument("--store", default=None, help="benchmark store (default: the embedded digits benchmark)")
    p.add_argument("--space", default="tss", choices=("tss", "sss"))
    p.add_argument("--dataset", default=None, help="dataset (inferred when the store has one)")
    p.add_argument("--budget", type=float, default=206.0, help="simulated seconds per run (default 206)")
    p.add_argument("--seeds", type=int, default=20, help="seeds per searcher and round (default 20)")
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--rounds", type=int, default=3, help="interleaved per-run rounds per tool (default 3)")
    p.add_argument("--processes", type=int, default=5,
                   help="fresh one-run processes per searcher and tool (default 5)")
    p.add_argument("--searchers", default=",".join(PAIRS),
                   help=f"comma-separated, from {', '.join(PAIRS)} (default: all)")
    p.add_argument("--peer-python", default=None, metavar="PATH",
                   help="interpreter with syne-tune installed (default: this one, when it has syne-tune)")
    p.add_argument("--no-peer", action="store_true", help="measure natsflow only")
    p.add_argument("--peer-sleep", type=float, default=0.1, metavar="S",
                   help="the peer's simulated polling step, tuner_sleep_time (default 0.1 s)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write every measurement here")
    p.add_argument("--worker", choices=("natsflow", "peer"), help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--table", help=argparse.SUPPRESS)
    p.add_argument("--export", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    names = [n.strip() for n in args.searchers.split(",") if n.strip()]
    unknown = [n for n in names if n not in PAIRS]
    if unknown or not names:
        p.error(f"--searchers: unknown {unknown or 'none given'}; choose from {', '.join(PAIRS)}")
    for flag, value, low in (("--seeds", args.seeds, 1), ("--rounds", args.rounds, 1),
                             ("--processes", args.processes, 0)):
        if value < low:
            p.error(f"{flag} must be at least {low}, got {value}")
    if not args.budget > 0 or not args.peer_sleep > 0:
        p.error("--budget and --peer-sleep must be positive (simulated seconds)")
    args.searchers = names
    if args.worker == "natsflow":
        natsflow_worker(args)
        return 0
    if args.worker == "peer":
        peer_worker(args)
        return 0

    peer = find_peer(args, p)
    peer_names = [n for n in names if PAIRS[n]]
    runs: dict[str, dict[str, list]] = {"natsflow": {}, "peer": {}}
    processes: dict[str, dict[str, list[float]]] = {"natsflow": {}, "peer": {}}
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        tmp = Path(tmp)
        table = tmp / "table.npz"
        if peer and peer_names:
            run([*worker_cmd(sys.executable, "natsflow", args, tmp / "x", names, 1), "--export", str(table)],
                "exporting the table")
        for r in range(args.rounds):
            out = tmp / f"natsflow-{r}.jsonl"
            run(worker_cmd(sys.executable, "natsflow", args, out, names, args.seeds), "a natsflow round")
            read_runs(out, runs["natsflow"])
            if peer and peer_names:
                out = tmp / f"peer-{r}.jsonl"
                run(worker_cmd(peer, "peer", args, out, peer_names, args.seeds, table=table), "a peer round")
                read_runs(out, runs["peer"])
        for i in range(args.processes):
            for name in names:
                wall = run(natsflow_process_cmd(name, i, args, tmp / "results"), f"orchestrate.py ({name})")
                processes["natsflow"].setdefault(name, []).append(wall)
                if peer and PAIRS[name]:
                    wall = run(worker_cmd(peer, "peer", args, tmp / "one.jsonl", [name], 1, seed=i, table=table),
                               f"a one-run peer process ({name})")
                    processes["peer"].setdefault(name, []).append(wall)

    print(f"table: {args.store or 'embedded'} {args.space}, budget {args.budget:g} simulated s, {args.seeds} seeds x "
          f"{args.rounds} round(s) per run, {args.processes} process(es) per searcher; peer: "
          + (f"syne-tune at {peer} (tuner_sleep_time {args.peer_sleep:g} s)" if peer else "none"))
    head = (f"{'searcher':<10} {'peer':<13} {'ms/run':>9} {'peer':>9} {'ratio':>7}   {'ms/process':>10} "
            f"{'peer':>9} {'ratio':>7}   {'evals/run':>9} {'peer':>6}")
    print(head)
    lines = []
    for name in names:
        ours, theirs = runs["natsflow"].get(name, []), runs["peer"].get(name, [])
        o_run, t_run = median_ms([x["run_s"] for x in ours]), median_ms([x["run_s"] for x in theirs])
        o_proc, t_proc = median_ms(processes["natsflow"].get(name, [])), median_ms(processes["peer"].get(name, []))
        o_ev = statistics.median([x["evaluations"] for x in ours]) if ours else None
        t_ev = statistics.median([x["evaluations"] for x in theirs]) if theirs else None
        print(f"{name:<10} {PAIRS[name] or '-':<13} {fmt(o_run):>9} {fmt(t_run):>9} {ratio(t_run, o_run):>7}   "
              f"{fmt(o_proc):>10} {fmt(t_proc):>9} {ratio(t_proc, o_proc):>7}   {fmt(o_ev):>9} {fmt(t_ev):>6}")
        lines.append(f"{name}_ms_per_run: {fmt(o_run)} ms")
        lines.append(f"{name}_ms_per_process: {fmt(o_proc)} ms")
        if peer and PAIRS[name]:
            lines.append(f"{name}_peer_ms_per_run: {fmt(t_run)} ms")
            lines.append(f"{name}_peer_ms_per_process: {fmt(t_proc)} ms")
            lines.append(f"{name}_ratio_per_run: {ratio(t_run, o_run).rstrip('x')} x")
            lines.append(f"{name}_ratio_per_process: {ratio(t_proc, o_proc).rstrip('x')} x")
    print("\n".join(lines))
    if not peer:
        print(f"note: no peer measured; {INSTALL_HINT}")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "processes": processes, "peer": peer,
                                               "budget_s": args.budget, "seeds": args.seeds}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
