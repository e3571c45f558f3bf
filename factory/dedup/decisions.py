"""Dedup decisions reach the documents by a join on the document key: each batch of the (key-partitioned)
documents reads only the decision partitions its keys fall in, and looks its rows up there."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from factory.dedup.partitions import left_join
from factory.dedup.tables import CLUSTERS, EXACT_DUPS, SIMILARITIES, DedupWork
from factory.documents import alive_mask, document_key, with_rejections


def shown_ids(keys: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The document id part of document keys (``factory.documents.shown_id``, vectorised)."""
    return pc.list_element(pc.split_pattern(keys, "\x00", max_splits=1), 0)


class MarkExactDuplicates:
    """Rejects live documents found to repeat a kept document's text."""

    def __init__(self, work: DedupWork):
        self.work = work

    def __call__(self, table: pa.Table) -> pa.Table:
        keeper = left_join(document_key(table), self.work.table("exact_dups"), self.work.parts, EXACT_DUPS)["keeper"]
        rejected = pc.and_(alive_mask(table), pc.is_valid(keeper)).to_pylist()
        details = [f"same normalised text as {kept}" if r else None
                   for r, kept in zip(rejected, shown_ids(keeper).to_pylist())]
        return reject_where(table, rejected, "exact_dedup", "exact_duplicate", details)


class MarkNearDuplicates:
    """Rejects live documents in a duplicate cluster kept as another document (after exact dedup, only
    near duplicates can be: an exact copy was rejected before the filters)."""

    def __init__(self, work: DedupWork):
        self.work = work

    def __call__(self, table: pa.Table) -> pa.Table:
        keys = document_key(table)
        cluster = left_join(keys, self.work.table("clusters"), self.work.parts, CLUSTERS)["cluster"]
        similarity = left_join(keys, self.work.table("best_similarity"), self.work.parts, SIMILARITIES)["similarity"]
        rejected = pc.and_(alive_mask(table), pc.and_(pc.is_valid(cluster), pc.not_equal(cluster, keys))).to_pylist()
        details = [f"cluster kept as {kept}; estimated Jaccard {sim:.2f}" if r else None
                   for r, kept, sim in zip(rejected, shown_ids(cluster).to_pylist(), similarity.to_pylist())]
        return reject_where(table, rejected, "near_dedup", "near_duplicate", details)


class AddClusters:
    """``dup_cluster`` (the id kept for the document's cluster; its own id when it has no duplicate) and
    ``dup_cluster_size``; the dedup keys are dropped."""

    def __init__(self, work: DedupWork | None):
        self.work = work

    def __call__(self, table: pa.Table) -> pa.Table:
        table = table.drop_columns([c for c in ("text_hash", "minhash") if c in table.column_names])
        if self.work is None:
            clusters = CLUSTERS.empty_table().take(pa.nulls(table.num_rows, pa.int32()))
        else:
            clusters = left_join(document_key(table), self.work.table("clusters"), self.work.parts, CLUSTERS)
        cluster = pc.coalesce(shown_ids(clusters["cluster"]), table["id"])
        size = pc.coalesce(clusters["size"], pa.scalar(1, pa.int64()))
        return table.append_column("dup_cluster", cluster).append_column("dup_cluster_size", size)


def reject_where(table: pa.Table, rejected: list[bool], stage: str, reason: str, details: list[str | None]) -> pa.Table:
    return with_rejections(table, stage, [reason if r else None for r in rejected], details)
