"""Apply the driver's dedup decisions to every row (a broadcast lookup, vectorised with pyarrow)."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from factory.documents import alive_mask, document_key, with_rejections


def _lookup(table: pa.Table, decisions_ref):
    """(decisions table, a function giving a decision column aligned with ``table``'s rows; null where none)."""
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
