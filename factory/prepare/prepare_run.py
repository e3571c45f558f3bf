"""The prepare run, top to bottom: check input -> score + tokenise + split (map_batches) -> mix by
tokens -> curriculum buckets -> embed + group (map_groups) -> global sort -> pack -> report -> publish.

``run_prepare`` reads as that list: each phase is one function below it, in the order it runs, timed
under its own name in the manifest's ``timings_s``. The passes with more to them live beside their
rules (mixing_pass.py, grouping_pass.py, pack_splits.py); the manifest and closing lines in summary.py.

A killed run started again continues from its finished phases (phases.py, docs/RESUME.md): the trained
tokenizer, the score and tokenise pass by block group, mixing + curriculum + grouping as one unit; the sort,
packing, writing and report are the last unit, done again whole."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from core import progress
from core.publish import resolve
from core.ray_runtime import cluster_cpus, configure_ray_data, init_ray
from core.run import PublishedRun
from factory.prepare.accounting import check_counts
from factory.prepare.config import PrepareConfig
from factory.prepare.curriculum import SORT_KEY, bucket_batch, bucket_edges
from factory.prepare.grouping_pass import group_documents
from factory.prepare.inputs import check_factory_output, document_files, documents_dir
from factory.prepare.mixing import left_out, mix_bin_batch
from factory.prepare.mixing_pass import Mixed, mix_documents
from factory.prepare.pack_splits import SPLITS, PackedSplits, pack_splits
from factory.prepare.phases import Phases, file_groups
from factory.prepare.report import write_report
from factory.prepare.sampling import sample_column
from factory.prepare.scores import curriculum_score_batch, score_batch
from factory.prepare.selection import drop_columns, of_split
from factory.prepare.split import TRAIN, split_batch
from factory.prepare.summary import manifest_sections, summary_lines
from factory.prepare.tokenize import tokenize_batch, train_tokenizer
from factory.prepare.totals import length_counts
from quality.gate import gate_before_publish

HEAVY_COLUMNS = ["token_ids", "embedding"]  # not written with the document table
DOCUMENTS, MIXED_OUT = "documents", "mixed_out"  # the data folders write_documents writes
WRITTEN = [DOCUMENTS, MIXED_OUT]


def run_prepare(config: PrepareConfig, *, overwrite: bool = False) -> dict:
    factory_manifest = check_factory_output(config.input_dir)
    factory_run = {k: factory_manifest.get(k) for k in ("run_id", "config_hash", "code_version")}
    # the same config on a newer factory output is prepared again: this output is ours to refresh
    run = PublishedRun(config.output_dir, config, "prepare run", overwrite=overwrite,
                       upstream={"factory_run": factory_run})
    if run.finished:
        return run.finished

    gate = gate_before_publish("cpt", config.quality)
    files = document_files(config.input_dir)
    # resume=True: a killed run started again continues from its finished phases (docs/RESUME.md)
    with run.writing(files, before_publish=gate, resume=True) as partial:
        with run.timed("ray_init"):
            init_ray(config.ray)
        configure_ray_data(config.ray)  # Ray Data's no-progress guard skips its sort/groupby passes
        batch = {"batch_format": "pyarrow", "batch_size": config.ray.batch_size}  # every per-row pass's blocks
        phases = Phases(run)
        with progress.stage("read: count the factory's documents", unit=None):
            documents, n_input = read_documents(config, batch)
        progress.say(f"prepare run {run.run_id}: {n_input} documents from {config.input_dir} -> {run.output}")
        with run.timed("tokenizer", "train the tokenizer", "documents"):
            tokenizer_path = tokenizer_for(documents, n_input, config, run)
        with run.timed("score_tokenize", "score and tokenise", "documents"):
            groups = file_groups(len(files), n_input, config.ray.rows_per_block * config.ray.blocks_per_group
                                 * cluster_cpus())
            scored = phases.in_groups("scored", groups, lambda group: score_and_tokenize(
                read_documents(config, batch, [files[i] for i in group])[0], tokenizer_path, config, batch))
        with run.timed("mix_curriculum_group", "mix, curriculum, group", "documents"):
            grouped, decided = phases.whole("grouped", lambda: mix_and_group(scored, config, batch))
            mixed = Mixed.remade(decided["mixing"], scored, batch)
            if mixed.warning:
                progress.warn(f"WARNING {mixed.warning}")  # once, as it is found (shown with -q too)
        phases.begin_last("sort_pack_write", partial, [*SPLITS, *WRITTEN])
        with run.timed("sort", "sort into training order", "documents"):
            ordered = sort_documents(grouped)
        with run.timed("pack", "pack rows", "documents"):
            packed = pack(ordered, partial, config)
        with run.timed("write_documents", "write the document table", "documents"):
            write_documents(ordered, mixed, run)
        check_counts(n_input, mixed.n_chosen, mixed.n_left_out, packed)
        run.manifest.update(manifest_sections(config, tokenizer_path, n_input, mixed, decided["curriculum_edges"],
                                              decided["grouping"], packed))
        if config.report.enabled:
            with run.timed("report"):
                run.manifest["outputs"]["report"] = {
                    "path": write_report(partial, run.manifest, factory_manifest, length_counts(scored), packed)}
        phases.clear()  # (the report read the scored documents)

    for line in summary_lines(config, run.manifest, run.folder, run.timings["total"]):
        progress.summary(line)
    return run.manifest


def read_documents(config: PrepareConfig, batch: dict, files: list | None = None):
    """The factory's documents (``files`` of them only, when given) in blocks of ``ray.rows_per_block``, each
    assigned its split; (dataset, count)."""
    import ray  # here, not at the top: a run that finds its output already published never starts Ray

    documents = ray.data.read_parquet(str(documents_dir(config.input_dir)) if files is None else
                                      [str(f) for f in files])
    n_input = documents.count() if files is None else None
    documents = documents.repartition(target_num_rows_per_block=config.ray.rows_per_block)
    documents = documents.map_batches(split_batch, fn_kwargs={"fraction": config.validation.fraction,
                                                              "seed": config.seed}, **batch)
    return documents, n_input


def tokenizer_for(documents, n_input: int, config: PrepareConfig, run: PublishedRun) -> str:
    """``tokenizer.path`` (in a published output: its current run's), or a BPE trained on a hash sample of the
    train split and saved with the output (where the tokenising tasks on every node read it)."""
    if config.tokenizer.path is not None:
        return str(resolve(config.tokenizer.path))
    if run.ledger.done("tokenizer") is None:  # a resumed run reuses the tokenizer it trained, never a new one
        run.ledger.begin("tokenizer")
        train_docs = documents.map_batches(of_split, fn_kwargs={"split": TRAIN}, batch_format="pyarrow")
        texts = sample_column(train_docs, "text", n_input, config.tokenizer.train_sample_docs,
                              f"tokenizer-{config.seed}")
        train_tokenizer(texts, config.tokenizer.train_vocab_size, config.tokenizer.eos_token,
                        run.partial / "tokenizer")
        run.ledger.mark("tokenizer")
    return str(run.share("tokenizer"))


def score_and_tokenize(documents, tokenizer_path: str, config: PrepareConfig, batch: dict):
    """Quality scores, token ids, the mixing bin and the curriculum score of every document."""
    scored = documents.map_batches(score_batch, **batch)
    scored = scored.map_batches(tokenize_batch, fn_kwargs={"tokenizer_path": tokenizer_path}, **batch)
    scored = scored.map_batches(mix_bin_batch, fn_kwargs={"seed": config.seed, "bins": config.mixing.bins}, **batch)
    return scored.map_batches(curriculum_score_batch, fn_kwargs={"weights": config.curriculum.score}, **batch)


def mix_and_group(scored, config: PrepareConfig, batch: dict):
    """Mixing, curriculum buckets and grouping, which each need the whole corpus (totals, samples, a shuffle):
    (the grouped documents, what they decided: the manifest's numbers)."""
    with progress.stage("mix: domain and general tokens", "documents"):
        mixed = mix_documents(scored, config, batch)
    with progress.stage("curriculum: score quantiles", "documents"):
        bucketed, edges = curriculum(mixed, config, batch)
    with progress.stage("group related documents", "documents"):
        grouped, grouping_info = group(bucketed, mixed.n_chosen, config, batch)
    return grouped, {"mixing": mixed.decided(), "curriculum_edges": edges, "grouping": grouping_info}


def curriculum(mixed: Mixed, config: PrepareConfig, batch: dict):
    """The chosen documents with their curriculum bucket, cut at score quantiles of a hash sample; (dataset, edges)."""
    scores = sample_column(mixed.chosen, "curriculum_score", mixed.n_chosen, config.curriculum.quantile_sample_docs,
                           f"quantiles-{config.seed}")
    edges = bucket_edges(np.asarray(scores, dtype=np.float64), config.curriculum.num_buckets)
    return mixed.chosen.map_batches(bucket_batch, fn_kwargs={"edges": edges}, **batch), edges


def group(bucketed, n_chosen: int, config: PrepareConfig, batch: dict):
    """Similar documents grouped to share a row (or each its own group); (dataset, grouping info)."""
    partitions = config.ray.shuffle_partitions or cluster_cpus()
    return group_documents(bucketed, config, n_chosen, batch, partitions)


def sort_documents(grouped):
    """The training order (curriculum.SORT_KEY): bucket, then groups by rank, each group's documents in order."""
    return grouped.sort(SORT_KEY).materialize()


def pack(ordered, partial: Path, config: PrepareConfig) -> PackedSplits:
    """Both splits packed into ``packing.seq_len`` rows, in training order, written under ``partial``."""
    return pack_splits(ordered, partial, config.packing.seq_len, config.packing.rows_per_shard, config.ray.batch_size)


def write_documents(ordered, mixed: Mixed, run: PublishedRun) -> None:
    """The chosen documents (without token ids and embeddings) and the ids of those mixing left out."""
    run.write_data(DOCUMENTS, ordered.map_batches(drop_columns, fn_kwargs={"names": HEAVY_COLUMNS},
                                                   batch_format="pyarrow"), pa.schema([]))
    run.write_data(MIXED_OUT, mixed.marked.map_batches(left_out, batch_format="pyarrow")
                   .map_batches(drop_columns, fn_kwargs={"names": HEAVY_COLUMNS + ["text"]}, batch_format="pyarrow"),
                   pa.schema([("id", pa.string()), ("source", pa.string())]))
