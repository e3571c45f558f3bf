"""Tables hash-partitioned by a key into Parquet files: how dedup shuffles without the object store.

Every dedup table (keys, band buckets, candidate pairs, graph edges, decisions) lives in
``root/part=K/*.parquet``, rows placed by a hash of the column the next step groups or joins on.
A step then runs one Ray task per partition, each reading only its own partition from disk and
doing its grouping and joining with vectorised pyarrow. This is how datatrove runs dedup too (files
per bucket). We chose it over Ray Data's groupby/join because a dedup needs a dozen shuffles and each
took 3 to 20 s for 50k keys on this 2-core machine (Ray Data's join also needs polars); a pass here
is one Ray task per partition. The driver only ever sees one
small stats row per task. Task memory is one partition: the run picks enough partitions.

Group-bys and joins inside a task run single-threaded (``use_threads=False``): there is already one
task per CPU, and Arrow 26's threaded Acero failed in a Ray worker ("thread index 10 is out of range").

The writer and reader are ``core.spill``'s (a step writes several outputs, each partitioned by its own
key); file names are deterministic per (step, source), so a retried Ray task overwrites its own files
instead of adding rows twice. What is dedup's own is here: the join of documents to decisions, and one
Ray task per partition.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from core.hashing import key_hashes
from core.resume import Ledger
from core.spill import read_part
from core.watchdog import ray_tasks_watched
from factory.dedup.tables import DedupWork


def batch_name(table: pa.Table, column: str) -> str:
    """A file name that is the same each time this batch is written (a Ray retry) and differs between batches:
    a hash of all the batch's document keys (a key is in one batch only)."""
    return f"b{xxhash.xxh3_64_hexdigest(chr(1).join(table[column].to_pylist()).encode())}"


@lru_cache(maxsize=8)
def indexed_part(root: str, part: int, schema: pa.Schema) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """A decision partition and its keys' hashes, sorted (with the row of each), read once per worker process:
    the documents stream past it batch by batch, and each batch looks its keys up by binary search."""
    # one chunk: Arrow's take on a table of several chunks (a few per file read back) costs the whole table per
    # call, which made the joins grow with documents x partition size (4.3 ms vs 0.05 ms a call at 500k rows)
    table = read_part(root, part, empty=schema).combine_chunks()
    hashes = key_hashes(table["key"])
    order = np.argsort(hashes, kind="stable")
    return table, hashes[order], order


def left_join(keys: pa.ChunkedArray, root: str | Path, parts: int, schema: pa.Schema) -> pa.Table:
    """The rows of the partitioned table at ``root`` whose ``key`` equals ``keys`` (aligned with them; nulls
    where none). A batch of a partitioned dataset covers one or a few partitions; only those are read, and each
    gives only its own keys' rows (its table is never concatenated with another: see ``indexed_part``)."""
    keys = keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys
    hashes = key_hashes(keys)
    part = (hashes % np.uint64(parts)).astype(np.int64)
    pieces, positions = [], []
    for p in np.unique(part):
        mine = np.flatnonzero(part == p)
        pieces.append(lookup(indexed_part(str(root), int(p), schema), keys.take(pa.array(mine)), hashes[mine]))
        positions.append(mine)
    if not pieces:
        return schema.empty_table()
    # back in the order of ``keys``: the pieces hold each partition's keys in turn
    return pa.concat_tables(pieces).take(pa.array(np.argsort(np.concatenate(positions), kind="stable")))


def lookup(indexed: tuple[pa.Table, np.ndarray, np.ndarray], keys: pa.Array, hashes: np.ndarray) -> pa.Table:
    """The rows of one indexed partition whose ``key`` equals ``keys`` (nulls where none)."""
    table, sorted_hashes, order = indexed
    rows = np.full(len(keys), -1, dtype=np.int64)
    if table.num_rows:
        at = np.minimum(np.searchsorted(sorted_hashes, hashes), len(sorted_hashes) - 1)
        found = sorted_hashes[at] == hashes
        rows[found] = order[at[found]]
    joined = table.take(pa.array(rows, mask=rows < 0))
    collided = pc.fill_null(pc.not_equal(joined["key"], keys), False)
    if pc.any(collided).as_py():  # two keys with one 64-bit hash: look those rows up by value instead
        exact = table.take(pc.index_in(keys, value_set=table["key"]))
        joined = pa.Table.from_arrays(
            [pc.if_else(collided, exact[c], joined[c]) for c in table.column_names], schema=table.schema)
    return joined


def run_per_partition(work: DedupWork, step: Callable[..., dict], label: str | None = None, **kwargs) -> list[dict]:
    """Run ``step(part, parts=parts, **kwargs) -> stats`` once per partition, as plain Ray tasks (a Ray Data
    pipeline would cost a second of start-up per step for nothing: each task reads its own files); the
    stats, one row per partition, bounded by the partition count. Each task marks its partition finished in the
    run's ledger (as ``label``, the step's name by default) once its files are written; a resumed run runs only
    the partitions not marked (a partition under way is run again, replacing its own files)."""
    import ray

    label = label or step.__name__
    stats = {part: work.ledger.done(f"{label}/{part}") for part in range(work.parts)}
    work.ledger.plan(label, "partitions", list(range(work.parts)))
    task = ray.remote(num_cpus=1)(marked).options(name=f"dedup.{step.__name__}")
    todo = [part for part, done in stats.items() if done is None]
    refs = [task.remote(step, work.ledger, label, part, parts=work.parts, **kwargs) for part in todo]
    stats.update(zip(todo, ray_tasks_watched(refs, f"dedup.{step.__name__}")))
    return [stats[part] for part in range(work.parts)]


def marked(step: Callable[..., dict], ledger: Ledger, label: str, part: int, **kwargs) -> dict:
    """``step`` for one partition, then its marker (last: its files are whole by then)."""
    ledger.begin(f"{label}/{part}")
    stats = step(part, **kwargs)
    ledger.mark(f"{label}/{part}", stats)
    return stats


def total(stats: list[dict], key: str) -> int:
    return int(sum(row[key] for row in stats))
