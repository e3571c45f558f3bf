"""The prepare run, top to bottom: check input -> score + tokenise + split (map_batches) -> mix by
tokens -> curriculum buckets -> embed + group (map_groups) -> global sort -> pack -> report -> publish."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.errors import AccountingError
from core.parquet import write_dataset
from core.publish import MANIFEST
from core.ray_runtime import cluster_cpus, configure_ray_data, init_ray
from core.run import PublishedRun
from factory.prepare.config import PrepareConfig
from factory.prepare.curriculum import SORT_KEY, bucket_batch, bucket_edges
from factory.prepare.embedding import EmbedBatch, fit_partitioner, make_embedder
from factory.prepare.grouping import chain_partition, singleton_groups_batch
from factory.prepare.hashing import hash_sample_batch
from factory.prepare.inputs import check_factory_output, document_files
from factory.prepare.lengths import LENGTH_BIN, length_bin_batch
from factory.prepare.mixing import capped_budgets, cut_warning, last_kept_bin, left_out, mark_mixed_batch, mix_bin_batch, \
    planned_share, selected, token_budgets
from factory.prepare.pack_splits import PackedSplits, pack_splits
from factory.prepare.report import write_report
from factory.prepare.scores import curriculum_score_batch, score_batch
from factory.prepare.split import TRAIN, VALIDATION, split_batch
from factory.prepare.tokenize import tokenize_batch, train_tokenizer
from quality.gate import gate_before_publish

HEAVY_COLUMNS = ["token_ids", "embedding"]  # not written with the document table
FOLD_ROWS = 1 << 20  # partial totals buffered on the driver before they are folded into the running totals


def sample_column(ds, column: str, n_total: int, n_wanted: int, salt: str) -> list:
    """A bounded hash sample of one column, brought to the driver (fitting and quantiles need it there);
    sorted, because blocks arrive in any order and fits (BPE, SVD, k-means) depend on row order."""
    fraction = min(1.0, n_wanted / max(n_total, 1))
    sample = ds.map_batches(hash_sample_batch, fn_kwargs={"fraction": fraction, "salt": salt}, batch_format="pyarrow")
    # bounded: each row is kept with probability n_wanted / n_total, so about n_wanted rows (a binomial
    # count, within a few sqrt(n_wanted) of it) reach the driver whatever the corpus size; n_wanted is a
    # config number (tokenizer.train_sample_docs, grouping.fit_sample_docs, curriculum.quantile_sample_docs)
    return sorted(sample.select_columns([column]).to_pandas()[column].tolist())


def drop_columns(batch: pa.Table, names: list[str]) -> pa.Table:
    return batch.drop_columns([n for n in names if n in batch.column_names])


def of_side(batch: pa.Table, side: str) -> pa.Table:
    return batch.filter(pc.equal(batch["domain"], side))


def of_split(batch: pa.Table, split: str) -> pa.Table:
    return batch.filter(pc.equal(batch["split"], split))


def block_totals(batch: pa.Table, column: str, value: str | None) -> pa.Table:
    """One row per distinct value of ``column`` in the block: its rows' sum of ``value`` (count if None)."""
    total = f"{value}_sum" if value else "count_all"
    table = batch.group_by(column).aggregate([(value, "sum") if value else ([], "count_all")])
    return pa.table({column: table[column], "total": table[total]})


def fold_totals(parts: list[pa.Table], column: str) -> pa.Table:
    table = pa.concat_tables(parts).group_by(column).aggregate([("total", "sum")])
    return pa.table({column: table[column], "total": table["total_sum"]})


def totals_by(ds, column: str, value: str | None = "n_tokens") -> dict:
    """The sum of ``value`` (the row count if None) per value of a low-cardinality column: totalled per
    block in parallel, then the partial totals are streamed to the driver and added up (cheaper than a
    groupby shuffle for a handful of keys)."""
    partial = ds.map_batches(block_totals, fn_kwargs={"column": column, "value": value}, batch_format="pyarrow",
                             batch_size=None)
    # bounded on the driver: partial totals arrive one block at a time and are folded into one running
    # total per distinct key once FOLD_ROWS of them are waiting, so the driver holds at most the distinct
    # keys (a domain name, a mix bin <= mixing.bins, a length bin) plus FOLD_ROWS and one block's partials
    parts, waiting = [], 0
    for part in partial.iter_batches(batch_format="pyarrow", batch_size=None):
        parts.append(part)
        waiting += part.num_rows
        if waiting > FOLD_ROWS:
            parts = [fold_totals(parts, column)]
            waiting = 0
    if not parts:
        return {}
    table = fold_totals(parts, column).sort_by(column)
    return {key: int(n) for key, n in zip(table[column].to_pylist(), table["total"].to_pylist())}


def length_counts(ds) -> dict[int, int]:
    """Documents per length bin (lengths.LENGTH_EDGES), counted per block: at most N_LENGTH_BINS keys."""
    return totals_by(ds.map_batches(length_bin_batch, batch_format="pyarrow"), LENGTH_BIN, value=None)


def mixing_cutoffs(ds, config: PrepareConfig) -> tuple[dict, dict, dict, str | None]:
    """(tokens per side, budgets, the last kept bin per cut side, a warning when the cut is large)."""
    mixing = config.mixing
    totals = totals_by(ds, "domain")
    needed = token_budgets(totals, mixing.domain_token_fraction)
    budgets = needed if mixing.mode == "exact_ratio" else capped_budgets(totals, needed, mixing.max_cut_fraction)
    warning = cut_warning(totals, needed, budgets, mixing.max_cut_fraction, mixing.domain_token_fraction)
    cutoffs = {}
    for side, budget in budgets.items():
        if budget >= totals[side]:
            continue  # nothing to cut (a cap of 0)
        bins = totals_by(ds.map_batches(of_side, fn_kwargs={"side": side}, batch_format="pyarrow"), "mix_bin")
        cutoffs[side] = last_kept_bin(bins, budget)
    return totals, budgets, cutoffs, warning


def group_documents(ds, config: PrepareConfig, n_docs: int, batch: dict, partitions: int):
    """Adds group_id, group_position, group_rank (and embedding); returns (dataset, grouping info)."""
    if not config.grouping.enabled:
        return ds.map_batches(singleton_groups_batch, fn_kwargs={"seed": config.seed}, **batch), {"enabled": False}
    grouping = config.grouping
    fit_texts = sample_column(ds, "text", n_docs, grouping.fit_sample_docs, f"fit-{config.seed}")
    embedder = make_embedder(grouping, fit_texts, config.seed)
    fit_vectors = embedder.embed(fit_texts)
    n_partitions = math.ceil(n_docs / grouping.docs_per_partition)
    partitioner = fit_partitioner(fit_vectors, n_partitions, config.seed)
    similarities = fit_vectors @ fit_vectors.T  # fit_sample_docs squared at most: bounded by the config
    off_diagonal = similarities[~np.eye(len(fit_vectors), dtype=bool)]
    # embedder and partitioner are shipped to every task, and bounded: fitted on the fit sample (at most
    # tfidf.max_features terms and svd_dims components, or a model path) and fit_sample_docs k-means centres
    if grouping.embedder == "minilm":  # actors: each loads the model once
        embedded = ds.map_batches(
            EmbedBatch, fn_constructor_kwargs={"embedder": embedder, "partitioner": partitioner},
            concurrency=grouping.minilm.concurrency, **batch,
        )
    else:  # the fitted TF-IDF/SVD is small: plain tasks, no actor start-up
        embedded = ds.map_batches(EmbedBatch(embedder, partitioner), **batch)
    grouped = embedded.groupby(["curriculum_bucket", "coarse_cluster"], num_partitions=partitions).map_groups(
        chain_partition, batch_format="pyarrow",
        fn_kwargs={"neighbours": grouping.neighbours, "group_tokens": config.group_tokens, "seed": config.seed},
    )
    info = {
        "enabled": True, "embedder": grouping.embedder, "coarse_clusters": int(partitioner.n_clusters),
        "fit_sample_docs": len(fit_texts), "random_pair_similarity": round(float(off_diagonal.mean()), 4) if off_diagonal.size else None,
    }
    return grouped, info


def run_prepare(config: PrepareConfig, *, overwrite: bool = False, echo=print) -> dict:
    factory_manifest = check_factory_output(config.input_dir)
    factory_run = {k: factory_manifest.get(k) for k in ("run_id", "config_hash", "code_version")}
    # the same config on a newer factory output is prepared again: this output is ours to refresh
    run = PublishedRun(config.output_dir, config, "prepare run", overwrite=overwrite, echo=echo,
                       upstream={"factory_run": factory_run})
    if run.finished:
        return run.finished

    gate = gate_before_publish("cpt", config.quality, echo, publish_to=run.output)
    with run.writing(document_files(config.input_dir), before_publish=gate) as partial:
        import ray

        with run.timed("ray_init"):
            init_ray(config.ray)
        configure_ray_data(config.ray)  # Ray Data's no-progress guard skips its sort/groupby passes
        batch = {"batch_format": "pyarrow", "batch_size": config.ray.batch_size}
        partitions = config.ray.shuffle_partitions or cluster_cpus()
        documents = ray.data.read_parquet(str(Path(config.input_dir) / "documents"))
        n_input = documents.count()
        echo(f"prepare run {run.run_id}: {n_input} documents from {config.input_dir} -> {run.output}")
        documents = documents.repartition(target_num_rows_per_block=config.ray.rows_per_block)
        documents = documents.map_batches(split_batch, fn_kwargs={"fraction": config.validation.fraction,
                                                                  "seed": config.seed}, **batch)
        with run.timed("tokenizer"):
            tokenizer_path = config.tokenizer.path
            if tokenizer_path is None:
                train_docs = documents.map_batches(of_split, fn_kwargs={"split": TRAIN}, batch_format="pyarrow")
                texts = sample_column(train_docs, "text", n_input, config.tokenizer.train_sample_docs,
                                      f"tokenizer-{config.seed}")
                tokenizer_path = str(train_tokenizer(texts, config.tokenizer.train_vocab_size,
                                                     config.tokenizer.eos_token, partial / "tokenizer"))
        with run.timed("score_tokenize"):
            scored = documents.map_batches(score_batch, **batch)
            scored = scored.map_batches(tokenize_batch, fn_kwargs={"tokenizer_path": tokenizer_path}, **batch)
            scored = scored.map_batches(mix_bin_batch, fn_kwargs={"seed": config.seed, "bins": config.mixing.bins},
                                        **batch)
            scored = scored.map_batches(curriculum_score_batch, fn_kwargs={"weights": config.curriculum.score},
                                        **batch)
            scored = scored.materialize()
        with run.timed("mix"):
            totals, budgets, cutoffs, mixing_warning = mixing_cutoffs(scored, config)
            if mixing_warning:
                echo(f"WARNING {mixing_warning}")
            marked = scored.map_batches(mark_mixed_batch, fn_kwargs={"cutoffs": cutoffs}, **batch).materialize()
            chosen = marked.map_batches(selected, batch_format="pyarrow").materialize()
            n_chosen = chosen.count()
            n_left_out = marked.map_batches(left_out, batch_format="pyarrow").count()
        with run.timed("curriculum"):
            scores = sample_column(chosen, "curriculum_score", n_chosen, config.curriculum.quantile_sample_docs,
                                   f"quantiles-{config.seed}")
            edges = bucket_edges(np.asarray(scores, dtype=np.float64), config.curriculum.num_buckets)
            bucketed = chosen.map_batches(bucket_batch, fn_kwargs={"edges": edges}, **batch)
        with run.timed("group"):
            grouped, grouping_info = group_documents(bucketed, config, n_chosen, batch, partitions)
            grouped = grouped.materialize()
        with run.timed("sort"):
            ordered = grouped.sort(SORT_KEY).materialize()
        with run.timed("pack"):
            packed = pack_splits(ordered, partial, config.packing.seq_len, config.packing.rows_per_shard,
                                 config.ray.batch_size)
        with run.timed("write_documents"):
            write_dataset(ordered.map_batches(drop_columns, fn_kwargs={"names": HEAVY_COLUMNS}, batch_format="pyarrow"),
                          partial / "documents", pa.schema([]))
            write_dataset(marked.map_batches(left_out, batch_format="pyarrow")
                          .map_batches(drop_columns, fn_kwargs={"names": HEAVY_COLUMNS + ["text"]},
                                       batch_format="pyarrow"),
                          partial / "mixed_out", pa.schema([("id", pa.string()), ("source", pa.string())]))
        check_counts(n_input, n_chosen, n_left_out, packed)
        achieved = {side: sum(packed[split].stats.domain_tokens.get(side, 0) for split in (TRAIN, VALIDATION))
                    for side in ("domain", "general")}
        total_tokens = sum(achieved.values())
        similarity = packed.row_neighbour_similarity
        grouping_info["row_neighbour_similarity"] = round(similarity, 4) if similarity is not None else None
        summaries = {split: packed[split].summary() for split in (TRAIN, VALIDATION)}
        run.manifest.update({
            "tokenizer": {"path": tokenizer_path if config.tokenizer.path else "tokenizer",
                          "trained": config.tokenizer.path is None},
            "mixing": {
                "target_domain_token_fraction": config.mixing.domain_token_fraction,
                "mode": config.mixing.mode, "max_cut_fraction": config.mixing.max_cut_fraction,
                "warning": mixing_warning,  # the gate judges the achieved share against the planned one
                "planned_domain_token_fraction":
                    planned_share(totals, budgets) if config.mixing.domain_token_fraction is not None else None,
                "tokens_before": totals, "budgets": budgets, "cut_bins": cutoffs,
                "tokens_after": achieved,
                "achieved_domain_token_fraction": round(achieved["domain"] / total_tokens, 6) if total_tokens else None,
                "documents_left_out": n_input - n_chosen,
            },
            "curriculum": {"score": config.curriculum.score, "bucket_edges": edges},
            "grouping": grouping_info,
            "splits": summaries,
            "outputs": {
                TRAIN: {"path": TRAIN, "rows": summaries[TRAIN]["rows"]},
                VALIDATION: {"path": VALIDATION, "rows": summaries[VALIDATION]["rows"]},
                "documents": {"path": "documents", "rows": n_chosen},
                "mixed_out": {"path": "mixed_out", "rows": n_input - n_chosen},
            },
        })
        if config.report.enabled:
            with run.timed("report"):
                run.manifest["outputs"]["report"] = {
                    "path": write_report(partial, run.manifest, factory_manifest, length_counts(scored), packed)}

    train, validation = summaries[TRAIN], summaries[VALIDATION]
    echo(f"train: {train['documents']} documents, {train['tokens']} tokens in {train['rows']} rows of "
         f"{config.packing.seq_len} (packing efficiency {train['packing_efficiency']:.3%}); validation: "
         f"{validation['documents']} documents in {validation['rows']} rows")
    echo(f"domain token share {run.manifest['mixing']['achieved_domain_token_fraction']} "
         f"(target {config.mixing.domain_token_fraction}); {n_input - n_chosen} documents left out by mixing")
    if mixing_warning:  # again at the end, where the summary is read
        echo(f"WARNING {mixing_warning}")
    if grouping_info.get("enabled"):
        echo(f"grouping ({grouping_info['embedder']}): mean similarity of documents sharing a row "
             f"{grouping_info['row_neighbour_similarity']} vs random pairs {grouping_info['random_pair_similarity']}")
    echo(f"wrote {run.output}/{{train,validation,documents,mixed_out}} and {run.output}/{MANIFEST} in "
         f"{run.timings['total']} s")
    return run.manifest


def check_counts(n_input: int, n_chosen: int, n_left_out: int, packed: PackedSplits) -> None:
    """Every input document chosen or left out, every chosen one packed, every token written once;
    fails the run (unpublished) if not."""
    problems = []
    if n_chosen + n_left_out != n_input:
        problems.append(f"input {n_input} != chosen {n_chosen} + left out by mixing {n_left_out}")
    packed_docs = sum(split.stats.docs for split in packed.splits.values())
    if packed_docs != n_chosen:
        problems.append(f"packed {packed_docs} documents, chose {n_chosen}")
    for name, split in packed.splits.items():
        if split.written_tokens != split.stats.tokens:
            problems.append(f"{name}: wrote {split.written_tokens} tokens, documents hold {split.stats.tokens}")
    if problems:
        raise AccountingError("prepare accounting broken, output not published:\n  " + "\n  ".join(problems))
