"""64-bit hashes of keys, and fractions in [0, 1) drawn from them: the same on every machine and layout.

The dedup tables and the quality meters place rows by ``key_hashes``; the prepare job's split, mix and
shuffles and the quality job's row sample draw their fractions with ``unit_fraction``.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import xxhash

_U64 = np.uint64


def splitmix64(x: np.ndarray) -> np.ndarray:
    """A strong 64-bit mixer (Steele et al.), vectorised."""
    with np.errstate(over="ignore"):
        x = x + _U64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
        return x ^ (x >> _U64(31))


def key_hashes(values: pa.Array | pa.ChunkedArray | list[str]) -> np.ndarray:
    """64-bit hashes of strings (xxh3 of their UTF-8 bytes) or of integers (mixed)."""
    if isinstance(values, list):
        strings = values
    elif pa.types.is_integer(values.type):
        numbers = pa.chunked_array([values]) if isinstance(values, pa.Array) else values
        return splitmix64(numbers.to_numpy().astype(_U64))
    else:
        strings = values.to_pylist()
    return np.fromiter((xxhash.xxh3_64_intdigest(v.encode("utf-8")) for v in strings), dtype=_U64,
                       count=len(strings))


def unit_fraction(hashes: np.ndarray) -> np.ndarray:
    """A float in [0, 1) per 64-bit hash: its top 53 bits, exact in a float and never 1.0."""
    return (hashes.astype(_U64) >> _U64(11)).astype(np.float64) / 2.0**53
