"""The dedup tables on disk (see ``partitions``), their schemas, and where a run keeps them.

A document is named by its ``key`` (``factory.documents.document_key``: id and source). Each table
is partitioned by the column its next reader groups or joins on.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

KEY = pa.string()
EXACT_KEYS = pa.schema([("key", KEY), ("text_hash", pa.uint64())])          # by text_hash
EXACT_DUPS = pa.schema([("key", KEY), ("keeper", KEY)])                      # by key
BANDS = pa.schema([("bucket", pa.uint64()), ("key", KEY)])                   # by bucket
PAIRS = pa.schema([("u", KEY), ("v", KEY)])                                  # by u
SIMILARITIES = pa.schema([("key", KEY), ("similarity", pa.float64())])       # by key
EDGES = pa.schema([("node", KEY), ("nbr", KEY)])                             # by node
CLUSTERS = pa.schema([("key", KEY), ("cluster", KEY), ("size", pa.int64())])  # by key


@dataclass(frozen=True)
class DedupWork:
    """Where one factory run keeps its dedup tables, and how many partitions each has."""

    root: Path
    parts: int

    def table(self, name: str) -> str:
        return str(self.root / name)
