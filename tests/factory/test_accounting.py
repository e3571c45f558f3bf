"""Accounting: the per-source in = kept + rejected invariant and the per-stage funnel."""
from __future__ import annotations

import pyarrow as pa
import pytest

from core.contracts import REJECTS as REJECTS_SCHEMA
from core.errors import AccountingError
from factory.accounting import check_invariant, count_by, format_funnel, funnel, rejects_by_stage
from factory.pipeline import FUNNEL_STAGES as STAGES


def rejects(*rows: tuple[str, str, str]) -> pa.Table:
    """Rejects table from (source, stage, reason) rows."""
    return pa.table(
        {
            "id": [f"r{i}" for i in range(len(rows))],
            "source": [r[0] for r in rows],
            "stage": [r[1] for r in rows],
            "reason": [r[2] for r in rows],
            "detail": [None] * len(rows),
        },
        schema=REJECTS_SCHEMA,
    )


def test_invariant_holds_returns_a_report_per_source():
    report = check_invariant({"news": 5, "papers": 3}, {"news": 4, "papers": 1}, {"news": 1, "papers": 2})
    assert report == {
        "news": {"in": 5, "kept": 4, "rejected": 1},
        "papers": {"in": 3, "kept": 1, "rejected": 2},
    }


def test_source_with_every_document_rejected_is_fine():
    assert check_invariant({"news": 2}, {}, {"news": 2}) == {"news": {"in": 2, "kept": 0, "rejected": 2}}


def test_missing_documents_raise_naming_only_the_broken_source():
    with pytest.raises(AccountingError) as info:
        check_invariant({"news": 5, "papers": 3}, {"news": 3, "papers": 1}, {"news": 1, "papers": 2})
    message = str(info.value)
    assert "news: in 5 != kept 3 + rejected 1" in message
    assert "papers" not in message


def test_extra_documents_raise():
    with pytest.raises(AccountingError, match="papers: in 3 != kept 3 \\+ rejected 1"):
        check_invariant({"papers": 3}, {"papers": 3}, {"papers": 1})


def test_documents_from_an_unknown_source_raise():
    with pytest.raises(AccountingError, match="ghost: in 0 != kept 1 \\+ rejected 0"):
        check_invariant({"papers": 1}, {"papers": 1, "ghost": 1}, {})


def test_count_by_counts_rows_per_value():
    table = pa.table({"source": ["a", "b", "a", "a"]})
    assert count_by(table, "source") == {"a": 3, "b": 1}
    assert count_by(table.slice(0, 0), "source") == {}


def test_rejects_by_stage_keeps_filter_rule_reasons_whole():
    table = rejects(("s", "quality", "c4:lorem_ipsum"), ("s", "quality", "c4:lorem_ipsum"),
                    ("s", "quality", "fineweb:list_ratio"), ("s", "read", "invalid_json"))
    counts = rejects_by_stage(table)
    assert counts["quality"] == {"c4:lorem_ipsum": 2, "fineweb:list_ratio": 1}
    assert counts["read"] == {"invalid_json": 1}


def test_funnel_arithmetic():
    # one or more rejects at every stage, in an order unrelated to the pipeline's
    rows = []
    for k, stage in enumerate(reversed(STAGES)):
        rows += [("s", stage, f"{stage}_reason")] * (k + 1) + [("s", stage, "other")]
    total_in = len(rows) + 7  # 7 documents are kept
    table = rejects(*rows)
    result = funnel(total_in, table)

    assert [row["stage"] for row in result] == list(STAGES)
    assert result[0]["in"] == total_in
    assert result[-1]["out"] == 7
    for previous, row in zip(result, result[1:]):
        assert row["in"] == previous["out"]
    for row in result:
        expected = {r[2]: sum(1 for x in rows if x == r) for r in rows if r[1] == row["stage"]}
        assert row["dropped"] == expected
        assert row["out"] == row["in"] - sum(expected.values())
        # most frequent reason first
        assert list(row["dropped"].values()) == sorted(row["dropped"].values(), reverse=True)


def test_funnel_without_rejects_keeps_everything():
    result = funnel(4, rejects())
    assert all(row["in"] == row["out"] == 4 and row["dropped"] == {} for row in result)


def test_funnel_refuses_an_unknown_stage():
    with pytest.raises(AccountingError, match="unknown stages"):
        funnel(3, rejects(("s", "teleport", "lost")))


def test_format_funnel_shows_every_stage_with_counts_and_top_reasons():
    reasons = [("s", STAGES[-1], f"reason_{k}") for k in range(8)]
    text = format_funnel(funnel(20, rejects(*reasons, ("s", STAGES[0], "invalid_json"))), top_reasons=6)
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["stage", "in", "out", "dropped"]
    body = {line.split()[0]: line for line in lines[2:]}
    assert list(body) == list(STAGES)
    assert body[STAGES[0]].split()[1:5] == ["20", "19", "1", "invalid_json"]
    assert body[STAGES[-1]].split()[1:4] == ["19", "11", "8"]
    assert "+2 more" in body[STAGES[-1]]
