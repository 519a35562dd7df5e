"""The Parquet store: schema, append-only writer, compaction, lazy reader, importers, CLI.

Names are resolved lazily so that ``import benchmark_data`` stays cheap for code that only needs
the schema (workers writing a fragment should not pay for the reader).
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "Benchmark": "reader", "Curve": "reader",
    "write_fragment": "writer", "compact": "writer", "CompactReport": "writer",
    "SCHEMA_VERSION": "schema", "provenance": "schema",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
