"""The dedup tables on disk (see ``partitions``), their schemas, and where a run keeps them.

A document is named by its ``key`` (``factory.documents.document_key``: id and source). Each table
is partitioned by the column its next reader groups or joins on.
"""
from __future__ import annotations

import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pyarrow as pa

from core.resume import Ledger

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
    """Where one factory run keeps its dedup tables, how many partitions each has, and the run's ledger of
    finished units (``core.resume``)."""

    root: Path
    parts: int
    ledger: Ledger = field(default_factory=lambda: Ledger(None))

    def table(self, name: str) -> str:
        return str(self.root / name)

    @contextmanager
    def whole_step(self, name: str) -> Iterator[bool]:
        """A step that writes table ``name`` in one pass (its files named by batch, which a rerun may cut
        differently): True when it is to run, its table cleared first; marked finished when the block ends."""
        todo = self.ledger.done(name) is None
        if todo:
            self.ledger.begin(name)
            shutil.rmtree(self.table(name), ignore_errors=True)
        yield todo
        if todo:
            self.ledger.mark(name)
