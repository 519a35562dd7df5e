"""benchmark_data.arrow: Arrow -> numpy from the buffers, and pyarrow's pandas import deferred."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from benchmark_data.arrow import to_numpy

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("array", [
    pa.array(np.arange(10, dtype=np.int32)),
    pa.array(np.arange(10, dtype=np.int64)).slice(3, 4),           # an offset into the buffer
    pa.array(np.linspace(0, 1, 7, dtype=np.float32)),
    pa.array([1.5, None, 2.5], pa.float32()),                       # a null float -> NaN
    pa.array([1.5, None, 2.5, None], pa.float64()).slice(1, 2),
    pa.array([1, None], pa.int16()),                                # ints with nulls: as to_numpy
    pa.array(["a", None, "b"]),
    pa.array([], pa.int16()),
])
def test_to_numpy_gives_what_arrows_own_conversion_gives(array):
    ours, theirs = to_numpy(array), array.to_numpy(zero_copy_only=False)
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)


def test_pandas_deferred_until_pyarrow_needs_it_then_everything_works(tmp_path):
    code = """
import sys
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
from benchmark_data.arrow import defer_pandas, to_numpy
defer_pandas()
t = pa.table({"a": np.arange(3), "s": pa.array(["x", "y", "z"], pa.string())})
pq.write_table(t, sys.argv[1])
back = pq.ParquetFile(sys.argv[1]).read()
assert to_numpy(back["a"].chunk(0)).tolist() == [0, 1, 2]
assert "pandas" not in sys.modules, "deferred"
import pandas as pd  # a real use: pyarrow imports it again by itself
assert back.to_pandas()["s"].tolist() == ["x", "y", "z"]
assert pa.Table.from_pandas(pd.DataFrame({"b": [1.0]})).num_rows == 1
assert pa.table(pd.DataFrame({"b": [1.0]})).num_rows == 1
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "t.parquet")], capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
