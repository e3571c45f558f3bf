"""The one sequential step: walk the globally sorted documents in order, cut each split into rows, and
collect the numbers the manifest and report need. Everything costly (scores, tokens, embeddings,
grouping, sort) ran in parallel before; this scan only concatenates token arrays and writes shards.

The scan runs on the driver but streams: it holds one batch, each split's open row and at most
``rows_per_shard`` rows waiting for their shard. What it keeps about the corpus is bounded too:
totals per split, per domain and per curriculum bucket, document counts per length bin (a fixed
number of bins), row counts per number of pieces in a row (at most ``seq_len`` keys), and a running
sum for the neighbour similarity; never one number per document or per row."""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from factory.prepare.embedding import vectors_of
from factory.prepare.lengths import length_bins
from factory.prepare.row_packer import RowPacker, ShardWriter
from factory.prepare.split import TRAIN, VALIDATION

SPLITS = (TRAIN, VALIDATION)


@dataclass
class SplitStats:
    """What one split received: documents, tokens, per-domain and per-bucket totals, documents per
    length bin and rows per number of pieces; every field is bounded, whatever the corpus size."""

    docs: int = 0
    tokens: int = 0
    domain_tokens: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    bucket_docs: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    bucket_tokens: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    length_docs: Counter[int] = field(default_factory=Counter)  # documents per bin of lengths.LENGTH_EDGES
    pieces_rows: Counter[int] = field(default_factory=Counter)  # packed rows per number of pieces (<= seq_len)

    def add(self, domain: str, bucket: int, n_tokens: int, length_bin: int) -> None:
        self.docs += 1
        self.tokens += n_tokens
        self.domain_tokens[domain] += n_tokens
        self.bucket_docs[bucket] += 1
        self.bucket_tokens[bucket] += n_tokens
        self.length_docs[length_bin] += 1


@dataclass
class PackedSplit:
    stats: SplitStats
    rows: int
    shards: int
    written_tokens: int
    seq_len: int

    def summary(self) -> dict:
        """The split's manifest entry."""
        s = self.stats
        return {
            "written_tokens": self.written_tokens,
            "documents": s.docs,
            "tokens": s.tokens,
            "rows": self.rows,
            "shards": self.shards,
            "packing_efficiency": round(s.tokens / (self.rows * self.seq_len), 6) if self.rows else None,
            "domain_tokens": dict(s.domain_tokens),
            "bucket_documents": {str(k): v for k, v in sorted(s.bucket_docs.items())},
            "bucket_tokens": {str(k): v for k, v in sorted(s.bucket_tokens.items())},
        }


@dataclass
class PackedSplits:
    splits: dict[str, PackedSplit]  # by split name: train, validation
    row_neighbour_similarity: float | None  # mean embedding similarity of neighbours sharing a row

    def __getitem__(self, split: str) -> PackedSplit:
        return self.splits[split]


def pack_splits(ordered, output: Path, seq_len: int, rows_per_shard: int, batch_size: int) -> PackedSplits:
    """Cuts ``ordered`` (a sorted Ray dataset with ``split``) into rows in ``output/{train,validation}``."""
    packers = {name: RowPacker(seq_len) for name in SPLITS}
    writers = {name: ShardWriter(output / name, rows_per_shard) for name in SPLITS}
    stats = {name: SplitStats() for name in SPLITS}
    previous_vector: dict[str, np.ndarray | None] = {name: None for name in SPLITS}
    similarity_sum, similarity_pairs = 0.0, 0  # of neighbours sharing a row: a running mean, not a list

    def wrote(split, rows):
        stats[split].pieces_rows.update(len(r["doc_lengths"]) for r in rows)
        writers[split].write(rows)

    for batch in ordered.iter_batches(batch_format="pyarrow", batch_size=batch_size):
        vectors = vectors_of(batch["embedding"]) if "embedding" in batch.column_names else None
        columns = {c: batch[c].to_pylist() for c in ("id", "source", "domain", "split", "curriculum_bucket", "n_tokens")}
        tokens = batch["token_ids"]
        bins = length_bins(columns["n_tokens"]).tolist()
        for i in range(batch.num_rows):
            split = columns["split"][i]
            if vectors is not None:
                if packers[split].row_is_open and previous_vector[split] is not None:
                    similarity_sum += float(previous_vector[split] @ vectors[i])
                    similarity_pairs += 1
                previous_vector[split] = vectors[i]
            ids = tokens[i].values.to_numpy()
            wrote(split, packers[split].add(ids, columns["id"][i], columns["source"][i]))
            stats[split].add(columns["domain"][i], columns["curriculum_bucket"][i], columns["n_tokens"][i], bins[i])
    splits = {}
    for split in SPLITS:
        wrote(split, packers[split].finish())
        writers[split].close()
        w = writers[split]
        splits[split] = PackedSplit(stats[split], w.rows, w.shards, w.tokens, seq_len)
    similarity = similarity_sum / similarity_pairs if similarity_pairs else None
    return PackedSplits(splits, similarity)
