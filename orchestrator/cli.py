"""``orchestrate.py``'s command line: one subcommand per run mode (``orchestrator.modes``).

``orchestrate.py simulate|train|oneshot|prune [flags]``; each mode has only its own flags, so argparse
itself refuses a flag of another mode, whatever its value. Without a mode name the mode is
``simulate`` (``orchestrate.py --searcher bohb --budget 2e4s`` is the main job), and command lines
written for the flat parser of earlier versions still work: ``--mode train`` picks the train
mode, and a one-shot algorithm given as ``--searcher`` picks the oneshot mode.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from benchmark_data.cli import report_error
from spaces.errors import UserError, shorten_message

from .modes import DEFAULT_MODE, MODES, mode_module

PROG = "orchestrate.py"
LEGACY_MODE_FLAG = "--mode"  # the flat parser's mode switch: simulate | train


class _Parser(argparse.ArgumentParser):
    """argparse with abbreviations off (``--work`` must not silently mean ``--workers``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        super().error(shorten_message(message))  # argparse quotes a bad value whole


def _listed(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Architecture and hyperparameter search on Parquet tabular benchmarks: "
                                       "simulated (NATS-Bench's protocol), live on Ray Tune, or by weight sharing.",
                epilog=f"Without a MODE, {DEFAULT_MODE} runs: `{PROG} --searcher bohb --budget 2e4s` is "
                       f"`{PROG} {DEFAULT_MODE} --searcher bohb --budget 2e4s`.\n"
                       f"`{PROG} MODE --help` lists the flags of a mode.")
    sub = p.add_subparsers(dest="mode", metavar="MODE", parser_class=_Parser)
    for name in MODES:
        module = mode_module(name)
        module.add_arguments(sub.add_parser(name, help=module.HELP, description=module.DESCRIPTION,
                                            epilog=module.EPILOG))
    return p


def with_mode(argv: Sequence[str]) -> list[str]:
    """``argv`` with its mode first: as given, from the legacy ``--mode``, from a one-shot
    ``--searcher``, else the default mode. Top-level ``--help`` and unknown words pass through."""
    argv = list(argv)
    if argv and (argv[0] in MODES or not argv[0].startswith("-") or argv[0] in ("-h", "--help")):
        return argv
    mode = None
    for i, a in enumerate(argv):
        if a == LEGACY_MODE_FLAG or a.startswith(LEGACY_MODE_FLAG + "="):
            value = a.split("=", 1)[1] if "=" in a else (argv[i + 1] if i + 1 < len(argv) else "")
            if value not in ("simulate", "train"):
                raise _UsageError(f"argument {LEGACY_MODE_FLAG}: invalid choice: {value!r} (choose from "
                                   f"'simulate', 'train'; or write the mode first: {', '.join(MODES)})")
            mode = value
            del argv[i: i + (1 if "=" in a else 2)]
            break
    from trainables.oneshot import ALGORITHMS  # a registry only

    searcher = _value_of(argv, "--searcher")
    if searcher in ALGORITHMS:
        mode = "oneshot"  # the flat parser ran one-shot algorithms whatever --mode said
    return [mode or DEFAULT_MODE, *argv]


def _value_of(argv: Sequence[str], flag: str) -> str | None:
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


class _UsageError(Exception):
    """Bad usage found before argparse runs; reported by argparse's ``error`` (usage, exit 2)."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse like argparse (exit 2 on bad usage); a flag of another mode is named as such."""
    parser = build_parser()
    try:
        argv = with_mode(sys.argv[1:] if argv is None else argv)
    except _UsageError as err:
        parser.error(str(err))
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        sub = _subparser(parser, args.mode)
        flags = [u.split("=", 1)[0] for u in unknown if u.startswith("-")]
        elsewhere = {f: [m for m in MODES if m != args.mode and _has_flag(_subparser(parser, m), f)] for f in flags}
        notes = [f"{f} is a flag of {_listed([f'`{PROG} {m}`' for m in ms])}, not of {args.mode}"
                 for f, ms in elsewhere.items() if ms]
        sub.error("; ".join(notes) if notes else f"unrecognized arguments: {' '.join(unknown)}")
    return args


def _subparser(parser: argparse.ArgumentParser, mode: str) -> argparse.ArgumentParser:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[mode]


def _has_flag(parser: argparse.ArgumentParser, flag: str) -> bool:
    return any(flag in a.option_strings for a in parser._actions)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, check every flag (the mode's settings), then run; a UserError, or a file system's
    refusal found late (another process changed a folder), is one line on stderr, exit 2."""
    args = parse_args(argv)
    if args.mode is None:  # `orchestrate.py -h` is handled by argparse; nothing else gets here
        build_parser().print_help()
        return 2
    module = mode_module(args.mode)
    args.command_line = tuple(with_mode(sys.argv[1:] if argv is None else argv))  # for resume commands
    try:
        if getattr(args, "address", None) is not None:  # now, not once the runs began: Ray would wait minutes
            from trainables.ray_utils import check_address

            check_address(args.address)
        settings = module.settings_from_args(args)
        return module.run(settings, quiet=args.quiet)
    except (UserError, OSError) as err:
        return report_error(err)
