"""Where a dataset kind's Parquet files are, given what a user points the gate at: a published output
(its current run is read), a run's own folder (a directory with manifest.json), a data folder, a directory of
Parquet files, or one file."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pyarrow.fs import FileType

from core.errors import InputError
from core.parquet import parquet_files
from core.publish import RUNS, current_run_dir, read_finished_manifest, resolve
from core.storage import check_input, is_uri
from core.storage import locate as locate_uri

# the data folders of each kind's published run; a run's other folders (rejects, reports) are not its data
PUBLISHED_FOLDERS = {
    "documents": ("documents",),
    "cpt": ("train", "validation"),
    "sft": ("sft",),
    "preferences": ("preferences",),
    "reviews": ("reviews", "preferences"),
}


@dataclass
class Dataset:
    kind: str
    root: Path | str  # a URI (s3://...) for a dataset on object storage
    parts: dict[str, list[Path | str]]  # part name (a split, or "all") -> its files, in order
    manifest: dict | None  # the published run's manifest, when there is one
    extra: dict[str, list[Path | str]] = field(default_factory=dict)  # side tables, e.g. cpt documents/

    @property
    def files(self) -> list[Path | str]:
        return [f for files in self.parts.values() for f in files]


def dataset_root(path: str | Path) -> Path | str:
    """What ``path`` means to read: a published output's current run folder (``<out>/sft`` the current run's
    ``sft``), else ``path`` itself. A URI (s3://...) stays a URI: its bucket and key are checked here, before
    any work."""
    if is_uri(path):
        check_input(path, "PATH")
        root = resolve(str(path))
    else:
        root = Path(resolve(Path(path).expanduser()))
        if not root.exists():
            raise InputError(f"PATH: {path} does not exist")
    if not is_dir(root):
        return root
    run = current_run_dir(root)
    if run is None and is_dir(join(root, RUNS)):  # only what crashed runs left: never data to read
        raise InputError(f"PATH: {path} holds no published run (no CURRENT names one of its runs/)")
    return (run or root) if is_uri(root) else Path(run or root)


def is_dir(path: Path | str) -> bool:
    if is_uri(path):
        return locate_uri(str(path), "PATH").info().type == FileType.Directory
    return Path(path).is_dir()


def join(root: Path | str, name: str) -> Path | str:
    return f"{str(root).rstrip('/')}/{name}" if is_uri(root) else Path(root) / name


def locate(kind: str, path: str | Path, manifest: dict | None = None) -> Dataset:
    """The files of a ``kind`` dataset at ``path``; ``manifest`` stands in for one not yet written
    (a job's gate runs before its manifest is)."""
    root = dataset_root(path)
    directory = is_dir(root)
    manifest = manifest if manifest is not None else (read_finished_manifest(root) if directory else None)
    folders = [join(root, name) for name in PUBLISHED_FOLDERS[kind] if is_dir(join(root, name))] if directory else []
    if folders and kind == "cpt":
        parts = {str(folder).rstrip("/").rsplit("/", 1)[-1]: parquet_files(folder, "PATH") for folder in folders}
    elif folders:
        parts = {"all": parquet_files(folders[0], "PATH")}
    else:
        parts = {"all": parquet_files(root, "PATH")}
    extra = {}
    if kind == "cpt" and directory and is_dir(join(root, "documents")):  # prepare's document table: tokens per domain
        extra["documents"] = parquet_files(join(root, "documents"), "PATH")
    return Dataset(kind, root, parts, manifest, extra)


def file_name(file: Path | str) -> str:
    """The last part of a local path or a URI, for naming a file in an example."""
    return str(file).rstrip("/").rsplit("/", 1)[-1]
