"""The recipe manifest: for every step, the config file and key it ran with, the run it published (id, its
own folder, config hash, code version, input files with their hashes), the upstream runs it read, and its numbers.
A step is current, and skipped, when its key (config + upstream run ids + state) is unchanged, its output
still holds the run recorded here, and the external files it read are unchanged. Written after each step,
atomically, so a crash keeps what was done."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

from pyarrow.fs import FileType

from core.config import config_hash
from core.manifest import code_version, file_fingerprint
from core.publish import current_run_dir, read_finished_manifest, read_text, write_text_whole
from core.storage import is_uri, locate
from recipe.config import RecipeConfig

MANIFEST_NAME = "recipe_manifest.json"


def step_key(config: dict, upstream: dict, state: dict) -> str:
    canonical = json.dumps({"config": config, "upstream": upstream, "state": state}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def file_stats(paths: list[str]) -> dict[str, list[int] | None]:
    """Size and modification time of each file (None when gone): a cheap "changed since?" for external inputs,
    whose sha256 the step's own manifest already holds (an object's date changes only when it is rewritten)."""
    stats = {}
    for path in paths:
        try:
            if is_uri(path):
                info = locate(path, "path").info()
                stats[path] = [info.size, info.mtime_ns] if info.type == FileType.File else None
            else:
                st = Path(path).stat()
                stats[path] = [st.st_size, st.st_mtime_ns]
        except OSError:
            stats[path] = None
    return stats


def input_unchanged(path: str, recorded: list[int] | None, sha256: str | None) -> bool:
    """Same size and mtime as recorded; or, when only the mtime moved (a fresh copy of the same file, as each
    ``ray job submit`` unpacks its working directory), the same sha256 as the step's manifest holds."""
    now = file_stats([path])[path]
    if now is None or recorded is None or now[0] != recorded[0]:
        return now == recorded
    if now == recorded:
        return True
    return sha256 is not None and not is_uri(path) and file_fingerprint(Path(path))["sha256"] == sha256


class RecipeManifest:
    def __init__(self, recipe: RecipeConfig):
        self.path = recipe.at(MANIFEST_NAME)
        self.recipe = recipe
        earlier = json.loads(read_text(self.path) or "{}")
        self.data = {"recipe": recipe.name, "config_hash": config_hash(recipe), "config": recipe.model_dump(mode="json"),
                     "code_version": code_version(), "storage_path": recipe.storage,
                     "steps": earlier.get("steps", {})}

    @property
    def entries(self) -> dict[str, dict]:
        return self.data["steps"]

    def identity(self, step: str) -> str | None:
        """How a downstream key names this step's output: its run id (or, for a step that publishes nothing, such
        as a pre-trained base model, its key)."""
        entry = self.entries.get(step)
        return None if entry is None else entry.get("run_id") or entry["key"]

    def is_current(self, step: str, key: str) -> bool:
        entry = self.entries.get(step)
        if entry is None or entry["key"] != key:
            return False
        if entry.get("run_id") is not None:
            published = read_finished_manifest(entry["output"])
            if published is None or published.get("run_id") != entry["run_id"]:
                return False  # deleted or replaced since
        recorded_sha256 = {i["path"]: i.get("sha256") for i in entry.get("inputs", [])}
        return all(input_unchanged(path, stats, recorded_sha256.get(path))
                   for path, stats in entry.get("external_inputs", {}).items())

    def record(self, step: str, *, key: str, config_file: str, output: str, upstream: dict, manifest: dict,
               facts: dict, wall_s: float) -> dict:
        inputs = manifest.get("inputs", [])
        external = [i["path"] for i in inputs if not self.recipe.holds(i["path"])]
        run_id = manifest.get("run_id")
        entry = {
            "key": key, "config_file": str(config_file), "output": output, "run_id": run_id,
            # where this run's files stay readable after the step publishes a newer one (None: nothing published)
            "run_path": str(current_run_dir(output)) if run_id is not None else None,
            "config_hash": manifest.get("config_hash"), "code_version": manifest.get("code_version"),
            "upstream": upstream, "inputs": inputs, "external_inputs": file_stats(external),
            "quality": quality_verdict(manifest), "facts": facts, "wall_s": round(wall_s, 1),
            "finished_at": datetime.now(timezone.utc).isoformat(),
        }
        self.entries[step] = entry
        self.save()
        return entry

    def save(self) -> None:
        self.data["updated_at"] = datetime.now(timezone.utc).isoformat()
        write_text_whole(self.path, json.dumps(self.data, indent=2, default=str) + "\n", "storage_path")


def quality_verdict(manifest: dict) -> dict | None:
    """The step's quality gate result as its manifest records it; None when its job has no gate (or it was off)."""
    quality = manifest.get("quality")
    if not quality:
        return None
    failed = [e["name"] for e in quality.get("expectations", []) if not e.get("success")]
    return {"success": quality.get("success"), "rows": quality.get("rows"), "failed": failed,
            "data_docs": quality.get("data_docs")}
