"""Repeats a model makes, caught before the quality gate: real models (small ones often) give two task
types the same conversation, or hand back a paraphrase identical to its original. Of rows with the same
content one is kept, the first in plan order (documents as read, task types and variants as configured),
so a rerun keeps the same one; the others become rejects with reason ``duplicate``. The gate's
``duplicate_rate`` stays the last line of defence, and this uses its exact key
(``quality.suites.SAME_EXAMPLE``), so what passes here is not a repeat there.
"""
from __future__ import annotations

from typing import Callable

import pyarrow as pa
import xxhash

from synth.results import reject

BATCH_ROWS = 4096  # rows whose keys are built at once: the key strings never exist for the whole job


class FirstOfEach:
    """Remembers the first row of every key. It holds a 128-bit hash of each distinct key (16 bytes, never
    the text) and that row's id: bounded by the rows the job already holds in memory, and far smaller."""

    def __init__(self, schema: pa.Schema, key: Callable[[pa.Table], pa.Array]):
        self.schema, self.key = schema, key
        self.first: dict[int, str] = {}

    def split(self, rows: list[dict], stage: str) -> tuple[list[dict], list[dict]]:
        """(rows whose key is new, rejects for the rest naming the row each repeats)."""
        kept, rejects = [], []
        for start in range(0, len(rows), BATCH_ROWS):
            batch = rows[start:start + BATCH_ROWS]
            keys = self.key(pa.Table.from_pylist(batch, schema=self.schema)).to_pylist()
            for row, key in zip(batch, keys):
                digest = xxhash.xxh3_128_intdigest(key.encode("utf-8"))
                if digest in self.first:
                    rejects.append(reject(row["id"], row["source_doc_id"], stage, "duplicate",
                                          f"same content as {self.first[digest]}"))
                else:
                    self.first[digest] = row["id"]
                    kept.append(row)
        return kept, rejects
