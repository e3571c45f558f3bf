"""The one sequential step: walk the globally sorted documents in order, pack each split, and
collect the numbers the manifest and report need. Everything costly (scores, tokens, embeddings,
grouping, sort) ran in parallel before; this scan only concatenates token arrays and writes shards."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from factory.prepare.embedding import vectors_of
from factory.prepare.packing import Packer, ShardWriter
from factory.prepare.split import TRAIN, VALIDATION


class SplitStats:
    def __init__(self):
        self.docs = 0
        self.tokens = 0
        self.domain_tokens: dict[str, int] = defaultdict(int)
        self.bucket_docs: dict[int, int] = defaultdict(int)
        self.bucket_tokens: dict[int, int] = defaultdict(int)
        self.doc_tokens: list[int] = []
        self.rows_docs: list[int] = []  # pieces per packed row

    def as_dict(self, rows: int, shards: int, seq_len: int, written_tokens: int) -> dict:
        return {
            "written_tokens": written_tokens,
            "documents": self.docs,
            "tokens": self.tokens,
            "rows": rows,
            "shards": shards,
            "packing_efficiency": round(self.tokens / (rows * seq_len), 6) if rows else None,
            "domain_tokens": dict(self.domain_tokens),
            "bucket_documents": {str(k): v for k, v in sorted(self.bucket_docs.items())},
            "bucket_tokens": {str(k): v for k, v in sorted(self.bucket_tokens.items())},
        }


def pack_in_order(ordered, output: Path, seq_len: int, rows_per_shard: int, batch_size: int) -> dict:
    """Packs ``ordered`` (a sorted Ray dataset) into ``output/{train,validation}``; returns stats per split
    plus the mean embedding similarity of neighbours sharing a packed row."""
    packers = {name: Packer(seq_len) for name in (TRAIN, VALIDATION)}
    writers = {name: ShardWriter(output / name, rows_per_shard) for name in (TRAIN, VALIDATION)}
    stats = {name: SplitStats() for name in (TRAIN, VALIDATION)}
    previous_vector: dict[str, np.ndarray | None] = {TRAIN: None, VALIDATION: None}
    row_neighbour_similarity: list[float] = []

    def wrote(split, rows):
        stats[split].rows_docs.extend(len(r["doc_lengths"]) for r in rows)
        writers[split].write(rows)

    for batch in ordered.iter_batches(batch_format="pyarrow", batch_size=batch_size):
        vectors = vectors_of(batch["embedding"]) if "embedding" in batch.column_names else None
        columns = {c: batch[c].to_pylist() for c in ("id", "source", "domain", "split", "curriculum_bucket", "n_tokens")}
        tokens = batch["token_ids"]
        for i in range(batch.num_rows):
            split = columns["split"][i]
            if vectors is not None:
                if packers[split].row_is_open and previous_vector[split] is not None:
                    row_neighbour_similarity.append(float(previous_vector[split] @ vectors[i]))
                previous_vector[split] = vectors[i]
            ids = tokens[i].values.to_numpy()
            wrote(split, packers[split].add(ids, columns["id"][i], columns["source"][i]))
            s, n = stats[split], columns["n_tokens"][i]
            s.docs += 1
            s.tokens += n
            s.domain_tokens[columns["domain"][i]] += n
            s.bucket_docs[columns["curriculum_bucket"][i]] += 1
            s.bucket_tokens[columns["curriculum_bucket"][i]] += n
            s.doc_tokens.append(n)
    result = {}
    for split in (TRAIN, VALIDATION):
        wrote(split, packers[split].finish())
        writers[split].close()
        result[split] = stats[split]
        result[split + "_summary"] = stats[split].as_dict(
            writers[split].rows, writers[split].shards, seq_len, writers[split].tokens
        )
    result["row_neighbour_similarity"] = (
        float(np.mean(row_neighbour_similarity)) if row_neighbour_similarity else None
    )
    return result
