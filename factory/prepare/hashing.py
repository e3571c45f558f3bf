"""Deterministic per-document random numbers: the same document gets the same number on any
cluster layout, so the split, the mixing sample and the shuffles do not depend on block order."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import xxhash

from core.hashing import unit_fraction
from factory.documents import document_key


def key_fraction(keys: list[str], salt: str) -> np.ndarray:
    """A float in [0, 1) per key, uniform, fixed by (salt, key)."""
    hashes = np.fromiter((xxhash.xxh64_intdigest(f"{salt}\x00{key}".encode("utf-8")) for key in keys),
                         dtype=np.uint64, count=len(keys))
    return unit_fraction(hashes)


def document_fraction(batch: pa.Table, salt: str) -> np.ndarray:
    return key_fraction(document_key(batch).to_pylist(), salt)


def hash_sample_batch(batch: pa.Table, fraction: float, salt: str) -> pa.Table:
    """The rows whose hash falls under ``fraction``: a sample that is the same on every layout."""
    if fraction >= 1:
        return batch
    return batch.filter(pa.array(document_fraction(batch, salt) < fraction))
