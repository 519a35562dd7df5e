"""``python -m orchestrator.report RESULTS... [--benchmark STORE ...] [--out DIR]``: see the package."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

DESCRIPTION = ("The NATS-Bench figures and tables of search results: the searched architecture's test accuracy over "
               "the search (per searcher, mean and an honest band over runs), one-shot searches per epoch, the final "
               "table with pairwise significance, and the benchmark's own diagnostics; as PNG figures, CSV tables, "
               "one self-contained HTML page and its Markdown.")
EPILOG = """\
RESULTS: results folders (orchestrate.py simulate/oneshot --out DIR), experiment folders
(DIR/runs/experiment=NAME) or runs .parquet files. Each experiment is scored on the --benchmark
store it ran on (the same dataset fingerprint and the same final values of its incumbents): a
store it did not run on is an error, not a wrong plot; without --benchmark the runs are reported
alone (no regret, no diagnostics). The same inputs give the same tables and byte-identical PNGs.
Examples:
  python -m orchestrator.report results --benchmark embedded --out results/report
  python -m orchestrator.report --benchmark embedded --benchmark STORE --out DIR   # diagnostics only"""


def build_parser() -> argparse.ArgumentParser:
    from benchmark_data.cli import DefaultsFormatter, Parser

    class Formatter(DefaultsFormatter, argparse.RawDescriptionHelpFormatter):
        """Each flag's default, and the epilog's lines as written."""

    p = Parser(prog="python -m orchestrator.report", description=DESCRIPTION, epilog=EPILOG,
               formatter_class=Formatter, allow_abbrev=False)
    p.add_argument("results", nargs="*", metavar="RESULTS", help="results folders, experiment folders or runs files")
    p.add_argument("--benchmark", action="append", default=[], metavar="STORE",
                   help="a benchmark store the results ran on and whose diagnostics to draw ('embedded': the digits "
                        "benchmark shipped with the package); repeat it for several")
    p.add_argument("--out", default="results/report", metavar="DIR",
                   help="folder for report.html, report.md, figures/ and tables/ (default results/report)")
    p.add_argument("--quiet", action="store_true", help="print only errors")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from . import build_report

    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    report = build_report(args.results, args.benchmark)
    paths = report.write(args.out)
    if not args.quiet:
        page = next(p for p in paths if p.name == "report.html")
        pngs = [p for p in paths if p.suffix == ".png"]
        print(f"report: {page} ({len(pngs)} figure(s), {len(report.tables)} tables; Markdown beside it)")
        for note in report.notes:
            print(f"note: {note}")
    return 0


if __name__ == "__main__":
    from benchmark_data.cli import run_cli

    sys.exit(run_cli(main))
