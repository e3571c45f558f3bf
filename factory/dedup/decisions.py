"""Dedup decisions reach the documents: a table keyed by document, broadcast to every batch and
applied with vectorised pyarrow lookups (marking duplicates rejected, adding the cluster columns)."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from factory.dedup.finding import Duplicates
from factory.documents import alive_mask, document_key, shown_id, with_rejections

DECISIONS_SCHEMA = pa.schema([
    ("id", pa.string()), ("stage", pa.string()), ("reason", pa.string()), ("detail", pa.string()),
    ("dup_cluster", pa.string()), ("dup_cluster_size", pa.int64()),
])


def decision_table(exact: Duplicates, near: Duplicates) -> pa.Table:
    """document key -> (stage, reason, detail, dup_cluster, dup_cluster_size) for every document in a duplicate cluster."""
    near_keeper = dict(zip(near.ids, near.keepers))
    final = {doc: near_keeper.get(keeper, keeper) for doc, keeper in zip(exact.ids, exact.keepers)}
    final.update(near_keeper)
    sizes: dict[str, int] = {}
    for keeper in final.values():
        sizes[keeper] = sizes.get(keeper, 1) + 1
    rows = {name: [] for name in DECISIONS_SCHEMA.names}

    def add(doc, stage, reason, detail):
        cluster = final.get(doc, doc)
        for key, value in zip(rows, (doc, stage, reason, detail, shown_id(cluster), sizes.get(cluster))):
            rows[key].append(value)

    for doc, keeper in zip(exact.ids, exact.keepers):
        add(doc, "exact_dedup", "exact_duplicate", f"same normalised text as {shown_id(keeper)}")
    for doc, keeper, sim in zip(near.ids, near.keepers, near.similarity):
        add(doc, "near_dedup", "near_duplicate", f"cluster kept as {shown_id(keeper)}; estimated Jaccard {sim:.2f}")
    for keeper in sizes:
        if keeper not in final:
            add(keeper, None, None, None)
    return pa.table(rows, schema=DECISIONS_SCHEMA)


def _lookup(table: pa.Table, decisions_ref):
    """(a function giving a decision column aligned with ``table``'s rows; null where none)."""
    import ray

    decisions: pa.Table = ray.get(decisions_ref) if isinstance(decisions_ref, ray.ObjectRef) else decisions_ref
    position = pc.index_in(document_key(table), value_set=decisions["id"])

    def column(name: str, only_alive: bool) -> pa.Array:
        if decisions.num_rows == 0:
            return pa.nulls(table.num_rows, decisions.schema.field(name).type)
        values = decisions[name].combine_chunks().take(position)
        return pc.if_else(alive_mask(table), values, pa.scalar(None, values.type)) if only_alive else values

    return column


def mark_duplicates(table: pa.Table, decisions_ref) -> pa.Table:
    """Reject live rows that the decisions name as duplicates, with their stage, reason and detail."""
    column = _lookup(table, decisions_ref)
    return with_rejections(
        table, None, column("reason", True).to_pylist(), column("detail", True).to_pylist(),
        stages=column("stage", True).to_pylist(),
    )


def add_clusters(table: pa.Table, decisions_ref) -> pa.Table:
    """``dup_cluster`` (the id kept for the cluster; a document's own id when it has no duplicate) and its size."""
    column = _lookup(table, decisions_ref)
    table = table.drop_columns([c for c in ("text_hash", "minhash") if c in table.column_names])
    cluster = pc.coalesce(column("dup_cluster", False), table["id"])
    size = pc.coalesce(column("dup_cluster_size", False), pa.scalar(1, pa.int64()))
    return table.append_column("dup_cluster", cluster).append_column("dup_cluster_size", size)
