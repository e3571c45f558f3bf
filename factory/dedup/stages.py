"""The dedup steps of the factory pipeline: exact dedup (before the costly filters, so they never
see a second copy of a text), near dedup (after them), and the cluster columns of the output."""
from __future__ import annotations

from factory.config import ExactDedupConfig, FuzzyDedupConfig
from factory.dedup.decisions import add_clusters, decision_table, mark_duplicates
from factory.dedup.finding import Duplicates, exact_duplicates, live_keys, near_duplicates
from factory.stages.base import Stage, StageContext

EXACT, NEAR = "exact_dedup", "near_dedup"


class ExactDedup(Stage):
    name = EXACT
    config_section = "dedup.exact"
    whole_input = True

    def __init__(self, exact: ExactDedupConfig):
        self.enabled = exact.enabled

    def apply(self, ds, context: StageContext):
        exact = Duplicates.none()
        if self.enabled:
            keys = ds.map_batches(live_keys, batch_format="pyarrow")
            exact = exact_duplicates(keys, context.partitions)
        context.results[EXACT] = exact
        return mark_with(ds, decision_table(exact, Duplicates.none()), context)


class NearDedup(Stage):
    name = NEAR
    config_section = "dedup.fuzzy"
    whole_input = True

    def __init__(self, fuzzy: FuzzyDedupConfig):
        self.fuzzy = fuzzy

    def apply(self, ds, context: StageContext):
        near, stats = Duplicates.none(), {}
        if self.fuzzy.enabled:
            near, stats = near_duplicates(ds.map_batches(live_keys, batch_format="pyarrow"), self.fuzzy,
                                          context.partitions)
        context.results[NEAR] = near
        context.stats.update(stats)
        return mark_with(ds, decision_table(Duplicates.none(), near), context)


class DupClusters(Stage):
    """The output's ``dup_cluster`` (the kept id of a document's cluster, exact and near copies together)
    and ``dup_cluster_size``; the dedup keys are dropped."""

    name = "dup_clusters"
    drops_rows = False

    def apply(self, ds, context: StageContext):
        import ray

        table = decision_table(context.results.get(EXACT, Duplicates.none()), context.results.get(NEAR, Duplicates.none()))
        return ds.map_batches(add_clusters, fn_kwargs={"decisions_ref": ray.put(table)}, **context.batch)


def mark_with(ds, decisions, context: StageContext):
    import ray

    return ds.map_batches(mark_duplicates, fn_kwargs={"decisions_ref": ray.put(decisions)}, **context.batch)
