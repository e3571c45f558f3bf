"""Folders on object storage (a model, an adapter, a tokenizer) copied to the node's local disk for the
libraries that read only local files (transformers' and peft's ``from_pretrained``).

A copy is kept under ``$DOMAIN_FACTORY_CACHE`` (default ``~/.cache/domain-factory``) and reused while the
source's listing (names, sizes, dates) is unchanged: a published run's folder never changes, so every job on
the node downloads it once. Each process copies into its own staging folder and renames it into place, so
two Ray workers on one node never see half a copy.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import pyarrow.fs as pafs

from core.errors import InputError
from core.storage import Location, locate, require_exists

CACHE_ENV = "DOMAIN_FACTORY_CACHE"
SOURCE = ".source.json"  # in each copy: the URI and the listing it was copied from


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "domain-factory").expanduser() / "objects"


def local_copy(uri: str, key: str = "path") -> Path:
    """The local copy of the file or folder at ``uri`` (copied now unless an up-to-date copy is kept)."""
    location = locate(uri, key)
    info = require_exists(location, key)
    files = [(location.name, info)] if info.type == pafs.FileType.File else _listing(location, key)
    listing = [[name, i.size, i.mtime_ns] for name, i in files]
    target = cache_root() / hashlib.sha256(uri.rstrip("/").encode()).hexdigest()[:32]
    if _source(target) != {"uri": uri, "files": listing}:
        _replace(target, _download(location, files, uri, listing, key))
    return target / location.name if info.type == pafs.FileType.File else target


def _listing(location: Location, key: str) -> list[tuple[str, pafs.FileInfo]]:
    base = location.path.rstrip("/")
    try:
        infos = location.filesystem.get_file_info(pafs.FileSelector(base, recursive=True))
    except OSError as exc:
        raise InputError(f"{key}: {location.uri}: cannot be listed ({exc})") from None
    return sorted((i.path[len(base) + 1:], i) for i in infos if i.type == pafs.FileType.File)


def _source(target: Path) -> dict | None:
    try:
        return json.loads((target / SOURCE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _download(location: Location, files, uri: str, listing: list, key: str) -> Path:
    cache_root().mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=cache_root(), prefix=".partial-"))
    try:
        for name, info in files:
            destination = staging / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            with location.filesystem.open_input_stream(info.path, compression=None) as source, \
                    destination.open("wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 22)
        (staging / SOURCE).write_text(json.dumps({"uri": uri, "files": listing}), encoding="utf-8")
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise InputError(f"{key}: {uri}: cannot be copied to local disk ({exc})") from None
    return staging


def _replace(target: Path, staging: Path) -> None:
    """``staging`` renamed to ``target``; a copy another process finished first wins (both are the same files)."""
    if target.exists():  # an outdated copy (its source changed): moved aside, then removed
        aside = target.with_name(f"{target.name}.old-{os.getpid()}")
        try:
            target.rename(aside)
            shutil.rmtree(aside, ignore_errors=True)
        except OSError:
            pass
    try:
        staging.rename(target)
    except OSError:  # another process renamed its copy in first
        shutil.rmtree(staging, ignore_errors=True)


def local_file_beside(output: str, suffix: str) -> Path:
    """A local file for a job whose output may be on object storage (its SQLite cache, ``<output><suffix>``):
    beside a local output, else in the cache folder, named after the URI (SQLite needs a local disk)."""
    if "://" not in output:
        return Path(output + suffix)
    folder = cache_root().parent / "state"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{hashlib.sha256(output.rstrip('/').encode()).hexdigest()[:16]}{suffix}"
