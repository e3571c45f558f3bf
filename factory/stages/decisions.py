"""Apply the driver's dedup decisions to every row (a broadcast lookup, vectorised with pyarrow)."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from factory.documents import alive_mask, with_rejections


def apply_decisions(table: pa.Table, decisions_ref) -> pa.Table:
    import ray

    decisions: pa.Table = ray.get(decisions_ref) if isinstance(decisions_ref, ray.ObjectRef) else decisions_ref
    table = table.drop_columns([c for c in ("text_hash", "minhash") if c in table.column_names])
    position = pc.index_in(table["id"], value_set=decisions["id"])
    found = pc.is_valid(position)
    alive = alive_mask(table)

    def looked_up(column: str) -> pa.Array:
        values = decisions[column].combine_chunks().take(pc.fill_null(position, 0)) if decisions.num_rows else None
        if values is None:
            return pa.nulls(table.num_rows, decisions.schema.field(column).type)
        return pc.if_else(pc.and_(found, alive), values, pa.scalar(None, values.type))

    table = with_rejections(table, None, looked_up("reason").to_pylist(), looked_up("detail").to_pylist(),
                            stages=looked_up("stage").to_pylist())
    cluster = pc.coalesce(looked_up("dup_cluster"), table["id"])
    size = pc.coalesce(looked_up("dup_cluster_size"), pa.scalar(1, pa.int64()))
    return table.append_column("dup_cluster", cluster).append_column("dup_cluster_size", size)
