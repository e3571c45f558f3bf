"""Checks on the prepare job's input before any work: it must be a finished factory run."""
from __future__ import annotations

from pathlib import Path

from core.errors import InputError
from core.parquet import require_columns
from core.publish import MANIFEST, read_finished_manifest

REQUIRED_COLUMNS = ("id", "text", "source", "domain")


def document_files(input_dir: str) -> list[Path]:
    return sorted((Path(input_dir) / "documents").glob("*.parquet"))


def check_factory_output(input_dir: str) -> dict:
    """The factory run's manifest; raises ``InputError`` naming input_dir and what is wrong."""
    where = Path(input_dir)
    if not where.is_dir():
        raise InputError(f"input_dir: {where} does not exist; run `python -m factory run CONFIG.yaml` first")
    manifest = read_finished_manifest(where)
    if manifest is None or "outputs" not in manifest:
        raise InputError(f"input_dir: {where} is not a finished factory run (no {MANIFEST} with outputs)")
    files = document_files(input_dir)
    if not files:
        raise InputError(f"input_dir: {where / 'documents'} holds no Parquet files")
    require_columns(files, {column: "a factory output's documents" for column in REQUIRED_COLUMNS}, "input_dir")
    return manifest
