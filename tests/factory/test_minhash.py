"""MinHash signatures: the fraction of equal entries estimates word-shingle Jaccard, and a
document's signature depends only on its text, never on the batch it arrives in."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import regex
from conftest import PARAGRAPHS

from factory.dedup.minhash import MAX_HASH, band_keys, minhash_texts, permutations

NGRAM = 5
NUM_PERM = 256


def shingles(text: str, n: int = NGRAM) -> set[tuple[str, ...]]:
    """Exact word n-gram shingles, words being runs of letters and digits, lower-cased."""
    words = regex.findall(r"[\p{L}\p{N}]+", text.lower())
    if 0 < len(words) < n:
        return {tuple(words)}
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


def signatures(texts: list[str], seed: int = 1, num_perm: int = NUM_PERM) -> tuple[np.ndarray, np.ndarray]:
    a, b = permutations(num_perm, seed)
    return minhash_texts(pa.array(texts, pa.string()), NGRAM, a, b)


def estimated(sig: np.ndarray, i: int, j: int) -> float:
    return float((sig[i] == sig[j]).mean())


def edited(text: str, every: int) -> str:
    words = text.split(" ")
    return " ".join(w + "x" if i % every == every // 2 else w for i, w in enumerate(words))


A, B, C = PARAGRAPHS[0], PARAGRAPHS[1], PARAGRAPHS[2]
HALF_A = " ".join(A.split(" ")[: len(A.split(" ")) // 2])
PAIRS = [
    (A, edited(A, 30)),   # a few words changed
    (A, edited(A, 12)),   # more words changed
    (A, HALF_A),          # the first half of a document
    (A, A + " " + B),     # a document with another appended
    (A, B),               # unrelated documents
]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_estimated_jaccard_is_close_to_exact_shingle_jaccard(seed):
    texts = [t for pair in PAIRS for t in pair]
    sig, _ = signatures(texts, seed=seed)
    exact = [jaccard(x, y) for x, y in PAIRS]
    # the crafted pairs cover the whole range, so the estimate is checked where it matters
    assert max(exact) > 0.7 and min(exact) < 0.05 and any(0.3 < j < 0.7 for j in exact)
    for k, (x, y) in enumerate(PAIRS):
        assert abs(estimated(sig, 2 * k, 2 * k + 1) - exact[k]) <= 0.1, (k, exact[k])


def test_identical_texts_give_identical_signatures():
    sig, has_words = signatures([A, B, A])
    assert has_words.all()
    assert np.array_equal(sig[0], sig[2])
    assert not np.array_equal(sig[0], sig[1])
    assert sig.shape == (3, NUM_PERM) and sig.dtype == np.uint32


def test_case_and_punctuation_do_not_change_the_signature():
    sig, _ = signatures(["The Cat sat -- on the MAT, again!", "the cat sat on the mat again"])
    assert np.array_equal(sig[0], sig[1])


def test_text_without_words_has_no_words():
    sig, has_words = signatures(["", "!!! ... ??? -- ***", "Only three words", A])
    assert has_words.tolist() == [False, False, True, True]
    # documents with nothing to shingle get the all-max signature, never a real one
    assert (sig[0] == MAX_HASH).all() and (sig[1] == MAX_HASH).all()
    assert not (sig[2] == MAX_HASH).all()


def test_documents_shorter_than_a_shingle_are_compared_by_all_their_words():
    sig, _ = signatures(["Only three words", "only three words.", "Only four words"])
    assert np.array_equal(sig[0], sig[1])
    assert estimated(sig, 0, 2) < 0.1


def test_signature_does_not_depend_on_the_batch():
    unicode_text = "Der Bäcker in Köln verkauft frische Brötchen und süße Teilchen an jedem Morgen der Woche."
    target = [A, unicode_text, C]
    alone, _ = signatures(target)
    # many documents before and between: the batch is hashed in several chunks
    filler = [p + f" Variant number {i}." for i in range(60) for p in PARAGRAPHS[:1]]
    mixed = filler[:25] + [target[0]] + filler[25:50] + [target[1]] + filler[50:] + [target[2]]
    in_batch, _ = signatures(mixed)
    positions = [25, 51, len(mixed) - 1]
    for k, position in enumerate(positions):
        assert np.array_equal(in_batch[position], alone[k]), k
    reversed_sig, _ = signatures(list(reversed(target)))
    assert np.array_equal(reversed_sig[::-1], alone)


def test_a_document_longer_than_a_hashing_chunk_gets_the_same_signature():
    long_text = " ".join(f"word{i}" for i in range(6000))
    alone, _ = signatures([long_text])
    batch, _ = signatures([A, long_text, B])
    assert np.array_equal(batch[1], alone[0])


def test_band_keys_agree_exactly_when_a_band_agrees():
    sig, _ = signatures([A, A, edited(A, 30), B], num_perm=128)
    keys = band_keys(sig, num_bands=16, rows_per_band=8)
    assert keys.shape == (4, 16)
    assert np.array_equal(keys[0], keys[1])
    bands_equal = (sig[0].reshape(16, 8) == sig[2].reshape(16, 8)).all(axis=1)
    assert np.array_equal(keys[0] == keys[2], bands_equal)
    assert bands_equal.any()
    # the band index is part of the key: equal values in different bands never share a bucket
    same = np.tile(sig[0][:8], 16)[None, :]
    assert len(set(band_keys(same, 16, 8)[0].tolist())) == 16
