"""Checks on the prepare job's input before any work: it must be a finished factory run (a local folder or
a URI such as s3://bucket/factory, where the factory published it)."""
from __future__ import annotations

from pathlib import Path

from core.errors import InputError
from core.parquet import parquet_files, published_data_dir, require_columns
from core.publish import MANIFEST, read_finished_manifest
from core.storage import check_input, is_uri

REQUIRED_COLUMNS = ("id", "text", "source", "domain")


def documents_dir(input_dir: str) -> Path | str:
    """The documents/ folder of the factory run published at ``input_dir`` (its current run's); a URI stays one."""
    folder = published_data_dir(input_dir, ("documents",))
    return folder if is_uri(folder) else Path(folder)


def document_files(input_dir: str) -> list[Path | str]:
    return parquet_files(documents_dir(input_dir), "input_dir")


def check_factory_output(input_dir: str) -> dict:
    """The factory run's manifest; raises ``InputError`` naming input_dir and what is wrong."""
    if is_uri(input_dir):
        check_input(input_dir, "input_dir")  # a missing bucket or key, refused credentials: named, not a trace
        where: Path | str = input_dir
    else:
        where = Path(input_dir).expanduser()
        if not where.is_dir():
            raise InputError(f"input_dir: {where} does not exist; run `python -m factory run CONFIG.yaml` first")
    manifest = read_finished_manifest(where)
    if manifest is None or "outputs" not in manifest:
        raise InputError(f"input_dir: {where} is not a finished factory run (no {MANIFEST} with outputs)")
    if str(documents_dir(input_dir)).rstrip("/").rsplit("/", 1)[-1] != "documents":  # else every Parquet file
        raise InputError(f"input_dir: {where} holds no documents/ folder; is it a factory output?")
    files = document_files(input_dir)
    require_columns(files, {column: "a factory output's documents" for column in REQUIRED_COLUMNS}, "input_dir")
    return manifest
