"""The whole prepare job on real local Ray, over a small fixed corpus with four topics."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import published

from core import progress
from factory.prepare.config import load_prepare_config
from factory.prepare.prepare_run import run_prepare as run
from factory.prepare.tokenize import encode
from prepare_corpus import topic_corpus, train_test_tokenizer, write_factory_output

pytestmark = pytest.mark.slow
SEQ_LEN = 128
DOMAIN_TOPICS = ("astronomy", "finance")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, ray_session):
    root = tmp_path_factory.mktemp("prepare")
    corpus = topic_corpus(per_topic=60, seed=3, min_sentences=2, max_sentences=24)
    domain = [(topic, text) for topic, text in corpus if topic in DOMAIN_TOPICS]
    general = [(topic, text) for topic, text in corpus if topic not in DOMAIN_TOPICS]
    write_factory_output(root / "factory", [t for _, t in domain], [t for _, t in general])
    topics = {("papers", f"d{i}"): topic for i, (topic, _) in enumerate(domain)}
    topics |= {("news", f"g{i}"): topic for i, (topic, _) in enumerate(general)}
    tokenizer = train_test_tokenizer([text for _, text in corpus], root / "tokenizer")
    config_path = root / "prepare.yaml"
    config_path.write_text(yaml.safe_dump({
        "input_dir": str(root / "factory"), "output_dir": str(root / "cpt"),
        "tokenizer": {"path": str(tokenizer)},
        "curriculum": {"num_buckets": 3},
        "grouping": {"embedder": "tfidf", "docs_per_partition": 60, "neighbours": 5},
        "packing": {"seq_len": SEQ_LEN, "rows_per_shard": 16},
        "validation": {"fraction": 0.15},
        "mixing": {"mode": "exact_ratio"},  # half the tokens are general: 0.8 leaves most of them out, warned
        "ray": {"num_cpus": 2, "batch_size": 64},
    }))
    config = load_prepare_config(config_path)
    log: list[str] = []
    with progress.lines_to(log.append):
        manifest = run(config)
    # "out": the run published, where a reader finds its files
    return {"config": config, "manifest": manifest, "out": published(config.output_dir), "topics": topics,
            "tokenizer": str(tokenizer), "config_path": config_path, "log": log}


def packed_rows(out: Path, split: str) -> list[dict]:
    """Rows in training order: shards by name, rows in file order."""
    return [row for path in sorted((out / split).glob("*.parquet")) for row in pq.read_table(path).to_pylist()]


def rebuild(rows: list[dict]) -> tuple[dict, list]:
    """{(source, id): tokens} from doc_lengths/doc_ids alone, and the document order."""
    docs, order = {}, []
    for row in rows:
        start = 0
        for doc_id, source, length in zip(row["doc_ids"], row["doc_sources"], row["doc_lengths"]):
            key = (source, doc_id)
            if key not in docs:
                order.append(key)
            docs.setdefault(key, []).extend(row["input_ids"][start:start + length])
            start += length
    return docs, order


def documents(out: Path) -> dict:
    return {(r["source"], r["id"]): r for r in pq.read_table(out / "documents").to_pylist()}


def test_every_token_of_every_document_is_packed_exactly_once(prepared):
    out, docs = prepared["out"], documents(prepared["out"])
    expected = dict(zip(docs, (ids.tolist() for ids in encode([d["text"] for d in docs.values()], prepared["tokenizer"]))))
    rebuilt = {}
    for split in ("train", "validation"):
        rows = packed_rows(out, split)
        assert all(r["n_tokens"] == SEQ_LEN == len(r["input_ids"]) for r in rows[:-1])  # no padding
        assert 0 < rows[-1]["n_tokens"] <= SEQ_LEN
        assert all(sum(r["doc_lengths"]) == r["n_tokens"] for r in rows)
        split_docs, _ = rebuild(rows)
        assert set(split_docs) == {k for k, d in docs.items() if d["split"] == split}
        rebuilt |= split_docs
    assert rebuilt == expected
    assert any(len(r["doc_ids"]) > 1 for r in packed_rows(out, "train"))  # rows hold several documents
    assert any(len(t) > SEQ_LEN for t in expected.values())  # and some documents span rows


def test_no_document_in_both_train_and_validation(prepared):
    train, _ = rebuild(packed_rows(prepared["out"], "train"))
    validation, _ = rebuild(packed_rows(prepared["out"], "validation"))
    assert train and validation and not set(train) & set(validation)


def test_order_is_monotone_in_curriculum_bucket(prepared):
    docs = documents(prepared["out"])
    _, order = rebuild(packed_rows(prepared["out"], "train"))
    buckets = [docs[key]["curriculum_bucket"] for key in order]
    assert np.all(np.diff(buckets) >= 0)
    assert sorted(set(buckets)) == [0, 1, 2]
    # buckets go from clean/easy to noisy/hard on the configured score
    scores = [docs[key]["curriculum_score"] for key in order]
    assert max(s for s, b in zip(scores, buckets) if b == 0) <= min(s for s, b in zip(scores, buckets) if b == 2)


def test_domain_token_share_within_two_percent_of_target(prepared):
    manifest = prepared["manifest"]
    assert abs(manifest["mixing"]["achieved_domain_token_fraction"] - 0.8) < 0.02
    tokens = {"papers": 0, "news": 0}
    for split in ("train", "validation"):
        for row in packed_rows(prepared["out"], split):
            for source, length in zip(row["doc_sources"], row["doc_lengths"]):
                tokens[source] += length
    assert abs(tokens["papers"] / sum(tokens.values()) - 0.8) < 0.02  # measured on what was packed
    left_out = pq.read_table(prepared["out"] / "mixed_out").num_rows
    assert left_out > 0 and len(documents(prepared["out"])) + left_out == len(prepared["topics"])


def test_a_large_mixing_cut_is_warned_of_in_the_log_the_manifest_and_the_report(prepared):
    warning = prepared["manifest"]["mixing"]["warning"]
    assert warning.startswith("mixing: reaching domain_token_fraction 0.8 needs leaving out") and "general" in warning
    assert sum(line.startswith(f"WARNING {warning}") for line in prepared["log"]) == 1  # once, when cut
    assert f"**Warning**: {warning}" in (prepared["out"] / "report.md").read_text()


def test_related_documents_share_context_windows(prepared):
    grouping = prepared["manifest"]["grouping"]
    assert grouping["row_neighbour_similarity"] > grouping["random_pair_similarity"] + 0.1
    topics = prepared["topics"]
    rows = packed_rows(prepared["out"], "train")
    _, order = rebuild(rows)
    bucket_of = {key: row["curriculum_bucket"] for key, row in documents(prepared["out"]).items()}
    # what the model sees together: consecutive documents inside one packed row
    in_a_row = [(a, b) for row in rows for a, b in zip(zip(row["doc_sources"], row["doc_ids"]),
                                                       zip(row["doc_sources"][1:], row["doc_ids"][1:])) if a != b]
    same_in_rows = np.mean([topics[a] == topics[b] for a, b in in_a_row])
    # chance: neighbours in the same documents' order shuffled inside curriculum buckets
    rng = np.random.default_rng(0)
    members = [[k for k in order if bucket_of[k] == b] for b in sorted(set(bucket_of.values()))]
    chance = np.mean([
        np.mean([topics[a] == topics[b] for keys in members
                 for a, b in zip(*(lambda s: (s, s[1:]))([keys[i] for i in rng.permutation(len(keys))]))])
        for _ in range(50)
    ])
    print(f"same topic in a row: {same_in_rows:.3f} over {len(in_a_row)} pairs; chance {chance:.3f}")
    assert same_in_rows > chance + 0.15


def test_report_manifest_and_rerun_is_a_no_op(prepared):
    out, manifest = prepared["out"], prepared["manifest"]
    report = (out / "report.md").read_text()
    for plot in ("lengths", "funnel", "buckets", "domain_ratio", "packing"):
        assert f"report/{plot}.png" in report and (out / "report" / f"{plot}.png").stat().st_size > 0
    assert manifest["splits"]["train"]["packing_efficiency"] > 0.95
    splits = [manifest["splits"][split] for split in ("train", "validation")]
    assert sum(s["documents"] for s in splits) == manifest["outputs"]["documents"]["rows"]  # all packed, counted once
    assert [s["rows"] for s in splits] == [manifest["outputs"][split]["rows"] for split in ("train", "validation")]
    log: list[str] = []
    with progress.lines_to(log.append):
        again = run(load_prepare_config(prepared["config_path"]))
    assert again["run_id"] == manifest["run_id"] and "nothing to do" in log[0]
    assert f"wrote {out}/{{train,validation,documents,mixed_out}}" in "\n".join(prepared["log"])  # the run's folder
