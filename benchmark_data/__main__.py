"""``python -m benchmark_data``: inspect, query, compact, import into and build a store.

``import`` and ``build`` hand everything after their name to ``benchmark_data.importers.main``
and ``trainables.builder.main``; they are imported only when used, so ``info`` and ``query`` do
not pay for torch or Ray. Errors a user can cause print as ``error: ...`` (exit status 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from spaces.errors import UserError

_DELEGATES = {
    "import": ("benchmark_data.importers", "import official NATS-Bench archives or tables"),
    "build": ("trainables.builder", "train architectures and write them into a store"),
}
# Provenance keys worth a line in `info`; the rest is in the files for anyone who wants it.
_INFO_META = ("schema_version", "code_version", "created_at", "recipe", "skeleton",
              "dataset_fingerprint", "source")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one error style for every CLI: `error: ...`, exit 2
        raise UserError(f"{message}; run '{self.prog} --help' for usage")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m benchmark_data",
                description="Inspect, query, compact, import into and build a benchmark store "
                            "(Parquet tables, see docs/SCHEMA.md).")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    info = sub.add_parser("info", help="what a store holds: partitions, rows, seeds, provenance")
    info.add_argument("path", nargs="?", help="store folder (default: the embedded benchmark)")
    q = sub.add_parser("query", help="print the metrics of one architecture")
    q.add_argument("path", help="store folder ('embedded' for the embedded benchmark)")
    q.add_argument("--space", default="tss", help="search space (default tss)")
    q.add_argument("--dataset", required=True, help="dataset, e.g. cifar10-valid or digits")
    q.add_argument("--hp", type=int, default=12, help="recipe length in epochs (default 12)")
    q.add_argument("--arch", required=True, help="project arch index or canonical arch string")
    q.add_argument("--epoch", type=int, help="1-based epoch (default: the last recorded)")
    q.add_argument("--seed", default="mean", help="an int training seed, 'mean' (default) or "
                                                  "'random'")
    q.add_argument("--rng-seed", type=int, default=0, help="seed of the draw for --seed random")
    c = sub.add_parser("compact", help="merge each partition's fragments, drop duplicate keys")
    c.add_argument("path", help="store folder")
    c.add_argument("--table", help="only this table (archs, epochs or runs)")
    for name, (_, text) in _DELEGATES.items():
        sub.add_parser(name, help=f"{text} (see `python -m benchmark_data {name} --help`)",
                       add_help=False)
    return p


def _open(path: str | None):
    from .reader import Benchmark
    return Benchmark.open(None if path in (None, "embedded") else path)


def _info(path: str | None) -> None:
    from spaces import get_space

    from . import schema as S
    bench = _open(path)
    print(f"store: {bench.root}")
    for table in S.TABLES:
        counts = bench.row_counts(table)
        print(f"{table}: {len(counts)} partition(s)")
        for values, files, rows in counts:
            label = " ".join(f"{k}={v}" for k, v in values.items())
            print(f"  {label}: {files} file(s), {rows} row(s)", end="")
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


def _query(args: argparse.Namespace) -> None:
    from spaces import get_space
    bench = _open(args.path)
    bench.datasets(args.space)  # an unknown space: the UserError lists the store's spaces
    space = get_space(args.space)
    arch = space.resolve(args.arch)
    seed: int | str = args.seed
    if seed not in ("mean", "random"):
        try:
            seed = int(seed)
        except ValueError:
            raise UserError(f"--seed {seed!r}: give an int, 'mean' or 'random'") from None
    out = bench.metrics(args.space, args.dataset, args.hp, arch, epoch=args.epoch, seed=seed,
                        rng=args.rng_seed)
    epoch = args.epoch or bench.num_epochs(args.space, args.dataset, args.hp)
    print(f"arch: {arch} {space.to_str(arch)}")
    print(f"space: {args.space}  dataset: {args.dataset}  hp: {args.hp}  epoch: {epoch}  "
          f"seed: {args.seed}")
    for name, value in out.items():
        print(f"{name}: {value:.6g}")
    if any(v == {"space": args.space, "dataset": args.dataset} for v, _ in bench.partitions("archs")):
        for name, value in bench.cost(args.space, args.dataset, arch).items():
            print(f"{name}: {value:.6g}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; UserError propagates to the caller (``_run`` prints it)."""
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
        _info(args.path)
    elif args.command == "query":
        _query(args)
    elif args.command == "compact":
        from .writer import compact
        if not Path(args.path).is_dir():
            raise UserError(f"store folder {args.path} does not exist")
        print(compact(args.path, args.table))
    return 0


def _run(argv: Sequence[str] | None = None) -> int:
    """``main`` with errors a user can cause printed as ``error: ...`` and exit status 2."""
    try:
        return main(argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(_run())
