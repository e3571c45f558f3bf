"""The grouping pass: fit an embedder and coarse partitioner on a sample, embed every document, then
chain near neighbours into groups inside each (curriculum bucket, coarse cluster) (rules in grouping.py)."""
from __future__ import annotations

import math

import numpy as np

from factory.prepare.config import PrepareConfig
from factory.prepare.embedding import EmbedBatch, fit_partitioner, make_embedder
from factory.prepare.grouping import chain_partition, singleton_groups_batch
from factory.prepare.sampling import sample_column


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
