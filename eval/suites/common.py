"""What every suite does with per-item results: keep them beside the report, aligned with the items."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def aligned(items: pa.Table, scored: pa.Table) -> pa.Table:
    """``scored`` rows (in any order, as Ray Data returns them) joined back to the items' order."""
    position = {item: i for i, item in enumerate(items.column("item_id").to_pylist())}
    order = sorted(range(scored.num_rows), key=lambda r: position[scored.column("item_id")[r].as_py()])
    if len(order) != items.num_rows:
        raise RuntimeError(f"expected {items.num_rows} scored items, got {scored.num_rows}")
    return scored.take(order)


def write_items(output: Path, suite: str, set_name: str, checkpoint: str, table: pa.Table) -> None:
    folder = output / "items" / suite / set_name
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / f"{checkpoint}.parquet", compression="zstd")
