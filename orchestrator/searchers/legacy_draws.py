"""Draws of numpy's legacy ``RandomState``, replayed in pure Python from its raw 32-bit outputs."""

from __future__ import annotations

import numpy as np


class LegacyDraws:
    """``RandomState.rand()`` and ``RandomState.randint(n)``, replayed from its raw 32-bit outputs.

    numpy's legacy RandomState makes a double of two 32-bit outputs a, b as
    ``((a >> 5) * 2**26 + (b >> 6)) / 2**53`` and an integer below n by masking one output to the
    next power of two and drawing again while it is >= n. Reading the outputs in blocks and doing
    that arithmetic in Python gives the same numbers several times faster than one call into
    numpy per draw (a test pins it to RandomState). It reads ahead, so the RandomState must not
    be used for anything else afterwards until it is seeded again.
    """

    _BLOCK = 256

    def __init__(self, rs: np.random.RandomState) -> None:
        self._bitgen = rs._bit_generator  # the MT19937 behind the RandomState
        self._raw = self._bitgen.random_raw(self._BLOCK).tolist()
        self._i = 0

    def _next(self) -> int:
        if self._i == len(self._raw):
            self._raw = self._bitgen.random_raw(self._BLOCK).tolist()
            self._i = 0
        self._i += 1
        return self._raw[self._i - 1]

    def rand(self) -> float:
        a = self._next() >> 5
        return (a * 67108864.0 + (self._next() >> 6)) / 9007199254740992.0

    def randint(self, n: int) -> int:
        top = n - 1
        if top == 0:
            return 0  # numpy draws nothing for a single value
        mask = (1 << top.bit_length()) - 1
        value = self._next() & mask
        while value > top:
            value = self._next() & mask
        return value
