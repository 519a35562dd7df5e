"""The NATS-Bench topology search space (TSS): 5 ops on 6 edges = 15,625 cells.

A cell is a DAG over four nodes: node 0 is the cell input, node 3 the output, and every node
j < i feeds node i through one op. Canonical strings list, for nodes 1..3, their incoming edges
in source order: ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.

Project index: the six op indices (in ``OPS`` order) in string order, read as a base-5 number
with the first edge (1<-0) as the most significant digit. ``|none~0|+|none~0|none~1|+...`` is 0
and the all-``avg_pool_3x3`` cell is 15,624. NATS-Bench's official order is different; importers
keep it as a column (``nats_index``).

Isomorphism classes (``iso_class_ids``): two cells share a class when they compute the same
function of the cell input, given what the ops are:
  * ``none`` contributes nothing, and an op applied to a node that is always zero is zero too, so
    zero terms are dropped from every sum (a node with no non-zero term is zero);
  * ``skip_connect`` is the identity, so it passes its source's expression on unchanged;
  * other ops are opaque functions of their input: ``conv3x3(x)`` equals only ``conv3x3(x)``;
  * a node is the sum of its incoming terms; addition is commutative (terms are sorted) but not
    idempotent (``x + x`` is not ``x``, so repeated terms are kept);
  * only the output node matters: edges whose result cannot reach node 3 drop out automatically.
The class id is the smallest project index in the class. This rule yields 5,273 classes; every
cell whose output is identically zero (no path from input to output through non-``none`` ops)
falls into one class. Like NAS-Bench-201 it treats an op applied to a zero node as zero (strictly,
a conv+BN of zeros yields the BN shift, a learned constant).

NAS-Bench-201 reports 6,466 unique cells. Its rule (``Structure.to_unique_str(consider_zero=True)``)
compares strings and so misses two equalities ours catches: a node whose several inputs are all zero
is written ``#+#`` and not recognised as zero downstream, and a sum passed on by ``skip_connect`` is
nested as one opaque term instead of being merged into the receiving sum. ``rule="nb201"``
reproduces that rule (6,466 classes) for comparisons with published numbers.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from .base import CategoricalSpace
from .errors import UserError

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# (target node, source node) of each edge, in canonical-string order.
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NUM_NODES = 4
NUM_ARCHS = len(OPS) ** len(EDGES)
EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
_EDGE_RE = re.compile(r"^([A-Za-z0-9_]+)~(-?\d+)$")
ZERO = "0"  # the expression of a node that is always zero


def _cell_expression(ops: tuple[int, ...], term, combine, cell_input: str) -> str:
    """Fold a cell into the expression of its output node.

    ``term(op, source_expression)`` gives an edge's term, ``combine(terms)`` a node's expression;
    the two isomorphism rules below differ only in these two functions.
    """
    nodes, e = [cell_input], 0
    for target in range(1, NUM_NODES):
        nodes.append(combine([term(OPS[ops[e + s]], nodes[s]) for s in range(target)]))
        e += target
    return nodes[-1]


def _nb201_expression(ops: tuple[int, ...]) -> str:
    """NAS-Bench-201's string rule, kept only to reproduce its published count."""
    def term(op: str, src: str) -> str:
        return "#" if op == "none" or src == "#" else src if op == "skip_connect" else f"({src})@{op}"

    return _cell_expression(ops, term, lambda terms: "+".join(sorted(terms)), "0")


def _zero_safe_expression(ops: tuple[int, ...]) -> str:
    """The canonical expression of the cell output under the isomorphism rule of the module doc."""
    def term(op: str, src: str) -> str | None:
        if op == "none" or src == ZERO:
            return None  # a zero term changes no sum
        return src if op == "skip_connect" else f"{op}({src})"

    return _cell_expression(ops, term, lambda terms: "+".join(sorted(t for t in terms if t)) or ZERO, "x")


class TopologySpace(CategoricalSpace):
    name = "tss"
    decisions = tuple(f"edge_{t}_{s}" for t, s in EDGES)
    choices = OPS

    # --- strings ---------------------------------------------------------------------------------
    def parse(self, arch: str) -> int:
        """Canonical string -> project index, strictly (every malformation gets its own message)."""
        if not isinstance(arch, str):
            raise UserError(f"tss: an architecture string is expected, got {type(arch).__name__}")
        hint = f"expected the form {EXAMPLE}"
        s = arch.strip()
        nodes = s.split("+")
        if len(nodes) != NUM_NODES - 1:
            raise UserError(f"tss: {arch!r} has {len(nodes)} node(s) separated by '+', needs {NUM_NODES - 1}; {hint}")
        digits = []
        for target, node in enumerate(nodes, start=1):
            if len(node) < 2 or not (node.startswith("|") and node.endswith("|")):
                raise UserError(f"tss: node {target} of {arch!r} must start and end with '|' (got {node!r}); {hint}")
            edges = node[1:-1].split("|")
            if len(edges) != target:
                raise UserError(f"tss: node {target} of {arch!r} has {len(edges)} incoming edge(s), "
                                f"needs {target}; {hint}")
            for source, edge in enumerate(edges):
                m = _EDGE_RE.match(edge)
                if not m:
                    raise UserError(f"tss: edge {edge!r} of node {target} in {arch!r} is not 'op~source'; {hint}")
                op, src = m.group(1), int(m.group(2))
                if op not in OPS:
                    raise UserError(f"tss: unknown op {op!r} in {arch!r}; ops are {', '.join(OPS)}")
                if src != source:
                    raise UserError(f"tss: edge {edge!r} of node {target} in {arch!r} has source {src}, "
                                    f"expected {source} (node {target}'s edges list sources 0..{target - 1} in order)")
                digits.append(OPS.index(op))
        return self.index_of_choices(digits)

    def to_str(self, index: int) -> str:
        ops = [OPS[d] for d in self.choice_indices(index)]
        parts, e = [], 0
        for target in range(1, NUM_NODES):
            parts.append("|" + "|".join(f"{ops[e + s]}~{s}" for s in range(target)) + "|")
            e += target
        return "+".join(parts)

    def cell(self, index: int) -> list[list[tuple[str, int]]]:
        """The cell as NATS-Bench genotype: per node, its (op, source) edges."""
        ops = [OPS[d] for d in self.choice_indices(index)]
        out, e = [], 0
        for target in range(1, NUM_NODES):
            out.append([(ops[e + s], s) for s in range(target)])
            e += target
        return out

    # --- structure ---------------------------------------------------------------------------------
    def iso_class_ids(self, rule: str = "semantic") -> np.ndarray:
        """Class id (smallest member index) of every cell; ``rule`` is "semantic" or "nb201"."""
        if rule not in _RULES:
            raise UserError(f"tss: unknown isomorphism rule {rule!r}; use one of {sorted(_RULES)}")
        return _iso_class_ids(rule).copy()

    def has_path(self, index: int) -> bool:
        """Whether the output depends on the input at all (some non-none path from node 0 to 3)."""
        return _zero_safe_expression(self.choice_indices(index)) != ZERO

    def build(self, index: int, num_classes: int = 10, *, C: int = 16, N: int = 5, in_channels: int = 3):
        """The NATS-Bench topology network: stem C, stages of N cells at C, 2C, 4C."""
        from .nats_network import NATSNetwork, stage_layers

        return NATSNetwork(self.cell(self.check_index(index)), C, stage_layers((C, 2 * C, 4 * C), N),
                           num_classes, in_channels)

    def cost(self, index: int, num_classes: int = 10, *, input_size: int = 32, C: int = 16, N: int = 5,
             in_channels: int = 3) -> dict[str, float]:
        """params_m and flops_m (multiply-adds of conv and linear layers for one image)."""
        table = self.cost_table(num_classes, input_size=input_size, C=C, N=N, in_channels=in_channels)
        i = self.check_index(index)
        return {"params_m": float(table["params_m"][i]), "flops_m": float(table["flops_m"][i])}

    def cost_table(self, num_classes: int = 10, *, input_size: int = 32, C: int = 16, N: int = 5,
                   in_channels: int = 3) -> dict[str, np.ndarray]:
        """params_m and flops_m of every cell at once.

        In the topology space every edge of every cell maps C_s -> C_s, so an op contributes the
        same on each edge and the totals are exactly additive: the all-``none`` network plus one
        per-op increment per edge. Six networks are counted with hooks; the tests check the sum
        against full hook counts of sampled cells.
        """
        return _cost_table(num_classes, input_size, C, N, in_channels)


SPACE = TopologySpace()


_RULES = {"semantic": _zero_safe_expression, "nb201": _nb201_expression}


@lru_cache(maxsize=2)
def _iso_class_ids(rule: str) -> np.ndarray:
    expression = _RULES[rule]
    first: dict[str, int] = {}
    ids = np.empty(NUM_ARCHS, dtype=np.int32)
    for i, ops in enumerate(SPACE.all_choice_indices().tolist()):
        ids[i] = first.setdefault(expression(tuple(ops)), i)
    return ids


@lru_cache(maxsize=16)
def _cost_table(num_classes: int, input_size: int, C: int, N: int, in_channels: int) -> dict[str, np.ndarray]:
    from .nats_network import count_params_flops

    def count(op: int) -> np.ndarray:
        index = SPACE.index_of_choices([op] * len(EDGES))
        return np.array(count_params_flops(SPACE.build(index, num_classes, C=C, N=N, in_channels=in_channels),
                                           in_channels, input_size))

    base = count(0)
    per_edge = np.stack([(count(op) - base) / len(EDGES) for op in range(len(OPS))])  # [op, (params, flops)]
    totals = base + per_edge[SPACE.all_choice_indices()].sum(axis=1)
    return {"params_m": totals[:, 0].copy(), "flops_m": totals[:, 1].copy()}
