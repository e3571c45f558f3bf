"""In-context grouping (in-context pretraining, Shi et al. 2023): chain related documents so each
packed context window holds neighbours.

Within one partition (curriculum bucket x coarse cluster, run by ``groupby().map_groups``) we build
the kNN graph with scikit-learn and walk it greedily: from a document, go to its most similar
unvisited neighbour; when all its neighbours are visited, jump to a random unvisited document.
Each document is visited once. The walk is our own: no library traverses a kNN graph this way.
The chain is then cut into groups of about ``group_tokens`` tokens, the unit shuffled inside a bucket.
Rows are packed across group edges, so groups span several rows: with one row's worth per group,
nearly every row would hold the tail of one group and the head of an unrelated one.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from factory.prepare.embedding import vectors_of
from factory.prepare.hashing import key_fraction


def nearest_neighbours(vectors: np.ndarray, k: int) -> np.ndarray:
    """(n, min(k, n-1)) indices of each row's most similar other rows, most similar first."""
    from sklearn.neighbors import NearestNeighbors

    n = len(vectors)
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros((n, 0), dtype=np.int64)
    _, index = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(vectors).kneighbors(vectors)
    # drop each row itself (normally first; with exact duplicates it may sit elsewhere)
    return np.array([[j for j in row if j != i][:k] for i, row in enumerate(index)], dtype=np.int64)


def greedy_chain(neighbours: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A visiting order over all nodes of the kNN graph, each exactly once."""
    n = len(neighbours)
    visited = np.zeros(n, dtype=bool)
    jumps = iter(rng.permutation(n))
    order, current = [], None
    while len(order) < n:
        if current is None:
            current = next(j for j in jumps if not visited[j])
        visited[current] = True
        order.append(current)
        current = next((int(j) for j in neighbours[current] if not visited[j]), None)
    return np.asarray(order, dtype=np.int64)


def cut_into_groups(n_tokens: np.ndarray, group_tokens: int) -> np.ndarray:
    """Group index per position: a new group starts when the next document would overflow ``group_tokens``."""
    groups = np.zeros(len(n_tokens), dtype=np.int64)
    group, filled = 0, 0
    for i, size in enumerate(n_tokens):
        if filled and filled + size > group_tokens:
            group, filled = group + 1, 0
        groups[i] = group
        filled += size
    return groups


def with_groups(table: pa.Table, group_ids: list[str], positions: np.ndarray, seed: int) -> pa.Table:
    table = table.append_column("group_id", pa.array(group_ids, pa.string()))
    table = table.append_column("group_position", pa.array(positions, pa.int32()))
    return table.append_column("group_rank", pa.array(key_fraction(group_ids, f"shuffle-{seed}"), pa.float64()))


def chain_partition(table: pa.Table, neighbours: int, group_tokens: int, seed: int) -> pa.Table:
    """map_groups UDF: reorder one partition along the greedy chain and label its groups."""
    if table.num_rows == 0:
        return with_groups(table, [], np.zeros(0, dtype=np.int32), seed)
    bucket, cluster = table["curriculum_bucket"][0].as_py(), table["coarse_cluster"][0].as_py()
    # rows arrive in whatever order the shuffle delivered them: fix it, so a rerun groups alike
    table = table.sort_by([("source", "ascending"), ("id", "ascending")])
    rng = np.random.default_rng([seed, bucket, cluster])
    order = greedy_chain(nearest_neighbours(vectors_of(table["embedding"]), neighbours), rng)
    table = table.take(pa.array(order))
    groups = cut_into_groups(table["n_tokens"].to_numpy(), group_tokens)
    starts = np.searchsorted(groups, groups, side="left")
    group_ids = [f"{bucket}.{cluster}.{g}" for g in groups]
    return with_groups(table, group_ids, np.arange(len(groups)) - starts, seed)


def singleton_groups_batch(batch: pa.Table, seed: int) -> pa.Table:
    """Grouping off: each document is its own group, so the sort shuffles documents inside buckets."""
    keys = [f"{source}/{doc_id}" for source, doc_id in zip(batch["source"].to_pylist(), batch["id"].to_pylist())]
    return with_groups(batch, keys, np.zeros(batch.num_rows, dtype=np.int32), seed)
