"""Resuming a killed run from the work it finished (docs/RESUME.md).

As datatrove's ``completions/<rank>``: every unit of work (a block group of a streaming pass, a dedup partition
of a step) writes a small marker file last, once its output is whole; a rerun skips the marked units and redoes
only those that were under way. The markers, and what identifies "the same run" (config hash, inputs with their
checksums, code version), live in the unfinished run's folder under ``_resume/``, which is removed before the
run is published:

    <out>/runs/<run id>/_resume/identity.json     the run's base manifest: resumed only when it matches
    <out>/runs/<run id>/_resume/<unit>.json        a finished unit and its stats (e.g. rows, duplicates)
    <out>/runs/<run id>/_resume/plan/<pass>.json   a pass's units, fixed at its first start
    <out>/runs/<run id>/_resume/fixed/<name>.json  another choice made at the first start (the partition count)
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from core.publish import write_json_atomically

RESUME = "_resume"
IDENTITY = "identity.json"
# what must be equal for a run to continue another: the config, the inputs (with their checksums), the code
SAME_RUN = {"config_hash": "config", "inputs": "inputs", "code_version": "code version"}
NOT_UNITS = ("plan", "fixed")  # folders of the ledger whose files are choices, not finished units


class Ledger:
    """The finished units of one run, as marker files under ``root``; with no root (a run that is not resumed)
    it records nothing and every unit is still to do."""

    def __init__(self, root: Path | None):
        self.root = Path(root) if root is not None else None

    def done(self, unit: str) -> dict | None:
        """The stats ``unit`` finished with; None when it has not finished."""
        path = self.root / f"{unit}.json" if self.root is not None else None
        return json.loads(path.read_text(encoding="utf-8")) if path is not None and path.is_file() else None

    def mark(self, unit: str, stats: dict | None = None) -> None:
        """``unit`` finished (called last, after its output is whole)."""
        if self.root is None:
            return
        path = self.root / f"{unit}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomically(path, stats or {})

    def begin(self, unit: str) -> None:
        """``unit`` is under way: a rerun that finds this without the unit's marker counts it as redone."""
        if self.root is not None:
            path = self.root / f"{unit}.started"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()

    def counts(self) -> dict:
        """Units finished, and units begun but not finished (under way when the run was killed)."""
        if self.root is None or not self.root.is_dir():
            return {"finished": 0, "under_way": 0}
        finished = [p for p in self.root.rglob("*.json") if p.parent.name not in NOT_UNITS and p.name != IDENTITY]
        begun = [p for p in self.root.rglob("*.started") if not p.with_suffix(".json").is_file()]
        return {"finished": len(finished), "under_way": len(begun)}

    def plan(self, name: str, what: str, units: list) -> list:
        """A pass's units, fixed at its first start: a rerun (on another cluster size, say) keeps them."""
        fixed = self.done(f"plan/{name}")
        if fixed is None:
            fixed = {"what": what, "units": units}
            self.mark(f"plan/{name}", fixed)
        return fixed["units"]

    def fixed(self, name: str, value):
        """``value`` as chosen at the run's first start: a rerun (on another cluster size, say) keeps it."""
        earlier = self.done(f"fixed/{name}")
        if earlier is None:
            self.mark(f"fixed/{name}", {"value": value})
            return value
        return earlier["value"]

    def progress(self) -> list[str]:
        """'<pass> k/n <units> done' for every pass planned so far, in the order they were planned."""
        if self.root is None:
            return []
        plans = sorted((self.root / "plan").glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
        lines = []
        for path in plans:
            plan = json.loads(path.read_text(encoding="utf-8"))
            finished = sum(1 for i in range(len(plan["units"])) if (self.root / path.stem / f"{i}.json").is_file())
            lines.append(f"{path.stem} {finished}/{len(plan['units'])} {plan['what']} done")
        return lines


def write_identity(run_dir: Path, manifest: dict) -> None:
    (run_dir / RESUME).mkdir(parents=True, exist_ok=True)
    write_json_atomically(run_dir / RESUME / IDENTITY, manifest)


def read_identity(run_dir: Path) -> dict | None:
    path = run_dir / RESUME / IDENTITY
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def what_changed(earlier: dict, now: dict) -> list[str]:
    """What differs between two runs' identities (empty: the same run)."""
    changed = [name for key, name in SAME_RUN.items() if key != "inputs" and earlier.get(key) != now.get(key)]
    before = {f["path"]: f for f in earlier.get("inputs", [])}
    after = {f["path"]: f for f in now.get("inputs", [])}
    files = sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))
    if files:
        changed.append(f"inputs ({', '.join(Path(f).name for f in files[:3])}{', ...' if len(files) > 3 else ''})")
    return changed


def resumable(unfinished: list[Path], identity: dict) -> tuple[Path | None, str | None]:
    """The newest unfinished run folder that is this run (config, inputs, code), or None and why not (None
    when there is nothing to resume)."""
    candidates = sorted((p for p in unfinished if read_identity(p) is not None), key=lambda p: p.name)
    if not candidates:
        return None, None
    newest = candidates[-1]
    changed = what_changed(read_identity(newest), identity)
    if changed:
        return None, f"not resuming unfinished run {newest.name}: its {' and '.join(changed)} changed; starting afresh"
    return newest, None


def finish(run_dir: Path) -> None:
    """The markers go before the run is published: a published run holds only its outputs."""
    shutil.rmtree(run_dir / RESUME, ignore_errors=True)
