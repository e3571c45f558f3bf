"""The dedup decisions as the factory made them before dedup was distributed, computed in one process
on a whole in-memory table: the reference the distributed dedup must agree with exactly.

Exact: groups of equal ``text_hash`` among live documents, the smallest key kept. Near: live documents'
LSH band buckets, a star of candidate pairs from each bucket's smallest key, pairs verified at
estimated Jaccard >= threshold, connected components (scipy), the smallest key kept. A document's
cluster is its near keeper's, through its exact keeper.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from factory.config import FactoryConfig
from factory.dedup.keys import DedupKeys
from factory.dedup.minhash import band_keys
from factory.documents import IN_FLIGHT_SCHEMA, alive_mask, document_key, shown_id, with_rejections
from factory.stages.heuristic_filters import HeuristicFilters
from factory.stages.normalise import Normalise
from factory.stages.redact import Redact
from factory.stages.validate import Validate


def in_flight(rows: list[dict]) -> pa.Table:
    """Documents (id, text, source, domain) as the factory's in-flight table."""
    columns = {name: [row.get(name) for row in rows] for name in IN_FLIGHT_SCHEMA.names}
    return pa.table(columns, schema=IN_FLIGHT_SCHEMA)


def exact_keepers(table: pa.Table) -> dict[str, str]:
    live = table.filter(alive_mask(table))
    keys = pa.table({"key": document_key(live), "text_hash": live["text_hash"]})
    keepers = keys.group_by("text_hash").aggregate([("key", "min")])
    joined = keys.join(keepers, "text_hash")
    return {k: m for k, m in zip(joined["key"].to_pylist(), joined["key_min"].to_pylist()) if k != m}


def near_keepers(table: pa.Table, config: FactoryConfig) -> dict[str, tuple[str, float]]:
    fuzzy = config.dedup.fuzzy
    live = table.filter(pc.and_(alive_mask(table), pc.is_valid(table["minhash"])))
    node_ids = sorted(document_key(live).to_pylist())
    if not node_ids:
        return {}
    index = {key: i for i, key in enumerate(node_ids)}
    signature = pc.list_flatten(live["minhash"]).to_numpy().reshape(live.num_rows, -1)
    order = np.array([index[k] for k in document_key(live).to_pylist()])
    signature = signature[np.argsort(order)]
    buckets = band_keys(signature, fuzzy.num_bands, fuzzy.rows_per_band)
    members: dict[int, list[int]] = {}
    for node, row in enumerate(buckets):
        for bucket in row:
            members.setdefault(int(bucket), []).append(node)
    pairs = {(min(nodes), other) for nodes in members.values() if len(nodes) > 1 for other in nodes if other != min(nodes)}
    u, v = (np.array(side, dtype=np.int64) for side in zip(*pairs)) if pairs else (np.zeros(0, np.int64),) * 2
    similarity = (signature[u] == signature[v]).mean(axis=1).round(4) if len(u) else np.zeros(0)
    verified = similarity >= fuzzy.threshold
    u, v, similarity = u[verified], v[verified], similarity[verified]
    n = len(node_ids)
    _, component = connected_components(coo_matrix((np.ones(len(u)), (u, v)), shape=(n, n)), directed=False)
    keeper = {c: min(np.flatnonzero(component == c)) for c in np.unique(component)}
    best = np.zeros(n)
    np.maximum.at(best, u, similarity)
    np.maximum.at(best, v, similarity)
    return {node_ids[i]: (node_ids[keeper[component[i]]], best[i]) for i in range(n) if keeper[component[i]] != i}


def mark(table: pa.Table, decisions: dict[str, tuple[str, str, str]]) -> pa.Table:
    found = [decisions.get(k) for k in document_key(table).to_pylist()]
    return with_rejections(table, None, [d and d[1] for d in found], [d and d[2] for d in found],
                           stages=[d and d[0] for d in found])


def reference_outcomes(rows: list[dict], config: FactoryConfig) -> dict[tuple[str, str], tuple]:
    """(source, id) -> ("kept", dup_cluster, dup_cluster_size) or (stage, reason, detail)."""
    table = in_flight(rows)
    for stage in (Validate, Normalise, Redact, DedupKeys):
        table = stage.from_config(config)(table)
    exact = exact_keepers(table) if config.dedup.exact.enabled else {}
    table = mark(table, {k: ("exact_dedup", "exact_duplicate", f"same normalised text as {shown_id(m)}")
                         for k, m in exact.items()})
    table = HeuristicFilters.from_config(config)(table)
    near = near_keepers(table, config) if config.dedup.fuzzy.enabled else {}
    table = mark(table, {k: ("near_dedup", "near_duplicate", f"cluster kept as {shown_id(m)}; estimated Jaccard {s:.2f}")
                         for k, (m, s) in near.items()})
    final = {k: near.get(m, (m, 0))[0] for k, m in exact.items()} | {k: m for k, (m, _) in near.items()}
    sizes: dict[str, int] = {}
    for cluster in final.values():
        sizes[cluster] = sizes.get(cluster, 1) + 1
    outcomes = {}
    for row, key in zip(table.to_pylist(), document_key(table).to_pylist()):
        if row["reject_stage"] is not None:
            outcome = (row["reject_stage"], row["reject_reason"], row["reject_detail"])
        else:
            cluster = final.get(key, key)
            outcome = ("kept", shown_id(cluster), sizes.get(cluster, 1))
        outcomes[(row["source"], row["id"])] = outcome
    return outcomes
