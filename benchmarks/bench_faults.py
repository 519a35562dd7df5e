#!/usr/bin/env python
"""The fault campaign (#15): jobs killed at seeded random moments, recovered, and their tables
compared with those of uninterrupted runs of the same command.

Two kinds of fault, each on two jobs run through the real command line (``orchestrate.py``):
  * driver kills: the job's own process gets SIGKILL (a crashed laptop, a closed shell, a lost
    head node), then the command is rerun with ``--resume`` until it completes (a job killed
    before it started anything is refused by ``--resume``, and then rerun as it was first typed);
  * worker-node kills: on a real two-node Ray cluster on this machine (tests/cluster_fixtures.py:
    a head and a worker node with 1 CPU each, a private RAY_TMPDIR, RAY_AUTH_MODE as the tests set
    it), the job runs with ``--address`` at the head and the worker node's whole process group
    (raylet, its workers) gets SIGKILL; the job is left to finish on what is left, and a new worker
    node joins before the next scenario.
The jobs: a simulated comparison (``simulate --searcher random --runs R --budget 600s`` on the
embedded benchmark; tables ``runs`` and ``curves``) and a tiny live search on digits (``train
--C 4 --N 1 --epochs 4 --trials 6 --searcher random``; tables ``trials`` and the store's
``epochs``).

Per scenario: whether the job completed; rows lost (keys of the reference's tables missing),
rows duplicated (rows beyond the first of a key), rows extra (keys the reference lacks); whether
the tables equal the reference's apart from clock columns; trials retried (live search: trials
Tune restarted after a failure, from its trials' error files, or continued from a checkpoint,
from their result files; a simulated comparison's Ray tasks are re-run by Ray itself and the
project records no count of them); and the recovery overhead, (wall time of every process of
the scenario - wall time of the reference) / wall time of the reference. The reference is the
same command run uninterrupted just before the scenario, where the scenario runs (in-process, or
on the same cluster): the machine's load drifts over a campaign. Its tables must equal those of
the job's first uninterrupted run, which all scenarios are compared with (and which warms the
caches). The kill comes at a moment drawn uniformly from the first 90 % of the reference's wall.

    python benchmarks/bench_faults.py                    # 20 + 20 simulated, 3 + 3 live, ~20 min here
    python benchmarks/bench_faults.py --quick            # a tiny run (~3 min)
    python benchmarks/bench_faults.py --seed 1 --train-kills 0 --json faults.json

Prints a progress line per scenario, a table and ``name: value`` lines; exits 1 when a scenario
did not complete or lost or duplicated rows.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from cluster_fixtures import LoopbackCluster  # noqa: E402  (the multi-node fault test's cluster)

CLI = [sys.executable, str(ROOT / "orchestrate.py")]
JOB_TIMEOUT_S = 900
MAX_RERUNS = 3
# What a rerun says when there is nothing to resume (killed before the job started anything),
# and when the killed run had finished its work already.
NOTHING_TO_RESUME = ("no interrupted experiment", "nothing to resume")
COMPLETE_ALREADY = "is complete already"
# Kill moments are uniform over this share of the reference's wall time, from the command's
# start (imports and start-up included), so that nearly every kill lands while the job runs.
KILL_WINDOW = 0.9
# The loopback cluster: a worker node beside the head, one CPU each as this machine has two cores
# (more Ray CPUs than cores would make a lost node look like relief from contention).
HEAD_CPUS, WORKER_CPUS = 1, 1


@dataclass(frozen=True)
class Table:
    """Where one of a job's tables is, its key and the columns that differ between any two runs."""

    name: str
    path: str  # under the job's folder; {exp} is the experiment's name
    keys: tuple[str, ...]
    clock: tuple[str, ...]


@dataclass(frozen=True)
class Job:
    name: str
    args: tuple[str, ...]  # orchestrate.py's arguments, without --out, --experiment, --address
    tables: tuple[Table, ...]
    live: bool  # a Tune experiment under OUT/live/NAME (trials retried are counted there)

    def command(self, out: Path, exp: str, address: str | None) -> list[str]:
        store = ["--store", str(out / "store")] if self.live else []
        return [*CLI, *self.args, *store, "--out", str(out), "--experiment", exp,
                *(["--address", address] if address else [])]

    def resume_command(self, out: Path, exp: str, address: str | None) -> list[str]:
        if self.live:  # a live experiment's flags come from its folder
            return [*CLI, "train", "--resume", "--experiment", exp, "--out", str(out), "--quiet",
                    *(["--address", address] if address else [])]
        return [*self.command(out, exp, address), "--resume"]


def simulate_job(runs: int) -> Job:
    return Job("simulate", ("simulate", "--searcher", "random", "--runs", str(runs), "--budget", "600s", "--quiet"),
               (Table("runs", "runs/experiment={exp}", ("searcher", "run_seed", "event"),
                      ("wall_time_s", "searcher_time_s")),
                Table("curves", "curves/experiment={exp}", ("searcher", "run_seed", "sim_time_s"), ())),
               live=False)


def train_job(trials: int, epochs: int) -> Job:
    return Job("train", ("train", "--C", "4", "--N", "1", "--epochs", str(epochs), "--trials", str(trials),
                         "--searcher", "random", "--quiet"),
               (Table("trials", "trials/experiment={exp}", ("event",), ("trial_id", "train_time_s", "trial_time_s")),
                Table("epochs", "store/epochs", ("arch_index", "seed", "epoch"), ("epoch_time_s", "eval_time_s"))),
               live=True)


# ----- running a command, with a fault on a timer -----------------------------------------------
@dataclass
class Attempt:
    returncode: int
    wall_s: float
    faulted: bool  # the fault came while the command ran
    stderr: str


def run_cli(cmd: list[str], env: dict, fault_at: float | None = None, fault=None) -> Attempt:
    """Run ``cmd`` in its own process group; ``fault(proc)`` after ``fault_at`` seconds if it still
    runs. Whatever the command left running in its group (a local Ray it started) is killed after."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    faulted = False
    try:
        try:
            _, err = proc.communicate(timeout=fault_at if fault_at is not None else JOB_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            if fault_at is None:
                raise
            fault(proc)
            faulted = True
            _, err = proc.communicate(timeout=JOB_TIMEOUT_S)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # only this command's own group
        proc.wait()
    return Attempt(proc.returncode, time.perf_counter() - started, faulted, err[-3000:])


def kill_driver(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


# ----- the tables, against the reference's ------------------------------------------------------
def read_table(out: Path, exp: str, table: Table) -> pd.DataFrame | None:
    path = out / table.path.format(exp=exp)
    if not path.exists():
        return None
    df = pd.read_parquet(path)
    df = df.drop(columns=[c for c in (*table.clock, "experiment") if c in df.columns])
    for c in df.columns:  # partition columns come back as categories whose sets differ by run
        if isinstance(df[c].dtype, pd.CategoricalDtype):
            df[c] = df[c].astype(str)
    return df.sort_values(list(table.keys), kind="stable").reset_index(drop=True)


def compare(want: pd.DataFrame, got: pd.DataFrame | None, keys: tuple[str, ...]) -> dict:
    if got is None:
        return {"lost": len(want), "duplicated": 0, "extra": 0, "differs": []}
    keys = list(keys)
    both = want[keys].drop_duplicates().merge(got[keys].drop_duplicates(), how="outer", indicator=True)
    counts = {"lost": int((both["_merge"] == "left_only").sum()), "duplicated": int(got.duplicated(keys).sum()),
              "extra": int((both["_merge"] == "right_only").sum())}
    return {**counts, "differs": differing_columns(want, got, keys) if not any(counts.values()) else []}


def differing_columns(want: pd.DataFrame, got: pd.DataFrame, keys: list[str]) -> list[str]:
    """The columns whose values differ between two tables of the same keys (NaN equals NaN)."""
    if sorted(want.columns) != sorted(got.columns):
        return sorted(set(want.columns) ^ set(got.columns))
    pair = want.merge(got, on=keys, suffixes=("", "__got"))
    return [c for c in want.columns if c not in keys
            and not (pair[c].isna() & pair[f"{c}__got"].isna() | (pair[c] == pair[f"{c}__got"])).all()]


def trials_retried(out: Path, exp: str) -> int:
    """Trials Tune restarted after a failure (an error file) or continued from a checkpoint
    (a result whose iterations since the restore are fewer than its iterations)."""
    retried = 0
    for trial in (out / "live" / exp).glob("trial_*"):
        results = [json.loads(line) for line in (trial / "result.json").read_text().splitlines() if line.strip()] \
            if (trial / "result.json").exists() else []
        restored = any(r.get("iterations_since_restore", 0) < r.get("training_iteration", 0) for r in results)
        iterations = [r.get("training_iteration") for r in results]
        rerun = len(iterations) != len(set(iterations))  # restarted from scratch: epoch 1 again
        retried += bool((trial / "error.txt").exists() or restored or rerun)
    return retried


# ----- scenarios ---------------------------------------------------------------------------------
@dataclass
class Reference:
    """Uninterrupted runs of a job: the first one's tables (that run also warms the caches: the
    first run of a job on a machine is slower), then one run just before each scenario."""

    tables: dict[str, pd.DataFrame]
    walls: list[float] = field(default_factory=list)  # of the runs paired with the scenarios
    unrepeatable: int = 0  # paired runs whose tables differed from the first's


@dataclass
class Scenario:
    kind: str  # driver | worker
    job: str
    index: int
    reference_wall_s: float  # of the uninterrupted run just before
    fault_at_s: float
    faulted: bool
    processes: int
    completed: bool
    lost: int
    duplicated: int
    extra: int
    equal: bool
    differs: list[str]  # table.column whose values differ from the reference's, keys being equal
    retried: int | None
    wall_s: float
    overhead: float
    error: str | None = None


def uninterrupted(job: Job, out: Path, exp: str, env: dict, address: str | None) -> float:
    attempt = run_cli(job.command(out, exp, address), env)
    if attempt.returncode != 0:
        sys.exit(f"error: the uninterrupted {job.name} run failed (exit {attempt.returncode}):\n{attempt.stderr}")
    return attempt.wall_s


def differences(job: Job, ref: Reference, out: Path, exp: str) -> tuple[dict[str, int], list[str]]:
    """Rows lost, duplicated and extra over the job's tables, and table.column that differ."""
    counts, differs = {"lost": 0, "duplicated": 0, "extra": 0}, []
    for table in job.tables:
        c = compare(ref.tables[table.path], read_table(out, exp, table), table.keys)
        differs += [f"{table.name}.{col}" for col in c["differs"]]
        for k in counts:
            counts[k] += c[k]
    return counts, differs


def recover(job: Job, out: Path, exp: str, env: dict, address: str | None) -> list[Attempt]:
    """``--resume`` until the job completes, as a user would."""
    attempts = []
    for _ in range(MAX_RERUNS):
        again = run_cli(job.resume_command(out, exp, address), env)
        if again.returncode == 2 and any(m in again.stderr for m in NOTHING_TO_RESUME):
            attempts.append(again)  # it had started nothing: the command as first typed
            again = run_cli(job.command(out, exp, address), env)
        attempts.append(again)
        if again.returncode == 0 or COMPLETE_ALREADY in again.stderr:
            break
    return attempts


def scenario(kind: str, job: Job, index: int, ref: Reference, rng: random.Random, work: Path, env: dict,
             cluster: LoopbackCluster | None, keep: bool) -> Scenario:
    address = cluster.address if cluster else None
    # The paired uninterrupted run: the machine's load drifts, so each scenario is timed against
    # a run made just before it rather than against one made at the start of the campaign.
    paired = work / f"{kind}-{job.name}-{index}-ref"
    ref_wall = uninterrupted(job, paired, "ref", env, address)
    ref.walls.append(ref_wall)
    counts, differs = differences(job, ref, paired, "ref")
    ref.unrepeatable += bool(any(counts.values()) or differs)
    out, exp = work / f"{kind}-{job.name}-{index}", f"s{index}"
    fault_at = rng.uniform(0.0, KILL_WINDOW) * ref_wall
    fault = kill_driver if kind == "driver" else (lambda proc: cluster.kill_worker())
    attempts = [run_cli(job.command(out, exp, address), env, fault_at, fault)]
    if attempts[0].faulted and kind == "driver":
        attempts += recover(job, out, exp, env, address)
    if attempts[0].faulted and kind == "worker":
        cluster.start_worker()  # a fresh worker node for the next scenario (not timed)
    last = attempts[-1]
    counts, differs = differences(job, ref, out, exp)
    completed = (last.returncode == 0 or COMPLETE_ALREADY in last.stderr) and counts["lost"] == 0
    wall = sum(a.wall_s for a in attempts)
    result = Scenario(kind, job.name, index, ref_wall, fault_at, attempts[0].faulted, len(attempts), completed,
                      equal=not any(counts.values()) and not differs, differs=differs,
                      retried=trials_retried(out, exp) if job.live else None, wall_s=wall,
                      overhead=(wall - ref_wall) / ref_wall,
                      error=None if completed else f"exit {last.returncode}: {last.stderr.strip()[-400:]}", **counts)
    if not keep:
        shutil.rmtree(out)
        shutil.rmtree(paired)
    return result


def campaign(kind: str, job: Job, n: int, rng: random.Random, work: Path, env: dict, keep: bool,
             cluster: LoopbackCluster | None = None) -> tuple[Reference, list[Scenario]]:
    first = work / f"{kind}-{job.name}-first"
    address = cluster.address if cluster else None
    wall = uninterrupted(job, first, "first", env, address)
    ref = Reference({t.path: read_table(first, "first", t) for t in job.tables})
    if not keep:
        shutil.rmtree(first)
    print(f"{kind}/{job.name}: first uninterrupted run {wall:.1f} s (the tables compared with)", flush=True)
    done = []
    # n kills: a scenario whose job ended before its kill moment is reported and another one run
    # (at most n more), so that the campaign holds n real faults.
    while sum(s.faulted for s in done) < n and len(done) < 2 * n:
        done.append(scenario(kind, job, len(done), ref, rng, work, env, cluster, keep))
        print(progress_line(done[-1], n), flush=True)
    return ref, done


# ----- the report --------------------------------------------------------------------------------
def progress_line(s: Scenario, n: int) -> str:
    equal = "yes" if s.equal else "NO " + ",".join(s.differs)
    what = "kill" if s.faulted else "no kill (it ended first)"
    return (f"  {s.kind}/{s.job} scenario {s.index + 1} ({n} kills wanted): {what} at "
            f"{s.fault_at_s:.1f} s of {s.reference_wall_s:.1f} s, {s.processes} process(es), "
            f"{'completed' if s.completed else 'NOT completed'}; "
            f"lost {s.lost}, duplicated {s.duplicated}, extra {s.extra}, equal {equal}, "
            f"retried {'-' if s.retried is None else s.retried}, overhead {s.overhead:+.0%}"
            + (f"\n    {s.error}" if s.error else ""))


def summary_row(kind: str, job: str, scenarios: list[Scenario], ref: Reference) -> dict:
    faulted = [s for s in scenarios if s.faulted]
    retried = [s.retried for s in scenarios if s.retried is not None]
    overheads = [s.overhead for s in faulted]
    return {"kind": kind, "job": job, "scenarios": len(scenarios), "faults": len(faulted),
            "reference_wall_median_s": statistics.median(ref.walls), "unrepeatable_references": ref.unrepeatable,
            "faulted_wall_median_s": statistics.median(s.wall_s for s in faulted) if faulted else None,
            "completed": sum(s.completed for s in scenarios), "equal": sum(s.equal for s in scenarios),
            "lost": sum(s.lost for s in scenarios), "duplicated": sum(s.duplicated for s in scenarios),
            "extra": sum(s.extra for s in scenarios), "retried": sum(retried) if retried else None,
            "overhead_median": statistics.median(overheads) if overheads else None,
            "overhead_max": max(overheads) if overheads else None}


def print_report(rows: list[dict]) -> None:
    print(f"\n{'scenario kind':<18} {'run':>4} {'kills':>5} {'completed':>9} {'equal':>5} {'lost':>5} {'dup':>4} "
          f"{'extra':>5} {'retried':>7} {'overhead (median / max)':>24}")
    for r in rows:
        over = ("-" if r["overhead_median"] is None
                else f"{r['overhead_median']:+.0%} / {r['overhead_max']:+.0%}")
        print(f"{r['kind'] + ' / ' + r['job']:<18} {r['scenarios']:>4} {r['faults']:>5} {r['completed']:>9} "
              f"{r['equal']:>5} {r['lost']:>5} {r['duplicated']:>4} {r['extra']:>5} "
              f"{'-' if r['retried'] is None else r['retried']:>7} {over:>24}")
    for r in rows:
        name = f"{r['kind']}_{r['job']}"
        print(f"{name}_completed: {r['completed']} / {r['scenarios']}")
        print(f"{name}_equal_to_reference: {r['equal']} / {r['scenarios']}")
        print(f"{name}_reference_wall_median: {r['reference_wall_median_s']:.2f} s "
              f"({r['unrepeatable_references']} reference run(s) with other tables than the first)")
        if r["overhead_median"] is not None:
            print(f"{name}_faulted_wall_median: {r['faulted_wall_median_s']:.2f} s")
            print(f"{name}_overhead_median: {r['overhead_median']:.3f} x reference")
            print(f"{name}_recovered_over_reference_median: {1 + r['overhead_median']:.2f} x")


# (full campaign, --quick) for each count flag not given
DEFAULTS = {"driver_kills": (20, 2), "worker_kills": (20, 2), "train_kills": (3, 1), "runs": (300, 100)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--seed", type=int, default=0, help="seed of the kill moments (default 0)")
    p.add_argument("--driver-kills", type=int, metavar="N",
                   help="simulated comparisons whose driver is killed (default 20)")
    p.add_argument("--worker-kills", type=int, metavar="N",
                   help="simulated comparisons on the two-node cluster whose worker node is killed (default 20)")
    p.add_argument("--train-kills", type=int, metavar="N",
                   help="live searches per fault kind, driver and worker node (default 3; 0: none)")
    p.add_argument("--runs", type=int, help="runs of the simulated comparison (default 300)")
    p.add_argument("--quick", action="store_true",
                   help="a tiny campaign: 2 + 2 simulated kills of 100 runs, 1 + 1 live (the flags above "
                        "still apply)")
    p.add_argument("--json", metavar="PATH", help="also write every scenario and the summary as JSON")
    p.add_argument("--keep", metavar="DIR", help="run in DIR and keep every job's folder there (default: a "
                   "temporary folder, each job's removed once compared)")
    args = p.parse_args(argv)
    for flag, defaults in DEFAULTS.items():
        if getattr(args, flag) is None:
            setattr(args, flag, defaults[args.quick])
        least = 1 if flag == "runs" else 0
        if getattr(args, flag) < least:
            p.error(f"--{flag.replace('_', '-')} must be at least {least}, got {getattr(args, flag)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    sim, train = simulate_job(args.runs), train_job(trials=6, epochs=4)
    rows, scenarios = [], []
    started, keep = time.perf_counter(), args.keep is not None
    with contextlib.ExitStack() as stack:
        work = Path(args.keep or stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-faults-")))
        # Every Ray process this campaign starts gets its own temp folder: no "current cluster"
        # of another session is joined, and none is left behind for others.
        ray_tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="ray", dir="/tmp"))  # short: socket paths
        local_env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_TMPDIR": ray_tmp}
        plan = [("driver", sim, args.driver_kills), ("driver", train, args.train_kills)]
        for kind, job, n in plan:
            if n:
                ref, done = campaign(kind, job, n, rng, work, local_env, keep)
                rows.append(summary_row(kind, job.name, done, ref))
                scenarios += done
        if args.worker_kills or args.train_kills:
            with LoopbackCluster(HEAD_CPUS, WORKER_CPUS) as cluster:
                for job, n in ((sim, args.worker_kills), (train, args.train_kills)):
                    if n:
                        ref, done = campaign("worker", job, n, rng, work, cluster.env, keep, cluster)
                        rows.append(summary_row("worker", job.name, done, ref))
                        scenarios += done
    print_report(rows)
    print(f"campaign_wall_s: {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"seed": args.seed, "runs": args.runs, "summary": rows,
                                               "scenarios": [asdict(s) for s in scenarios]}, indent=1))
    return 0 if all(r["completed"] == r["scenarios"] and not r["lost"] and not r["duplicated"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
