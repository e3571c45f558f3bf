"""Reading a synth job's input (factory documents, or an SFT output) with checks before any work.

A missing file or column is an ``InputError`` naming the file and the config key; a bad row
(empty text, missing id) is returned as a reject for the job to write, not dropped silently.
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from factory.common.publish import MANIFEST
from factory.common.errors import InputError
from synth.config import InputConfig


def input_files(path: str, key: str) -> list[Path]:
    root = Path(path)
    if root.is_dir() and (root / MANIFEST).is_file():  # a published factory or synth output
        subdirs = [d for d in ("documents", "sft") if (root / d).is_dir()]
        root = root / subdirs[0] if subdirs else root
    if root.is_file():
        return [root]
    if root.is_dir():
        files = sorted(root.rglob("*.parquet"))
        if files:
            return files
        raise InputError(f"{key}.path: no Parquet files under {root}")
    raise InputError(f"{key}.path: {root} does not exist")


def read_input(config: InputConfig, key: str, columns: dict[str, str]) -> tuple[pa.Table, list[Path]]:
    """The rows (``limit`` applied) with ``columns`` = {column: config key naming it} checked present."""
    files = input_files(config.path, key)
    tables = []
    for path in files:
        try:
            names = pq.read_schema(path).names
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
        for column, column_key in columns.items():
            if column not in names:
                raise InputError(f"{path}: no column {column!r} ({key}.{column_key}); columns: {names}")
        wanted = [c for c in names if c in columns or c in ("meta", "title", "source_doc_id")]
        tables.append(pq.read_table(path, columns=wanted))
    table = pa.concat_tables(tables, promote_options="default")
    if config.limit:
        table = table.slice(0, config.limit)
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
