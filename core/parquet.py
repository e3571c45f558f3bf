"""Parquet in and out, the same way in every job: zstd files, errors that name the file and the key."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow.fs import FileType

from core.errors import InputError
from core.publish import current_run_dir, listed_files_under, resolve
from core.storage import Location, expand, is_uri, locate


def parquet_files(path: str | Path, key: str) -> list[Path | str]:
    """The Parquet files at ``path``: a file, or every ``*.parquet`` below a folder (in a published run, the
    ones its manifest lists); a URI (s3://...) gives URIs, which pyarrow and Ray Data open themselves. ``key``
    is the config key that named the path, for the error."""
    listed = listed_files_under(path) if is_uri(path) or Path(path).expanduser().is_dir() else None
    if listed is not None:
        files = [f for f in listed if str(f).endswith(".parquet")]
    elif is_uri(path):
        files = [f.uri for f in expand(locate(path, key), key, (".parquet",))]
    else:
        root = Path(path).expanduser()
        if root.is_file():
            return [root]
        if not root.is_dir():
            raise InputError(f"{key}: {path} does not exist")
        files = sorted(root.rglob("*.parquet"))
    if not files:
        raise InputError(f"{key}: {path} holds no .parquet files")
    return files


def published_data_dir(path: str | Path, folders: tuple[str, ...]) -> Path | str:
    """A published output's data folder in its current run (the first of ``folders`` it has), so a config may
    name a factory or synth output where it means the Parquet inside it; any other path resolved through
    CURRENT (``<prepare>/train`` -> ``<prepare>/runs/<id>/train``) or as it is."""
    root = path if is_uri(path) else Path(path).expanduser()
    run = current_run_dir(root) if is_uri(root) or root.is_dir() else None
    if run is None:
        return resolve(root)
    for folder in folders:
        candidate = f"{run}/{folder}" if is_uri(run) else Path(run) / folder
        if (locate(candidate, "path").info().type == FileType.Directory) if is_uri(candidate) else candidate.is_dir():
            return candidate
    return run


def open_parquet(path: Path | str | Location, key: str) -> pq.ParquetFile:
    """A Parquet file (a local path or a ``core.storage.Location``) opened for reading; a corrupt or
    non-Parquet file is an ``InputError`` naming it."""
    if not isinstance(path, Location) and is_uri(path):
        path = locate(path, key)
    name = path.uri if isinstance(path, Location) else path
    try:
        if isinstance(path, Location):
            return pq.ParquetFile(path.filesystem.open_input_file(path.path))
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt or non-Parquet file
        raise InputError(f"{key}: {name}: not a readable Parquet file ({exc})") from None


def require_columns(files: list[Path], columns: Mapping[str, str], key: str) -> None:
    """Every file is readable Parquet holding ``columns`` ({column: what asks for it, e.g. a config key});
    raises ``InputError`` naming the key, the file, the missing columns and the columns it has."""
    for path in files:
        names = open_parquet(path, key).schema_arrow.names
        missing = [column for column in columns if column not in names]
        if missing:
            why = ", ".join(dict.fromkeys(columns[c] for c in missing))
            raise InputError(f"{key}: {path}: missing column(s) {missing} ({why}); the file has columns {names}")


def write_dataset(ds, path: Path, empty_schema: pa.Schema) -> None:
    """A Ray dataset as zstd Parquet files in the local folder ``path``; an empty dataset still leaves one file
    with the schema. (Object storage: ``PublishedRun.write_data``, through ``core.described_parquet``.)"""
    ds.write_parquet(str(path), compression="zstd")
    if not any(Path(path).glob("*.parquet")):  # Ray writes no file for an empty dataset; readers still need one
        Path(path).mkdir(parents=True, exist_ok=True)
        pq.write_table(empty_schema.empty_table(), Path(path) / "empty.parquet", compression="zstd")


def parquet_counts(folder: Path, columns: Sequence[str]) -> pa.Table:
    """Rows per distinct value of ``columns`` (column ``n``) over the Parquet files in a local ``folder``, read a
    batch at a time: memory is bounded by the distinct values (sources, stages, reasons), not by the rows."""
    columns = list(columns)
    partials = []
    for path in sorted(Path(folder).glob("*.parquet")):
        for batch in pq.ParquetFile(path).iter_batches(columns=columns, batch_size=1 << 16):
            partials.append(pa.Table.from_batches([batch]).group_by(columns).aggregate([([], "count_all")]))
            if len(partials) > 64:  # fold as we go
                partials = [summed_counts(partials, columns).rename_columns([*columns, "count_all"])]
    return summed_counts(partials, columns)


def summed_counts(partials: list[pa.Table], columns: list[str]) -> pa.Table:
    """Tables of rows per value of ``columns`` (column ``count_all``) summed into one, as column ``n``."""
    if not partials:
        return pa.table({**{c: pa.array([], pa.string()) for c in columns}, "n": pa.array([], pa.int64())})
    summed = pa.concat_tables(partials).group_by(columns).aggregate([("count_all", "sum")])
    return summed.select([*columns, "count_all_sum"]).rename_columns([*columns, "n"])


def write_rows(rows: list[dict], schema: pa.Schema, folder: Path) -> int:
    """Rows held in memory (a job's bounded result) as one zstd Parquet file in ``folder``; returns the count."""
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, folder / "part-0.parquet", compression="zstd")
    return table.num_rows
