"""``python -m benchmark_data``: inspect, query, compact, import into, build and complete a store.

Every command names its store with ``--store PATH`` (``benchmark_data.cli``): ``info`` and
``query`` read it and default to the embedded benchmark (``--store embedded``); ``compact``,
``import`` (the destination; the source stays positional) and ``build`` write it and require it.
``import``, ``build`` and ``surrogate`` hand everything after their name to
``benchmark_data.importers.main``, ``trainables.builder.main`` and
``benchmark_data.surrogate.cli.main``; they are imported only when used, so ``info`` and
``query`` do not pay for torch, Ray or scikit-learn. Errors a user can cause print as
``error: ...`` (exit status 2); output cut short by a reader such as ``head`` ends quietly
(status 141, see ``cli.run_cli``).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

from spaces import SPACE_NAMES
from spaces.errors import UserError

from . import cli
from .schema import TABLES

PROG = "python -m benchmark_data"
_DELEGATES = {
    "import": ("benchmark_data.importers", "import official NATS-Bench archives or tables"),
    "build": ("trainables.builder", "train architectures and write them into a store"),
    "surrogate": ("benchmark_data.surrogate.cli", "fit a surrogate on a partial table and write "
                                                  "predictions for the architectures it lacks"),
}
# Provenance keys worth a line in `info`; the rest is in the files for anyone who wants it.
_INFO_META = ("schema_version", "code_version", "created_at", "recipe", "skeleton",
              "dataset_fingerprint", "source")


def _parser() -> argparse.ArgumentParser:
    p = cli.Parser(prog=PROG,
                   description="Inspect, query, compact, import into and build a benchmark store "
                               "(Parquet tables, see docs/SCHEMA.md). Every command names its "
                               "store with --store PATH.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=cli.Parser)
    info = sub.add_parser("info", help="what a store holds: partitions, rows, seeds, provenance",
                          description="List a store's partitions, rows, seeds and provenance, "
                                      "and any damaged files.")
    cli.add_store_flag(info, reads=True, help="store folder to describe")
    cli.add_old_store_forms(info, "info")
    q = sub.add_parser("query", help="print the metrics of one architecture",
                       description="Print one architecture's metrics at one epoch (and its "
                                   "costs when the store has them).")
    cli.add_store_flag(q, reads=True, help="store folder to read")
    cli.add_old_store_forms(q, "query")
    q.add_argument("--space", choices=SPACE_NAMES, default=None,
                   help="search space (default: the store's only space)")
    q.add_argument("--dataset", default=None,
                   help="dataset, e.g. cifar10-valid or digits (default: cifar10 when the store "
                        "has it, else its only dataset for the space; cifar10-valid next to "
                        "cifar10 does not count)")
    q.add_argument("--hp", type=int, default=None,
                   help="recipe length in epochs (default: the store's only recipe for the "
                        f"dataset, else {cli.DEFAULT_HP})")
    q.add_argument("--arch", required=True, help="project arch index or canonical arch string")
    q.add_argument("--epoch", type=int, default=None,
                   help="1-based epoch (default: the last recorded)")
    q.add_argument("--seed", default="mean",
                   help="an int training seed, 'mean' (over the seeds) or 'random' (one drawn)")
    q.add_argument("--rng-seed", type=int, default=0, help="seed of the draw for --seed random")
    q.add_argument("--no-surrogate", action="store_true",
                   help="trained rows only: an architecture the store has only a surrogate prediction "
                        "for is not found (without it a prediction answers, labelled as such)")
    c = sub.add_parser("compact", help="merge each partition's fragments, drop duplicate keys",
                       description="Merge each partition's fragments into one file and drop "
                                   "duplicate keys (the last written row wins).")
    cli.add_store_flag(c, reads=False, required=True, help="store folder to compact (required)")
    cli.add_old_store_forms(c, "compact")
    c.add_argument("--table", choices=TABLES, default=None, help="only this table (default: all)")
    for name, (_, text) in _DELEGATES.items():
        sub.add_parser(name, help=f"{text} (see `{PROG} {name} --help`)", add_help=False)
    return p


def _open(store: str | None, surrogate: bool = True):
    from .reader import Benchmark
    return Benchmark.open(cli.store_to_read(store), surrogate=surrogate)


def _info(store: str | None) -> None:
    from spaces import get_space

    from . import schema as S
    bench = _open(store, surrogate=False)  # epochs lines say what was trained
    print(f"store: {bench.root}")
    for table in S.TABLES:
        counts = bench.row_counts(table)
        print(f"{table}: {len(counts)} partition(s)")
        for values, files, rows in counts:
            label = " ".join(f"{k}={v}" for k, v in values.items())
            print(f"  {label}: {files} file(s), {rows} row(s)", end="")
            if table == "surrogate":
                print(_surrogate_info(bench, values))
                continue
            if table != "epochs":
                print()
                continue
            space, dataset, hp = values["space"], values["dataset"], values["hp"]
            try:
                archs = bench.archs(space, dataset, hp)
            except UserError:  # no readable rows: said below, with the bad files
                print(" - not usable: no readable rows (its files are among the bad files)")
                continue
            print(f", {archs.size}/{get_space(space).size} archs, "
                  f"seeds {bench.seeds(space, dataset, hp)}, "
                  f"epochs 1..{bench.num_epochs(space, dataset, hp)}")
            meta = bench.metadata(space, dataset, hp)
            for key in _INFO_META:
                if meta.get(key):
                    print(f"    {key}: {meta[key]}")
    print(f"bad files: {len(bench.bad_files)}")
    for f in bench.bad_files:
        print(f"  {f}")
        print(f"    why: {bench.bad_reasons[f]}")


def _surrogate_info(trained, values: dict) -> str:
    """The rest of a surrogate partition's ``info`` line: the predictions a reader uses (those of
    archs never trained), the model and its cross-validation figures; or why none are used."""
    from spaces import get_space

    from .reader import Benchmark
    from .task import decode_cv, describe_surrogate
    key = (values["space"], values["dataset"], values["hp"])
    if key in trained.ignored_surrogates:
        return " - ignored: no epochs partition beside it (predictions only complete a trained table)"
    merged = Benchmark.open(trained.root)  # listing only; reads this partition's keys
    try:
        used = merged.surrogate_archs(*key).size
        meta = merged.surrogate_info(*key) or {}
    except UserError as exc:  # the trained partition is unusable: said on its own line
        return f" - not usable: {exc}"
    return (f", {used}/{get_space(key[0]).size} archs predicted (those never trained)"
            + (f"\n    model: {describe_surrogate(meta.get('surrogate_model'), decode_cv(meta))}" if meta else "")
            + (f"\n    created_at: {meta['created_at']}" if meta.get("created_at") else ""))


def _query(args: argparse.Namespace) -> None:
    from spaces import get_space
    seed: int | str = args.seed
    if seed not in ("mean", "random"):
        try:
            seed = int(seed)
        except ValueError:
            raise UserError(f"--seed {seed!r}: give an int, 'mean' or 'random'") from None
    bench = _open(args.store, surrogate=not args.no_surrogate)
    name = cli.pick_space(bench, args.space)
    # A named dataset is checked by the reader (whose error says why a damaged one cannot be
    # read); only the inference is choose_dataset's.
    dataset = args.dataset if args.dataset is not None else bench.choose_dataset(name)
    hp = cli.pick_hp(bench, name, dataset, args.hp)
    space = get_space(name)
    arch = space.resolve(args.arch)
    out = bench.metrics(name, dataset, hp, arch, epoch=args.epoch, seed=seed, rng=args.rng_seed)
    epoch = args.epoch or bench.num_epochs(name, dataset, hp)
    print(f"arch: {arch} {space.to_str(arch)}")
    print(f"space: {name}  dataset: {dataset}  hp: {hp}  epoch: {epoch}  seed: {args.seed}")
    predicted = bool(arch in bench.surrogate_archs(name, dataset, hp))
    if predicted:
        from .task import decode_cv, describe_surrogate
        meta = bench.surrogate_info(name, dataset, hp) or {}
        print(f"source: surrogate prediction, not a training "
              f"({describe_surrogate(meta.get('surrogate_model'), decode_cv(meta))}); --no-surrogate leaves it out")
    costs = {}
    if any(v == {"space": name, "dataset": dataset} for v, _ in bench.partitions("archs")):
        costs = bench.cost(name, dataset, arch, missing_ok=predicted)  # never built: never measured
    for metric, value in {**out, **costs}.items():  # a gap (e.g. an imported table's) is n/a
        print(f"{metric}: {'n/a' if math.isnan(value) else format(value, '.6g')}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; UserError propagates to the caller (``cli.run_cli`` prints it)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _DELEGATES:
        import importlib
        name = _DELEGATES[argv[0]][0]
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            raise UserError(f"the {argv[0]!r} command needs {name}, which this installation "
                            "lacks; install the full project") from None
        return int(module.main(argv[1:]) or 0)
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return 2
    if args.command == "info":
        _info(args.store)
    elif args.command == "query":
        _query(args)
    elif args.command == "compact":
        from .writer import compact
        root = cli.store_to_write(args.store)
        if not root.is_dir():
            raise UserError(f"store folder {args.store} does not exist")
        print(compact(root, args.table))
    return 0


def _run(argv: Sequence[str] | None = None) -> int:
    """``main`` with errors a user can cause printed as ``error: ...`` (``cli.run_cli``)."""
    return cli.run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(_run())
