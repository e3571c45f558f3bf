"""The Parquet schemas synth writes: SFT examples, preference triples, rejects (DESIGN.md contracts)."""
from __future__ import annotations

import pyarrow as pa

MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))

SFT_SCHEMA = pa.schema([
    ("id", pa.string()), ("task_type", pa.string()), ("variant", pa.string()), ("messages", MESSAGES),
    ("source_doc_id", pa.string()), ("generator", pa.string()), ("prompt_version", pa.string()),
])

PREFERENCE_SCHEMA = pa.schema([
    ("id", pa.string()), ("prompt", pa.string()), ("chosen", pa.string()), ("rejected", pa.string()),
    ("chosen_model", pa.string()), ("rejected_model", pa.string()),
    ("chosen_temperature", pa.float64()), ("rejected_temperature", pa.float64()),
    ("chosen_score", pa.float64()), ("rejected_score", pa.float64()),
    ("judge_model", pa.string()), ("judge_rationale", pa.string()), ("review_status", pa.string()),
    ("source_id", pa.string()), ("source_doc_id", pa.string()), ("prompt_version", pa.string()),
])

# DESIGN's rejects contract plus the raw model text, so a malformed answer can be inspected
REJECTS_SCHEMA = pa.schema([
    ("id", pa.string()), ("source", pa.string()), ("stage", pa.string()), ("reason", pa.string()),
    ("detail", pa.string()), ("raw", pa.string()),
])


def reject(item_id: str, source: str | None, stage: str, reason: str, detail: str | None = None,
           raw: str | None = None) -> dict:
    return {"id": item_id, "source": source, "stage": stage, "reason": reason, "detail": detail, "raw": raw}
