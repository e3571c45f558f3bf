"""The prepare run, top to bottom: check input -> score + tokenise + split (map_batches) -> mix by
tokens -> curriculum buckets -> embed + group (map_groups) -> global sort -> pack -> report -> publish."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from factory.accounting import AccountingError
from factory.common.config_loading import config_hash
from factory.common.manifest import base_manifest, new_run_id
from factory.common.publish import MANIFEST, partial_dir, publish, write_json_atomically
from factory.common.job import announce_finished, check_output_dir, clear_stale_partials, init_ray, timed
from factory.common.job import write_parquet
from factory.prepare.config import PrepareConfig
from factory.prepare.curriculum import SORT_KEY, bucket_batch, bucket_edges
from factory.prepare.embedding import EmbedBatch, fit_partitioner, make_embedder
from factory.prepare.grouping import chain_partition, singleton_groups_batch
from factory.prepare.hashing import hash_sample_batch
from factory.prepare.inputs import check_factory_output, document_files
from factory.prepare.mixing import last_kept_bin, left_out, mark_mixed_batch, mix_bin_batch, selected, token_budgets
from factory.prepare.report import write_report
from factory.prepare.scores import curriculum_score_batch, score_batch
from factory.prepare.split import TRAIN, VALIDATION, split_batch
from factory.prepare.stream import pack_in_order
from factory.prepare.tokenize import tokenize_batch, train_tokenizer

HEAVY_COLUMNS = ["token_ids", "embedding"]  # not written with the document table


def sample_column(ds, column: str, n_total: int, n_wanted: int, salt: str) -> list:
    """A bounded hash sample of one column, brought to the driver (fitting and quantiles need it there);
    sorted, because blocks arrive in any order and fits (BPE, SVD, k-means) depend on row order."""
    fraction = min(1.0, n_wanted / max(n_total, 1))
    sample = ds.map_batches(hash_sample_batch, fn_kwargs={"fraction": fraction, "salt": salt}, batch_format="pyarrow")
    return sorted(sample.select_columns([column]).to_pandas()[column].tolist())


def drop_columns(batch: pa.Table, names: list[str]) -> pa.Table:
    return batch.drop_columns([n for n in names if n in batch.column_names])


def of_side(batch: pa.Table, side: str) -> pa.Table:
    return batch.filter(pc.equal(batch["domain"], side))


def of_split(batch: pa.Table, split: str) -> pa.Table:
    return batch.filter(pc.equal(batch["split"], split))


def block_token_sums(batch: pa.Table, column: str) -> pa.Table:
    return batch.group_by(column).aggregate([("n_tokens", "sum")])


def tokens_by(ds, column: str) -> dict:
    """Tokens per value of a low-cardinality column: summed per block in parallel, then the few partial
    sums are combined on the driver (cheaper than a groupby shuffle for a handful of keys)."""
    partial = ds.map_batches(block_token_sums, fn_kwargs={"column": column}, batch_format="pyarrow", batch_size=None)
    table = partial.to_pandas().groupby(column)["n_tokens_sum"].sum()
    return {key: int(n) for key, n in table.items()}


def mixing_cutoffs(ds, config: PrepareConfig) -> tuple[dict, dict, dict]:
    totals = tokens_by(ds, "domain")
    budgets = token_budgets(totals, config.mixing.domain_token_fraction)
    cutoffs = {}
    for side, budget in budgets.items():
        bins = tokens_by(ds.map_batches(of_side, fn_kwargs={"side": side}, batch_format="pyarrow"), "mix_bin")
        cutoffs[side] = last_kept_bin(bins, budget)
    return totals, budgets, cutoffs


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
    similarities = fit_vectors @ fit_vectors.T
    off_diagonal = similarities[~np.eye(len(fit_vectors), dtype=bool)]
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


def run(config: PrepareConfig, *, overwrite: bool = False, echo=print) -> dict:
    output = Path(config.output_dir)
    digest = config_hash(config)
    factory_manifest = check_factory_output(config.input_dir)
    finished = check_output_dir(output, digest, overwrite, echo)
    if finished and finished.get("factory_run", {}).get("run_id") == factory_manifest.get("run_id"):
        announce_finished(output, "prepare run", digest, finished, echo,
                          on=f" on factory run {factory_manifest.get('run_id')}")
        return finished
    if finished:  # same config, newer factory output: this output is ours to refresh
        echo(f"{output} was prepared from an earlier factory run; preparing again")
    clear_stale_partials(output, echo)
    run_id = new_run_id()
    manifest = base_manifest(run_id, config, document_files(config.input_dir))
    manifest["factory_run"] = {k: factory_manifest.get(k) for k in ("run_id", "config_hash", "code_version")}
    partial = partial_dir(output, run_id)
    timings: dict[str, float] = {}

    import ray

    with timed(timings, "ray_init"):
        init_ray(config.ray)
    batch = {"batch_format": "pyarrow", "batch_size": config.ray.batch_size}
    partitions = config.ray.shuffle_partitions or max(1, int(ray.cluster_resources().get("CPU", 1)))
    documents = ray.data.read_parquet(str(Path(config.input_dir) / "documents"))
    n_input = documents.count()
    echo(f"prepare run {run_id}: {n_input} documents from {config.input_dir} -> {output}")
    documents = documents.repartition(target_num_rows_per_block=config.ray.rows_per_block)
    documents = documents.map_batches(split_batch, fn_kwargs={"fraction": config.validation.fraction, "seed": config.seed}, **batch)

    with timed(timings, "tokenizer"):
        tokenizer_path = config.tokenizer.path
        if tokenizer_path is None:
            train_docs = documents.map_batches(of_split, fn_kwargs={"split": TRAIN}, batch_format="pyarrow")
            texts = sample_column(train_docs, "text", n_input, config.tokenizer.train_sample_docs, f"tokenizer-{config.seed}")
            tokenizer_path = str(train_tokenizer(texts, config.tokenizer.train_vocab_size, config.tokenizer.eos_token,
                                                 partial / "tokenizer"))
    with timed(timings, "score_tokenize"):
        scored = documents.map_batches(score_batch, **batch)
        scored = scored.map_batches(tokenize_batch, fn_kwargs={"tokenizer_path": tokenizer_path}, **batch)
        scored = scored.map_batches(mix_bin_batch, fn_kwargs={"seed": config.seed, "bins": config.mixing.bins}, **batch)
        scored = scored.map_batches(curriculum_score_batch, fn_kwargs={"weights": config.curriculum.score}, **batch)
        scored = scored.materialize()
    with timed(timings, "mix"):
        totals, budgets, cutoffs = mixing_cutoffs(scored, config)
        marked = scored.map_batches(mark_mixed_batch, fn_kwargs={"cutoffs": cutoffs}, **batch).materialize()
        chosen = marked.map_batches(selected, batch_format="pyarrow").materialize()
        n_chosen = chosen.count()
        n_left_out = marked.map_batches(left_out, batch_format="pyarrow").count()
    with timed(timings, "curriculum"):
        scores = sample_column(chosen, "curriculum_score", n_chosen, config.curriculum.quantile_sample_docs,
                               f"quantiles-{config.seed}")
        edges = bucket_edges(np.asarray(scores, dtype=np.float64), config.curriculum.num_buckets)
        bucketed = chosen.map_batches(bucket_batch, fn_kwargs={"edges": edges}, **batch)
    with timed(timings, "group"):
        grouped, grouping_info = group_documents(bucketed, config, n_chosen, batch, partitions)
        grouped = grouped.materialize()
    with timed(timings, "sort"):
        ordered = grouped.sort(SORT_KEY).materialize()
    with timed(timings, "pack"):
        packed = pack_in_order(ordered, partial, config.packing.seq_len, config.packing.rows_per_shard,
                               config.ray.batch_size)
    with timed(timings, "write_documents"):
        write_parquet(ordered.map_batches(drop_columns, fn_kwargs={"names": HEAVY_COLUMNS}, batch_format="pyarrow"),
                      partial / "documents", pa.schema([]))
        write_parquet(marked.map_batches(left_out, batch_format="pyarrow")
                      .map_batches(drop_columns, fn_kwargs={"names": HEAVY_COLUMNS + ["text"]}, batch_format="pyarrow"),
                      partial / "mixed_out", pa.schema([("id", pa.string()), ("source", pa.string())]))
    before = scored.select_columns(["n_tokens", "domain"]).to_pandas()
    train, validation = packed[TRAIN], packed[VALIDATION]
    check_counts(n_input, n_chosen, n_left_out, train, validation, packed)
    achieved = {side: train.domain_tokens.get(side, 0) + validation.domain_tokens.get(side, 0)
                for side in ("domain", "general")}
    total_tokens = sum(achieved.values())
    similarity = packed["row_neighbour_similarity"]
    grouping_info["row_neighbour_similarity"] = round(similarity, 4) if similarity is not None else None
    manifest.update({
        "tokenizer": {"path": tokenizer_path if config.tokenizer.path else "tokenizer", "trained": config.tokenizer.path is None},
        "mixing": {
            "target_domain_token_fraction": config.mixing.domain_token_fraction,
            "tokens_before": totals, "budgets": budgets, "cut_bins": cutoffs,
            "tokens_after": achieved,
            "achieved_domain_token_fraction": round(achieved["domain"] / total_tokens, 6) if total_tokens else None,
            "documents_left_out": n_input - n_chosen,
        },
        "curriculum": {"score": config.curriculum.score, "bucket_edges": edges},
        "grouping": grouping_info,
        "splits": {TRAIN: packed[TRAIN + "_summary"], VALIDATION: packed[VALIDATION + "_summary"]},
        "outputs": {
            TRAIN: {"path": TRAIN, "rows": packed[TRAIN + "_summary"]["rows"]},
            VALIDATION: {"path": VALIDATION, "rows": packed[VALIDATION + "_summary"]["rows"]},
            "documents": {"path": "documents", "rows": n_chosen},
            "mixed_out": {"path": "mixed_out", "rows": n_input - n_chosen},
        },
    })
    if config.report.enabled:
        with timed(timings, "report"):
            manifest["outputs"]["report"] = {"path": write_report(partial, manifest, factory_manifest, before, packed)}
    timings["total"] = round(sum(timings.values()), 3)
    manifest["timings_s"] = timings
    write_json_atomically(partial / MANIFEST, manifest)
    publish(partial, output)
    summary = packed[TRAIN + "_summary"]
    echo(f"train: {summary['documents']} documents, {summary['tokens']} tokens in {summary['rows']} rows of "
         f"{config.packing.seq_len} (packing efficiency {summary['packing_efficiency']:.3%}); validation: "
         f"{validation.docs} documents in {packed[VALIDATION + '_summary']['rows']} rows")
    echo(f"domain token share {manifest['mixing']['achieved_domain_token_fraction']} "
         f"(target {config.mixing.domain_token_fraction}); {n_input - n_chosen} documents left out by mixing")
    if grouping_info.get("enabled"):
        echo(f"grouping ({grouping_info['embedder']}): mean similarity of documents sharing a row "
             f"{grouping_info['row_neighbour_similarity']} vs random pairs {grouping_info['random_pair_similarity']}")
    echo(f"wrote {output}/{{train,validation,documents,mixed_out}} and {output}/{MANIFEST} in {timings['total']} s")
    return manifest


def check_counts(n_input: int, n_chosen: int, n_left_out: int, train, validation, packed: dict) -> None:
    """Every input document chosen or left out, every chosen one packed, every token written once;
    fails the run (unpublished) if not."""
    problems = []
    if n_chosen + n_left_out != n_input:
        problems.append(f"input {n_input} != chosen {n_chosen} + left out by mixing {n_left_out}")
    if train.docs + validation.docs != n_chosen:
        problems.append(f"packed {train.docs + validation.docs} documents, chose {n_chosen}")
    for name, stats in ((TRAIN, train), (VALIDATION, validation)):
        written = packed[name + "_summary"]["written_tokens"]
        if written != stats.tokens:
            problems.append(f"{name}: wrote {written} tokens, documents hold {stats.tokens}")
    if problems:
        raise AccountingError("prepare accounting broken, output not published:\n  " + "\n  ".join(problems))
