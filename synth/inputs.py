"""Reading a synth job's input (factory documents, or an SFT output) with checks before any work.

A missing file or column is an ``InputError`` naming the file and the config key; a bad row
(empty text, missing id) is returned as a reject for the job to write, not dropped silently.
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from core.contracts import data_folders
from core.parquet import open_parquet, parquet_files, published_data_dir, require_columns
from core.storage import check_input
from synth.config import InputConfig

# a published run given as input means its data folder: factory documents, or SFT examples
PUBLISHED_FOLDERS = data_folders("synthesis")


def read_input(config: InputConfig, key: str, columns: dict[str, str]) -> tuple[pa.Table, list[Path]]:
    """The rows (``limit`` applied) with ``columns`` = {column: config key naming it} checked present.

    The whole table is read into memory: synth inputs are the documents one job turns into requests,
    which are planned (and their errors reported) before any request goes out.
    """
    check_input(config.path, f"{key}.path")  # a URI's bucket, key and credentials, before anything else
    files = parquet_files(published_data_dir(config.path, PUBLISHED_FOLDERS), f"{key}.path")
    require_columns(files, {column: f"{key}.{column_key}" for column, column_key in columns.items()}, f"{key}.path")
    tables = []
    for path in files:
        parquet = open_parquet(path, f"{key}.path")  # through core.storage: the storage: section's endpoint too
        wanted = [c for c in parquet.schema_arrow.names if c in columns or c in ("meta", "title", "source_doc_id")]
        tables.append(parquet.read(columns=wanted))
    table = pa.concat_tables(tables, promote_options="default")
    if config.limit:
        # the first N by id, not by file: a Ray-written output's part files come in another order every run
        table = table.sort_by(config.id_column).slice(0, config.limit)
    return table, files


def document_title(row: dict, title_column: str | None) -> str:
    """The title column if configured, else ``title`` in the factory's JSON meta, else empty."""
    if title_column and row.get(title_column):
        return str(row[title_column])
    if row.get("title"):
        return str(row["title"])
    try:
        return str(json.loads(row.get("meta") or "{}").get("title") or "")
    except (ValueError, AttributeError):
        return ""
