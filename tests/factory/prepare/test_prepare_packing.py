"""Packing keeps every token of every document exactly once, with exact boundaries (no Ray)."""
from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from factory.prepare.row_packer import RowPacker as Packer, ShardWriter

EOS = 0


def documents(lengths: list[int], seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """Documents of the given token counts (EOS included), distinct random ids."""
    rng = np.random.default_rng(seed)
    return [(f"doc{i}", np.append(rng.integers(1, 1000, n - 1), EOS).astype(np.int32)) for i, n in enumerate(lengths)]


def pack(docs, seq_len: int) -> list[dict]:
    packer, rows = Packer(seq_len), []
    for doc_id, tokens in docs:
        rows += packer.add(tokens, doc_id, "src")
    return rows + packer.finish()


def reconstruct(rows: list[dict]) -> dict[str, list[int]]:
    """Documents rebuilt from packed rows through doc_lengths/doc_ids alone (as training would)."""
    rebuilt: dict[str, list[int]] = {}
    for row in rows:
        start = 0
        for doc_id, length in zip(row["doc_ids"], row["doc_lengths"]):
            rebuilt.setdefault(doc_id, []).extend(np.asarray(row["input_ids"][start:start + length]).tolist())
            start += length
        assert start == len(row["input_ids"]) == row["n_tokens"]
    return rebuilt


@pytest.mark.parametrize("seq_len", [8, 16, 64])
def test_every_token_of_every_document_exactly_once(seq_len):
    lengths = [1, 3, 8, 16, 17, 40, 5, 64, 65, 2, 129, 7]  # shorter, equal to and multiples of seq_len
    docs = documents(lengths)
    rows = pack(docs, seq_len)
    rebuilt = reconstruct(rows)
    assert list(rebuilt) == [doc_id for doc_id, _ in docs]  # order kept
    for doc_id, tokens in docs:
        assert rebuilt[doc_id] == tokens.tolist()
    assert sum(r["n_tokens"] for r in rows) == sum(lengths)


def test_rows_are_full_except_the_last_and_never_padded():
    rows = pack(documents([5, 30, 7, 11, 2]), seq_len=16)  # 55 tokens -> 3 full rows + 7
    assert [r["n_tokens"] for r in rows] == [16, 16, 16, 7]
    assert all(len(r["input_ids"]) == r["n_tokens"] == sum(r["doc_lengths"]) for r in rows)


def test_boundaries_at_row_edges():
    docs = documents([6, 10, 20, 3], seed=1)  # doc1 ends exactly at the first row's edge; doc2 spans two edges
    rows = pack(docs, seq_len=16)
    assert rows[0]["doc_ids"] == ["doc0", "doc1"] and rows[0]["doc_lengths"] == [6, 10]
    assert rows[1]["doc_ids"] == ["doc2"] and rows[1]["doc_lengths"] == [16]  # a row starts with a new document
    assert rows[2]["doc_ids"] == ["doc2", "doc3"] and rows[2]["doc_lengths"] == [4, 3]
    # each piece ends where its document's EOS sits: the separator is the last token of a finished document
    assert rows[0]["input_ids"][5] == EOS and rows[0]["input_ids"][15] == EOS and rows[2]["input_ids"][3] == EOS
    # the continued piece starts with the token that follows the previous row's piece
    assert rows[2]["input_ids"][:4].tolist() == docs[2][1][16:].tolist()


def test_a_document_longer_than_many_rows_is_split_without_loss():
    docs = documents([100], seed=2)
    rows = pack(docs, seq_len=16)
    assert [r["doc_lengths"] for r in rows] == [[16]] * 6 + [[4]]
    assert np.concatenate([r["input_ids"] for r in rows]).tolist() == docs[0][1].tolist()


def test_empty_stream_makes_no_rows():
    assert pack([], seq_len=16) == []


def test_shards_round_trip_through_parquet(tmp_path):
    docs = documents(list(range(1, 60)), seed=3)
    writer = ShardWriter(tmp_path / "train", rows_per_shard=10)
    packer = Packer(32)
    for doc_id, tokens in docs:
        writer.write(packer.add(tokens, doc_id, "src"))
    writer.write(packer.finish())
    writer.close()
    table = pq.read_table(tmp_path / "train")
    assert writer.shards == len(list((tmp_path / "train").glob("*.parquet"))) > 1
    assert table.schema.field("input_ids").type.value_type == "int32"
    assert table.schema.field("doc_lengths").type.value_type == "int32"
    files = sorted((tmp_path / "train").glob("*.parquet"))
    rows = [row for f in files for row in pq.read_table(f).to_pylist()]
    rebuilt = reconstruct(rows)
    assert all(rebuilt[doc_id] == tokens.tolist() for doc_id, tokens in docs)
    assert writer.tokens == sum(len(t) for _, t in docs)


def test_empty_split_still_has_a_readable_shard(tmp_path):
    writer = ShardWriter(tmp_path / "validation", rows_per_shard=10)
    writer.close()
    assert pq.read_table(tmp_path / "validation").num_rows == 0
