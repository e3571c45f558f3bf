"""Publishing a run's output as an immutable version behind one atomic pointer, the same on a local disk
and on object storage (where there is no rename):

    <out>/runs/<run id>/...            every run writes its own folder, and never changes it once published
    <out>/runs/<run id>/manifest.json  written last in the folder, listing every file it holds
    <out>/CURRENT                      {"run_id": ...}: one atomic write (a PUT, or a replace) publishes it

A reader resolves CURRENT and reads that run's folder, so what a crashed writer left (a folder CURRENT does
not name) is never read, and a reader never sees half a run. Old versions stay readable by run id
(``<out>/runs/<id>``) until the keep-N clean-up removes them. An output in the layout before versions
(``<out>/manifest.json`` beside its data) is read as it is.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import xxhash
from pyarrow import fs as pafs

from core.errors import InputError
from core.storage import default_storage, is_uri, locate, write_bytes

MANIFEST = "manifest.json"
CURRENT = "CURRENT"
RUNS = "runs"


# ---- reading: where the published run of an output is ------------------------------------------------------

def _exists(path: str | Path, kind: pafs.FileType = pafs.FileType.File) -> bool:
    if is_uri(path):
        return locate(path, "path").info().type == kind
    return Path(path).is_file() if kind == pafs.FileType.File else Path(path).is_dir()


def _read_text(path: str | Path) -> str:
    if is_uri(path):
        where = locate(path, "path")
        attempts = default_storage().max_attempts
        for attempt in range(1, attempts + 1):
            try:
                with where.filesystem.open_input_stream(where.path, compression=None) as stream:
                    return stream.read().decode("utf-8")
            except OSError:
                # the S3 client cannot retry a 503 whose error body is larger than the small object it asked
                # for ("Failed to flush response stream"): a pointer or manifest read is retried whole here
                if attempt == attempts or where.info().type == pafs.FileType.NotFound:
                    raise
                time.sleep(min(0.1 * 2 ** attempt, 5))
    return Path(path).read_text(encoding="utf-8")


def _join(root: str | Path, *parts: str) -> str | Path:
    return "/".join([str(root).rstrip("/"), *parts]) if is_uri(root) else Path(root).joinpath(*parts)


def current_run_id(output: str | Path) -> str | None:
    """The run id CURRENT names in ``output``; None when there is no pointer."""
    pointer = _join(output, CURRENT)
    if not _exists(pointer):
        return None
    try:
        return json.loads(_read_text(pointer))["run_id"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{pointer}: not a run pointer ({exc}); republish the output with --overwrite") from None


def current_run_dir(output: str | Path) -> str | Path | None:
    """The folder of the run published at ``output`` (``runs/<id>`` named by CURRENT; the output itself in the
    layout before versions, or when ``output`` is a run's own folder); None when nothing is published there."""
    run_id = current_run_id(output)
    if run_id is not None:
        return _join(output, RUNS, run_id)
    return output if _exists(_join(output, MANIFEST)) else None


def resolve(path: str | Path) -> str | Path:
    """``path`` with the published output it lies in replaced by that output's current run:
    ``<out>/tokenizer`` -> ``<out>/runs/<id>/tokenizer``, ``<out>`` -> ``<out>/runs/<id>``. A path with no
    CURRENT above it (a hub id, plain files, a version's own folder) comes back as it is."""
    text = str(path)
    parts = text.rstrip("/").split("/")
    lowest = 3 if is_uri(text) else 1  # s3://bucket at most: never above the bucket
    for cut in range(len(parts), lowest - 1, -1):
        candidate = "/".join(parts[:cut])
        run_id = current_run_id(candidate) if candidate else None
        if run_id is None:
            continue
        if parts[cut:cut + 1] == [RUNS]:
            return path  # a version named by its own folder
        resolved = "/".join([candidate, RUNS, run_id, *parts[cut:]])
        return Path(resolved) if isinstance(path, Path) else resolved
    return path


def read_finished_manifest(output: str | Path) -> dict | None:
    """The manifest of the run published at ``output`` (see ``current_run_dir``); None when there is none."""
    run_dir = current_run_dir(output)
    if run_dir is None:
        return None
    manifest = _join(run_dir, MANIFEST)
    try:
        return json.loads(_read_text(manifest))
    except FileNotFoundError:
        raise InputError(f"{manifest}: CURRENT names a run with no manifest; republish with --overwrite") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{manifest}: not valid JSON: {exc}") from None


def published_run_ref(path: str | Path) -> dict | None:
    """Which published run ``path`` is, or lies in (a run's data folder, e.g. ``<prepare>/train``): its
    output, run id, the run's own folder (still readable after the output is rebuilt), config hash and code
    version, for a manifest to name what it was made from. None for a path outside any published run."""
    text = str(path) if is_uri(path) else str(Path(path).expanduser())
    for candidate in (text, text.rstrip("/").rsplit("/", 1)[0]):
        if not is_uri(candidate) and not Path(candidate).is_dir():
            continue
        manifest = read_finished_manifest(candidate)
        if manifest is not None and "run_id" in manifest:
            output = candidate if is_uri(candidate) else str(Path(candidate).resolve())
            return {"path": output, "run_id": manifest["run_id"], "run_path": str(current_run_dir(output)),
                    "config_hash": manifest.get("config_hash"), "code_version": manifest.get("code_version")}
    return None


def listed_files_under(folder: str | Path) -> list[str | Path] | None:
    """The files a published run's manifest lists under ``folder`` (the run's folder or one inside it), as
    readers must read them: never a listing, which could see what a writer left. None when ``folder`` is not
    in a run with a file list (plain files, the layout before versions)."""
    text = str(folder).rstrip("/")
    parts = text.split("/")
    for up in range(0, min(3, len(parts) - 1)):
        run = "/".join(parts[:len(parts) - up])
        manifest_path = _join(run, MANIFEST)
        if not _exists(manifest_path):
            continue
        try:
            listed = json.loads(_read_text(manifest_path)).get("files")
        except ValueError:
            return None
        if listed is None:
            return None
        prefix = "/".join(parts[len(parts) - up:])
        chosen = [f["path"] for f in listed if not prefix or f["path"].startswith(prefix + "/")]
        return [_join(run, *name.split("/")) for name in chosen]
    return None


# ---- writing: a version, then the pointer --------------------------------------------------------------------

def run_folder(output: str | Path, run_id: str) -> str | Path:
    return _join(output, RUNS, run_id)


def listed_files(run_dir: Path, skip: tuple[str, ...] = (MANIFEST,)) -> list[dict]:
    """Every file of a finished run folder, for its manifest: path (relative), bytes, rows (Parquet, from its
    footer) and an xxh3-128 checksum (streamed, a GB in well under a second: cheap next to writing it)."""
    import pyarrow.parquet as pq

    entries = []
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(run_dir).as_posix()
        if relative in skip:
            continue
        with path.open("rb") as handle:
            entry = {"path": relative, "bytes": path.stat().st_size, "xxh3_128": _xxh3(handle)}
        if path.suffix == ".parquet":
            entry["rows"] = pq.read_metadata(path).num_rows
        entries.append(entry)
    return entries


def _xxh3(handle) -> str:
    digest = xxhash.xxh3_128()
    while chunk := handle.read(1 << 22):
        digest.update(chunk)
    return digest.hexdigest()


def write_pointer(output: str | Path, run_id: str) -> None:
    """Publish ``run_id``: CURRENT in one atomic write (a replace locally, a single PUT on object storage)."""
    write_text_whole(_join(output, CURRENT), json.dumps({"run_id": run_id, "path": f"{RUNS}/{run_id}"}) + "\n",
                     "output_dir")


def write_text_whole(path: str | Path, text: str, key: str) -> None:
    """A small file written whole or not at all: one PUT on object storage, an atomic replace locally."""
    if is_uri(path):
        write_bytes(locate(path, key), text.encode("utf-8"))
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(Path(path), text)


def read_text(path: str | Path) -> str | None:
    """A small file's text (local or on object storage); None when it does not exist."""
    return _read_text(path) if _exists(path) else None


def upload_staged(local: Path, run_uri: str, *, under: str = "", skip: set[str] = frozenset()) -> set[str]:
    """The files of a run staged on local disk (those below ``under``, except the manifest and those in
    ``skip``) copied into the run's folder on object storage; returns their relative paths."""
    target = locate(run_uri, "output_dir")
    sent = set()
    for path in sorted(p for p in (local / under).rglob("*") if p.is_file()):
        relative = path.relative_to(local).as_posix()
        if relative != MANIFEST and relative not in skip:
            _upload(path, target.child(relative))
            sent.add(relative)
    return sent


def upload_manifest(local: Path, run_uri: str) -> None:
    """The staged run's manifest, uploaded after every file it lists."""
    _upload(local / MANIFEST, locate(run_uri, "output_dir").child(MANIFEST))


def _upload(path: Path, target) -> None:
    with path.open("rb") as source, target.filesystem.open_output_stream(target.path, compression=None) as sink:
        shutil.copyfileobj(source, sink, 1 << 22)


def unfinished_runs(output: Path) -> list[Path]:
    """What crashed or refused writers left: run folders CURRENT never named (without a manifest, or newer
    than the current run: a run that failed its gate), and ``.partial-`` folders of the layout before versions."""
    current = current_run_id(output)
    since = _started(output / RUNS / current) if current else None
    folders = [p for p in (output / RUNS).glob("*") if p.is_dir() and p.name != current and
               (since is None or not (p / MANIFEST).is_file() or _started(p) > since)] if (output / RUNS).is_dir() else []
    return sorted(folders) + sorted(output.parent.glob(f"{output.name}.partial-*"))


def retire_unversioned(output: Path) -> list[Path]:
    """After a version is published over an output in the layout before versions: its files go (CURRENT
    already names the new run, so no reader reads them)."""
    old = [p for p in output.iterdir() if p.name not in (RUNS, CURRENT)] if output.is_dir() else []
    for path in old:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return old


def old_versions(output: str | Path, keep: int) -> list[str | Path]:
    """Run folders beyond the newest ``keep``, the current one counted and never removed (newest by the time
    its manifest says it started: run ids sort by the second only). On object storage too, where a folder a
    crashed run left (no manifest) counts as the oldest."""
    current = current_run_id(output)
    runs = [p for p in _run_folders(output) if _name(p) != current]
    runs.sort(key=_started, reverse=True)
    return sorted(runs[max(keep - 1, 0):])


def remove_version(run_dir: str | Path) -> None:
    """Delete one run folder (every object under it, on object storage)."""
    if is_uri(run_dir):
        where = locate(run_dir, "output_dir")
        where.filesystem.delete_dir(where.path)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)


def _run_folders(output: str | Path) -> list[str | Path]:
    if not is_uri(output):
        runs = Path(output) / RUNS
        return [p for p in runs.glob("*") if p.is_dir()] if runs.is_dir() else []
    where = locate(_join(output, RUNS), "output_dir")
    found = where.filesystem.get_file_info(pafs.FileSelector(where.path, allow_not_found=True))
    return [_join(output, RUNS, info.base_name) for info in found if info.type == pafs.FileType.Directory]


def _name(run_dir: str | Path) -> str:
    return str(run_dir).rstrip("/").rsplit("/", 1)[-1]


def _started(run_dir: str | Path) -> tuple[str, str]:
    try:
        return json.loads(_read_text(_join(run_dir, MANIFEST))).get("started_at", ""), _name(run_dir)
    except (OSError, ValueError):
        return "", _name(run_dir)


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all: a sibling ``.tmp`` file renamed over it, so a reader (or a crash)
    never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_json_atomically(path: Path, payload: dict) -> None:
    write_text_atomically(path, json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")
