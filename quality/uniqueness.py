"""Exact repeats of a key (an id, a text) over a whole dataset, in bounded memory.

Each row's key is hashed to 64 bits (``core.hashing.key_hashes``). Hashes are kept in memory up to
``rows_in_memory``; beyond that they are spilled to hash-partitioned files (``core.spill``), and each
partition is counted alone, so memory holds one partition, never the dataset. Repeated hashes are then
confirmed on the keys themselves (a second look at only the rows whose hash repeats), so a 64-bit collision
never fails a dataset. We write this ourselves because pyarrow has no bounded-memory distinct count and a
Ray Data groupby would start a cluster for what one streaming pass does.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import xxhash

from core.spill import read_part, write_parts

SPILL_PARTS = 64  # spill partitions when spilling
CONFIRM_AT_MOST = 100_000  # repeated hashes whose keys are confirmed; a dataset past this fails anyway


class RepeatCounter:
    """Feed it ``add(hashes, keys)`` batch by batch; ``repeated_hashes()`` after the last batch."""

    def __init__(self, rows_in_memory: int = 8_000_000):
        self.rows_in_memory = rows_in_memory
        self._held: list[np.ndarray] = []
        self._held_rows = 0
        self._spill: Path | None = None
        self._spills = 0
        self.rows = 0

    def add(self, hashes: np.ndarray) -> None:
        self.rows += len(hashes)
        self._held.append(hashes)
        self._held_rows += len(hashes)
        if self._held_rows >= self.rows_in_memory:
            self._spill_held()

    def _spill_held(self) -> None:
        if not self._held:
            return
        if self._spill is None:
            self._spill = Path(tempfile.mkdtemp(prefix="quality-hashes-"))
        write_parts(pa.table({"hash": np.concatenate(self._held)}), "hash", self._spill, SPILL_PARTS,
                    f"spill-{self._spills}")
        self._held, self._held_rows, self._spills = [], 0, self._spills + 1

    def repeated_hashes(self) -> tuple[np.ndarray, int]:
        """(hashes seen more than once, rows beyond the first of each such hash)."""
        if self._spill is None:
            return _repeats(np.concatenate(self._held) if self._held else np.zeros(0, np.uint64))
        self._spill_held()
        found, extra = [], 0
        for part in range(SPILL_PARTS):
            spilled = read_part(self._spill, part)
            if spilled is not None:
                repeats, n = _repeats(spilled["hash"].to_numpy())
                found.append(repeats)
                extra += n
        shutil.rmtree(self._spill)
        # sorted, as the in-memory count gives them: which hashes are confirmed never depends on spilling
        return (np.sort(np.concatenate(found)) if found else np.zeros(0, np.uint64)), extra


def _repeats(hashes: np.ndarray) -> tuple[np.ndarray, int]:
    values, counts = np.unique(hashes, return_counts=True)
    repeated = counts > 1
    return values[repeated], int((counts[repeated] - 1).sum())


class ConfirmedRepeats:
    """The second look: keys of the rows whose hash repeats, counted exactly (a few row ids kept per key)."""

    def __init__(self, hashes: np.ndarray, ids_per_key: int = 3):
        self.wanted = hashes[:CONFIRM_AT_MOST]
        self.confirmable = len(hashes) <= CONFIRM_AT_MOST
        self.ids_per_key = ids_per_key
        # keyed by a 128-bit hash of the key: exact for any practical purpose, and a long text costs 16 bytes
        self._count: dict[int, int] = {}
        self._ids: dict[int, list[str]] = {}

    def add(self, hashes: np.ndarray, keys: list[str], row_ids) -> None:
        hits = np.flatnonzero(np.isin(hashes, self.wanted))
        if len(hits):
            for i, row_id in zip(hits, row_ids(hits)):
                key = xxhash.xxh3_128_intdigest(keys[i].encode("utf-8"))
                self._count[key] = self._count.get(key, 0) + 1
                if len(self._ids.setdefault(key, [])) < self.ids_per_key:
                    self._ids[key].append(row_id)

    def result(self, hashed_extra: int) -> tuple[int, list[list[str]]]:
        """(rows repeating an earlier row's key, a few row ids of each repeated key)."""
        repeated = [key for key, n in self._count.items() if n > 1]
        extra = sum(self._count[key] - 1 for key in repeated) if self.confirmable else hashed_extra
        return extra, [self._ids[key] for key in repeated]
