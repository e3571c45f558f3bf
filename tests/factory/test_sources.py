"""Reading a source into contract rows, without Ray: fallback ids must name the row and never repeat."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from factory.config import SourceConfig
from core.storage import local_location
from factory.sources import file_labels, jsonl_file_to_contract, parquet_batch_to_contract


def test_jsonl_fallback_ids_stay_distinct_for_files_of_the_same_name(tmp_path):
    files = []
    for part in ("2024", "2025"):
        path = tmp_path / part / "news.jsonl"
        path.parent.mkdir()
        path.write_bytes(b'{"body": "no id here"}\n')
        files.append(path)
    labels = file_labels([local_location(f) for f in files])
    assert sorted(labels.values()) == ["2024/news.jsonl", "2025/news.jsonl"]
    source = SourceConfig(name="news", path=str(tmp_path), text_column="body", id_column="doc_id", domain="general")
    batch = {"path": np.array([str(f) for f in files]), "bytes": np.array([f.read_bytes() for f in files])}
    table = jsonl_file_to_contract(batch, source, labels)
    assert table["id"].to_pylist() == ["2024/news.jsonl:1", "2025/news.jsonl:1"]
    assert table["reject_reason"].to_pylist() == ["missing_id", "missing_id"]
    assert "2025/news.jsonl line 1" in table["reject_detail"][1].as_py()


def test_unique_file_names_are_shown_without_folders(tmp_path):
    files = [local_location(tmp_path / "a" / "x.jsonl"), local_location(tmp_path / "b" / "y.jsonl")]
    assert list(file_labels(files).values()) == ["x.jsonl", "y.jsonl"]


def test_parquet_rows_without_an_id_get_distinct_ids_and_a_reject(tmp_path):
    source = SourceConfig(name="papers", path=str(tmp_path), text_column="text", id_column="id", domain="domain")
    batch = pa.table({"id": [None, "kept", None], "text": ["first text", "fine", "second text"]})
    table = parquet_batch_to_contract(batch, source)
    ids = table["id"].to_pylist()
    assert ids[1] == "kept" and len(set(ids)) == 3 and all(i.startswith("papers:missing-id:") for i in ids[::2])
    assert table["reject_reason"].to_pylist() == ["missing_id", None, "missing_id"]
