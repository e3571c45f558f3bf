"""Run per-document steps (datatrove formatters and filters) over a batch.

A step does one thing to one datatrove ``Document``: a formatter rewrites its text, a filter
returns a rejection reason or None. Steps are built once per worker process from the
config and cached, because datatrove filters load tokenizers and word lists.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import pyarrow as pa
from datatrove.data import Document

from factory.documents import alive_mask, replace_column, with_rejections


@dataclass(frozen=True)
class Rejection:
    reason: str
    detail: str = ""


class DocumentStep(Protocol):
    name: str

    def __call__(self, doc: Document) -> Rejection | None: ...


class FormatterStep:
    """Wraps a datatrove formatter: rewrites the text, never rejects."""

    def __init__(self, name: str, formatter):
        self.name = name
        self.formatter = formatter

    def __call__(self, doc: Document) -> None:
        doc.text = self.formatter.format(doc.text)
        return None


class TextFunctionStep:
    """Wraps a plain ``str -> str`` function as a formatter step."""

    def __init__(self, name: str, function: Callable[[str], str]):
        self.name = name
        self.function = function

    def __call__(self, doc: Document) -> None:
        doc.text = self.function(doc.text)
        return None


class FilterStep:
    """Wraps a datatrove filter; its reason becomes ``<name>:<datatrove reason>``."""

    def __init__(self, name: str, datatrove_filter):
        self.name = name
        self.filter = datatrove_filter

    def __call__(self, doc: Document) -> Rejection | None:
        verdict = self.filter.filter(doc)
        if isinstance(verdict, tuple):
            keep, reason = verdict
        else:
            keep, reason = verdict, ""
        if keep:
            return None
        return Rejection(f"{self.name}:{reason}" if reason else self.name)


def apply_document_steps(table: pa.Table, stage: str, steps: list[DocumentStep]) -> pa.Table:
    """Apply ``steps`` in order to each live document; the first rejection wins."""
    texts = table["text"].to_pylist()
    ids = table["id"].to_pylist()
    alive = alive_mask(table).to_pylist()
    reasons: list[str | None] = [None] * len(texts)
    details: list[str | None] = [None] * len(texts)
    for i, (doc_id, text, is_alive) in enumerate(zip(ids, texts, alive)):
        if not is_alive:
            continue
        doc = Document(text=text, id=doc_id)
        for step in steps:
            rejection = step(doc)
            if rejection is not None:
                reasons[i], details[i] = rejection.reason, rejection.detail or None
                break
        texts[i] = doc.text
    table = replace_column(table, "text", pa.array(texts, pa.string()))
    return with_rejections(table, stage, reasons, details)
