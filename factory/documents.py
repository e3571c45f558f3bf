"""The in-flight document table: the corpus-document contract plus rejection columns.

Every stage sees every row. A stage only works on rows not yet rejected and marks the
rows it drops with (stage, reason, detail) instead of removing them, so the final split
into kept documents and rejects accounts for every input row.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

DOCUMENT_COLUMNS = ("id", "text", "source", "domain", "meta")
REJECT_COLUMNS = ("reject_stage", "reject_reason", "reject_detail")
KEY_SEPARATOR = "\x00"
IN_FLIGHT_SCHEMA = pa.schema(
    [(name, pa.string()) for name in DOCUMENT_COLUMNS] + [(name, pa.string()) for name in REJECT_COLUMNS]
)


def document_key(table: pa.Table) -> pa.ChunkedArray:
    """What identifies a document within a run: its id plus its source, since ids are only unique per
    source. The id comes first, so the smallest key belongs to the smallest id."""
    return pc.binary_join_element_wise(table["id"], table["source"], KEY_SEPARATOR)


def shown_id(key: str) -> str:
    """The document id part of a ``document_key``."""
    return key.split(KEY_SEPARATOR, 1)[0]


def alive_mask(table: pa.Table) -> pa.ChunkedArray:
    return pc.is_null(table["reject_stage"])


def with_rejections(
    table: pa.Table,
    stage: str | None,
    reasons: list[str | None],
    details: list[str | None],
    stages: list[str | None] | None = None,
) -> pa.Table:
    """Mark rows whose ``reasons`` entry is not None as rejected at ``stage`` (or ``stages[i]``).

    Rows already rejected keep their first rejection.
    """
    stages = stages if stages is not None else [stage] * len(reasons)
    new_stage = pa.array([s if r is not None else None for s, r in zip(stages, reasons)], pa.string())
    table = table.set_column(
        table.schema.get_field_index("reject_stage"), "reject_stage", pc.coalesce(table["reject_stage"], new_stage)
    )
    table = table.set_column(
        table.schema.get_field_index("reject_reason"),
        "reject_reason",
        pc.coalesce(table["reject_reason"], pa.array(reasons, pa.string())),
    )
    return table.set_column(
        table.schema.get_field_index("reject_detail"),
        "reject_detail",
        pc.coalesce(table["reject_detail"], pa.array(details, pa.string())),
    )


def replace_column(table: pa.Table, name: str, values) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)
