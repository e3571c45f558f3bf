"""The streaming passes of a factory run, in block groups a killed run resumes by (docs/RESUME.md).

A pass (the row stages between two spills) runs one block group at a time: the first pass's groups are runs of
input files (``ReadSources.block_groups``), a later pass's groups are runs of partitions of the spill it reads.
Each group is spilled to ``<spill>/.<g>.tmp``, renamed to ``<spill>/<g>`` whole (one atomic step), then marked
in the run's ledger: a rerun skips marked groups and writes a group under way again from the start. A group is
at least ``ray.blocks_per_group`` blocks per CPU (``StageContext.rows_per_group``), so one group at a time keeps
every CPU busy; each group is one Ray Data execution, whose start and tail cost a few seconds: fewer, larger
groups cost less, smaller ones redo less after a kill.
"""
from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core import progress
from core.resume import Ledger
from core.spill import part_of
from factory.documents import alive_mask, document_key
from factory.stages.base import StageContext


@dataclass
class Pass:
    """A streaming pass: its units and the lazy dataset of each."""

    groups: list  # the units, each a JSON-able list (of file ranges, of partitions)
    what: str  # what a unit is, for the progress line: "block groups", "partitions"
    build: Callable  # group -> the lazy dataset of that group's rows, every fused stage applied

    def then(self, stage, context: StageContext) -> "Pass":
        build = self.build
        return Pass(self.groups, self.what, lambda group: stage.apply(build(group), context))

    def whole(self):
        """Every group's rows as one lazy dataset (the final write reads them all): one group of all the groups'
        parts, so one read, not a union of per-group datasets each re-blocked apart (a union of four made the
        write of 1,200 documents take 145 s on a loaded 2-CPU machine)."""
        return self.build([part for group in self.groups for part in group])


def spill(current: Pass, context: StageContext, before: str) -> Pass:
    """Run ``current`` group by group into the spill before stage ``before``, partitioned by document key; the
    next pass reads it a partition at a time. The previous spill, now read into this one, is deleted."""
    name = f"documents_before_{before}"
    root = context.dedup.root / name
    rows = write_groups(context.dedup.ledger, name, current.what, current.groups,
                        lambda index, group: spill_group(current.build(group), root, index, context.dedup.parts))
    if context.spilled:
        shutil.rmtree(context.spilled, ignore_errors=True)
    if rows == 0:  # no documents at all (empty inputs): nothing to deduplicate
        context.spilled = None
        return current
    context.spilled = str(root)
    return Pass(partition_groups(context.dedup.parts, rows, context.rows_per_group), "partition groups",
                lambda parts: read_spilled_parts(root, parts, context))


def write_groups(ledger: Ledger, name: str, what: str, groups: list, write: Callable[[int, list], int]) -> int:
    """Each group of a pass not yet marked in ``ledger`` written (``write(index, group)`` -> its rows), then
    marked, one after another; returns the rows of all groups. The groups are fixed at the pass's first start."""
    groups = ledger.plan(name, what, groups)
    rows = 0
    for index, group in enumerate(groups):
        done = ledger.done(f"{name}/{index}")
        if done is None:
            ledger.begin(f"{name}/{index}")
            done = {"rows": write(index, group)}
            ledger.mark(f"{name}/{index}", done)
            stage = progress.current_stage()
            progress.say(f"{stage.label if stage else name}: {what} {index + 1}/{len(groups)} done")
        rows += done["rows"]
    return rows


def partition_groups(parts: int, rows: int, min_rows: int) -> list[list[int]]:
    """The spill's partitions in groups of consecutive ones, each about ``min_rows`` rows or more (a key's
    hash spreads the rows evenly over the partitions)."""
    per_group = max(1, math.ceil(min_rows / max(rows / parts, 1)))
    return [list(range(start, min(start + per_group, parts))) for start in range(0, parts, per_group)]


def spill_group(ds, root: Path, index: int, parts: int) -> int:
    """One group written whole into ``root/<index>/part=K/``, or not at all; returns its rows."""
    return write_whole(ds.map_batches(with_partition, batch_format="pyarrow", fn_kwargs={"parts": parts}),
                       root, str(index), partition_cols=["part"], compression="zstd", min_bytes_per_file=16 << 20)


def write_whole(ds, root: Path, name: str, **parquet_options) -> int:
    """``ds`` written as Parquet into ``root/<name>`` whole (written to ``root/.<name>.tmp``, then renamed: one
    atomic step), or not at all; returns its rows."""
    tmp, final = root / f".{name}.tmp", root / name
    shutil.rmtree(tmp, ignore_errors=True)  # what a killed attempt left
    shutil.rmtree(final, ignore_errors=True)
    ds.write_parquet(str(tmp), **parquet_options)
    tmp.mkdir(parents=True, exist_ok=True)
    rows = sum(pq.read_metadata(f).num_rows for f in tmp.rglob("*.parquet"))
    tmp.rename(final)
    return rows


def part_files(root: str | Path, part: int) -> list[str]:
    """The files of partition ``part`` in a spill, over all its groups."""
    return sorted(str(f) for f in Path(root).glob(f"*/part={part}/*.parquet"))


def read_part_of_spill(root: str | Path, part: int, columns: list[str] | None = None) -> pa.Table | None:
    """Partition ``part`` of a spill as one table (``columns`` only, when given); None when it has no rows."""
    files = part_files(root, part)
    return pa.concat_tables(pq.read_table(f, columns=columns) for f in files) if files else None


def read_spilled_parts(root: Path, parts: list[int], context: StageContext):
    """The lazy read of some partitions of a spill, re-blocked like the input: Ray Data reads a partition's
    few large files as one block, and a block goes to one map task, so without it the next pass (the costly
    filters) ran on one CPU (10k documents: one block, one worker process)."""
    import ray

    files = [f for part in parts for f in part_files(root, part)]
    if not files:
        return ray.data.from_arrow(empty_spill(root))
    return ray.data.read_parquet(files, partitioning=None).repartition(
        target_num_rows_per_block=context.rows_per_block)


def empty_spill(root: Path) -> pa.Table:
    """No rows, with the spill's schema (a partition no document falls in)."""
    any_file = next(root.rglob("*.parquet"))
    return pq.read_schema(any_file).empty_table()


def with_partition(table: pa.Table, parts: int) -> pa.Table:
    """The spill's partition column; rejected rows lose their text (no later pass or output reads it: rejects
    carry none), so after exact dedup the spill and every pass reading it hold only live texts."""
    text = pc.if_else(alive_mask(table), table["text"], pa.scalar(None, pa.string()))
    table = table.set_column(table.schema.get_field_index("text"), "text", text)
    return table.append_column("part", pa.array(part_of(document_key(table), parts)))
