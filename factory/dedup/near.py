"""Near-duplicate pairs: MinHash LSH buckets, candidate pairs, and their verification.

Steps over tables on disk, each partitioned by what the next one groups on:
1. every live document's band keys (bucket, key), by bucket;
2. per bucket partition: in each bucket of two or more, a star of candidate pairs from its smallest
   key to every other member, by the star's centre ``u``;
3. per ``u`` partition: distinct pairs, with ``u``'s signature attached, by ``v``;
4. per ``v`` partition: ``v``'s signature attached, estimated Jaccard, and the pairs at or above the
   threshold kept: as graph edges (both directions, by node) for the duplicate clusters, and as
   (key, similarity) rows for the reject details.
Signatures are read from the documents' own partitions (partitioned by key), never shuffled.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.spill import read_part, write_parts
from factory.config import FuzzyDedupConfig
from factory.dedup.components import both_directions
from factory.dedup.minhash import band_keys
from factory.dedup.partitions import batch_name, run_per_partition, total
from factory.dedup.tables import BANDS, PAIRS, SIMILARITIES, DedupWork
from factory.documents import alive_mask, document_key
from factory.passes import read_part_of_spill

SIGNATURE_COLUMNS = ["id", "source", "reject_stage", "minhash"]


def find_near_pairs(documents_root: str, fuzzy: FuzzyDedupConfig, work: DedupWork) -> tuple[int, int]:
    """Writes ``edges`` (verified pairs, both directions) and ``similarities``; returns (candidate pairs, verified
    pairs)."""
    import ray

    with work.whole_step("bands") as todo:
        if todo:
            signatures = ray.data.read_parquet(documents_root, partitioning=None).select_columns(SIGNATURE_COLUMNS)
            signatures.map_batches(spill_bands, batch_size=16384, batch_format="pyarrow", fn_kwargs={
                "root": work.table("bands"), "parts": work.parts, "num_bands": fuzzy.num_bands,
                "rows_per_band": fuzzy.rows_per_band,
            }).materialize()  # one count per batch
    tables = {name: work.table(name) for name in ("bands", "pairs_by_u", "pairs_by_v", "edges", "similarities")}
    run_per_partition(work, bucket_stars, tables=tables)
    candidates = run_per_partition(work, attach_first_signature, tables=tables,
                                   documents_root=documents_root)
    verified = run_per_partition(work, verify_pairs, tables=tables,
                                 documents_root=documents_root, threshold=fuzzy.threshold)
    return total(candidates, "pairs"), total(verified, "pairs")


def live_signatures(table: pa.Table) -> pa.Table:
    live = table.filter(pc.and_(alive_mask(table), pc.is_valid(table["minhash"])))
    return pa.table({"key": document_key(live), "minhash": live["minhash"]})


def signature_matrix(table: pa.Table, column: str = "minhash") -> np.ndarray:
    num_perm = table[column].type.list_size
    return pc.list_flatten(table[column]).to_numpy().reshape(-1, num_perm)


def spill_bands(table: pa.Table, root: str, parts: int, num_bands: int, rows_per_band: int) -> pa.Table:
    signed = live_signatures(table)
    rows = 0
    if signed.num_rows:
        buckets = band_keys(signature_matrix(signed), num_bands, rows_per_band)
        keys = signed["key"].combine_chunks().take(pa.array(np.repeat(np.arange(signed.num_rows), num_bands)))
        bands = pa.table({"bucket": pa.array(buckets.reshape(-1)), "key": keys}, schema=BANDS)
        rows = write_parts(bands, "bucket", root, parts, batch_name(signed, "key"))
    return pa.table({"rows": [rows]})


def bucket_stars(part: int, tables: dict, parts: int) -> dict:
    bands = read_part(tables["bands"], part, empty=BANDS)
    heads = bands.group_by("bucket", use_threads=False).aggregate([("key", "min"), ("key", "count")])
    heads = heads.filter(pc.greater_equal(heads["key_count"], 2)).select(["bucket", "key_min"])
    members = bands.join(heads, "bucket", use_threads=False)
    pairs = members.filter(pc.not_equal(members["key"], members["key_min"]))
    pairs = pa.table({"u": pairs["key_min"], "v": pairs["key"]}, schema=PAIRS)
    return {"pairs": write_parts(pairs, "u", tables["pairs_by_u"], parts, f"from-{part}")}


def signatures_of_part(documents_root: str, part: int) -> pa.Table | None:
    """(key, minhash) of the live documents in partition ``part`` of the documents themselves."""
    documents = read_part_of_spill(documents_root, part, columns=SIGNATURE_COLUMNS)
    return live_signatures(documents) if documents is not None else None


def signatures_for(keys: pa.ChunkedArray, signed: pa.Table) -> pa.Array:
    """The signatures of ``keys``, all of them in ``signed`` (a join by lookup: Arrow's hash join cannot carry
    fixed-size lists)."""
    return signed["minhash"].combine_chunks().take(pc.index_in(keys, value_set=signed["key"].combine_chunks()))


def attach_first_signature(part: int, tables: dict, parts: int, documents_root: str) -> dict:
    pairs = read_part(tables["pairs_by_u"], part, empty=PAIRS).group_by(["u", "v"], use_threads=False).aggregate([])
    signed = signatures_of_part(documents_root, part)
    if pairs.num_rows == 0 or signed is None:
        return {"pairs": 0}
    with_u = pairs.append_column("minhash_u", signatures_for(pairs["u"], signed))
    write_parts(with_u, "v", tables["pairs_by_v"], parts, f"from-{part}")
    return {"pairs": pairs.num_rows}


def verify_pairs(part: int, tables: dict, parts: int, documents_root: str, threshold: float) -> dict:
    pairs = read_part(tables["pairs_by_v"], part)
    signed = signatures_of_part(documents_root, part)
    if pairs is None or signed is None:
        return {"pairs": 0}
    pairs = pairs.append_column("minhash_v", signatures_for(pairs["v"], signed))
    similarity = (signature_matrix(pairs, "minhash_u") == signature_matrix(pairs, "minhash_v")).mean(axis=1)
    keep = similarity >= threshold
    u, v = pairs["u"].filter(pa.array(keep)), pairs["v"].filter(pa.array(keep))
    similarity = pa.array(similarity[keep].round(4))
    edges = both_directions(u, v)
    write_parts(edges, "node", tables["edges"], parts, f"near-from-{part}")
    similarities = pa.table({"key": edges["node"], "similarity": pa.concat_arrays([similarity, similarity])},
                            schema=SIMILARITIES)
    write_parts(similarities, "key", tables["similarities"], parts, f"from-{part}")
    return {"pairs": int(keep.sum())}
