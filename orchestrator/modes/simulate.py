"""``orchestrate.py simulate``: multi-trial searchers replayed on a tabular benchmark, on a simulated clock.

The default mode. Every (searcher, seed) run is one ``orchestrator.simulator.run_search`` over the
store's task view; the runs land in ``OUT/runs/experiment=NAME`` and their curves (every 100
simulated seconds) in ``OUT/curves/``; the summary follows NATS-Bench's protocol
(``orchestrator.protocol``). The machinery of repeated runs is ``orchestrator.experiment``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
from dataclasses import dataclass

from benchmark_data.cli import store_to_read  # the store flag's one reading, shared by every CLI
from orchestrator.searchers import SEARCHERS  # the registry (its modules load on first use)

from ..common import (
    INTERRUPTED_STATUS,
    absolute,
    add_output_flags,
    add_ray_flags,
    add_resume_flag,
    add_scheduler_flag,
    add_seed_flag,
    add_store_flag,
    add_surrogate_flags,
    at_least,
    check_new_experiment,
    check_scheduler,
    check_writable,
    experiment_name,
    find_resumable,
    fmt_count,
    fmt_duration,
    fmt_spread,
    fmt_value,
    folder_flag,
    format_table,
    resume_command,
    write_identity,
)

SIM_FOLDER = "simulate"  # OUT/simulate/NAME: the finished runs of an experiment under way (RunLog)

HELP = "replay multi-trial searchers on a tabular benchmark with a simulated clock (default)"
DESCRIPTION = ("Run multi-trial architecture searchers against a Parquet tabular benchmark with a simulated clock "
               "(NATS-Bench's protocol), and store every trajectory as Parquet.")
EPILOG = """\
Budgets: '2e4s' or '20000' = 20,000 s of recorded training time, '30m', '5.5h', or '150ev' = 150 evaluations.
Without --budget: NATS-Bench's budget for cifar10 (2e4 s), cifar100 (4e4 s), ImageNet16-120 (1.2e5 s tss,
6e4 s sss); for other datasets, the time of 150 median full evaluations of the search recipe.
As NATS-Bench, a run ends with the first evaluation past the budget (BOHB: once the value at the budget is
final) and reports the incumbent's test accuracy interpolated at the budget (draw-table.py); curves every 100
simulated seconds go to OUT/curves/.
A table that covers only part of the space is refused, with the command that completes it with surrogate
predictions, unless --allow-gaps; a store's surrogate predictions complete it unless --no-surrogate, and the
summary then says how much of each searcher's evaluations and final values came from them.
Examples:
  orchestrate.py --searcher bohb --budget 2e4s                  # the main job, on the embedded benchmark
  orchestrate.py simulate --searcher all --runs 500
  orchestrate.py simulate --searcher random --scheduler asha --workers 4
  orchestrate.py simulate --searcher tpe --store STORE --dataset cifar10 --runs 100 --parallel 2"""


@dataclass(frozen=True)
class SimulateSettings:
    """Everything that defines a simulated experiment, checked."""

    searchers: tuple[str, ...]
    label: str              # the --searcher value ("all" or one name), for the default experiment name
    space: str
    dataset: str | None     # None: inferred from the store
    store: str | None       # None: the embedded benchmark
    budget: object | None   # orchestrator.simulator.Budget; None: the protocol's default for the table
    runs: int
    seed: int
    workers: int
    scheduler: str
    hp: int | None
    final_hp: int | None
    out: str
    experiment: str | None  # None: a fresh name once the dataset and budget are known
    address: str | None
    parallel: int | None
    surrogate: bool = True      # merge the store's surrogate predictions in (--no-surrogate: False)
    allow_gaps: bool = False    # search a table that misses architectures (--allow-gaps)
    resume: bool = False        # finish an interrupted experiment (--resume)
    command_line: tuple[str, ...] | None = None  # as typed, for the resume command printed on Ctrl-C

    @property
    def seeds(self) -> list[int]:
        return list(range(self.seed, self.seed + self.runs))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--searcher", default="bohb", choices=SEARCHERS + ("all",),
                   help="multi-trial search algorithm, or 'all' for every one (default: bohb)")
    p.add_argument("--space", default="tss", choices=("tss", "sss"),
                   help="NATS topology (tss, 15,625 cells) or size (sss, 32,768 channel configs) space (default tss)")
    p.add_argument("--dataset", default=None,
                   help="dataset in the store (default: cifar10 if present, else the store's only dataset)")
    add_store_flag(p, reads=True, help="Parquet benchmark store to replay")
    add_surrogate_flags(p)
    p.add_argument("--budget", default=None, help="search budget per run (see below)")
    p.add_argument("--runs", type=int, default=1, help="independent runs per searcher (default 1)")
    add_seed_flag(p, "seed of the first run; run i uses seed+i (default 0)")
    p.add_argument("--workers", type=int, default=1,
                   help="simulated workers per run: 1 = NATS-Bench's protocol (default), >1 = asynchronous search")
    add_scheduler_flag(p)
    p.add_argument("--hp", type=int, default=None,
                   help="recipe (epochs) whose validation accuracy is the searchers' feedback (default 12)")
    p.add_argument("--final-hp", type=int, default=None,
                   help="recipe whose test accuracy is reported (default 200 tss / 90 sss, else the longest "
                        "complete one)")
    add_output_flags(p, experiment_help="experiment name (default: from the arguments, the time and a random "
                                        "suffix); a name already used under --out is refused")
    add_ray_flags(p, parallel_help="start a local Ray with K CPUs and spread the runs over it")
    add_resume_flag(p, f"the runs it finished (kept in OUT/{SIM_FOLDER}/NAME as they finish) are not run again")


def settings_from_args(args: argparse.Namespace) -> SimulateSettings:
    from orchestrator.simulator import parse_budget

    at_least("--runs", args.runs, 1)
    at_least("--workers", args.workers, 1)
    at_least("--parallel", args.parallel, 1)
    if args.searcher == "all":  # under a stopping scheduler without BOHB, which brings its own brackets
        names = SEARCHERS if args.scheduler == "fifo" else tuple(n for n in SEARCHERS if n != "bohb")
    else:
        check_scheduler(args.searcher, args.scheduler)
        names = (args.searcher,)
    if args.experiment is not None:
        experiment_name(args.experiment, "")  # a folder name: no '/', '..', spaces
    return SimulateSettings(
        searchers=names, label=args.searcher, space=args.space, dataset=args.dataset,
        store=store_to_read(args.store), budget=None if args.budget is None else parse_budget(args.budget),
        runs=args.runs, seed=args.seed, workers=args.workers, scheduler=args.scheduler, hp=args.hp,
        final_hp=args.final_hp, out=folder_flag("--out", args.out), experiment=args.experiment,
        address=args.address, parallel=args.parallel, surrogate=args.surrogate, allow_gaps=args.allow_gaps,
        resume=args.resume, command_line=getattr(args, "command_line", None))


def run(settings: SimulateSettings, quiet: bool = False) -> int:
    import time

    from benchmark_data.arrow import defer_pandas
    from benchmark_data.reader import Benchmark
    from benchmark_data.schema import provenance
    from orchestrator.experiment import (
        RunLog,
        RunSpec,
        curves_table,
        default_budget,
        discard_tables,
        resolved_knobs,
        run_experiment,
        runs_table,
        summarize,
        surrogate_record,
        write_curves,
        write_runs,
    )

    defer_pandas()  # a simulated search moves numbers only: pandas would be half a short process's time
    # Everything a user can get wrong is checked before the first run: nothing is written before.
    bench = Benchmark.open(settings.store, surrogate=settings.surrogate)
    table = bench.task(settings.space, settings.dataset, settings.hp, final_hp=settings.final_hp,
                       allow_gaps=settings.allow_gaps)
    dataset = table.dataset
    budget, why = (settings.budget, "given") if settings.budget is not None else default_budget(table)
    specs = [RunSpec(n, budget, settings.workers, scheduler=settings.scheduler) for n in settings.searchers]
    for spec in specs:
        spec.check(table)
    check_writable("--out", settings.out)
    identity = {"searchers": list(settings.searchers), "space": settings.space, "dataset": dataset,
                "store": str(bench.root), "surrogate": settings.surrogate, "allow_gaps": settings.allow_gaps,
                "budget": str(budget), "seeds": [settings.seed, settings.runs], "workers": settings.workers,
                "scheduler": settings.scheduler, "hp": table.feedback_hp, "final_hp": table.final_hp}
    if settings.resume:
        experiment = find_resumable(settings.out, SIM_FOLDER, settings.experiment, identity)
    else:
        experiment = experiment_name(settings.experiment, f"{settings.label}-{settings.space}-{dataset}-{budget}")
        check_new_experiment(settings.out, experiment, SIM_FOLDER)
        write_identity(settings.out, SIM_FOLDER, experiment, identity)
    log = RunLog(absolute(settings.out) / SIM_FOLDER / experiment)
    knobs = {spec.searcher: resolved_knobs(table, spec) for spec in specs}

    print(f"store: {bench.root}")
    print(f"space {settings.space}, dataset {dataset}: feedback {table.feedback_source} of "
          f"{table.feedback_dataset} at hp={table.feedback_hp}, final value {table.final_source} at "
          f"hp={table.final_hp}")
    for note in table.notes:
        print(f"note: {note}")
    if table.min_fidelity == table.num_epochs and "bohb" in settings.searchers:
        print(f"note: only epoch {table.num_epochs} of hp={table.feedback_hp} is recorded, so BOHB has one fidelity: "
              "it runs its model over that fidelity (no HyperBand brackets)")
    if settings.label == "all" and settings.scheduler != "fifo":
        print(f"note: bohb is left out under --scheduler {settings.scheduler} (it runs its own brackets)")
    print(f"budget: {budget} per run ({why}); {settings.runs} run(s) x {len(specs)} searcher(s), "
          f"{settings.workers} worker(s), scheduler {settings.scheduler}")

    started = time.perf_counter()
    try:
        result = run_experiment(table, specs, settings.seeds, address=settings.address,
                                parallel=settings.parallel, progress=not quiet, log=log)
    except KeyboardInterrupt:
        kept = len(log.load())
        print(f"\ninterrupted: {kept} of {len(specs) * settings.runs} runs finished and kept in {log.folder}; "
              f"finish the experiment with\n  {resume_command(settings.command_line, 'simulate', experiment)}",
              file=sys.stderr)
        return INTERRUPTED_STATUS
    elapsed = time.perf_counter() - started
    rows = runs_table(result, table, experiment, budget)
    summary = summarize(result, table, budget)
    surrogate = surrogate_record(summary, table)
    skeleton = json.loads(bench.metadata(settings.space, table.feedback_dataset, table.feedback_hp).get("skeleton")
                          or "{}")
    seeds = settings.seeds
    meta = provenance("runs", recipe={"feedback": table.feedback_source, "feedback_hp": table.feedback_hp,
                                      "feedback_dataset": table.feedback_dataset,
                                      "final": table.final_source, "final_hp": table.final_hp},
                      skeleton=skeleton,
                      dataset_fingerprint=bench.dataset_fingerprint(settings.space, table.feedback_dataset,
                                                                    table.feedback_hp),
                      extra={"experiment": experiment, "benchmark": str(bench.root), "budget": str(budget),
                             "seeds": f"{seeds[0]}..{seeds[-1]}", "workers": str(settings.workers),
                             "scheduler": settings.scheduler,
                             "knobs": json.dumps(knobs, sort_keys=True, default=str),
                             "incumbent": specs[0].incumbent,
                             **({"surrogate": json.dumps(surrogate, sort_keys=True)} if surrogate else {})})
    if settings.resume:
        discard_tables(absolute(settings.out), experiment)
    paths = write_runs(settings.out, rows, meta)
    curve_path = write_curves(settings.out, experiment, curves_table(result, budget), meta)
    shutil.rmtree(log.folder, ignore_errors=True)  # the tables hold every run now
    with contextlib.suppress(OSError):
        log.folder.parent.rmdir()  # OUT/simulate, once no experiment is under way there

    print(f"\nbest architecture in the benchmark: {table.space.to_str(table.best_arch)}  "
          f"({table.final_source} {table.best_final:.2f} %{predicted(table, table.best_arch)})")
    floor_arch, floor_final = table.best_by_feedback
    print(f"best by the searchers' feedback: {table.space.to_str(floor_arch)}  ({table.feedback_source} at "
          f"hp={table.feedback_hp}; {table.final_source} {floor_final:.2f} %{predicted(table, floor_arch)}): the "
          "lowest regret a search can reach by trusting its feedback")
    print(format_summary(summary, dataset, budget))
    for line in format_surrogate_shares(summary, table):
        print(line)
    if settings.runs == 1 and len(specs) == 1:
        found = int(result.runs[0].columns["best_arch_index"][-1])
        if found < 0:  # --allow-gaps: every proposal lacked data
            print("\nfound: nothing (no evaluation had data)")
        else:
            print(f"\nfound: {table.space.to_str(found)}  (index {found}, {table.final_source} at hp={table.final_hp}: "
                  f"{table.final[found]:.2f} %{predicted(table, found)})")
    print(f"\nwall time {elapsed:.2f} s; runs table: {paths[0].parent if paths else settings.out}"
          + (f"; curves: {curve_path}" if curve_path else ""))
    return 0


def predicted(table, arch: int) -> str:
    """The words that label a printed final value of ``arch`` as a surrogate prediction ("" when trained)."""
    return ", a surrogate prediction" if table.surrogate_final[arch] else ""


def format_surrogate_shares(summary, table) -> list[str]:
    """One line per searcher with the shares of its evaluations and of its final values (the
    incumbent at each run's end) that were surrogate predictions; none when the task used none."""
    if not table.uses_surrogate:
        return []
    from benchmark_data.task import describe_surrogate

    model = describe_surrogate(table.surrogate_model, table.surrogate_cv)
    return [f"surrogate, {r.searcher}: {100 * r.surrogate_evaluations:.1f} % of evaluations, "
            f"{100 * r.surrogate_final_values:.1f} % of final values ({model})" for r in summary]


def format_summary(summary, dataset: str, budget) -> str:
    from orchestrator.protocol import NATS_STD_DDOF

    at = ("at the budget, interpolated as NATS-Bench's draw-table.py" if budget.seconds is not None
          else "after the last evaluation (an evaluation budget)")
    runs = max((r.runs for r in summary), default=0)
    head = (f"test accuracy of the incumbent {at}; the spread is the std over {runs} runs (ddof={NATS_STD_DDOF}, "
            "as NATS-Bench)" if runs > 1 else f"test accuracy of the incumbent {at} (one run: no spread)")
    columns = [("searcher", "<"), ("dataset", "<"), ("runs", ">"), ("test acc %", ">"), ("std", "<"),
               ("last event", ">"), ("regret", ">"), ("sim time used", ">"), ("evals/run", ">"), ("wall/run", ">")]
    rows = [[r.searcher, dataset, str(r.runs), fmt_value(r.test_acc_at_budget_mean),
             fmt_spread(r.test_acc_at_budget_std, r.runs).removeprefix("+- "), fmt_value(r.last_event_test_acc_mean),
             fmt_value(r.regret_mean), fmt_value(r.sim_time_used_s_mean, 0, " s"), fmt_count(r.evaluations_mean),
             fmt_duration(r.wall_s_per_run_median)] for r in summary]
    return head + "\n" + format_table(columns, rows)


__all__ = ["DESCRIPTION", "EPILOG", "HELP", "SEARCHERS", "SimulateSettings", "add_arguments",
           "format_summary", "format_surrogate_shares", "run", "settings_from_args"]
