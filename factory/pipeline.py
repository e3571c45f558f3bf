"""The factory run, top to bottom: check inputs, clean in one streaming pass, dedup, write, account."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from factory.accounting import check_invariant, count_by, format_funnel, funnel
from factory.common.config_loading import config_hash
from factory.common.manifest import base_manifest, new_run_id
from factory.common.job import announce_finished, check_output_dir, clear_stale_partials, init_ray, timed
from factory.common.job import write_parquet
from factory.common.publish import (
    MANIFEST,
    partial_dir,
    publish,
    write_json_atomically,
)
from factory.config import FactoryConfig
from factory.dedup import Duplicates, exact_duplicates, near_duplicates
from factory.documents import REJECTS_SCHEMA, alive_mask, document_key, shown_id
from factory.sources import plan_sources, read_source
from factory.stages.decisions import add_clusters, mark_duplicates
from factory.stages.dedup_keys import dedup_keys_batch
from factory.stages.normalise import normalise_batch
from factory.stages.quality import quality_batch
from factory.stages.redact import redact_batch
from factory.stages.validate import validate_batch

KEPT_SCHEMA = pa.schema([
    ("id", pa.string()), ("text", pa.string()), ("source", pa.string()), ("domain", pa.string()),
    ("meta", pa.string()), ("dup_cluster", pa.string()), ("dup_cluster_size", pa.int64()),
])


def cleaned(plans: list[dict], config: FactoryConfig):
    """All sources read, validated, normalised, redacted and keyed for dedup in one fused streaming pass.

    Every row is kept; rejects are marked. The costly quality filters come after exact dedup,
    so they never see the second copy of a text.
    """
    datasets = [read_source(plan) for plan in plans]
    ds = datasets[0].union(*datasets[1:]) if len(datasets) > 1 else datasets[0]
    ds = ds.repartition(target_num_rows_per_block=config.ray.rows_per_block)
    batch = {"batch_format": "pyarrow", "batch_size": config.ray.batch_size}
    ds = ds.map_batches(validate_batch, fn_kwargs={"max_chars": config.limits.max_chars}, **batch)
    ds = ds.map_batches(normalise_batch, fn_kwargs={"config_json": config.normalise.model_dump_json()}, **batch)
    ds = ds.map_batches(redact_batch, fn_kwargs={"config_json": config.redact.model_dump_json()}, **batch)
    return ds.map_batches(dedup_keys_batch, fn_kwargs={"fuzzy_json": config.dedup.fuzzy.model_dump_json()}, **batch)


def live_keys(table: pa.Table) -> pa.Table:
    """Dedup keys of live rows; ``id`` is the document key (id and source), as ids repeat across sources."""
    live = table.filter(alive_mask(table))
    return pa.table({"id": document_key(live), "text_hash": live["text_hash"], "minhash": live["minhash"]})


def decision_table(exact: Duplicates, near: Duplicates) -> pa.Table:
    """document key -> (stage, reason, detail, dup_cluster, dup_cluster_size) for every document in a duplicate cluster."""
    near_keeper = dict(zip(near.ids, near.keepers))
    final = {doc: near_keeper.get(keeper, keeper) for doc, keeper in zip(exact.ids, exact.keepers)}
    final.update(near_keeper)
    sizes: dict[str, int] = {}
    for keeper in final.values():
        sizes[keeper] = sizes.get(keeper, 1) + 1
    rows = {"id": [], "stage": [], "reason": [], "detail": [], "dup_cluster": [], "dup_cluster_size": []}

    def add(doc, stage, reason, detail):
        cluster = final.get(doc, doc)
        for key, value in zip(rows, (doc, stage, reason, detail, shown_id(cluster), sizes.get(cluster))):
            rows[key].append(value)

    for doc, keeper in zip(exact.ids, exact.keepers):
        add(doc, "exact_dedup", "exact_duplicate", f"same normalised text as {shown_id(keeper)}")
    for doc, keeper, sim in zip(near.ids, near.keepers, near.similarity):
        add(doc, "near_dedup", "near_duplicate", f"cluster kept as {shown_id(keeper)}; estimated Jaccard {sim:.2f}")
    for keeper in sizes:
        if keeper not in final:
            add(keeper, None, None, None)
    return pa.table(rows, schema=pa.schema([
        ("id", pa.string()), ("stage", pa.string()), ("reason", pa.string()), ("detail", pa.string()),
        ("dup_cluster", pa.string()), ("dup_cluster_size", pa.int64()),
    ]))


def kept_rows(table: pa.Table) -> pa.Table:
    return table.filter(alive_mask(table)).select(KEPT_SCHEMA.names)


def reject_rows(table: pa.Table) -> pa.Table:
    rejected = table.filter(pc.invert(alive_mask(table)))
    return pa.Table.from_arrays(
        [rejected[c] for c in ("id", "source", "reject_stage", "reject_reason", "reject_detail")], schema=REJECTS_SCHEMA
    )


def run(config: FactoryConfig, *, overwrite: bool = False, echo=print) -> dict:
    output = Path(config.output_dir)
    digest = config_hash(config)
    finished = check_output_dir(output, digest, overwrite, echo)
    if finished:
        announce_finished(output, "run", digest, finished, echo)
        return finished
    plans = plan_sources(config.sources)
    clear_stale_partials(output, echo)
    run_id = new_run_id()
    manifest = base_manifest(run_id, config, [f for plan in plans for f in plan["files"]])
    partial = partial_dir(output, run_id)
    timings: dict[str, float] = {}
    echo(f"run {run_id}: {sum(p['rows'] for p in plans)} documents from {len(plans)} sources -> {output}")

    import ray

    with timed(timings, "ray_init"):
        init_ray(config.ray)
    batch = {"batch_format": "pyarrow", "batch_size": config.ray.batch_size}
    partitions = config.ray.shuffle_partitions or max(1, int(ray.cluster_resources().get("CPU", 1)))
    with timed(timings, "read_clean_minhash"):
        processed = cleaned(plans, config).materialize()
    with timed(timings, "exact_dedup"):
        exact = Duplicates([], [], [])
        if config.dedup.exact.enabled:
            exact = exact_duplicates(processed.map_batches(live_keys, batch_format="pyarrow"), partitions)
    with timed(timings, "quality"):
        exact_ref = ray.put(decision_table(exact, Duplicates([], [], [])))
        filtered = processed.map_batches(mark_duplicates, fn_kwargs={"decisions_ref": exact_ref}, **batch)
        filtered = filtered.map_batches(
            quality_batch, fn_kwargs={"config_json": config.filters.model_dump_json()}, **batch
        ).materialize()
    dedup_stats = {}
    with timed(timings, "near_dedup"):
        near = Duplicates([], [], [])
        if config.dedup.fuzzy.enabled:
            near, dedup_stats = near_duplicates(
                filtered.map_batches(live_keys, batch_format="pyarrow"), config.dedup.fuzzy, partitions
            )
    with timed(timings, "write"):
        decisions_ref = ray.put(decision_table(exact, near))
        final = filtered.map_batches(mark_duplicates, fn_kwargs={"decisions_ref": decisions_ref}, **batch)
        final = final.map_batches(add_clusters, fn_kwargs={"decisions_ref": decisions_ref}, **batch).materialize()
        write_parquet(final.map_batches(kept_rows, batch_format="pyarrow"), partial / "documents", KEPT_SCHEMA)
        write_parquet(final.map_batches(reject_rows, batch_format="pyarrow"), partial / "rejects", REJECTS_SCHEMA)

    # count what is on disk, not what we think we wrote
    kept_sources = pq.read_table(partial / "documents", columns=["source"])
    rejects = pq.read_table(partial / "rejects")
    inputs = {plan["source"].name: plan["rows"] for plan in plans}
    accounting = check_invariant(inputs, count_by(kept_sources, "source"), count_by(rejects, "source"))
    stages = funnel(sum(inputs.values()), rejects)
    manifest.update({
        "stages": stages,
        "accounting": accounting,
        "dedup": {"exact_duplicates": len(exact.ids), "near_duplicates": len(near.ids), **dedup_stats},
        "timings_s": timings,
        "outputs": {
            "documents": {"path": "documents", "rows": kept_sources.num_rows},
            "rejects": {"path": "rejects", "rows": rejects.num_rows},
        },
    })
    manifest["timings_s"]["total"] = round(sum(timings.values()), 3)
    write_json_atomically(partial / MANIFEST, manifest)
    publish(partial, output)
    echo("")
    echo(format_funnel(stages))
    echo("")
    total = sum(inputs.values())
    echo(f"kept {kept_sources.num_rows} of {total} documents ({kept_sources.num_rows / max(total, 1):.1%}), "
         f"rejected {rejects.num_rows}; in = kept + rejected holds for every source")
    echo(f"wrote {output}/documents, {output}/rejects and {output}/{MANIFEST} in {manifest['timings_s']['total']} s")
    return manifest
