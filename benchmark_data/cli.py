"""What the project's command lines share: the store flag, the error style, and a closed pipe.

* ``--store PATH`` names a Parquet store wherever one is read or written; the word ``embedded``
  names the digits benchmark shipped in ``benchmark_data/embedded`` wherever a store is read
  (``store_to_read``). A command that writes refuses the word (``store_to_write``): the shipped
  folder is extended only on purpose, by its path.
* ``Parser`` is argparse with the project's error style: a bad flag raises ``UserError`` (so one
  handler prints every mistake the same way) and ``--help`` shows each flag's default.
* ``run_cli(main, argv)`` runs a CLI's ``main``: ``UserError`` prints as ``error: <message>`` on
  stderr with exit status 2, no traceback, as does a file system's refusal of a path
  (``error_line``: permission, a file where a folder should be, a name too long, a full disk);
  over-long values in a message are quoted by a prefix (``spaces.errors.shorten_message``). Output
  piped into a reader that stops early (``| head``) ends the command quietly with status 141, as
  Python's docs recommend (stdout is pointed at ``os.devnull`` so the interpreter's last flush
  does not fail again). 141 is 128 + SIGPIPE, the status a shell reports for ``yes | head -1``'s
  writer: under ``set -o pipefail`` a truncated listing is told apart from a complete one, as with
  any Unix tool, and without pipefail the pipeline's status is ``head``'s.
* ``pick_space`` / ``pick_hp``: ``--space`` and ``--hp`` inferred from what a store holds (the
  dataset: ``Benchmark.choose_dataset``, the one rule).

Nothing here imports more than argparse and the standard library at module level.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from spaces.errors import UserError, shorten_message

EMBEDDED = "embedded"
EMBEDDED_ROOT = Path(__file__).resolve().parent / "embedded"
BROKEN_PIPE_STATUS = 141  # 128 + SIGPIPE (13)
# The hp a query falls back to when a store holds several recipes: NATS-Bench's search recipe.
DEFAULT_HP = 12
# File system refusals a user causes (a path given, a folder changed meanwhile): one line, not a
# traceback. A missing file is not among them: where a user can cause one, the code says so itself.
USER_OS_ERRORS = frozenset({errno.EACCES, errno.EPERM, errno.EEXIST, errno.ENOTDIR, errno.EISDIR,
                            errno.ENAMETOOLONG, errno.ELOOP, errno.ENOSPC, errno.EDQUOT, errno.EROFS})


class DefaultsFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to a flag's help unless it says its default itself or has none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (action.option_strings and "default" not in text and "%(default)" not in text
                and not any(action.default is v for v in (None, False, argparse.SUPPRESS))):
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """argparse whose errors are ``UserError`` (printed by ``run_cli``), not usage and exit."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:
        raise UserError(f"{message}; run '{self.prog} --help' for usage")


def run_cli(main: Callable[[Sequence[str] | None], int | None],
            argv: Sequence[str] | None = None) -> int:
    """``main(argv)``'s exit status, with errors a user can cause printed (see the module doc)."""
    try:
        code = main(argv)
        sys.stdout.flush()  # a closed pipe shows here when the last output is still buffered
        return int(code or 0)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return BROKEN_PIPE_STATUS
    except (UserError, OSError) as exc:
        return report_error(exc)
    except SystemExit as exc:  # --help, and argparse's own exits: a status, as main returns one
        if exc.code is None or isinstance(exc.code, int):
            return int(exc.code or 0)
        raise


def report_error(exc: UserError | OSError) -> int:
    """An error a user caused as its ``error: ...`` line on stderr, and the exit status 2; any
    other error raised again, traceback and all (``error_line``). For either command line."""
    line = error_line(exc)
    if line is None:
        raise exc
    print(line, file=sys.stderr)
    return 2


def error_line(exc: BaseException) -> str | None:
    """The ``error: ...`` line of an error a user caused, its long values cut; None for any other
    error (a bug, whose traceback is worth more than a line)."""
    if isinstance(exc, UserError):
        text = str(exc)
    elif isinstance(exc, OSError) and exc.errno in USER_OS_ERRORS:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else str(exc)
    else:
        return None
    return f"error: {shorten_message(text)}"


# ----- the store flag -------------------------------------------------------------------------
def add_store_flag(p: argparse.ArgumentParser, *, reads: bool, help: str,
                   required: bool = False) -> None:
    """``--store PATH``; ``reads``: the command reads the store, so ``embedded`` is accepted and
    is the default."""
    if reads:
        p.add_argument("--store", default=EMBEDDED, metavar="PATH",
                       help=f"{help} ('{EMBEDDED}': the digits benchmark shipped with the package; "
                            f"default: {EMBEDDED})")
    else:
        p.add_argument("--store", required=required, metavar="PATH", help=help)


class _OldStoreForm(argparse.Action):
    """A hidden argument that catches the store given the way it was before ``--store``.

    It raises while argparse parses, before argparse's own check of required flags, so that
    ``compact STORE`` is told how to write ``--store STORE`` rather than that --store is missing.
    """

    def __init__(self, option_strings: list[str], dest: str, *, command: str,
                 before_dest: str | None = None, old: str | None = None, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.command, self.before_dest, self.old = command, before_dest, old

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        if values is None:  # the optional positional, absent
            return
        before = f"{getattr(namespace, self.before_dest)} " if self.before_dest else ""
        given = f"{self.old} {values}" if self.old else f"a bare {values}"
        raise UserError(f"the store is given with --store now: write `python -m benchmark_data "
                        f"{self.command} {before}--store {values} ...` instead of {given}")


def add_old_store_forms(p: argparse.ArgumentParser, command: str, *,
                        before_dest: str | None = None, old_option: str | None = None) -> None:
    """Hidden arguments for the forms the store had before ``--store``: a positional (after the
    positional ``before_dest`` where the command has one) and an option such as ``--out``."""
    p.add_argument("old_store", nargs="?", default=None, action=_OldStoreForm, command=command,
                   before_dest=before_dest, help=argparse.SUPPRESS)
    if old_option:
        p.add_argument(old_option, dest="old_store_option", default=None, action=_OldStoreForm,
                       command=command, old=old_option, help=argparse.SUPPRESS)


def store_to_read(value: str | None) -> str | None:
    """``--store`` of a store that is read: None for the embedded benchmark, else the path."""
    return None if value in (None, EMBEDDED) else value


def store_to_write(value: str, flag: str = "--store") -> Path:
    """``--store`` of a store that is written: a folder path (the word ``embedded`` is refused)."""
    if value == EMBEDDED:
        raise UserError(f"{flag} {EMBEDDED}: this command writes, and the shipped benchmark is "
                        f"written only on purpose: give its folder {EMBEDDED_ROOT} (or another "
                        "folder)")
    path = Path(value).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {value} is a file; give a store folder (created when missing)")
    return path


# ----- inferred --space and --hp ------------------------------------------------------------
def pick_space(bench: Any, given: str | None) -> str:
    """``given``, else the store's one space."""
    if given is not None:
        return given
    names = bench.spaces()
    if len(names) == 1:
        return names[0]
    raise UserError(f"the store {bench.root} holds {len(names)} spaces"
                    f"{': ' + ', '.join(names) if names else ''}; choose one with --space")


def pick_hp(bench: Any, space: str, dataset: str, given: int | None) -> int:
    """``given``, else the store's one recipe for (space, dataset), else 12 when present."""
    if given is not None:
        return given
    hps = bench.hps(space, dataset)
    if len(hps) == 1:
        return hps[0]
    if DEFAULT_HP in hps:
        return DEFAULT_HP
    raise UserError(f"the store {bench.root} holds {space}/{dataset} at hp "
                    f"{', '.join(map(str, hps)) or '(none)'}; choose one with --hp")
