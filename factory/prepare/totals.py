"""Per-key totals of a Ray dataset over a low-cardinality column: summed per block in parallel, then
the partial totals are streamed to the driver and added up (cheaper than a groupby shuffle for a
handful of keys: a domain name, a mix bin, a length bin)."""
from __future__ import annotations

import pyarrow as pa

from factory.prepare.lengths import LENGTH_BIN, length_bin_batch

FOLD_ROWS = 1 << 20  # partial totals buffered on the driver before they are folded into the running totals


def block_totals(batch: pa.Table, column: str, value: str | None) -> pa.Table:
    """One row per distinct value of ``column`` in the block: its rows' sum of ``value`` (count if None)."""
    total = f"{value}_sum" if value else "count_all"
    table = batch.group_by(column).aggregate([(value, "sum") if value else ([], "count_all")])
    return pa.table({column: table[column], "total": table[total]})


def fold_totals(parts: list[pa.Table], column: str) -> pa.Table:
    table = pa.concat_tables(parts).group_by(column).aggregate([("total", "sum")])
    return pa.table({column: table[column], "total": table["total_sum"]})


def totals_by(ds, column: str, value: str | None = "n_tokens") -> dict:
    """The sum of ``value`` (the row count if None) per value of ``column``, in key order."""
    partial = ds.map_batches(block_totals, fn_kwargs={"column": column, "value": value}, batch_format="pyarrow",
                             batch_size=None)
    # bounded on the driver: partial totals arrive one block at a time and are folded into one running
    # total per distinct key once FOLD_ROWS of them are waiting, so the driver holds at most the distinct
    # keys (a domain name, a mix bin <= mixing.bins, a length bin) plus FOLD_ROWS and one block's partials
    parts, waiting = [], 0
    for part in partial.iter_batches(batch_format="pyarrow", batch_size=None):
        parts.append(part)
        waiting += part.num_rows
        if waiting > FOLD_ROWS:
            parts = [fold_totals(parts, column)]
            waiting = 0
    if not parts:
        return {}
    table = fold_totals(parts, column).sort_by(column)
    return {key: int(n) for key, n in zip(table[column].to_pylist(), table["total"].to_pylist())}


def length_counts(ds) -> dict[int, int]:
    """Documents per length bin (lengths.LENGTH_EDGES), counted per block: at most N_LENGTH_BINS keys."""
    return totals_by(ds.map_batches(length_bin_batch, batch_format="pyarrow"), LENGTH_BIN, value=None)
