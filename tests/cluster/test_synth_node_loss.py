"""Synth's node-loss drill: ``python -m synth sft`` submitted to the package's cluster resolves its requests on an
actor pool (Ray Data ``map_batches``, two actors per worker node) against a slow loopback OpenAI server that
records every request; a worker node is killed once some answers have reached the answer cache and others have
not. The job must finish with the undisturbed run's rows (or fail named), and no request whose answer was in the
cache is sent again: Ray Data restarts the lost actors and retries their batches, and a retried batch takes what
the cache holds (the cache file is on local disk, which every node of this one-machine cluster shares)."""
from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import published
from synth_helpers import endpoint, factory_documents

from synth.testing.openai_server import LoopbackOpenAI, grounded_policy

from .drill import job_folder, lose_a_node, survived_or_named, when

pytestmark = pytest.mark.slow

PACKAGES = ["core", "synth", "quality"]  # what a synth job imports
DOCUMENTS = 8  # x 5 task types: 40 requests, in batches of 4 over 4 actors


@pytest.fixture(scope="module")
def server():
    """Slow enough (every answer takes a second) that the pool is mid-way for several seconds."""
    with LoopbackOpenAI(latency_s=1.0) as running:
        yield running


@pytest.fixture(scope="module")
def job_dir(tmp_path_factory) -> Path:
    job = job_folder(tmp_path_factory.mktemp("job") / "job", PACKAGES)
    factory_documents(job / "data" / "documents.parquet", DOCUMENTS)
    return job


def sft_config(job: Path, server: LoopbackOpenAI, output: Path) -> str:
    """SFT examples of the documents (no rewritten variants: one pass of requests), on 4 actors of 0.5 CPU, so
    each 1-CPU worker node holds two of them."""
    name = f"synth-{output.name}.yaml"
    (job / name).write_text(yaml.safe_dump({
        "output_dir": str(output), "cache_path": str(cache_file(output)),
        # a generous timeout: a request outlives its actor's node only by being sent again, never by a retry
        "endpoints": {"gen": endpoint(server, timeout_s=120, concurrency=2)},
        "input": {"path": "data/documents.parquet"},
        "sft": {"generator": "gen", "variants": []},
        "ray": {"enabled": True, "actors": 4, "batch_size": 4},
    }))
    return name


def cache_file(output: Path) -> Path:
    return output.with_suffix(".cache.sqlite")


def cached_answers(output: Path) -> set[str]:
    """The answer texts in the run's answer cache now (none before the job creates it)."""
    if not cache_file(output).exists():
        return set()
    db = sqlite3.connect(f"file:{cache_file(output)}?mode=ro", uri=True, timeout=30)
    try:
        return {text for (text,) in db.execute("SELECT text FROM answers")}
    except sqlite3.OperationalError:  # the table is not there yet
        return set()
    finally:
        db.close()


def sft_rows(output: Path) -> list[dict]:
    return sorted(pq.read_table(published(output) / "sft").to_pylist(), key=lambda row: row["id"])


@pytest.fixture(scope="module")
def reference(cluster, job_dir, server, tmp_path_factory) -> list[dict]:
    """The undisturbed run's rows."""
    output = tmp_path_factory.mktemp("out") / "reference"
    job = cluster.head.submit(job_dir, "python", "-m", "synth", "sft", sft_config(job_dir, server, output))
    assert job.returncode == 0, cluster.head.failure(job)
    return sft_rows(output)


def test_synth_survives_a_node_lost_during_its_actor_pool(cluster, job_dir, server, reference, tmp_path):
    output = tmp_path / "out"
    server.reset_counts()
    job = cluster.head.submit_in_background(job_dir, "python", "-m", "synth", "sft",
                                            sft_config(job_dir, server, output))
    when(lambda: 8 <= len(cached_answers(output)) < len(reference) - 8, job)  # some answered, some not
    answered_before: set[str] = set()
    # read once the node is dead, before its replacement joins: every answer the lost node's actors stored
    lost = lose_a_node(cluster, at_the_loss=lambda: answered_before.update(cached_answers(output)))
    outcome = survived_or_named(job.finish(), lost, output, lambda: sft_rows(output) == reference)
    # the server answers every request by its policy, so an answer text names the request it answered
    sent = Counter(grounded_policy(request.body) for request in server.received)
    print(f"synth, node lost during its actor pool: {outcome}; {len(answered_before)} answers cached at the loss, "
          f"{sum(sent.values()) - len(sent)} requests sent again (in flight on the lost node)")
    assert len(sent) == len({request.key for request in server.received})  # so the texts identify requests
    assert answered_before <= set(sent)
    assert {answer: sent[answer] for answer in answered_before if sent[answer] > 1} == {}
