"""Where a prepare run keeps what its phases made, so a killed run started again continues from it
(docs/RESUME.md): the phases that stream the corpus write it in block groups (``factory.passes.write_groups``),
a phase that needs the whole corpus at once (mixing, grouping: a shuffle) writes its output whole; each marked
in the run's ledger once written, and read back from the scratch folder by the next phase and by a rerun.

A run that is not resumed (an output on object storage) keeps them in Ray's object store, as before: its
scratch would be the driver's own folder."""
from __future__ import annotations

import math
import shutil
from typing import Callable

from core import progress
from core.run import PublishedRun
from factory.passes import write_groups, write_whole


def file_groups(n_files: int, n_rows: int, min_rows: int) -> list[list[int]]:
    """The input files in groups of consecutive ones, each about ``min_rows`` rows or more (as the factory's
    first pass, a file is never cut)."""
    per_group = max(1, math.ceil(min_rows / max(n_rows / max(n_files, 1), 1)))
    return [list(range(start, min(start + per_group, n_files))) for start in range(0, n_files, per_group)]


class Phases:
    def __init__(self, run: PublishedRun):
        self.ledger = run.ledger
        self.root = run.scratch() / "phases" if run.ledger.root is not None else None

    def in_groups(self, name: str, groups: list[list], build: Callable):
        """The rows of ``build(group)`` for every group, each group written and marked in turn (a rerun skips
        those marked): read back, all of them."""
        if self.root is None:
            return build([part for group in groups for part in group]).materialize()
        root = self.root / name
        write_groups(self.ledger, name, "block groups", groups, lambda index, group: write_whole(build(group), root,
                                                                                                 str(index)))
        return read_back(root)

    def whole(self, name: str, make: Callable) -> tuple:
        """(dataset, stats) of ``make() -> (dataset, stats)`` (stats: JSON), written whole and marked; a rerun
        that finds it marked reads it back and the stats it was marked with, without calling ``make``."""
        done = self.ledger.done(name)
        if self.root is not None and done is not None:
            return read_back(self.root / name), done
        self.ledger.begin(name)
        ds, stats = make()
        if self.root is None:
            return ds.materialize(), stats
        write_whole(ds, self.root, name)
        self.ledger.mark(name, stats)
        return read_back(self.root / name), stats

    def begin_last(self, name: str, partial, outputs: list[str]) -> None:
        """The last phase is under way: one unit, redone whole after a kill, so first the ``outputs`` (folders
        in ``partial``) that a killed attempt at it left are removed (a new write would add files beside them)."""
        self.ledger.begin(name)
        for folder in outputs:
            shutil.rmtree(partial / folder, ignore_errors=True)

    def clear(self) -> None:
        """Before publishing: the published run holds only its outputs."""
        if self.root is not None:
            shutil.rmtree(self.root.parent, ignore_errors=True)


def read_back(folder):
    """A phase's output, materialised as the phases always kept it: the next phases read it several times, and
    a sort of a lazy read (no block count known) would cut it into Ray's default 200 partitions."""
    import ray

    stage = progress.current_stage()
    with progress.stage(f"{stage.label if stage else 'phase'}: read back", unit=None):
        return ray.data.read_parquet(str(folder)).materialize()
