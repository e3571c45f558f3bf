"""Dedup computed partition by partition gives exactly the decisions of the single-process reference
(``dedup_reference``: how the factory decided before dedup was distributed), on a corpus built to need
it: exact copies across sources, near-duplicate chains whose ends are not similar to each other (so
clusters take several rounds to join), and keepers that are not the original text."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import parquet_source, published, write_config, write_parquet
from dedup_reference import reference_outcomes

from factory.config import load_factory_config

FILTERS_OFF = {name: {"enabled": False} for name in ("gopher_repetition", "gopher_quality", "c4", "fineweb")}
WORDS = ("the of and to in a is that for on with as by it at from this be are was an or which were their "
         "river stone market engine garden signal harbor winter letter bridge forest copper lantern meadow "
         "orbit pillar quartz ribbon saddle timber valley walnut yonder zephyr anchor basket candle dagger "
         "ember falcon glacier hollow island jasper kettle lumber marble nectar oyster pepper quiver raven "
         "summit thistle umber velvet willow xenon yarrow zinnia amber birch cedar dune fable grove").split()


def edit(words: list[str], rng: np.random.Generator, changes: int) -> list[str]:
    words = list(words)
    for position in rng.choice(len(words), size=changes, replace=False):
        words[position] = str(rng.choice(WORDS[20:]))
    return words


def corpus(seed: int = 7) -> dict[str, list[dict]]:
    """Two sources of documents: bases, chains of one-word edits of them, exact and re-spaced copies."""
    rng = np.random.default_rng(seed)
    texts: list[str] = []
    for _ in range(90):
        base = [str(w) for w in rng.choice(WORDS, size=int(rng.integers(70, 110)))]
        chain = [base]
        for _ in range(int(rng.integers(0, 5))):
            chain.append(edit(chain[-1], rng, 1))
        for words in chain:
            text = " ".join(words) + "."
            texts.append(text)
            if rng.random() < 0.3:
                texts.append(text)  # an exact copy
            if rng.random() < 0.15:
                texts.append("  ".join(words) + ".")  # the same words, spaced differently: a near copy
    sources: dict[str, list[dict]] = {"papers": [], "news": []}
    ids = rng.permutation(len(texts))  # ids unrelated to which text came first, so keepers vary
    for i, text in enumerate(texts):
        source = "papers" if rng.random() < 0.6 else "news"
        sources[source].append({"id": f"d{ids[i]:04d}" if rng.random() < 0.9 else f"x{i % 7}", "text": text})
    for source, rows in sources.items():  # ids unique per source, as the contract asks
        seen: set[str] = set()
        sources[source] = [r for r in rows if not (r["id"] in seen or seen.add(r["id"]))]
    return sources


@pytest.mark.slow
def test_partitioned_dedup_decides_exactly_as_the_single_process_reference(tmp_path, run_factory):
    sources = corpus()
    paths = [write_parquet(tmp_path / f"{name}.parquet",
                           {"id": [r["id"] for r in rows], "text": [r["text"] for r in rows]})
             for name, rows in sources.items()]
    config_path = write_config(
        tmp_path / "config.yaml", output_dir=tmp_path / "out", filters=FILTERS_OFF,
        sources=[parquet_source(name, path) for name, path in zip(sources, paths)],
        ray={"shuffle_partitions": 3},  # several partitions, so pairs and clusters cross them
    )
    result = run_factory(config_path)

    rows = [{**r, "source": name, "domain": "domain"} for name, rs in sources.items() for r in rs]
    expected = reference_outcomes(rows, load_factory_config(config_path))
    got = {(r["source"], r["id"]): ("kept", r["dup_cluster"], r["dup_cluster_size"]) for r in result.documents.to_pylist()}
    got |= {(r["source"], r["id"]): (r["stage"], r["reason"], r["detail"]) for r in result.rejects.to_pylist()}
    assert got == expected
    dedup = result.manifest["dedup"]
    assert dedup["exact_duplicates"] > 20 and dedup["near_duplicates"] > 50
    assert dedup["cluster_rounds"] >= 2  # chains joined over more than one round of large/small star
    assert not (published(result.output_dir) / "_work").exists()  # the spill is gone from the published run


OBJECT_STORE_BYTES = 80 * 2**20  # just above Ray's 75 MiB minimum


@pytest.mark.slow
def test_a_corpus_several_times_the_object_store_runs_through_it(tmp_path):
    """The factory as a user runs it, on a local Ray whose object store is under a third of the corpus. MinHash
    and the quality gate are off to keep the test short: the data path is what is under test."""
    import json
    import subprocess
    import sys

    from conftest import REPO, subprocess_env

    rng, vocabulary = np.random.default_rng(3), np.array(WORDS)
    texts = [" ".join(vocabulary[row]) for row in rng.integers(0, len(WORDS), size=(27_000, 1_700), dtype=np.int16)]
    texts += texts[:3_000]  # exact copies, found across partitions
    path = tmp_path / "big.parquet"  # row groups of ~18 MB: one of 250 MB could never fit the store
    pq.write_table(pa.table({"id": [f"b{i}" for i in range(len(texts))], "text": texts}), path, row_group_size=2_000)
    corpus_bytes = sum(len(t) for t in texts)
    assert corpus_bytes > 3 * OBJECT_STORE_BYTES
    config = write_config(
        tmp_path / "config.yaml", output_dir=tmp_path / "out", filters=FILTERS_OFF,
        sources=[parquet_source("big", path)],
        normalise={"ftfy": False}, redact={"emails": False, "ips": False, "phones": False},
        dedup={"exact": {"enabled": True}, "fuzzy": {"enabled": False}}, quality={"gate": False},
        ray={"num_cpus": 2, "object_store_memory": OBJECT_STORE_BYTES, "batch_size": 256},
    )
    done = subprocess.run([sys.executable, "-m", "factory", "run", str(config)], cwd=REPO, env=subprocess_env(),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((published(tmp_path / "out") / "manifest.json").read_text())
    assert manifest["dedup"]["exact_duplicates"] == 3_000
    assert manifest["outputs"]["documents"]["rows"] + manifest["outputs"]["rejects"]["rows"] == len(texts)


def test_a_join_across_partitions_keeps_the_batch_order_and_looks_a_hash_collision_up_by_value(tmp_path, monkeypatch):
    """A batch whose keys fall in several decision partitions gets each key's own row, in the batch's order; a key
    missing from the table gets nulls; two keys sharing a 64-bit hash are told apart by their value."""
    from core import spill
    from factory.dedup import partitions
    from factory.dedup.tables import CLUSTERS

    decided = [f"doc-{i:03d}" for i in range(40)]
    real_hashes = partitions.key_hashes
    # "doc-001" and "other" share a hash: "other" has no row, and must not get doc-001's
    monkeypatch.setattr(partitions, "key_hashes", lambda values: np.array(
        [real_hashes(pa.array(["doc-001"]))[0] if v == "other" else real_hashes(pa.array([v]))[0]
         for v in values.to_pylist()], dtype=np.uint64))
    partitions.indexed_part.cache_clear()
    table = pa.table({"key": decided, "cluster": [f"c{i % 7}" for i in range(40)], "size": list(range(40))},
                     schema=CLUSTERS)
    spill.write_parts(table, "key", tmp_path, 3, "decisions")  # placed by the real hashes: "other" has no row
    assert len(list(tmp_path.glob("part=*"))) == 3

    keys = pa.chunked_array([["doc-039", "missing", "doc-001", "other"], ["doc-000", "doc-017"]])
    joined = partitions.left_join(keys, tmp_path, 3, CLUSTERS)
    partitions.indexed_part.cache_clear()
    assert joined["key"].to_pylist() == ["doc-039", None, "doc-001", None, "doc-000", "doc-017"]
    assert joined["size"].to_pylist() == [39, None, 1, None, 0, 17]
    assert joined["cluster"].to_pylist() == ["c4", None, "c1", None, "c0", "c3"]
