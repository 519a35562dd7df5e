"""RSPS, random search with parameter sharing (Li & Talwalkar, 2019): uniform single-path training
of the shared weights; derive by ranking uniformly drawn candidates with the shared weights."""

from __future__ import annotations

from .strategy import Strategy


class RSPS(Strategy):
    name = "rsps"
    learns_alpha = False

    def weight_sample(self):
        return self.uniform_path()

    def derive(self, search) -> tuple[int, ...]:
        return search.best_of([self.uniform_ops() for _ in range(self.candidates)])
