"""Arrow <-> numpy without importing pandas: what keeps a simulated search's process short.

With pandas installed, pyarrow imports it (a fifth to a third of a second here) the first time it
converts anything: ``pa.array``/``pa.table`` ask whether their input is a pandas object, and
``Array.to_numpy`` runs through pyarrow's pandas converter. The store's reader and the simulator
move only numbers between Arrow and numpy, so a one-run ``orchestrate.py`` process would spend
about half its time importing a library it never uses. Two measures, both exact:

* ``defer_pandas()`` answers pyarrow's "is pandas there?" check once with no (pandas is hidden
  from that one import attempt). pyarrow imports pandas by itself again the first time it really
  needs it (``to_pandas``, ``Table.from_pandas``), and anyone may ``import pandas`` as usual, so
  nothing is lost; only pyarrow's type checks no longer trigger the import.
* ``to_numpy(array)`` reads a primitive array straight from its buffers (no copy without nulls;
  null slots become NaN for floats), as ``Array.to_numpy`` gives it; other types go through
  ``to_numpy``.
"""

from __future__ import annotations

import importlib.abc
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


class _HidePandas(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("pandas is deferred until pyarrow needs it")
        return None


def defer_pandas() -> None:
    """Make pyarrow's type checks stop importing pandas (see the module docstring)."""
    if "pandas" in sys.modules:
        return  # imported already: nothing to save
    hide = _HidePandas()
    sys.meta_path.insert(0, hide)
    try:
        _ = pa.lib._pandas_api.have_pandas  # its one try at importing pandas, answered "absent"
    finally:
        sys.meta_path.remove(hide)


def to_numpy(array: pa.Array) -> np.ndarray:
    """``array.to_numpy(zero_copy_only=False)``, from the buffers for fixed-width numbers."""
    kind = array.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        return array.to_numpy(zero_copy_only=False)
    if array.null_count:
        if not pa.types.is_floating(kind):
            return array.to_numpy(zero_copy_only=False)  # ints with nulls become floats there
        array = pc.fill_null(array, float("nan"))
    dtype = np.dtype(kind.to_pandas_dtype())
    data = array.buffers()[1]
    return np.frombuffer(data, dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)
