"""Vectorised MinHash: word n-gram shingles, signatures and LSH band keys for a batch.

No per-word or per-shingle Python loop: words come from one pyarrow regex split, each word
is hashed with a polynomial rolling hash computed by numpy prefix sums over the batch's
UTF-8 bytes, shingles combine word hashes over sliding windows, and the K "permutations"
are multiply-shift hashes applied as one matrix product per chunk of documents.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.hashing import splitmix64

_U64 = np.uint64
_WORD_BASE = 0x100000001B3  # odd, so it is invertible modulo 2**64
_SHINGLE_BASE = 0x9E3779B97F4A7C15
MAX_HASH = np.uint32(0xFFFFFFFF)
_CHUNK_ELEMENTS = 1 << 20  # shingles x permutations hashed at once (8 MB of uint64: stays in cache)
_POWER_CACHE: dict[int, np.ndarray] = {}


def _powers(base: int, n: int) -> np.ndarray:
    """base**0 .. base**n modulo 2**64, cached per process and grown by doubling."""
    cached = _POWER_CACHE.get(base)
    if cached is None or len(cached) <= n:
        size = max(n + 1, 2 * len(cached) if cached is not None else 1 << 16)
        cached = np.empty(size, dtype=_U64)
        cached[0] = 1
        with np.errstate(over="ignore"):
            cached[1:] = np.cumprod(np.full(size - 1, base, dtype=_U64))
        _POWER_CACHE[base] = cached
    return cached[: n + 1]


def words_of(texts: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Lower-cased word tokens (runs of letters/digits) of every text, flattened, and the count per text."""
    lists = pc.split_pattern_regex(pc.utf8_lower(texts), r"[^\p{L}\p{N}]+")
    flat = pc.list_flatten(lists)
    parents = pc.list_parent_indices(lists)
    keep = pc.greater(pc.utf8_length(flat), 0)
    words = pc.filter(flat, keep)
    counts = np.bincount(pc.filter(parents, keep).to_numpy(), minlength=len(texts)).astype(np.int64)
    return words, counts


def word_hashes(words: pa.Array) -> np.ndarray:
    """64-bit hash of each word: a polynomial hash of its bytes from prefix sums, then mixed."""
    words = words.cast(pa.large_string()) if not pa.types.is_large_string(words.type) else words
    if len(words) == 0:
        return np.zeros(0, dtype=_U64)
    offsets = np.frombuffer(words.buffers()[1], dtype=np.int64)[words.offset : words.offset + len(words) + 1]
    data = np.frombuffer(words.buffers()[2], dtype=np.uint8)
    start, end = offsets[:-1], offsets[1:]
    base_offset = int(offsets[0])
    data = data[base_offset : int(offsets[-1])].astype(_U64) + _U64(1)
    start, end = start - base_offset, end - base_offset
    n = len(data)
    powers = _powers(_WORD_BASE, n)
    inverse_powers = _powers(pow(_WORD_BASE, -1, 1 << 64), n)
    prefix = np.zeros(n + 1, dtype=_U64)
    with np.errstate(over="ignore"):
        prefix[1:] = np.cumsum(data * powers[:n])
        raw = (prefix[end] - prefix[start]) * inverse_powers[start]
    return splitmix64(raw ^ (end - start).astype(_U64))


def shingle_hashes(hashes: np.ndarray, counts: np.ndarray, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of word n-grams that stay inside one document, and the document of each.

    A document shorter than ``ngram`` words has one shingle of all its words.
    """
    n_docs = len(counts)
    doc_of_word = np.repeat(np.arange(n_docs), counts)
    first_word = np.concatenate([[0], np.cumsum(counts)[:-1]]) if n_docs else np.zeros(0, np.int64)
    n_windows = max(len(hashes) - ngram + 1, 0)
    with np.errstate(over="ignore"):
        acc = np.zeros(n_windows, dtype=_U64)
        for k in range(ngram):
            acc = acc * _U64(_SHINGLE_BASE) + hashes[k : k + n_windows]
    window_doc = doc_of_word[:n_windows]
    inside = (np.arange(n_windows) - first_word[window_doc] + ngram) <= counts[window_doc]
    shingles, shingle_doc = [acc[inside]], [window_doc[inside]]
    short_docs = np.flatnonzero((counts > 0) & (counts < ngram))
    if len(short_docs):
        short = np.zeros(len(short_docs), dtype=_U64)
        with np.errstate(over="ignore"):
            for k in range(ngram - 1):
                has_word = counts[short_docs] > k
                short[has_word] = short[has_word] * _U64(_SHINGLE_BASE) + hashes[first_word[short_docs[has_word]] + k]
        shingles.append(short)
        shingle_doc.append(short_docs)
    shingles_all = np.concatenate(shingles)
    docs_all = np.concatenate(shingle_doc)
    order = np.argsort(docs_all, kind="stable")
    return splitmix64(shingles_all[order]), docs_all[order]


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 1 << 63, size=num_perm, dtype=np.uint64) * _U64(2) + _U64(1)
    b = rng.integers(0, 1 << 63, size=num_perm, dtype=np.uint64)
    return a, b


def signatures(shingles: np.ndarray, shingle_doc: np.ndarray, n_docs: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MinHash signature per document (uint32, shape [n_docs, K]); documents without shingles get all-max."""
    num_perm = len(a)
    out = np.full((n_docs, num_perm), MAX_HASH, dtype=np.uint32)
    if len(shingles) == 0:
        return out
    doc_start = np.searchsorted(shingle_doc, np.arange(n_docs + 1))
    chunk_shingles = max(1, _CHUNK_ELEMENTS // num_perm)
    buffer = np.empty((chunk_shingles, num_perm), dtype=_U64)
    begin = 0
    while begin < len(shingles):
        # whole documents per chunk; a document longer than a chunk gets a chunk of its own
        end = min(len(shingles), begin + chunk_shingles)
        if end < len(shingles):
            end = max(end, doc_start[shingle_doc[end - 1] + 1]) if shingle_doc[end - 1] == shingle_doc[end] else end
        chunk, docs = shingles[begin:end], shingle_doc[begin:end]
        hashed = buffer[: len(chunk)] if len(chunk) <= chunk_shingles else np.empty((len(chunk), num_perm), _U64)
        with np.errstate(over="ignore"):
            np.multiply(chunk[:, None], a[None, :], out=hashed)
            np.add(hashed, b[None, :], out=hashed)
        np.right_shift(hashed, _U64(32), out=hashed)
        boundaries = np.flatnonzero(np.r_[True, docs[1:] != docs[:-1]])
        out[docs[boundaries]] = np.minimum.reduceat(hashed, boundaries, axis=0)
        begin = end
    return out


def band_keys(signature: np.ndarray, num_bands: int, rows_per_band: int) -> np.ndarray:
    """One 64-bit bucket key per (document, band); the band index is mixed in so bands never collide."""
    n_docs = signature.shape[0]
    bands = signature[:, : num_bands * rows_per_band].reshape(n_docs, num_bands, rows_per_band).astype(_U64)
    with np.errstate(over="ignore"):
        acc = np.zeros((n_docs, num_bands), dtype=_U64)
        for r in range(rows_per_band):
            acc = acc * _U64(_SHINGLE_BASE) + bands[:, :, r]
        acc = acc + np.arange(num_bands, dtype=_U64)[None, :] * _U64(0xD6E8FEB86659FD93)
    return splitmix64(acc)


def minhash_texts(texts: pa.Array, ngram: int, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signatures for a batch of texts, and whether each text had any word at all."""
    words, counts = words_of(texts)
    shingles, shingle_doc = shingle_hashes(word_hashes(words), counts, ngram)
    return signatures(shingles, shingle_doc, len(texts), a, b), counts > 0
