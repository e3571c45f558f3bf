"""The factory run, top to bottom: check the output and the inputs, run the pipeline's stages, write
documents and rejects, account for every document, publish atomically."""
from __future__ import annotations

import math
import shutil

import pyarrow as pa
import pyarrow.compute as pc

from core import progress
from core.contracts import FACTORY_DOCUMENTS, REJECTS
from core.publish import MANIFEST
from core.ray_runtime import cluster_cpus, configure_ray_data, init_ray
from core.run import PublishedRun
from core.spill import part_of
from factory.accounting import check_invariant, count_by, format_funnel, funnel
from factory.config import FactoryConfig
from factory.dedup.tables import DedupWork
from factory.documents import alive_mask, document_key
from factory.pipeline import build_stages
from factory.sources import ReadSources
from factory.stages.base import Stage, StageContext
from quality.gate import gate_before_publish


def run_factory(config: FactoryConfig, *, overwrite: bool = False) -> dict:
    run = PublishedRun(config.output_dir, config, "run", overwrite=overwrite)
    if run.finished:
        return run.finished
    stages = build_stages(config)  # reading plans every source: a missing file or column fails here, before any work
    plans = next(stage for stage in stages if isinstance(stage, ReadSources)).plans
    inputs = {plan["source"].name: plan["rows"] for plan in plans}

    gate = gate_before_publish("documents", config.quality)
    with run.writing([f for plan in plans for f in plan["files"]], before_publish=gate):
        progress.say(f"run {run.run_id}: {sum(inputs.values())} documents from {len(plans)} sources -> {run.output}")
        with run.timed("ray_init"):
            init_ray(config.ray)
        configure_ray_data(config.ray)
        context = StageContext(
            batch={"batch_format": "pyarrow", "batch_size": config.ray.batch_size},
            dedup=DedupWork(run.scratch(), dedup_partitions(config, sum(inputs.values()))),
            timed=run.timed, rows_per_block=config.ray.rows_per_block,
        )
        documents = run_stages(stages, context)
        with run.timed("write"):
            # the lazy documents are read twice (kept rows, then rejects): each pass re-reads the last
            # spill and joins the decisions again, which is cheaper than holding the corpus anywhere.
            # What was written is counted (per source, stage and reason: nothing corpus-sized on the
            # driver); an imbalance raises and nothing is published
            kept = run.write_data("documents", documents.map_batches(kept_rows, batch_format="pyarrow"),
                                  FACTORY_DOCUMENTS, ["source"])
            rejects = run.write_data("rejects", documents.map_batches(reject_rows, batch_format="pyarrow"),
                                     REJECTS, ["source", "stage", "reason"])
        shutil.rmtree(context.dedup.root, ignore_errors=True)
        n_kept, n_rejected = (pc.sum(t["n"]).as_py() or 0 for t in (kept, rejects))
        run.manifest.update({
            "stages": funnel(sum(inputs.values()), rejects),
            "accounting": check_invariant(inputs, count_by(kept, "source"), count_by(rejects, "source")),
            "dedup": context.found.manifest(),
            "outputs": {
                "documents": {"path": "documents", "rows": n_kept},
                "rejects": {"path": "rejects", "rows": n_rejected},
            },
        })

    total = sum(inputs.values())
    for line in ("", format_funnel(run.manifest["stages"]), "",
                 f"kept {n_kept} of {total} documents ({n_kept / max(total, 1):.1%}), "
                 f"rejected {n_rejected}; in = kept + rejected holds for every source",
                 f"wrote {run.folder}/documents, {run.folder}/rejects and {run.folder}/{MANIFEST} in "
                 f"{run.timings['total']} s"):
        progress.summary(line)
    return run.manifest


def dedup_partitions(config: FactoryConfig, documents: int) -> int:
    """Partitions of the spilled documents and dedup tables: one per CPU, more when a partition would hold
    over ``rows_per_partition`` documents (a dedup task holds one partition's keys and signatures)."""
    return config.ray.shuffle_partitions or max(cluster_cpus(), math.ceil(documents / config.ray.rows_per_partition))


def run_stages(stages: list[Stage], context: StageContext):
    """Apply the stages in order. Row stages are lazy and fuse into one streaming pass; before a stage that
    needs the whole corpus the pass is spilled to Parquet (timed under the names of the stages it ran)."""
    ds, fused = None, []
    for stage in stages:
        if stage.whole_input:
            with context.timed("+".join(fused) or "spill"):
                ds = spill(ds, context, stage.name)
            with context.timed(stage.name):
                ds = stage.apply(ds, context)
            fused = []
        else:
            ds = stage.apply(ds, context)
            fused.append(stage.name)
    return ds


def spill(ds, context: StageContext, before: str):
    """Write the in-flight documents once, partitioned by document key, and return their lazy read: the
    dedup stages join their decisions to it partition by partition, so texts never go through a shuffle
    or sit in the object store. The previous spill, now read into this one, is deleted."""
    import ray

    root = context.dedup.root / f"documents_before_{before}"
    ds.map_batches(with_partition, batch_format="pyarrow", fn_kwargs={"parts": context.dedup.parts}).write_parquet(
        str(root), partition_cols=["part"], compression="zstd", min_bytes_per_file=16 << 20)
    if context.spilled:
        shutil.rmtree(context.spilled, ignore_errors=True)
    if not any(root.rglob("*.parquet")):  # no documents at all (empty inputs): nothing to deduplicate
        context.spilled = None
        return ds
    context.spilled = str(root)
    # re-blocked like the input: Ray Data reads a partition's few large files as one block, and a block goes
    # to one map task, so without it the next pass (the costly filters) ran on one CPU (10k documents: one
    # block, one worker process)
    spilled = ray.data.read_parquet(str(root), partitioning=None)
    return spilled.repartition(target_num_rows_per_block=context.rows_per_block)


def with_partition(table: pa.Table, parts: int) -> pa.Table:
    """The spill's partition column; rejected rows lose their text (no later pass or output reads it: rejects
    carry none), so after exact dedup the spill and every pass reading it hold only live texts."""
    text = pc.if_else(alive_mask(table), table["text"], pa.scalar(None, pa.string()))
    table = table.set_column(table.schema.get_field_index("text"), "text", text)
    return table.append_column("part", pa.array(part_of(document_key(table), parts)))


def kept_rows(table: pa.Table) -> pa.Table:
    return table.filter(alive_mask(table)).select(FACTORY_DOCUMENTS.names)


def reject_rows(table: pa.Table) -> pa.Table:
    rejected = table.filter(pc.invert(alive_mask(table)))
    return pa.Table.from_arrays(
        [rejected[c] for c in ("id", "source", "reject_stage", "reject_reason", "reject_detail")], schema=REJECTS
    )
