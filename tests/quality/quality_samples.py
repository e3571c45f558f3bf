"""Good datasets of every kind, built as Arrow tables in the contracts, for the quality suites' tests;
each test breaks one thing in one row and checks the suite names it."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from core import contracts

TOPICS = ["reactor", "turbine", "coolant", "valve", "sensor", "pump", "weld", "generator", "rod", "shift"]


def prose(i: int) -> str:
    """A distinct, PII-free paragraph per i."""
    topic = TOPICS[i % len(TOPICS)]
    return (f"Report {i} describes the {topic} inspection of unit {i // len(TOPICS)}. The {topic} was checked "
            f"against the manual and found in good order. Staff noted reading {i * 7 % 1000} in the log.")


def documents(n: int) -> pa.Table:
    return pa.table({
        "id": [f"d{i}" for i in range(n)], "text": [prose(i) for i in range(n)], "source": ["manuals"] * n,
        "domain": ["domain" if i % 5 else "general" for i in range(n)], "meta": ["{}"] * n,
        "dup_cluster": [f"d{i}" for i in range(n)], "dup_cluster_size": [1] * n,
    }, schema=contracts.FACTORY_DOCUMENTS)


def conversation(i: int) -> list[dict]:
    return [{"role": "user", "content": f"What does report {i} say about the {TOPICS[i % len(TOPICS)]}?"},
            {"role": "assistant", "content": prose(i)}]


def sft(n: int) -> pa.Table:
    tasks = ["question_answering", "summary", "term_explanation", "free_form"]
    return pa.table({
        "id": [f"s{i}" for i in range(n)], "task_type": [tasks[i % 4] for i in range(n)],
        "variant": ["plain" if i % 3 else "typos" for i in range(n)], "messages": [conversation(i) for i in range(n)],
        "source_doc_id": [f"d{i}" for i in range(n)], "generator": ["m"] * n, "prompt_version": ["v@1"] * n,
    }, schema=contracts.SFT)


def preferences(n: int, status: str = "pending") -> pa.Table:
    return pa.table({
        "id": [f"p{i}" for i in range(n)], "prompt": [conversation(i)[0]["content"] for i in range(n)],
        "chosen": [prose(i) for i in range(n)], "rejected": [f"I do not know about report {i}." for i in range(n)],
        "chosen_model": ["a"] * n, "rejected_model": ["b"] * n, "chosen_temperature": [0.2] * n,
        "rejected_temperature": [1.0] * n, "chosen_score": [8.0] * n, "rejected_score": [3.0] * n,
        "judge_model": ["j"] * n, "judge_rationale": ["longer"] * n, "review_status": [status] * n,
        "source_id": [f"s{i}" for i in range(n)], "source_doc_id": [f"d{i}" for i in range(n)],
        "prompt_version": ["v@1"] * n,
    }, schema=contracts.PREFERENCE)


def packed(n_rows: int, seq_len: int = 8) -> pa.Table:
    """Full rows of two documents each, and a short last row."""
    rows = [{"input_ids": list(range(i, i + seq_len)), "doc_lengths": [3, seq_len - 3], "n_tokens": seq_len,
             "doc_ids": [f"d{2 * i}", f"d{2 * i + 1}"], "doc_sources": ["manuals", "manuals"]} for i in range(n_rows - 1)]
    rows.append({"input_ids": [1, 2, 3], "doc_lengths": [3], "n_tokens": 3, "doc_ids": ["last"],
                 "doc_sources": ["manuals"]})
    return pa.Table.from_pylist(rows, schema=contracts.PACKED_CPT)


def cpt_documents(domain_tokens: int, general_tokens: int) -> pa.Table:
    return pa.table({"id": ["a", "b"], "source": ["manuals", "news"], "domain": ["domain", "general"],
                     "n_tokens": [domain_tokens, general_tokens], "split": ["train", "train"]})


def replace_row(table: pa.Table, row: int, **values) -> pa.Table:
    """``table`` with ``values`` in one row (the one defect a test plants)."""
    for column, value in values.items():
        column_values = table[column].to_pylist()
        column_values[row] = value
        table = table.set_column(table.schema.get_field_index(column), column,
                                 pa.array(column_values, table.schema.field(column).type))
    return table


def publish(root: Path, folders: dict[str, pa.Table], config: dict) -> Path:
    """An output published as a job publishes one (a version ``runs/<id>`` behind ``CURRENT``): data folders
    and a manifest recording ``config`` as the job's config; returns ``root``, the path a user names."""
    from pydantic import BaseModel

    from core.run import PublishedRun

    class Sample(BaseModel):
        config: dict

    run = PublishedRun(root, Sample(config=config), "sample run", overwrite=True)
    with run.writing([]) as partial:
        for folder, table in folders.items():
            (partial / folder).mkdir(parents=True)
            pq.write_table(table, partial / folder / "part-0.parquet")
        run.manifest["config"] = config  # the suites read the job's own config (redaction, mixing target)
    return root
