"""Exact duplicates: documents with the same ``text_hash``, the smallest key of each group kept.

Two steps over tables on disk: every live document's (key, text_hash), partitioned by the hash;
then, per partition, the groups of two or more and their keeper, written as (key, keeper) by key
for the documents to join against, and as edges of the duplicate clusters (``components``).
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from core.spill import read_part, write_parts
from factory.dedup.components import both_directions
from factory.dedup.partitions import batch_name, run_per_partition, total
from factory.dedup.tables import EXACT_KEYS, DedupWork
from factory.documents import alive_mask, document_key

KEY_COLUMNS = ["id", "source", "reject_stage", "text_hash"]


def find_exact_duplicates(documents_root: str, work: DedupWork) -> int:
    """Writes ``exact_dups`` (key -> keeper) and returns how many documents are exact duplicates."""
    import ray

    with work.whole_step("exact_keys") as todo:
        if todo:
            keys = ray.data.read_parquet(documents_root, partitioning=None).select_columns(KEY_COLUMNS)
            keys.map_batches(spill_text_hashes, batch_size=65536, batch_format="pyarrow",
                             fn_kwargs={"root": work.table("exact_keys"), "parts": work.parts}).materialize()
    stats = run_per_partition(work, exact_groups, keys_root=work.table("exact_keys"),
                              dups_root=work.table("exact_dups"), edges_root=work.table("edges"))
    return total(stats, "duplicates")


def spill_text_hashes(table: pa.Table, root: str, parts: int) -> pa.Table:
    live = table.filter(alive_mask(table))
    keys = pa.table({"key": document_key(live), "text_hash": live["text_hash"]}, schema=EXACT_KEYS)
    return pa.table({"rows": [write_parts(keys, "text_hash", root, parts, batch_name(keys, "key"))]})


def exact_groups(part: int, keys_root: str, dups_root: str, edges_root: str, parts: int) -> dict:
    keys = read_part(keys_root, part, empty=EXACT_KEYS)
    keepers = keys.group_by("text_hash", use_threads=False).aggregate([("key", "min")])
    keepers = keepers.rename_columns(["text_hash", "keeper"])
    joined = keys.join(keepers, "text_hash", use_threads=False)
    dups = joined.filter(pc.not_equal(joined["key"], joined["keeper"])).select(["key", "keeper"])
    write_parts(both_directions(dups["key"], dups["keeper"]), "node", edges_root, parts, f"exact-from-{part}")
    return {"duplicates": write_parts(dups, "key", dups_root, parts, f"from-{part}")}
