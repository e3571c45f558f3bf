"""Text normalisation: datatrove's FTFY formatter, then optional unwrapping of hard line breaks."""
from __future__ import annotations

import re

from factory.config import NormaliseConfig
from factory.stages.base import DocumentStepsStage
from factory.stages.document_steps import FormatterStep, Rejection, TextFunctionStep

# a single newline between two non-blank lines is a hard wrap; blank lines separate paragraphs
_HARD_WRAP = re.compile(r"(?<=\S)[ \t]*\n(?![ \t]*\n)[ \t]*(?=\S)")


def unwrap_hard_wraps(text: str) -> str:
    """Join lines broken inside a paragraph (datatrove has no such formatter)."""
    return _HARD_WRAP.sub(" ", text)


class RejectIfEmpty:
    name = "empty_after_normalise"

    def __call__(self, doc) -> Rejection | None:
        return Rejection(self.name) if not doc.text.strip() else None


class Normalise(DocumentStepsStage):
    name = "normalise"
    config_section = "normalise"

    @staticmethod
    def build_steps(config: NormaliseConfig) -> list:
        from datatrove.pipeline.formatters import FTFYFormatter

        steps = []
        if config.ftfy:
            steps.append(FormatterStep("ftfy", FTFYFormatter()))
        if config.unwrap_hard_wraps:
            steps.append(TextFunctionStep("unwrap_hard_wraps", unwrap_hard_wraps))
        steps.append(RejectIfEmpty())
        return steps
