"""Per-document dedup keys, computed in the same streaming pass as cleaning.

``text_hash`` identifies exact duplicates: a hash of the text exactly as normalisation and
redaction left it. Exact dedup runs before the quality filters, so it may only join texts that
every filter judges alike, and only identical texts are sure to be; copies that differ in case or
spacing have identical MinHash signatures and fall to near-dedup, after the filters.
``minhash`` is the MinHash signature used for near duplicates. Rejected rows get nulls.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import xxhash

from factory.config import FuzzyDedupConfig
from factory.dedup.minhash import minhash_texts, permutations
from factory.documents import alive_mask
from factory.stages.base import RowStage


class DedupKeys(RowStage):
    """Adds ``text_hash`` and ``minhash`` in the cleaning pass; the dedup stages read only these."""

    name = "dedup_keys"
    shown = "hash for dedup"
    config_section = "dedup.fuzzy"
    drops_rows = False

    def __init__(self, fuzzy: FuzzyDedupConfig):
        self.fuzzy = fuzzy

    def __call__(self, table: pa.Table) -> pa.Table:
        return with_dedup_keys(table, self.fuzzy)


def with_dedup_keys(table: pa.Table, fuzzy: FuzzyDedupConfig) -> pa.Table:
    alive = alive_mask(table).combine_chunks()
    live_rows = np.flatnonzero(alive.to_numpy(zero_copy_only=False))
    texts = table["text"].combine_chunks().take(pa.array(live_rows, pa.int64()))
    hashes = [xxhash.xxh3_64_intdigest(t.encode("utf-8")) for t in texts.to_pylist()]
    text_hash = np.zeros(table.num_rows, dtype=np.uint64)
    text_hash[live_rows] = hashes
    table = table.append_column("text_hash", pa.array(text_hash, mask=~alive.to_numpy(zero_copy_only=False)))
    num_perm = fuzzy.num_perm
    signature = np.zeros((table.num_rows, num_perm), dtype=np.uint32)
    has_words = np.zeros(table.num_rows, dtype=bool)
    if fuzzy.enabled and len(live_rows):
        a, b = permutations(num_perm, fuzzy.seed)
        signature[live_rows], has_words[live_rows] = minhash_texts(texts, fuzzy.ngram_size, a, b)
    # null signature: rejected rows, and texts without a single word (nothing to compare)
    usable = has_words & fuzzy.enabled
    minhash = pa.FixedSizeListArray.from_arrays(pa.array(signature.reshape(-1)), num_perm, mask=pa.array(~usable))
    return table.append_column("minhash", minhash)
