"""RSPS, random search with parameter sharing (Li & Talwalkar, 2019), in NATS-Bench's form.

Weight steps train a uniformly drawn single path whose ops are drawn for every cell separately,
each node's incoming ops redrawn until one is not ``none`` (``forward_urs``, search_cells.py ~line
121: a node whose inputs are all zero would train nothing). Derivation ranks ``candidates`` (100)
different architectures drawn uniformly from the whole space with the shared weights
(``return_topK(100, use_random=True)`` in NATS-Bench's ``get_best_arch``).
"""

from __future__ import annotations

from .strategy import Strategy
from .supernet import ArchSample


class RSPS(Strategy):
    name = "rsps"
    learns_alpha = False

    def weight_sample(self) -> list[ArchSample]:
        like = self.net_dtype_like()
        return [ArchSample.single_path(self.node_constrained_ops(), like) for _ in range(self.net.search_cells())]

    def derive(self, search) -> tuple[int, ...]:
        return search.best_of(self.distinct_uniform_ops(self.candidates))
