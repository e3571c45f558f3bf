"""What a synth job hands back to the run: its rows, its rejects (with the raw answer when there is
one), what its requests cost, and its counts."""
from __future__ import annotations

from dataclasses import dataclass

from core.llm.requests import RequestStats


@dataclass
class JobResult:
    rows: list[dict]
    rejects: list[dict]
    stats: dict[str, RequestStats]  # by stage, e.g. generate, variant
    counts: dict


def reject(item_id: str, source: str | None, stage: str, reason: str, detail: str | None = None,
           raw: str | None = None) -> dict:
    """A row of the synth rejects contract (core.contracts.SYNTH_REJECTS)."""
    return {"id": item_id, "source": source, "stage": stage, "reason": reason, "detail": detail, "raw": raw}
