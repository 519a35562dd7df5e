"""SETN (Dong & Yang, 2019): train the template network by uniform single-path sampling (one path
for all cells, no constraint: NATS-Bench's ``dync_genotype(True)``), learn the op distribution
with DARTS' mixture step on the validation split, and derive with the evaluator: the
``candidates`` (100) most probable architectures under softmax(alpha) — NATS-Bench's
``return_topK(100)``, not samples — ranked with the shared weights."""

from __future__ import annotations

from .strategy import Strategy


class SETN(Strategy):
    name = "setn"

    def weight_sample(self):
        return self.uniform_path()

    def arch_step(self, train, valid, search) -> None:
        self.valid_mixture_step(valid)

    def derive(self, search) -> tuple[int, ...]:
        return search.best_of(self.top_ops(self.candidates))
