"""Scores order documents from clean/easy to noisy/hard (no Ray)."""
from __future__ import annotations

import pyarrow as pa

from factory.prepare.scores import SCORE_COLUMNS, curriculum_score_batch, score_batch, text_scores

EASY = "The cat sat on the mat. It was a sunny day. We had fun in the park."
HARD = ("Notwithstanding considerable methodological heterogeneity, contemporary epidemiological investigations "
        "consistently demonstrate statistically significant associations between socioeconomic deprivation and "
        "cardiovascular morbidity across heterogeneous populations.")
NOISY = "x_1 = {a^2 + b^2} / $\\sqrt{c}$ ## 3.14 >> 42 || @@ ~~ 0x7f <= 99%"


def test_difficulty_grows_with_long_sentences_and_long_words():
    assert text_scores(HARD)["difficulty_score"] > text_scores(EASY)["difficulty_score"] + 10


def test_quality_drops_with_symbols_and_digits():
    clean, noisy = text_scores(EASY), text_scores(NOISY)
    assert clean["quality_score"] == 1.0 and clean["non_alpha_ratio"] == 0.0
    assert noisy["quality_score"] < 0.6 and noisy["digit_ratio"] > 0.1 and noisy["symbol_ratio"] > 0.1


def test_empty_text_does_not_divide_by_zero():
    scores = text_scores("")
    assert scores["n_words"] == 0 and scores["difficulty_score"] == 0.0


def test_batch_columns_and_curriculum_score_order():
    batch = score_batch(pa.table({"text": [EASY, HARD, NOISY]}))
    assert set(SCORE_COLUMNS) <= set(batch.column_names)
    scored = curriculum_score_batch(batch, {"difficulty_score": 0.05, "quality_score": -2.0})
    easy, hard, noisy = scored["curriculum_score"].to_pylist()
    assert easy < hard and easy < noisy
