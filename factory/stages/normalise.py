"""Text normalisation: datatrove's FTFY formatter, then optional unwrapping of hard line breaks."""
from __future__ import annotations

import re
from functools import lru_cache

import pyarrow as pa

from factory.config import NormaliseConfig
from factory.stages.document_steps import FormatterStep, Rejection, TextFunctionStep, run_steps

STAGE = "normalise"
# a single newline between two non-blank lines is a hard wrap; blank lines separate paragraphs
_HARD_WRAP = re.compile(r"(?<=\S)[ \t]*\n(?![ \t]*\n)[ \t]*(?=\S)")


def unwrap_hard_wraps(text: str) -> str:
    """Join lines broken inside a paragraph (datatrove has no such formatter)."""
    return _HARD_WRAP.sub(" ", text)


class RejectIfEmpty:
    name = "empty_after_normalise"

    def __call__(self, doc) -> Rejection | None:
        return Rejection(self.name) if not doc.text.strip() else None


@lru_cache(maxsize=4)
def build_steps(config_json: str) -> list:
    from datatrove.pipeline.formatters import FTFYFormatter

    config = NormaliseConfig.model_validate_json(config_json)
    steps = []
    if config.ftfy:
        steps.append(FormatterStep("ftfy", FTFYFormatter()))
    if config.unwrap_hard_wraps:
        steps.append(TextFunctionStep("unwrap_hard_wraps", unwrap_hard_wraps))
    steps.append(RejectIfEmpty())
    return steps


def normalise_batch(table: pa.Table, config_json: str) -> pa.Table:
    return run_steps(table, STAGE, build_steps(config_json))
