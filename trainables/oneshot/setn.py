"""SETN (Dong & Yang, 2019): train the template network by uniform single-path sampling, learn the
op distribution with DARTS' mixture step on the validation split, and derive with the evaluator:
sample candidates from the learned distribution, keep the one the shared weights rate best."""

from __future__ import annotations

from .strategy import Strategy


class SETN(Strategy):
    name = "setn"

    def weight_sample(self):
        return self.uniform_path()

    def arch_step(self, train, valid, search) -> None:
        self.valid_mixture_step(valid)

    def derive(self, search) -> tuple[int, ...]:
        return search.best_of(self.sampled_ops(self.candidates))
