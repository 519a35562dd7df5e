"""The one exception type for errors a user can cause, and how long values are quoted.

Every layer (spaces, store, searchers, CLI) raises ``UserError`` for bad input so that the command
line can print the message without a traceback and exit with status 2. The message must say what
was wrong and what to do about it.

A message quotes what it got, and what it got can be anything a shell passes: a 100 kB pasted
file as ``--arch``, a path longer than the file system allows. ``short`` quotes one value by a
prefix and its length; ``shorten_message`` applies the same cut to every over-long word of a
finished message, so each command line prints a readable line whatever the site that built it.
"""

import re

QUOTE_CHARS = 80  # what a message keeps of an over-long value
LONG_WORD = 200  # a word (no spaces) longer than this in a message is a value to cut: paths are shorter
LONG_MESSAGE = 4000  # a message still longer (a long value with spaces) keeps its head and tail


class UserError(ValueError):
    """Bad input from a user: a malformed arch string, an unknown dataset, a corrupt file, ..."""


def short(value: object, limit: int = QUOTE_CHARS) -> str:
    """``value`` as text, or its first ``limit`` characters and how many there were."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def _cut(word: str) -> str:
    """A long word by ``short``, its quotes and punctuation kept (``'xxx... (N characters)':``)."""
    end = len(word.rstrip("'\"`:;,.)]}"))
    start = len(word[:end]) - len(word[:end].lstrip("'\"`([{"))
    return word[:start] + short(word[start:end]) + word[end:]


def shorten_message(message: str) -> str:
    """``message`` with every word over ``LONG_WORD`` characters quoted by ``short``; a message
    still over ``LONG_MESSAGE`` keeps its start and its end (what to do is said last)."""
    message = re.sub(rf"\S{{{LONG_WORD + 1},}}", lambda m: _cut(m.group()), message)
    if len(message) <= LONG_MESSAGE:
        return message
    keep = LONG_MESSAGE // 2 - 50
    return f"{message[:keep]} ... ({len(message) - 2 * keep:,} characters left out) ... {message[-keep:]}"
