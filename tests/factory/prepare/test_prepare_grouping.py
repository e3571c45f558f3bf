"""In-context grouping puts documents about the same topic next to each other (no Ray)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from factory.prepare.embedding import TfidfEmbedder
from factory.prepare.grouping import chain_partition, cut_into_groups, greedy_chain, nearest_neighbours
from prepare_corpus import topic_corpus


def adjacent_similarity(vectors: np.ndarray, order: np.ndarray) -> float:
    return float(np.mean(np.sum(vectors[order[:-1]] * vectors[order[1:]], axis=1)))


def test_greedy_chain_groups_related_documents_far_above_a_shuffled_baseline():
    corpus = topic_corpus(per_topic=12, seed=7)
    topics = np.array([t for t, _ in corpus])
    vectors = TfidfEmbedder([text for _, text in corpus], max_features=5000, svd_dims=16, seed=0).embed(
        [text for _, text in corpus])
    order = greedy_chain(nearest_neighbours(vectors, 5), np.random.default_rng(0))

    rng = np.random.default_rng(1)
    shuffled = [rng.permutation(len(corpus)) for _ in range(50)]
    baseline = np.mean([adjacent_similarity(vectors, s) for s in shuffled])
    chained = adjacent_similarity(vectors, order)
    assert chained > baseline + 0.3, (chained, baseline)

    same_topic = np.mean(topics[order[:-1]] == topics[order[1:]])
    chance = np.mean([np.mean(topics[s[:-1]] == topics[s[1:]]) for s in shuffled])  # about 1/4
    assert same_topic > 0.8 > chance + 0.4, (same_topic, chance)


def test_greedy_chain_visits_every_document_exactly_once():
    rng = np.random.default_rng(3)
    for n, k in [(1, 0), (2, 1), (30, 3), (200, 10)]:
        vectors = rng.normal(size=(n, 8))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        order = greedy_chain(nearest_neighbours(vectors, k), rng)
        assert sorted(order.tolist()) == list(range(n))


def test_chain_is_cut_into_groups_that_fit_the_token_budget():
    assert cut_into_groups(np.array([3, 3, 3, 5, 10, 1]), 6).tolist() == [0, 0, 1, 2, 3, 4]
    assert cut_into_groups(np.array([20, 1]), 6).tolist() == [0, 1]  # a long document is a group of its own


def partition_table(corpus) -> pa.Table:
    vectors = TfidfEmbedder([t for _, t in corpus], 5000, 8, 0).embed([t for _, t in corpus])
    return pa.table({
        "id": [f"d{i}" for i in range(len(corpus))],
        "source": ["papers"] * len(corpus),
        "curriculum_bucket": pa.array([1] * len(corpus), pa.int32()),
        "coarse_cluster": pa.array([2] * len(corpus), pa.int32()),
        "n_tokens": [50] * len(corpus),
        "embedding": pa.array(vectors.tolist(), pa.list_(pa.float32())),
    })


def test_partition_is_reordered_and_labelled():
    corpus = topic_corpus(per_topic=4, seed=2)
    table = partition_table(corpus)
    out = chain_partition(table, neighbours=3, group_tokens=100, seed=0)
    assert sorted(out["id"].to_pylist()) == sorted(table["id"].to_pylist())
    assert out["group_id"].to_pylist() == [f"1.2.{i // 2}" for i in range(len(corpus))]  # two 50-token docs per group
    assert out["group_position"].to_pylist() == [i % 2 for i in range(len(corpus))]
    ranks = dict(zip(out["group_id"].to_pylist(), out["group_rank"].to_pylist()))
    assert len(set(ranks.values())) == len(ranks)  # one rank per group, shared by its documents


def test_partition_grouping_does_not_depend_on_the_order_rows_arrive_in():
    table = partition_table(topic_corpus(per_topic=6, seed=4))
    shuffled = table.take(pa.array(np.random.default_rng(1).permutation(table.num_rows)))
    first = chain_partition(table, neighbours=3, group_tokens=100, seed=0)
    assert chain_partition(shuffled, neighbours=3, group_tokens=100, seed=0).equals(first)


def test_bundled_minilm_embeds_offline_and_places_same_topic_documents_closer():
    from factory.prepare.embedding import MiniLMEmbedder

    corpus = topic_corpus(per_topic=3, seed=5, min_sentences=2, max_sentences=3)
    vectors = MiniLMEmbedder(None, batch_size=16, max_seq_length=64).embed([t for _, t in corpus])
    topics = np.array([t for t, _ in corpus])
    similarity = vectors @ vectors.T
    same = topics[:, None] == topics[None, :]
    off_diagonal = ~np.eye(len(corpus), dtype=bool)
    assert vectors.shape == (len(corpus), 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    assert similarity[same & off_diagonal].mean() > similarity[~same].mean() + 0.1
