"""The run manifest's common part: what ran, on what, with which config."""
from __future__ import annotations

import hashlib
import subprocess
import uuid
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from pydantic import BaseModel

from core.config import config_hash
from core.sqlite_db import refuse_if_live
from core.storage import Location, is_uri, locate


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def code_version() -> str:
    """Git commit of the checkout when there is one (``-dirty`` if modified), else the package version."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        try:
            return "package-" + metadata.version("domain-factory")
        except metadata.PackageNotFoundError:
            return "unknown"


def file_fingerprint(path: Path | str | Location, chunk_size: int = 1 << 20) -> dict:
    """Path, size and sha256 of an input file. A file in object storage gives its size and modification time
    instead: hashing it would pull the whole corpus through the driver."""
    if isinstance(path, str) and is_uri(path):  # what core.parquet.parquet_files gives for a URI
        path = locate(path, "input")
    if isinstance(path, Location):
        if is_uri(path.uri):
            info = path.info()
            return {"path": path.uri, "bytes": info.size, "modified": info.mtime.isoformat() if info.mtime else None}
        path = Path(path.uri)
    refuse_if_live(path)  # hashing a database this process has open would drop its SQLite locks
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def base_manifest(run_id: str, config: BaseModel, inputs: list[Path]) -> dict:
    return {
        "run_id": run_id,
        "started_at": datetime.now(timezone.utc).isoformat(),
        "code_version": code_version(),
        "config_hash": config_hash(config),
        "config": config.model_dump(mode="json"),
        "inputs": [file_fingerprint(path) for path in inputs],
    }
