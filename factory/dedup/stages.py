"""The dedup steps of the factory pipeline: exact dedup (before the costly filters, so they never
see a second copy of a text), near dedup (after them), and the cluster columns of the output.

Both dedup stages get the documents spilled to Parquet, partitioned by document key (the pipeline
does this before a ``whole_input`` stage). They find duplicates from the key columns alone, write
their decisions partitioned the same way, and return the documents joined with them, lazily: texts
are read from the spill once more and never shuffled."""
from __future__ import annotations

from factory.config import ExactDedupConfig, FuzzyDedupConfig
from factory.dedup.components import cluster_duplicates
from factory.dedup.decisions import AddClusters, MarkExactDuplicates, MarkNearDuplicates
from factory.dedup.exact import find_exact_duplicates
from factory.dedup.near import find_near_pairs
from factory.stages.base import Stage, StageContext

EXACT, NEAR = "exact_dedup", "near_dedup"
# the decisions are joined a whole block at a time (``ray.rows_per_block`` rows): a join is a few vectorised
# lookups, so the filters' small batches would only multiply its fixed cost per call (12 -> 7 ms per 1k rows)
WHOLE_BLOCKS = {"batch_format": "pyarrow", "batch_size": None}


class ExactDedup(Stage):
    name = EXACT
    config_section = "dedup.exact"
    whole_input = True

    def __init__(self, exact: ExactDedupConfig):
        self.enabled = self.whole_input = exact.enabled  # switched off, it needs no spill and passes documents on

    def prepare(self, context: StageContext) -> None:
        if self.enabled and context.spilled is not None:
            context.found.exact_duplicates = find_exact_duplicates(context.spilled, context.dedup)

    def apply(self, ds, context: StageContext):
        if not self.enabled or context.spilled is None:
            return ds
        return ds.map_batches(MarkExactDuplicates(context.dedup), **WHOLE_BLOCKS)


class NearDedup(Stage):
    """Near duplicates, and the clusters of all duplicates (exact copies join their keeper's cluster)."""

    name = NEAR
    config_section = "dedup.fuzzy"
    whole_input = True

    def __init__(self, fuzzy: FuzzyDedupConfig):
        self.fuzzy = fuzzy
        self.whole_input = fuzzy.enabled  # off, it only clusters exact copies: their edges are on disk already

    def prepare(self, context: StageContext) -> None:
        """(After exact dedup and the filters.) With MinHash off, clusters come from exact copies alone."""
        found = context.found
        if self.fuzzy.enabled and context.spilled is not None:
            found.candidate_pairs, found.verified_pairs = find_near_pairs(context.spilled, self.fuzzy, context.dedup)
        if found.exact_duplicates == 0 and found.verified_pairs == 0:
            return
        members, found.cluster_rounds = cluster_duplicates(context.dedup)
        found.near_duplicates = members - found.exact_duplicates
        found.clusters_written = True

    def apply(self, ds, context: StageContext):
        """With MinHash off only the cluster columns change: no document is rejected here."""
        if not (self.fuzzy.enabled and context.found.clusters_written):
            return ds
        return ds.map_batches(MarkNearDuplicates(context.dedup), **WHOLE_BLOCKS)


class DupClusters(Stage):
    name = "dup_clusters"
    drops_rows = False

    def apply(self, ds, context: StageContext):
        work = context.dedup if context.found.clusters_written else None
        return ds.map_batches(AddClusters(work), **WHOLE_BLOCKS)
