"""The two densities BOHB's model compares, and their vectorized evaluation (``ProductKernel``).

``CategoricalKDE`` is the density BOHB fits with ``categorical_kernel_fix`` (statsmodels'
``KDEMultivariate`` without it); ``ProductKernel`` evaluates either at many points in one call,
bit for bit as their scalar ``pdf`` (tests pin this), which is what makes proposals cheap.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

# A pattern table indexes 2 ** (bits * dimensions) packed configs; past this, the plain product.
_MAX_PATTERN_BITS = 20


class CategoricalKDE:
    """A product-kernel density with a proper kernel for unordered choices.

    hpbandster fits statsmodels' ``KDEMultivariate``, whose Aitchison-Aitken kernel takes the
    number of choices from the data it was fitted on: when the good configs all agree on a
    choice (exactly when the model has learnt something) that number is 1 and every density
    is NaN, so hpbandster silently falls back to a random config. Its bandwidth rule can also
    exceed ``(c - 1) / c``, where the kernel starts to prefer the *other* choices. This density
    uses the declared number of choices and caps the categorical bandwidth there; continuous
    dimensions keep statsmodels' Gaussian kernel. It offers what hpbandster reads from a KDE:
    ``data``, ``bw`` and ``pdf``.
    """

    def __init__(self, data: np.ndarray, bw: np.ndarray, vartypes: np.ndarray,
                 min_bandwidth: float) -> None:
        self.data = np.asarray(data, dtype=np.float64)
        self.vartypes = np.asarray(vartypes)
        self._categorical = self.vartypes > 0
        levels = np.maximum(self.vartypes, 2).astype(np.float64)
        cap = np.where(self._categorical, (levels - 1) / levels, np.inf)
        self.bw = np.minimum(np.maximum(np.asarray(bw, dtype=np.float64), min_bandwidth), cap)
        self._levels = levels

    def pdf(self, x: Any) -> float:
        """The density at one point (hpbandster's call; ``ProductKernel`` does many at once)."""
        x = np.asarray(x, dtype=np.float64)
        same = self.data == x
        cat = np.where(same, 1.0 - self.bw, self.bw / (self._levels - 1))
        u = (self.data - x) / self.bw
        cont = np.exp(-0.5 * u * u) / (np.sqrt(2 * np.pi) * self.bw)
        kernel = np.where(self._categorical, cat, cont)
        return float(np.mean(np.prod(kernel, axis=1)))


def pattern_bits(vartypes: np.ndarray) -> int | None:
    """Bits per dimension of a packed config for ``ProductKernel``'s pattern table (None: no table).

    Only a space of choices alone has one: each choice index gets enough bits for the widest
    dimension, and the table has 2 ** (bits * dimensions) entries.
    """
    vartypes = np.asarray(vartypes)
    if not (vartypes > 0).all():
        return None
    bits = max(1, (int(vartypes.max()) - 1).bit_length())
    return bits if bits * len(vartypes) <= _MAX_PATTERN_BITS else None


def pack(indices: np.ndarray, bits: int) -> np.ndarray:
    """Rows of choice indices ([n, d], whole numbers) as one integer each, ``bits`` per dimension."""
    return (np.asarray(indices).astype(np.int64) << (np.arange(indices.shape[-1]) * bits)).sum(axis=-1)


@lru_cache(maxsize=8)
def _match_table(bits: int, dims: int) -> np.ndarray:
    """For every XOR of two packed configs, the bit mask of the dimensions where they agree."""
    xor = np.arange(1 << (bits * dims), dtype=np.int64)
    table = np.zeros(xor.size, dtype=np.int64)
    for j in range(dims):
        table |= (((xor >> (bits * j)) & ((1 << bits) - 1)) == 0).astype(np.int64) << j
    # The smallest type that holds the masks keeps the table in cache (2**18 entries for tss).
    return table.astype(np.uint8 if dims <= 8 else np.uint16 if dims <= 16 else np.int64)


class ProductKernel:
    """Densities of a fitted product-kernel KDE at many points in one call, bit for bit as its ``pdf``.

    Both densities BOHB uses are a mean over the stored configs of a product over dimensions of
    one kernel factor each; for an unordered choice the factor is one of two numbers (the point
    agrees with the stored config or not). The vectorized form keeps every floating-point
    operation of the scalar one, in the same order: the same factors, multiplied left to right
    per stored config, then summed over the stored configs in their order (numpy's pairwise sum
    along a contiguous row, as for the scalar's 1-D array). When every dimension is a choice, the
    2**d possible products are computed once per fit and each (point, config) pair only looks its
    product up through a table of agreement patterns, which is what makes the call cheap.
    """

    def __init__(self, data: np.ndarray, vartypes: np.ndarray, match: np.ndarray,
                 mismatch: np.ndarray, continuous: str, bw: np.ndarray, mean: str,
                 packed: np.ndarray | None = None) -> None:
        self.data = data
        self.categorical = np.asarray(vartypes) > 0
        self.match, self.mismatch = match, mismatch  # factors of the categorical dimensions
        self.continuous = continuous                 # "ours" or "statsmodels" (Gaussian form)
        self.bw = bw
        self.mean = mean                             # "ours" or "statsmodels" (normalisation)
        self.n = data.shape[0]
        self._cont_bw_product = np.prod(bw[~self.categorical])
        self._bits = pattern_bits(vartypes)
        if self._bits is not None and packed is None:
            if np.all(data >= 0) and np.all(data < (1 << self._bits)) and np.all(data == np.floor(data)):
                packed = pack(data, self._bits)
            else:
                self._bits = None  # not choice indices (cannot happen for ConfigSpace vectors)
        if self._bits is not None:
            dims = data.shape[1]
            self._packed = packed
            agree = (np.arange(1 << dims)[:, None] >> np.arange(dims)) & 1
            self._table = self._normalise(np.prod(np.where(agree == 1, match, mismatch), axis=1))
            self._patterns = _match_table(self._bits, dims)

    @classmethod
    def of(cls, kde: Any, vartypes: np.ndarray, packed: np.ndarray | None = None) -> ProductKernel:
        """The vectorized form of a ``CategoricalKDE`` or of statsmodels' ``KDEMultivariate``
        (``packed``: the data's rows as ``pack`` gives them, when the caller has them already)."""
        categorical = np.asarray(vartypes) > 0
        data = np.asarray(kde.data, dtype=np.float64)
        bw = np.asarray(kde.bw, dtype=np.float64)
        if isinstance(kde, CategoricalKDE):
            return cls(data, vartypes, 1.0 - bw, bw / (kde._levels - 1), "ours", bw, "ours", packed)
        # statsmodels' Aitchison-Aitken kernel: 1 - h where equal, else h / (c - 1) with c the
        # number of distinct values in the fitted column (c = 1 gives inf or NaN, as there).
        levels = np.array([np.unique(data[:, j]).size if c else 2 for j, c in enumerate(categorical)])
        with np.errstate(divide="ignore", invalid="ignore"):
            mismatch = np.ones(len(bw)) * bw / (levels - 1)
        return cls(data, vartypes, 1.0 - bw, mismatch, "statsmodels", bw, "statsmodels", packed)

    def _normalise(self, products: np.ndarray) -> np.ndarray:
        # statsmodels divides each product by the product of the continuous bandwidths (1.0 when
        # there are none: a no-op, kept for the same operations).
        return products / self._cont_bw_product if self.mean == "statsmodels" else products

    def _products(self, points: np.ndarray) -> np.ndarray:
        """[points, configs] products of the kernel factors, normalised as the scalar pdf."""
        if self._bits is not None:
            whole = points.astype(np.int64)
            if (whole == points).all() and whole.min() >= 0 and whole.max() < (1 << self._bits):
                xor = self._packed[None, :] ^ pack(whole, self._bits)[:, None]
                return self._table.take(self._patterns.take(xor))
        kernel = np.empty((points.shape[0], self.n, self.data.shape[1]))
        cat = self.categorical
        if cat.any():
            same = self.data[None, :, cat] == points[:, None, cat]
            kernel[:, :, cat] = np.where(same, self.match[cat], self.mismatch[cat])
        if not cat.all():
            diff = self.data[None, :, ~cat] - points[:, None, ~cat]
            h = self.bw[~cat]
            if self.continuous == "ours":
                u = diff / h
                kernel[:, :, ~cat] = np.exp(-0.5 * u * u) / (np.sqrt(2 * np.pi) * h)
            else:
                kernel[:, :, ~cat] = (1.0 / np.sqrt(2 * np.pi)) * np.exp(-(diff ** 2) / (h ** 2 * 2.0))
        return self._normalise(np.prod(kernel, axis=2))

    def densities(self, points: Any) -> np.ndarray:
        """The density at each row of ``points`` ([k, d]); equal to ``[kde.pdf(p) for p in points]``."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, self.data.shape[1])
        with np.errstate(all="ignore"):
            return np.add.reduce(self._products(points), axis=1) / self.n


def normal_reference_bandwidth(data: np.ndarray) -> np.ndarray:
    """statsmodels' ``normal_reference`` rule, written as statsmodels writes it (same numbers)."""
    return 1.06 * np.std(data, axis=0) * data.shape[0] ** (-1.0 / (4 + data.shape[1]))
