"""The factory run, top to bottom: check the output and the inputs, run the pipeline's stages, write
documents and rejects, account for every document, publish atomically."""
from __future__ import annotations

import math
import shutil
from dataclasses import asdict

import pyarrow as pa
import pyarrow.compute as pc

from core import progress
from core.contracts import FACTORY_DOCUMENTS, REJECTS
from core.parquet import parquet_counts
from core.publish import MANIFEST
from core.cluster_shape import planned_cpus
from core.ray_runtime import configure_ray_data, init_ray
from core.run import PublishedRun
from factory.accounting import check_invariant, count_by, format_funnel, funnel
from factory.config import FactoryConfig
from factory.dedup.findings import DedupFindings
from factory.dedup.tables import DedupWork
from factory.documents import alive_mask
from factory.passes import Pass, spill
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
    with run.writing([f for plan in plans for f in plan["files"]], before_publish=gate, resume=True):
        progress.say(f"run {run.run_id}: {sum(inputs.values())} documents from {len(plans)} sources -> {run.output}")
        with run.timed("ray_init"):
            init_ray(config.ray)
        configure_ray_data(config.ray)
        cpus, source = planned_cpus()  # an autoscaled cluster: what it can grow to
        parts = run.ledger.fixed("dedup_partitions", dedup_partitions(config, sum(inputs.values()), cpus))
        rows_per_group = config.ray.rows_per_block * config.ray.blocks_per_group * cpus
        run.manifest["planned_for"] = {"cpus": cpus, "from": source, "dedup_partitions": parts,
                                       "rows_per_group": rows_per_group}
        context = StageContext(
            batch={"batch_format": "pyarrow", "batch_size": config.ray.batch_size},
            dedup=DedupWork(run.scratch(), parts, run.ledger),
            timed=run.timed, rows_per_block=config.ray.rows_per_block, rows_per_group=rows_per_group,
        )
        written = run.ledger.done("write")
        if written is None:
            documents = run_stages(stages, context).whole()
            run.ledger.begin("write")
            with run.timed("write"):
                kept, rejects = write_outputs(documents, run)
            run.ledger.mark("write", asdict(context.found))
        else:  # a run killed after writing its outputs (only local runs resume): dedup's findings are in the
            # ledger, the counts are read back from the files
            context.found = DedupFindings(**written)
            kept, rejects = (parquet_counts(run.partial / folder, columns) for folder, columns in COUNTED_BY.items())
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


def dedup_partitions(config: FactoryConfig, documents: int, cpus: int) -> int:
    """Partitions of the spilled documents and dedup tables: one per CPU, more when a partition would hold
    over ``rows_per_partition`` documents (a dedup task holds one partition's keys and signatures)."""
    return config.ray.shuffle_partitions or max(cpus, math.ceil(documents / config.ray.rows_per_partition))


def run_stages(stages: list[Stage], context: StageContext) -> Pass:
    """Apply the stages in order. Row stages are lazy and fuse into one streaming pass; before a stage that
    needs the whole corpus the pass is spilled to Parquet, a block group at a time (timed under the names of
    the stages it ran: ``factory.passes``), and the stage does its work on the whole corpus."""
    reader = stages[0]  # ReadSources
    current = Pass(reader.block_groups(context.rows_per_group), "block groups", reader.read_group)
    fused = [reader]
    for stage in stages[1:]:
        if stage.whole_input:
            shown = ", ".join(s.shown or s.name.replace("_", " ") for s in fused)
            with context.timed("+".join(s.name for s in fused), shown, unit="documents"):
                current = spill(current, context, stage.name)
            with context.timed(stage.name, unit="documents"):
                stage.prepare(context)
            fused = []
        else:
            stage.prepare(context)
            fused.append(stage)
        current = current.then(stage, context)
    return current


# what each output is counted by, to check that every document is accounted for
COUNTED_BY = {"documents": ["source"], "rejects": ["source", "stage", "reason"]}


def write_outputs(documents, run: PublishedRun) -> tuple[pa.Table, pa.Table]:
    """documents/ and rejects/ from the last pass, written from the start (a killed write left part of them);
    returns what was written, counted (``PublishedRun.write_data``: nothing corpus-sized on the driver).
    The lazy documents are read twice (kept rows, then rejects): each pass re-reads the last spill and joins
    the decisions again, which is cheaper than holding the corpus anywhere."""
    if not run.remote:
        for folder in COUNTED_BY:
            shutil.rmtree(run.partial / folder, ignore_errors=True)
    with progress.stage("write kept documents", "documents read"):
        kept = run.write_data("documents", documents.map_batches(kept_rows, batch_format="pyarrow"),
                              FACTORY_DOCUMENTS, COUNTED_BY["documents"])
    with progress.stage("write rejects", "documents read"):
        rejects = run.write_data("rejects", documents.map_batches(reject_rows, batch_format="pyarrow"),
                                 REJECTS, COUNTED_BY["rejects"])
    return kept, rejects


def kept_rows(table: pa.Table) -> pa.Table:
    return table.filter(alive_mask(table)).select(FACTORY_DOCUMENTS.names)


def reject_rows(table: pa.Table) -> pa.Table:
    rejected = table.filter(pc.invert(alive_mask(table)))
    return pa.Table.from_arrays(
        [rejected[c] for c in ("id", "source", "reject_stage", "reject_reason", "reject_detail")], schema=REJECTS
    )
