"""Where data lives: a local path or a URI (``s3://``, ``gs://``, ``hf://`` and any other fsspec filesystem),
opened through pyarrow's filesystems so Ray Data, Parquet and plain reads take the same object.

Credentials come from each store's standard chain (for S3: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
profiles, instance roles), and ``AWS_ENDPOINT_URL``/``AWS_ENDPOINT_URL_S3`` point S3 at a compatible store
(MinIO, Ceph, R2) with no config change; the ``storage:`` section's ``endpoint_url`` is for when they are not
set. Nothing secret is ever put in a message or a manifest: a location prints as the URI the user wrote.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pyarrow.fs as pafs
from pydantic import Field

from core.config import StrictModel, read_yaml
from core.errors import InputError


class StorageConfig(StrictModel):
    """How object storage is reached (a job's ``storage:`` section; defaults in core/presets/storage.yaml).
    Every value has a standard environment variable that comes first."""

    endpoint_url: str | None = Field(description="An S3-compatible endpoint (http://minio:9000) used when "
                                                 "AWS_ENDPOINT_URL(_S3) is not set; null: AWS itself.")
    region: str | None = Field(description="Used when AWS_REGION is not set.")
    max_attempts: int = Field(ge=1, description="Tries of one request on 5xx, throttling and resets, with "
                                                "exponential backoff (AWS's standard retry strategy).")
    connect_timeout_s: float = Field(gt=0)
    request_timeout_s: float = Field(gt=0)
    keep_versions: int = Field(ge=1, description="Published versions (runs/<id>) an output keeps, the current one "
                                                 "included; older ones are removed when a new one is published.")
    scratch_dir: str | None = Field(description="Scratch (the dedup spill) of a run whose output_dir is on object "
                                                "storage: a folder every Ray node mounts at this path; null: the "
                                                "driver's temp folder, single-node only (docs/OBJECT_STORAGE.md).")


def default_storage() -> StorageConfig:
    return StorageConfig.model_validate(read_yaml(Path(__file__).parent / "presets" / "storage.yaml"))


# the scheme -> the package a user installs for it, when neither pyarrow nor an installed fsspec has it
PACKAGES = {"gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs", "hf": "huggingface_hub"}


def is_uri(path: str | Path) -> bool:
    return "://" in str(path)


@dataclass(frozen=True)
class Location:
    """One place: the text the user wrote (``uri``, what messages name), the filesystem and the path in it."""

    uri: str
    filesystem: pafs.FileSystem
    path: str

    def child(self, name: str) -> "Location":
        return Location(f"{self.uri.rstrip('/')}/{name}", self.filesystem, f"{self.path.rstrip('/')}/{name}")

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    def info(self) -> pafs.FileInfo:
        return self.filesystem.get_file_info(self.path)


def local_location(path: str | Path) -> Location:
    """A local file as a location: named as the user's path spells it, read by its absolute path."""
    return Location(str(path), pafs.LocalFileSystem(), os.path.abspath(path))


def locate(path: str | Path, key: str, storage: StorageConfig | None = None) -> Location:
    """The filesystem and in-filesystem path of a local path or URI; an unknown scheme names its package."""
    text = str(path)
    if not is_uri(text):
        return local_location(Path(text).expanduser())
    scheme, rest = text.split("://", 1)
    return Location(text, _filesystem(scheme.lower(), storage or default_storage(), key, text), rest)


def _filesystem(scheme: str, storage: StorageConfig, key: str, uri: str) -> pafs.FileSystem:
    if scheme == "file":
        return pafs.LocalFileSystem()
    if scheme in ("s3", "s3a"):
        return _s3(storage)
    if scheme in ("gs", "gcs"):
        return pafs.GcsFileSystem()
    try:  # anything else fsspec knows (hf://, az://, ...), wrapped so Ray Data and pyarrow take it
        import fsspec

        return pafs.PyFileSystem(pafs.FSSpecHandler(fsspec.filesystem(scheme)))
    except ImportError:
        package = PACKAGES.get(scheme, f"the fsspec implementation of {scheme}://")
        raise InputError(f"{key}: {uri}: no filesystem for {scheme}:// is installed; pip install {package}") from None
    except ValueError:
        raise InputError(f"{key}: {uri}: unknown URI scheme {scheme}:// (local paths, s3://, gs://, hf:// and "
                         "fsspec's schemes are supported)") from None


def _s3(storage: StorageConfig) -> pafs.S3FileSystem:
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or storage.endpoint_url
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or storage.region
    return _s3_client(endpoint, region, storage.max_attempts, storage.connect_timeout_s, storage.request_timeout_s)


@lru_cache(maxsize=8)  # one client per setting: the SDK's connection pool serves every read of a run
def _s3_client(endpoint, region, max_attempts, connect_timeout_s, request_timeout_s) -> pafs.S3FileSystem:
    options = {"retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=max_attempts),
               "connect_timeout": connect_timeout_s, "request_timeout": request_timeout_s, "region": region}
    if endpoint:
        scheme, _, host = endpoint.partition("://")
        options.update(endpoint_override=host or scheme, scheme=scheme if host else "https")
    return pafs.S3FileSystem(**{k: v for k, v in options.items() if v is not None})


def require_exists(location: Location, key: str) -> pafs.FileInfo:
    """The location's info; a missing bucket, a missing key or refused credentials is an ``InputError``
    naming the URI and the config key, so the job stops before any work."""
    try:
        info = location.info()
        if info.type == pafs.FileType.NotFound and is_uri(location.uri):
            bucket = location.path.split("/", 1)[0]
            if location.filesystem.get_file_info(bucket).type == pafs.FileType.NotFound:
                raise InputError(f"{key}: {location.uri}: the bucket {bucket!r} does not exist (or these "
                                 "credentials may not see it)")
    except InputError:
        raise
    except Exception as exc:  # refused credentials, an unreachable endpoint, after the retries: pyarrow's own
        # filesystems raise OSError, an fsspec one its own types (hf:// offline: httpx's ConnectError)
        raise InputError(f"{key}: {location.uri}: {_refusal(exc)}") from None
    if info.type == pafs.FileType.NotFound:
        raise InputError(f"{key}: {location.uri} does not exist")
    return info


def expand(location: Location, key: str, suffixes: tuple[str, ...]) -> list[Location]:
    """The files a location names: itself, every file below a folder whose name ends in one of ``suffixes``,
    or the matches of a glob (``*``, ``?``, ``[``, and ``**`` for any depth), sorted."""
    if any(ch in location.path for ch in "*?["):
        base = location.path[:min(location.path.find(ch) for ch in "*?[" if ch in location.path)].rsplit("/", 1)[0]
        pattern = glob_pattern(location.path)
        return sorted((f for f in _files_below(location, base, key) if pattern.fullmatch(f.path)), key=lambda f: f.path)
    info = require_exists(location, key)
    if info.type == pafs.FileType.File:
        return [location]
    return sorted((f for f in _files_below(location, location.path, key) if f.name.endswith(suffixes)),
                  key=lambda f: f.path)


def glob_pattern(pattern: str) -> re.Pattern:
    """A glob as Python's ``glob(recursive=True)`` reads it: ``*`` and ``?`` stay within a folder, ``**/`` is
    any depth (object stores have no glob of their own)."""
    parts, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            parts.append("(?:[^/]*/)*")
            i += 3
        elif pattern[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            parts.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 1:]:
            end = pattern.index("]", i + 1)
            parts.append("[" + pattern[i + 1:end].replace("!", "^", 1) + "]")
            i = end + 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(parts))


def _files_below(location: Location, base: str, key: str) -> list[Location]:
    root = Location(location.uri, location.filesystem, base)
    require_exists(root, key)
    prefix = location.uri[:len(location.uri) - len(location.path)]  # "s3://" or "" for a local path
    try:
        infos = location.filesystem.get_file_info(pafs.FileSelector(base, recursive=True))
    except OSError as exc:
        raise InputError(f"{key}: {prefix}{base}: {_refusal(exc, 'cannot be listed')}") from None
    return [Location(prefix + info.path if prefix else info.path, location.filesystem, info.path)
            for info in infos if info.type == pafs.FileType.File]


def read_bytes(location: Location, key: str) -> bytes:
    """The file's bytes, decompressed when its name ends in .gz, .zst, .bz2 or .lz4 (as Ray Data reads it)."""
    try:
        with location.filesystem.open_input_stream(location.path) as stream:
            return stream.read()
    except OSError as exc:
        raise InputError(f"{key}: {location.uri}: cannot read ({_first_line(exc)})") from None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# what S3 answers when it will not take the credentials (an unknown key, a wrong secret, no permission)
REFUSED = ("ACCESS_DENIED", "INVALID_ACCESS_KEY_ID", "SIGNATURE_DOES_NOT_MATCH", "InvalidAccessKeyId",
           "SignatureDoesNotMatch", "AccessDenied", "HTTP response code 403")


def _refusal(exc: Exception, what: str = "cannot be read") -> str:
    """Why a location cannot be read, saying so plainly when the store refused the credentials."""
    if any(code in str(exc) for code in REFUSED):
        return (f"{what}: the credentials were refused (check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or "
                f"AWS_PROFILE, and that they may read it): {_first_line(exc)}")
    return f"{what}: {_first_line(exc)}"


def check_input(path: str | Path, key: str, storage: StorageConfig | None = None) -> None:
    """A job's input URI checked before any work (a missing bucket or key, refused credentials, a scheme with no
    filesystem installed: an ``InputError`` naming the URI and ``key``); local paths are left to their job."""
    if is_uri(path):
        require_exists(locate(path, key, storage), key)


def write_bytes(location: Location, data: bytes, storage: StorageConfig | None = None) -> None:
    """A whole small file in one write: on S3 a single PutObject, which replaces the object atomically (there
    is no rename to do it with; pyarrow's default stream would start a multipart upload)."""
    filesystem = location.filesystem
    if isinstance(filesystem, pafs.S3FileSystem):  # the same client, opened lazily: one PUT at close
        rebuild, (options,) = filesystem.__reduce__()
        retries = pafs.AwsStandardS3RetryStrategy(max_attempts=(storage or default_storage()).max_attempts)
        filesystem = rebuild({**options, "allow_delayed_open": True, "retry_strategy": retries})
    with filesystem.open_output_stream(location.path, compression=None) as stream:
        stream.write(data)
