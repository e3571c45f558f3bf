"""Atomic publication of a run's output directory.

A run writes into a hidden sibling ``<out>.partial-<run id>`` and renames it to ``<out>``
only once everything, the manifest last, is written. A directory named ``<out>`` therefore
always holds a finished run; a crash leaves only a ``.partial-`` directory, which the next
run removes.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from core.errors import InputError

MANIFEST = "manifest.json"


def read_finished_manifest(output_dir: Path) -> dict | None:
    """The manifest of the run published at ``output_dir``; None when there is none."""
    manifest = Path(output_dir) / MANIFEST
    if not manifest.is_file():
        return None
    try:
        return json.loads(manifest.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{manifest}: not valid JSON: {exc}") from None


def stale_partials(output_dir: Path) -> list[Path]:
    return sorted(output_dir.parent.glob(f"{output_dir.name}.partial-*"))


def remove_stale_partials(output_dir: Path) -> list[Path]:
    """Remove what crashed runs left behind; returns what was removed."""
    removed = stale_partials(output_dir)
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def make_partial_dir(output_dir: Path, run_id: str) -> Path:
    path = output_dir.parent / f"{output_dir.name}.partial-{run_id}"
    path.mkdir(parents=True, exist_ok=False)
    return path


def publish(partial: Path, output_dir: Path) -> None:
    """Replace ``output_dir`` by ``partial`` with renames, never leaving a half state under the final name."""
    if output_dir.exists():
        retired = output_dir.parent / f"{output_dir.name}.retired-{partial.name.rsplit('-', 1)[-1]}"
        output_dir.rename(retired)
        partial.rename(output_dir)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        partial.rename(output_dir)


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all: a sibling ``.tmp`` file renamed over it, so a reader (or a crash)
    never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_json_atomically(path: Path, payload: dict) -> None:
    write_text_atomically(path, json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def published_run_ref(path: str | Path) -> dict | None:
    """Which published run ``path`` is, or lies in (a run's data folder, e.g. ``<prepare>/train``): its
    directory, run id, config hash and code version, for a manifest to name what it was made from.
    None for a path outside any published run (a hub id, a plain Parquet folder)."""
    where = Path(path).expanduser()
    for candidate in (where, where.parent):
        manifest = read_finished_manifest(candidate) if candidate.is_dir() else None
        if manifest is not None and "run_id" in manifest:
            return {"path": str(candidate.resolve()), "run_id": manifest["run_id"],
                    "config_hash": manifest.get("config_hash"), "code_version": manifest.get("code_version")}
    return None
