"""Exact and near-duplicate decisions, found with Ray Data's shuffle.

Both follow one shape: a Ray Data ``groupby(key).count()`` over every live document finds
the keys shared by two or more documents; only the members of those groups (ids and, for
near duplicates, signatures) come back to the driver, where keepers are chosen. The
driver therefore holds the duplicates, never the corpus.

Keepers are deterministic: the smallest id of each group (exact) or connected component
(near). Near-duplicate candidates from LSH banding are verified with the full signature
(estimated Jaccard >= threshold) before they join a component.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from factory.config import FuzzyDedupConfig
from factory.dedup.minhash import band_keys
from factory.documents import alive_mask, document_key


def live_keys(table: pa.Table) -> pa.Table:
    """Dedup keys of live rows; ``id`` is the document key (id and source), as ids repeat across sources."""
    live = table.filter(alive_mask(table))
    return pa.table({"id": document_key(live), "text_hash": live["text_hash"], "minhash": live["minhash"]})


def collect(ds) -> pa.Table | None:
    import ray

    tables = [t for t in ray.get(ds.to_arrow_refs()) if t.num_rows]
    return pa.concat_tables(tables) if tables else None


def rows_with_values(table: pa.Table, column: str, values_ref) -> pa.Table:
    import ray

    values = ray.get(values_ref) if isinstance(values_ref, ray.ObjectRef) else values_ref
    return table.filter(pc.is_in(table[column], value_set=values))


def shared_keys(ds, column: str, partitions: int) -> pa.Array:
    """Values of ``column`` carried by two or more rows (Ray Data groupby + count)."""
    counts = ds.groupby(column, num_partitions=partitions).count()
    shared = counts.map_batches(lambda t: t.filter(pc.greater_equal(t["count()"], 2)), batch_format="pyarrow")
    table = collect(shared.select_columns([column]))
    return table[column].combine_chunks() if table is not None else pa.array([], ds.schema().base_schema.field(column).type)


def members_of(ds, column: str, keys: pa.Array, columns: list[str]) -> pa.Table | None:
    import ray

    keys_ref = ray.put(keys)
    found = ds.map_batches(
        rows_with_values, batch_format="pyarrow", fn_kwargs={"column": column, "values_ref": keys_ref}
    )
    return collect(found.select_columns(columns))


@dataclass
class Duplicates:
    """Rejected duplicates (id -> keeper) and, for reporting, a similarity per rejected id."""

    ids: list[str]
    keepers: list[str]
    similarity: list[float]

    @classmethod
    def none(cls) -> "Duplicates":
        return cls([], [], [])


def exact_duplicates(keys_ds, partitions: int) -> Duplicates:
    members = members_of(keys_ds, "text_hash", shared_keys(keys_ds, "text_hash", partitions), ["id", "text_hash"])
    if members is None:
        return Duplicates.none()
    keepers = members.group_by("text_hash").aggregate([("id", "min")]).rename_columns(["text_hash", "keeper"])
    joined = members.join(keepers, "text_hash")
    dups = joined.filter(pc.not_equal(joined["id"], joined["keeper"]))
    return Duplicates(dups["id"].to_pylist(), dups["keeper"].to_pylist(), [1.0] * dups.num_rows)


def explode_bands(table: pa.Table, num_bands: int, rows_per_band: int) -> pa.Table:
    table = table.filter(pc.is_valid(table["minhash"]))
    if table.num_rows == 0:
        return pa.table({"bucket": pa.array([], pa.uint64()), "id": pa.array([], pa.string())})
    num_perm = table["minhash"].type.list_size
    signature = pc.list_flatten(table["minhash"]).to_numpy().reshape(-1, num_perm)
    keys = band_keys(signature, num_bands, rows_per_band)
    ids = table["id"].combine_chunks().take(pa.array(np.repeat(np.arange(table.num_rows), num_bands)))
    return pa.table({"bucket": pa.array(keys.reshape(-1)), "id": ids})


def candidate_pairs(members: pa.Table) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Star edges (first member, other member) inside each LSH bucket, as node indices."""
    node_ids = pc.unique(members["id"]).sort()
    node_index = pc.index_in(members["id"], value_set=node_ids).to_numpy()
    buckets = members["bucket"].to_numpy()
    order = np.lexsort((node_index, buckets))
    buckets, node_index = buckets[order], node_index[order]
    starts = np.r_[True, buckets[1:] != buckets[:-1]]
    head = node_index[np.flatnonzero(starts)[np.cumsum(starts) - 1]]
    u, v = head[~starts], node_index[~starts]
    pairs = np.unique(np.stack([np.minimum(u, v), np.maximum(u, v)], axis=1), axis=0)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return pairs[:, 0], pairs[:, 1], node_ids.to_pylist()


def near_duplicates(keys_ds, fuzzy: FuzzyDedupConfig, partitions: int) -> tuple[Duplicates, dict]:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    exploded = keys_ds.map_batches(
        explode_bands, batch_format="pyarrow",
        fn_kwargs={"num_bands": fuzzy.num_bands, "rows_per_band": fuzzy.rows_per_band},
    )
    members = members_of(exploded, "bucket", shared_keys(exploded, "bucket", partitions), ["bucket", "id"])
    stats = {"candidate_pairs": 0, "verified_pairs": 0}
    if members is None:
        return Duplicates.none(), stats
    u, v, node_ids = candidate_pairs(members)
    stats["candidate_pairs"] = int(len(u))
    signed = members_of(keys_ds, "id", pa.array(node_ids, pa.string()), ["id", "minhash"])
    order = pc.index_in(pa.array(node_ids, pa.string()), value_set=signed["id"]).to_numpy()
    num_perm = signed["minhash"].type.list_size
    signature = pc.list_flatten(signed["minhash"]).to_numpy().reshape(-1, num_perm)[order]
    similarity = (signature[u] == signature[v]).mean(axis=1)
    verified = similarity >= fuzzy.threshold
    u, v, similarity = u[verified], v[verified], similarity[verified]
    stats["verified_pairs"] = int(len(u))
    n = len(node_ids)
    graph = coo_matrix((np.ones(len(u)), (u, v)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    # node ids are sorted, so the first node seen in each component is its smallest id
    keeper_of_component = np.full(component.max() + 1 if n else 0, n)
    np.minimum.at(keeper_of_component, component, np.arange(n))
    keeper = keeper_of_component[component]
    best_similarity = np.zeros(n)
    np.maximum.at(best_similarity, u, similarity)
    np.maximum.at(best_similarity, v, similarity)
    rejected = np.flatnonzero(keeper != np.arange(n))
    return (
        Duplicates(
            [node_ids[i] for i in rejected],
            [node_ids[keeper[i]] for i in rejected],
            best_similarity[rejected].round(4).tolist(),
        ),
        stats,
    )
