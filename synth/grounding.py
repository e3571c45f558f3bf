"""A cheap check that an answer stays inside its source document: most of its content words occur there.

It catches answers about some other paper or invented details, not subtle misreadings; the
threshold (``sft.grounding_min_overlap``) is config.
"""
from __future__ import annotations

import re

_WORD = re.compile(r"[^\W\d_]{4,}", re.UNICODE)  # words of 4+ letters: skips most function words


def content_words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def overlap(answer: str, document: str) -> float:
    words = content_words(answer)
    return len(words & content_words(document)) / len(words) if words else 0.0
