"""One streaming pass over every file of a dataset, feeding each batch to the meters; a second pass,
over only the columns they need, for meters that must look again (exact duplicates)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from core.hashing import unit_fraction
from core.parquet import open_parquet
from quality.datasets import Dataset, file_name
from quality.meters import Meter

BATCH_ROWS = 65_536


def row_ids(table: pa.Table, part: str, file: Path, offset: int):
    """How a row is named in examples: its id (with its source when ids repeat across sources), else
    (no id column, or a null id) its place: split/file#row."""
    where = f"{part}/{file_name(file)}" if part != "all" else file_name(file)
    ids = table["id"].to_pylist() if "id" in table.column_names else None
    sources = table["source"].to_pylist() if "source" in table.column_names else None

    def name(i: int) -> str:
        if ids is None or ids[i] is None:
            return f"{where}#{offset + i}"
        return f"{ids[i]} [{sources[i]}]" if sources else str(ids[i])

    return lambda picked: [name(int(i)) for i in picked]


def batches(dataset: Dataset, columns: set[str], parts: dict[str, list[Path]] | None = None):
    """(part, table, row ids) for every batch of every file, reading only ``columns`` (plus what names rows)."""
    for part, files in (parts or dataset.parts).items():
        for file in files:
            parquet = open_parquet(file, "PATH")
            names = parquet.schema_arrow.names
            wanted = [c for c in names if c in columns or c in ("id", "source")]
            offset = 0
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=wanted):
                table = pa.Table.from_batches([batch])
                yield part, table, row_ids(table, part, file, offset)
                offset += table.num_rows


def measure(dataset: Dataset, meters: list[Meter], parts: dict[str, list[Path]] | None = None) -> int:
    """Run ``meters`` over the dataset (or the given ``parts`` of it); returns the rows seen."""
    columns = {c for meter in meters for c in meter.columns}
    rows, current = 0, None
    for part, table, ids in batches(dataset, columns, parts):
        if part != current:
            for meter in meters:
                meter.start_part(part)
            current = part
        for meter in meters:
            meter.update(table, ids)
        rows += table.num_rows
    again = [meter for meter in meters if meter.needs_second_look()]
    if again:
        for _, table, ids in batches(dataset, {c for meter in again for c in meter.columns}, parts):
            for meter in again:
                meter.second_look(table, ids)
    return rows


def position_fraction(positions: np.ndarray) -> np.ndarray:
    """A fixed pseudo-random number in [0, 1) per row position (Fibonacci hashing)."""
    with np.errstate(over="ignore"):
        return unit_fraction(positions.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))


def hash_sample(dataset: Dataset, columns: set[str], rows: int, total: int) -> pa.Table | None:
    """About ``rows`` rows, chosen by a hash of their position so a rerun picks the same ones; the columns
    asked for plus ``id``. Bounded: at most ``rows`` rows are held."""
    if total == 0:
        return None
    fraction, kept, held = min(1.0, rows / total), [], 0
    position = 0
    for _, table, ids in batches(dataset, columns):
        picked = np.flatnonzero(position_fraction(np.arange(position, position + table.num_rows)) < fraction)
        position += table.num_rows
        if len(picked) and held < rows:
            picked = picked[: rows - held]
            sample = table.take(pa.array(picked))
            sample = sample.append_column("row", pa.array(ids(picked), pa.string()))
            kept.append(sample.select([c for c in sample.column_names if c in columns or c == "row"]))
            held += len(picked)
    return pa.concat_tables(kept) if kept else None
