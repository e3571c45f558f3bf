"""Checks on the prepare job's input before any work: it must be a finished factory run."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from factory.common.publish import MANIFEST, read_finished_manifest
from factory.common.errors import InputError

REQUIRED_COLUMNS = ("id", "text", "source", "domain")


def document_files(input_dir: str) -> list[Path]:
    return sorted((Path(input_dir) / "documents").glob("*.parquet"))


def check_factory_output(input_dir: str) -> dict:
    """The factory run's manifest; raises ``InputError`` naming input_dir and what is wrong."""
    where = Path(input_dir)
    if not where.is_dir():
        raise InputError(f"input_dir: {where} does not exist; run `python -m factory run CONFIG.yaml` first")
    try:
        manifest = read_finished_manifest(where)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"input_dir: {where / MANIFEST} is not valid JSON: {exc}") from None
    if manifest is None or "outputs" not in manifest:
        raise InputError(f"input_dir: {where} is not a finished factory run (no {MANIFEST} with outputs)")
    files = document_files(input_dir)
    if not files:
        raise InputError(f"input_dir: {where / 'documents'} holds no Parquet files")
    for path in files:
        try:
            names = pq.read_schema(path).names
        except Exception as exc:  # pyarrow raises several types for a corrupt file
            raise InputError(f"input_dir: cannot read {path}: {exc}") from None
        missing = [c for c in REQUIRED_COLUMNS if c not in names]
        if missing:
            raise InputError(f"input_dir: {path} lacks column(s) {missing}; is it a factory output?")
    return manifest
