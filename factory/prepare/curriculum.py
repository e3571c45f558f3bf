"""Curriculum buckets: equal-count quantiles of ``curriculum_score``, 0 = clean/easy, last = noisy/hard.

Edges come from a hash sample of the scores (bounded, so nothing large reaches the driver); the
global order is a Ray Data ``sort`` on (bucket, random group rank, position in group), which keeps
buckets in order and shuffles groups inside each bucket under the seed.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

SORT_KEY = ["curriculum_bucket", "group_rank", "group_id", "group_position"]


def bucket_edges(scores: np.ndarray, num_buckets: int) -> list[float]:
    if len(scores) == 0 or num_buckets == 1:
        return []
    return [float(q) for q in np.quantile(scores, np.arange(1, num_buckets) / num_buckets)]


def bucket_of(scores: np.ndarray, edges: list[float]) -> np.ndarray:
    return np.searchsorted(np.asarray(edges, dtype=np.float64), scores, side="right").astype(np.int32)


def bucket_batch(batch: pa.Table, edges: list[float]) -> pa.Table:
    buckets = bucket_of(batch["curriculum_score"].to_numpy().astype(np.float64), edges)
    return batch.append_column("curriculum_bucket", pa.array(buckets, pa.int32()))
