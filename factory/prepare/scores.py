"""Per-document quality and difficulty scores, computed inside ``map_batches``.

Columns (all float32 unless said):
  n_chars (int64), n_words (int64)  length
  mean_word_length                  characters per word
  words_per_sentence                sentences split on . ! ? and line breaks
  syllables_per_word                vowel groups per word (a standard heuristic)
  non_alpha_ratio                   share of non-space characters that are neither letters nor ordinary
                                    sentence punctuation (digits, symbols, math, markup): datatrove-style noise
  digit_ratio, symbol_ratio         shares of non-space characters that are digits / Unicode symbols (S*)
  quality_score                     1 - non_alpha_ratio: 1.0 is clean prose
  difficulty_score                  Flesch-Kincaid grade level (clipped to 0..30): long sentences, long words
The curriculum orders by a weighted sum of these (weights in config).
"""
from __future__ import annotations

import re
import unicodedata

import numpy as np
import pyarrow as pa

SCORE_COLUMNS = (
    "n_chars", "n_words", "mean_word_length", "words_per_sentence", "syllables_per_word",
    "non_alpha_ratio", "digit_ratio", "symbol_ratio", "quality_score", "difficulty_score",
)
ORDINARY_PUNCTUATION = set(".,;:!?'\"()-–—’‘“”")
WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)|\n+")
VOWEL_GROUP = re.compile(r"[aeiouy]+")


def syllables(word: str) -> int:
    return max(1, len(VOWEL_GROUP.findall(word.lower())))


def text_scores(text: str) -> dict[str, float]:
    words = WORD.findall(text)
    n_words = len(words)
    visible = [c for c in text if not c.isspace()]
    n_visible = max(len(visible), 1)
    letters = sum(c.isalpha() for c in visible)
    ordinary = sum(c in ORDINARY_PUNCTUATION for c in visible)
    digits = sum(c.isdigit() for c in visible)
    symbols = sum(unicodedata.category(c).startswith("S") for c in visible)
    sentences = max(1, len([s for s in SENTENCE_END.split(text) if s.strip()]))
    words_per_sentence = n_words / sentences
    syllables_per_word = sum(syllables(w) for w in words) / max(n_words, 1)
    non_alpha = (len(visible) - letters - ordinary) / n_visible if visible else 1.0
    grade = 0.39 * words_per_sentence + 11.8 * syllables_per_word - 15.59 if n_words else 0.0
    return {
        "n_chars": len(text),
        "n_words": n_words,
        "mean_word_length": sum(map(len, words)) / max(n_words, 1),
        "words_per_sentence": words_per_sentence,
        "syllables_per_word": syllables_per_word,
        "non_alpha_ratio": non_alpha,
        "digit_ratio": digits / n_visible,
        "symbol_ratio": symbols / n_visible,
        "quality_score": 1.0 - non_alpha,
        "difficulty_score": float(np.clip(grade, 0.0, 30.0)),
    }


def score_batch(batch: pa.Table) -> pa.Table:
    rows = [text_scores(text) for text in batch["text"].to_pylist()]
    for name in SCORE_COLUMNS:
        values = [row[name] for row in rows]
        kind = pa.int64() if name in ("n_chars", "n_words") else pa.float32()
        batch = batch.append_column(name, pa.array(values, kind))
    return batch


def curriculum_score_batch(batch: pa.Table, weights: dict[str, float]) -> pa.Table:
    """``curriculum_score`` = sum(weight * column): what the buckets are cut on (higher = later)."""
    total = np.zeros(batch.num_rows, dtype=np.float64)
    for column, weight in weights.items():
        total += weight * batch[column].to_numpy().astype(np.float64)
    return batch.append_column("curriculum_score", pa.array(total, pa.float32()))
