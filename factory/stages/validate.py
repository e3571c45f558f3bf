"""Reject documents no text work should see: null, empty or whitespace-only, or too long.

Vectorised with pyarrow compute, so a 10 MB document costs one length lookup here and
never reaches ftfy, the tokenizers or the filters.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from factory.config import LimitsConfig
from factory.documents import alive_mask, with_rejections
from factory.stages.base import RowStage


class Validate(RowStage):
    name = "validate"
    config_section = "limits"

    def __init__(self, limits: LimitsConfig):
        self.max_chars = limits.max_chars

    def __call__(self, table: pa.Table) -> pa.Table:
        return with_rejections(table, self.name, *validity(table, self.max_chars))


def validity(table: pa.Table, max_chars: int) -> tuple[list[str | None], list[str | None]]:
    """(reason, detail) per row; None for rows that are fine or already rejected."""
    text = table["text"]
    alive = alive_mask(table).to_pylist()
    lengths = pc.utf8_length(text).to_pylist()
    blank = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0).to_pylist()
    reasons: list[str | None] = []
    details: list[str | None] = []
    for is_alive, length, is_blank in zip(alive, lengths, blank):
        if not is_alive:
            reason, detail = None, None
        elif length is None:
            reason, detail = "null_text", "text is null"
        elif is_blank:
            reason, detail = "empty_text", f"{length} whitespace characters" if length else "empty string"
        elif length > max_chars:
            reason, detail = "too_long", f"{length} characters > limits.max_chars={max_chars}"
        else:
            reason, detail = None, None
        reasons.append(reason)
        details.append(detail)
    return reasons, details
