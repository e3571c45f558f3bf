"""Tables spilled to disk hash-partitioned by a key: ``root/part=K/NAME.parquet``, so a later pass reads one
partition at a time and memory holds one partition, never the whole table.

The dedup tables (``factory.dedup.partitions``) and the quality job's repeat counter
(``quality.uniqueness``) spill this way. File names are the caller's: a writer that may be retried (a Ray
task) names its files deterministically, so a retry replaces its own file instead of adding rows twice.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.hashing import key_hashes


def part_of(values: pa.Array | pa.ChunkedArray, parts: int) -> np.ndarray:
    """The partition of each value."""
    return (key_hashes(values) % np.uint64(parts)).astype(np.int64)


def part_dir(root: str | Path, part: int) -> Path:
    return Path(root) / f"part={part}"


def write_parts(table: pa.Table, key: str, root: str | Path, parts: int, name: str) -> int:
    """Write ``table``'s rows into ``root/part=K/name.parquet`` by the partition of column ``key``; returns rows."""
    if table.num_rows == 0:
        return 0
    part = part_of(table[key], parts)
    order = np.argsort(part, kind="stable")
    table, part = table.take(pa.array(order)), part[order]
    starts = np.flatnonzero(np.r_[True, part[1:] != part[:-1]])
    for begin, end in zip(starts, np.r_[starts[1:], len(part)]):
        folder = part_dir(root, int(part[begin]))
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{name}.parquet.tmp"
        pq.write_table(table.slice(begin, end - begin), tmp, compression="zstd")
        os.replace(tmp, folder / f"{name}.parquet")  # a retried task replaces its file whole
    return table.num_rows


def read_part(root: str | Path, part: int, empty: pa.Schema | None = None, columns: list[str] | None = None):
    """Partition ``part`` of a partitioned table (only ``columns``, when given). With no rows: an empty table
    of ``empty``, or None when no schema is given."""
    folder = part_dir(root, part)
    files = sorted(str(f) for f in folder.glob("*.parquet")) if folder.is_dir() else []
    if not files:
        return empty.empty_table() if empty is not None else None
    return pa.concat_tables(pq.read_table(f, columns=columns) for f in files)
