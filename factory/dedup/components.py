"""Duplicate clusters: connected components of the duplicate graph, computed partition by partition.

The graph's nodes are documents; its edges are exact duplicates (document -> kept copy) and verified
near-duplicate pairs. Components are found with the large-star / small-star algorithm (Kiveris et
al., "Connected Components in MapReduce and Beyond", 2014): each operation groups edges by one
endpoint, so it is one pass over the hash-partitioned edge table with a vectorised pyarrow
group-by per partition, and it converges in O(log n) rounds. It was chosen over union-find shards
on actors because it needs no coordination between partitions, and over plain min-label
propagation because that takes as many rounds as the graph is wide. At convergence every component
is a star around its smallest key: the cluster's keeper, as dedup always chose.
"""
from __future__ import annotations

import shutil

import pyarrow as pa
import pyarrow.compute as pc

from core import progress
from core.spill import read_part, write_parts
from factory.dedup.partitions import run_per_partition, total
from factory.dedup.tables import CLUSTERS, EDGES, SIMILARITIES, DedupWork

MAX_ROUNDS = 64  # O(log n) rounds; 2**64 documents would still converge well inside this


def both_directions(node: pa.ChunkedArray, nbr: pa.ChunkedArray) -> pa.Table:
    node, nbr = node.combine_chunks(), nbr.combine_chunks()
    return pa.table({"node": pa.concat_arrays([node, nbr]), "nbr": pa.concat_arrays([nbr, node])}, schema=EDGES)


def distinct_edges(root: str, part: int) -> pa.Table:
    return read_part(root, part, empty=EDGES).group_by(["node", "nbr"], use_threads=False).aggregate([])


def large_star(part: int, edges_root: str, out_root: str, parts: int) -> dict:
    """Each node links its larger neighbours to the smallest of itself and its neighbours."""
    edges = distinct_edges(edges_root, part)
    smallest = edges.group_by("node", use_threads=False).aggregate([("nbr", "min")])
    edges = edges.join(smallest, "node", use_threads=False)
    larger = edges.filter(pc.greater(edges["nbr"], edges["node"]))
    least = pc.min_element_wise(larger["node"], larger["nbr_min"])
    changed = int(pc.sum(pc.not_equal(least, larger["node"])).as_py() or 0)
    write_parts(pa.table({"node": larger["nbr"], "nbr": least}, schema=EDGES), "node", out_root, parts, f"from-{part}")
    return {"changed": changed}


def small_star(part: int, edges_root: str, out_root: str, parts: int) -> dict:
    """Each node links itself and its smaller neighbours (all it was given) to the smallest of them."""
    edges = distinct_edges(edges_root, part)
    smallest = edges.group_by("node", use_threads=False).aggregate([("nbr", "min"), ("nbr", "count")])
    changed = int(pc.sum(pc.greater(smallest["nbr_count"], 1)).as_py() or 0)
    edges = edges.join(smallest, "node", use_threads=False)
    others = edges.filter(pc.not_equal(edges["nbr"], edges["nbr_min"]))
    linked = pa.concat_tables([
        pa.table({"node": others["nbr"], "nbr": others["nbr_min"]}, schema=EDGES),
        pa.table({"node": smallest["node"], "nbr": smallest["nbr_min"]}, schema=EDGES),
    ])
    write_parts(both_directions(linked["node"], linked["nbr"]), "node", out_root, parts, f"from-{part}")
    return {"changed": changed}


def cluster_rows(part: int, edges_root: str, similarities_root: str, clusters_root: str, best_root: str,
                 parts: int) -> dict:
    """From the converged stars: (key, cluster, size) for every member and keeper, and each document's
    best similarity to a near duplicate."""
    edges = distinct_edges(edges_root, part)
    outward = edges.filter(pc.greater(edges["nbr"], edges["node"]))  # a keeper's rows: one per member
    sizes = outward.group_by("node", use_threads=False).aggregate([("nbr", "count")])
    members = outward.join(sizes, "node", use_threads=False)
    size = pc.add(members["nbr_count"], 1)
    rows = pa.concat_tables([
        pa.table({"key": members["nbr"], "cluster": members["node"], "size": size}, schema=CLUSTERS),
        pa.table({"key": sizes["node"], "cluster": sizes["node"], "size": pc.add(sizes["nbr_count"], 1)},
                 schema=CLUSTERS),
    ])
    write_parts(rows, "key", clusters_root, parts, f"from-{part}")
    best = read_part(similarities_root, part, empty=SIMILARITIES)
    best = best.group_by("key", use_threads=False).aggregate([("similarity", "max")])
    write_parts(best.rename_columns(["key", "similarity"]), "key", best_root, parts, f"from-{part}")
    return {"members": members.num_rows}


def cluster_duplicates(work: DedupWork) -> tuple[int, int]:
    """Writes ``clusters`` and ``best_similarity``; returns how many documents are not their cluster's keeper,
    and the rounds it took."""
    current = work.table("edges")
    for round_ in range(1, MAX_ROUNDS + 1):
        large_name, small_name = f"large_star_{round_}", f"small_star_{round_}"  # tables and ledger labels
        large, small = work.table(large_name), work.table(small_name)
        changed = total(run_per_partition(work, large_star, large_name, edges_root=current, out_root=large), "changed")
        changed += total(run_per_partition(work, small_star, small_name, edges_root=large, out_root=small), "changed")
        for done in (current, large):
            shutil.rmtree(done, ignore_errors=True)  # each round's input is spent: keep the disk at one edge table
        current = small
        progress.say(f"dedup clusters: round {round_}, {changed} edges changed")
        if changed == 0:
            break
    else:
        raise RuntimeError(f"dedup clusters did not converge in {MAX_ROUNDS} rounds")
    stats = run_per_partition(work, cluster_rows, edges_root=current, similarities_root=work.table("similarities"),
                              clusters_root=work.table("clusters"), best_root=work.table("best_similarity"))
    return total(stats, "members"), round_
