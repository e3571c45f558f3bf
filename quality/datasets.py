"""Where a dataset kind's Parquet files are, given what a user points the gate at: a published output
(its current run is read), a run's own folder (a directory with manifest.json), a data folder, a directory of
Parquet files, or one file."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.errors import InputError
from core.parquet import parquet_files
from core.publish import RUNS, current_run_dir, read_finished_manifest, resolve

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
    root: Path
    parts: dict[str, list[Path]]  # part name (a split, or "all") -> its files, in order
    manifest: dict | None  # the published run's manifest, when there is one
    extra: dict[str, list[Path]] = field(default_factory=dict)  # side tables, e.g. cpt documents/

    @property
    def files(self) -> list[Path]:
        return [f for files in self.parts.values() for f in files]


def dataset_root(path: str | Path) -> Path:
    """What ``path`` means to read: a published output's current run folder (``<out>/sft`` the current run's
    ``sft``), else ``path`` itself."""
    root = Path(resolve(Path(path).expanduser()))
    if not root.exists():
        raise InputError(f"PATH: {path} does not exist")
    if not root.is_dir():
        return root
    run = current_run_dir(root)
    if run is None and (root / RUNS).is_dir():  # only what crashed runs left: never data to read
        raise InputError(f"PATH: {path} holds no published run (no CURRENT names one of its runs/)")
    return Path(run or root)


def locate(kind: str, path: str | Path, manifest: dict | None = None) -> Dataset:
    """The files of a ``kind`` dataset at ``path``; ``manifest`` stands in for one not yet written
    (a job's gate runs before its manifest is)."""
    root = dataset_root(path)
    manifest = manifest if manifest is not None else (read_finished_manifest(root) if root.is_dir() else None)
    folders = [root / name for name in PUBLISHED_FOLDERS[kind] if (root / name).is_dir()] if root.is_dir() else []
    if folders and kind == "cpt":
        parts = {folder.name: parquet_files(folder, "PATH") for folder in folders}
    elif folders:
        parts = {"all": parquet_files(folders[0], "PATH")}
    else:
        parts = {"all": parquet_files(root, "PATH")}
    extra = {}
    if kind == "cpt" and (root / "documents").is_dir():  # prepare's document table: tokens per domain
        extra["documents"] = parquet_files(root / "documents", "PATH")
    return Dataset(kind, root, parts, manifest, extra)
