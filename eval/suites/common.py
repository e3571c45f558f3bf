"""What every suite does with per-item results: keep them beside the report, aligned with the items."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

SET_SEPARATOR = "\x1f"  # between a set's name and an item id in a union of sets: in neither


@dataclass(frozen=True)
class Work:
    """What a suite asks of each model: a ``eval.scorers`` task with its settings over item rows."""

    suite: str
    name: str                   # the set (or sets) the rows come from
    task: str                   # a key of eval.scorers.TASKS
    settings: dict
    inputs: pa.Table            # item_id and what the task reads
    checkpoints: tuple[str, ...]  # the checkpoints to run it on

    @property
    def label(self) -> str:
        return f"{self.suite} {self.name}"


def aligned(items: pa.Table, scored: pa.Table) -> pa.Table:
    """``scored`` rows (in any order, as Ray actors return them) joined back to the items' order."""
    position = {item: i for i, item in enumerate(items.column("item_id").to_pylist())}
    order = sorted(range(scored.num_rows), key=lambda r: position[scored.column("item_id")[r].as_py()])
    if len(order) != items.num_rows:
        raise RuntimeError(f"expected {items.num_rows} scored items, got {scored.num_rows}")
    return scored.take(pa.array(order, pa.int64()))  # typed: an empty list would be of type null


def write_items(output: Path, suite: str, set_name: str, checkpoint: str, table: pa.Table) -> None:
    folder = output / "items" / suite / set_name
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / f"{checkpoint}.parquet", compression="zstd")


def union_of_sets(sets: dict[str, pa.Table]) -> pa.Table:
    """Every set's items in one table, ids prefixed with their set's name: one pass per checkpoint scores them
    all, so each model is loaded once, not once per set."""
    return pa.concat_tables([
        table.set_column(table.schema.get_field_index("item_id"), "item_id",
                         pc.binary_join_element_wise(name, table.column("item_id").cast(pa.string()), SET_SEPARATOR))
        for name, table in sets.items()], promote_options="permissive")


def split_into_sets(scored: pa.Table, names: list[str]) -> dict[str, pa.Table]:
    """``union_of_sets`` undone on scored rows: {set name: its rows with their own item ids}."""
    parts = {}
    for name in names:
        prefix = name + SET_SEPARATOR
        part = scored.filter(pc.starts_with(scored.column("item_id"), prefix))
        parts[name] = part.set_column(part.schema.get_field_index("item_id"), "item_id",
                                      pc.utf8_slice_codeunits(part.column("item_id"), len(prefix)))
    return parts
