"""Cutting tokenised documents into fixed ``seq_len`` rows, and writing the rows as Parquet shards.

Documents arrive in training order, each already ending with EOS. They are concatenated and cut
every ``seq_len`` tokens: no padding, only the very last row may be shorter, and a document that
does not fit continues at the start of the next row. Each row records its pieces: ``doc_lengths``
(tokens of each piece, summing to ``n_tokens``) with the ``doc_ids``/``doc_sources`` they belong to,
so training builds per-document attention masks and resets position ids at every piece.
The packer is our own: it is a sequential scan (each row continues where the last ended) with an
exact-boundary bookkeeping no library step provides.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.contracts import PACKED_CPT


class RowPacker:
    def __init__(self, seq_len: int):
        self.seq_len = seq_len
        self._pieces: list[np.ndarray] = []
        self._lengths: list[int] = []
        self._ids: list[str] = []
        self._sources: list[str] = []
        self._filled = 0

    @property
    def row_is_open(self) -> bool:
        """True when the next document will share a row with the previous one."""
        return self._filled > 0

    def add(self, tokens: np.ndarray, doc_id: str, source: str) -> list[dict]:
        """Append one document; returns the rows it completed."""
        done, start = [], 0
        while start < len(tokens):
            take = min(self.seq_len - self._filled, len(tokens) - start)
            self._pieces.append(tokens[start:start + take])
            self._lengths.append(take)
            self._ids.append(doc_id)
            self._sources.append(source)
            self._filled += take
            start += take
            if self._filled == self.seq_len:
                done.append(self._close_row())
        return done

    def finish(self) -> list[dict]:
        """The last, possibly shorter row (no padding)."""
        return [self._close_row()] if self._filled else []

    def _close_row(self) -> dict:
        row = {
            "input_ids": np.concatenate(self._pieces).astype(np.int32),
            "doc_lengths": self._lengths,
            "n_tokens": self._filled,
            "doc_ids": self._ids,
            "doc_sources": self._sources,
        }
        self._pieces, self._lengths, self._ids, self._sources, self._filled = [], [], [], [], 0
        return row


class ShardWriter:
    """Buffers packed rows and writes ``part-NNNNN.parquet`` (zstd) every ``rows_per_shard`` rows."""

    def __init__(self, directory: Path, rows_per_shard: int):
        self.directory, self.rows_per_shard = Path(directory), rows_per_shard
        self.directory.mkdir(parents=True, exist_ok=True)
        self._rows: list[dict] = []
        self.shards = 0
        self.rows = 0
        self.tokens = 0

    def write(self, rows: list[dict]) -> None:
        self._rows.extend(rows)
        while len(self._rows) >= self.rows_per_shard:
            self._flush(self._rows[:self.rows_per_shard])
            self._rows = self._rows[self.rows_per_shard:]

    def close(self) -> None:
        if self._rows or self.shards == 0:  # an empty split still gets one (empty) file with the schema
            self._flush(self._rows)
        self._rows = []

    def _flush(self, rows: list[dict]) -> None:
        columns = {name: [row[name] for row in rows] for name in PACKED_CPT.names}
        table = pa.table(columns, schema=PACKED_CPT)
        pq.write_table(table, self.directory / f"part-{self.shards:05d}.parquet", compression="zstd")
        self.shards += 1
        self.rows += len(rows)
        self.tokens += sum(row["n_tokens"] for row in rows)
