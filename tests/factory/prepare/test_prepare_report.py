"""The report and manifest numbers come from bounded summaries (length bins, rows per piece count, running
sums), never from one number per document or row on the driver, and lose nothing the report shows."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from factory.prepare import report
from factory.prepare.lengths import BINS_PER_OCTAVE, LENGTH_EDGES, N_LENGTH_BINS, length_bins, plot_bins
from factory.prepare.pack_splits import pack_splits
from factory.prepare.split import TRAIN, VALIDATION

SEQ_LEN = 16


def test_length_bins_are_fixed_and_log_spaced():
    lengths = np.array([1, 2, 3, 7, 8, 1000, 123456])
    bins = length_bins(lengths)
    assert np.all(LENGTH_EDGES[bins] <= lengths) and np.all(lengths < LENGTH_EDGES[bins + 1])
    assert bins[1] == BINS_PER_OCTAVE and bins[4] == 3 * BINS_PER_OCTAVE  # a power of two starts a bin
    assert length_bins([0, 2**40]).tolist() == [0, N_LENGTH_BINS - 1]  # out of range: the end bins


def test_plot_bins_keep_every_document():
    rng = np.random.default_rng(0)
    before = rng.lognormal(5, 1.5, 3000).astype(int) + 1
    after = before[:1800]
    edges, (before_counts, after_counts) = plot_bins([Counter(length_bins(before).tolist()),
                                                      Counter(length_bins(after).tolist())])
    assert len(edges) - 1 <= 40 and edges[0] <= before.min() and before.max() < edges[-1]
    # exactly the counts a histogram of the lengths themselves gives over the same edges
    assert before_counts.tolist() == np.histogram(before, edges)[0].tolist()
    assert after_counts.tolist() == np.histogram(after, edges)[0].tolist()
    edges, (empty,) = plot_bins([{}])
    assert len(edges) == 2 and empty.sum() == 0


class Batches:
    """What pack_splits reads from the sorted Ray dataset: pyarrow batches in order."""

    def __init__(self, tables: list[pa.Table]):
        self.tables = tables

    def iter_batches(self, **_):
        return iter(self.tables)


def sorted_documents(lengths: list[int], seed: int = 0) -> list[pa.Table]:
    rng = np.random.default_rng(seed)
    n = len(lengths)
    vectors = rng.normal(size=(n, 4)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    table = pa.table({
        "id": [f"d{i}" for i in range(n)], "source": ["src"] * n,
        "domain": ["domain" if i % 3 else "general" for i in range(n)],
        "split": [VALIDATION if i % 5 == 0 else TRAIN for i in range(n)],
        "curriculum_bucket": [i * 3 // n for i in range(n)], "n_tokens": lengths,
        "token_ids": [rng.integers(1, 100, size).tolist() for size in lengths],
        "embedding": vectors.tolist(),
    })
    return [table.slice(start, 7) for start in range(0, n, 7)]  # several batches


@pytest.fixture()
def packed(tmp_path):
    rng = np.random.default_rng(1)
    lengths = (rng.lognormal(2, 1, 60).astype(int) + 1).tolist()
    batches = sorted_documents(lengths)
    return pack_splits(Batches(batches), tmp_path, SEQ_LEN, rows_per_shard=4, batch_size=7), pa.concat_tables(batches)


def test_pack_stats_are_bounded_and_exact(packed, tmp_path):
    result, documents = packed
    for split in (TRAIN, VALIDATION):
        stats = result[split].stats
        lengths = [n for n, s in zip(documents["n_tokens"].to_pylist(), documents["split"].to_pylist()) if s == split]
        assert stats.length_docs == Counter(length_bins(lengths).tolist())
        assert sum(stats.length_docs.values()) == stats.docs == len(lengths)
        rows = pq.read_table(tmp_path / split).to_pylist()
        assert stats.pieces_rows == Counter(len(row["doc_lengths"]) for row in rows)
        assert sum(stats.pieces_rows.values()) == result[split].rows == result[split].summary()["rows"]
        assert max(stats.pieces_rows) <= SEQ_LEN
    # the running mean of neighbour similarity is the mean over the pairs that share a row
    vectors = np.array(documents["embedding"].to_pylist())
    pairs = []
    for split in (TRAIN, VALIDATION):
        for row in pq.read_table(tmp_path / split).to_pylist():
            ids = [int(doc_id[1:]) for doc_id in row["doc_ids"]]
            pairs += [float(vectors[a] @ vectors[b]) for a, b in zip(ids, ids[1:]) if a != b]
    assert pairs and result.row_neighbour_similarity == pytest.approx(np.mean(pairs), abs=1e-9)


def test_report_plots_from_bounded_counts(packed, tmp_path, monkeypatch):
    result, documents = packed
    summaries = {split: result[split].summary() for split in (TRAIN, VALIDATION)}
    manifest = {
        "run_id": "r", "config_hash": "h", "factory_run": {"run_id": "f"}, "config": {"packing": {"seq_len": SEQ_LEN}},
        "splits": summaries, "grouping": {"enabled": False}, "curriculum": {"bucket_edges": [0.1, 0.2]},
        "mixing": {"tokens_before": {"domain": 10, "general": 5}, "tokens_after": {"domain": 8, "general": 2},
                   "target_domain_token_fraction": 0.8, "achieved_domain_token_fraction": 0.8, "documents_left_out": 9},
    }
    lengths_before = Counter(length_bins(documents["n_tokens"].to_numpy()).tolist() + [length_bins([500])[0]] * 9)
    drawn = {}

    def recording(name):
        draw = getattr(report, name)

        def record(folder, *args):
            drawn[name] = args
            return draw(folder, *args)
        return record

    for name in ("length_histogram", "pieces_chart", "funnel_chart"):
        monkeypatch.setattr(report, name, recording(name))
    path = report.write_report(tmp_path, manifest, {"stages": [{"stage": "input", "out": 69}]}, lengths_before,
                               result)
    text = (tmp_path / path).read_text()
    for plot in ("lengths", "funnel", "buckets", "domain_ratio", "packing"):
        assert f"report/{plot}.png" in text and (tmp_path / "report" / f"{plot}.png").stat().st_size > 0
    before, after = drawn["length_histogram"]
    packed_docs = summaries[TRAIN]["documents"] + summaries[VALIDATION]["documents"]
    assert sum(after.values()) == packed_docs == documents.num_rows and sum(before.values()) == packed_docs + 9
    assert drawn["funnel_chart"][0][-1] == ("mixing (CPT dataset)", packed_docs)
    assert sum(drawn["pieces_chart"][0].values()) == summaries[TRAIN]["rows"]


@pytest.mark.slow
def test_totals_by_streams_partial_sums(ray_session, monkeypatch):
    from factory.prepare import totals

    rng = np.random.default_rng(2)
    n_tokens = rng.integers(1, 5000, 500)
    bins = rng.integers(0, 50, 500)
    ds = ray_session.data.from_items([{"n_tokens": int(n), "mix_bin": int(b)} for n, b in zip(n_tokens, bins)],
                                     override_num_blocks=8)
    monkeypatch.setattr(totals, "FOLD_ROWS", 30)  # fold several times on the way
    expected = {int(b): int(n_tokens[bins == b].sum()) for b in np.unique(bins)}
    assert totals.totals_by(ds, "mix_bin") == expected
    assert list(totals.totals_by(ds, "mix_bin")) == sorted(expected)
    assert totals.length_counts(ds) == dict(sorted(Counter(length_bins(n_tokens).tolist()).items()))
