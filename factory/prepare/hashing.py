"""Deterministic per-document random numbers: the same document gets the same number on any
cluster layout, so the split, the mixing sample and the shuffles do not depend on block order."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import xxhash

from factory.documents import document_key


def unit_hash(keys: list[str], salt: str) -> np.ndarray:
    """A float in [0, 1) per key, uniform, fixed by (salt, key)."""
    top_bits = [xxhash.xxh64_intdigest(f"{salt}\x00{key}".encode("utf-8")) >> 11 for key in keys]
    return np.array(top_bits, dtype=np.float64) / 2.0**53  # 53 bits: exact in a float, never 1.0


def document_unit_hash(batch: pa.Table, salt: str) -> np.ndarray:
    return unit_hash(document_key(batch).to_pylist(), salt)


def hash_sample_batch(batch: pa.Table, fraction: float, salt: str) -> pa.Table:
    """The rows whose hash falls under ``fraction``: a sample that is the same on every layout."""
    if fraction >= 1:
        return batch
    return batch.filter(pa.array(document_unit_hash(batch, salt) < fraction))
