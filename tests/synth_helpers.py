"""Helpers for the synth tests: a loopback OpenAI server per test, tiny document sets, configs."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import published

from synth.testing.openai_server import LoopbackOpenAI

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "factory" / "sample_data" / "arxiv_cs.parquet"
# fast retry schedule so fault tests take seconds, not minutes
FAST = {"timeout_s": 2, "backoff_initial_s": 0.01, "backoff_max_s": 0.1, "max_retries": 4, "concurrency": 8}


@pytest.fixture
def loopback():
    """``loopback(policy=..., faults=..., latency_s=...)`` starts a server that stops after the test."""
    servers = []

    def start(**kwargs) -> LoopbackOpenAI:
        servers.append(LoopbackOpenAI(**kwargs).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def factory_documents(path: Path, n: int) -> Path:
    """The first ``n`` sample abstracts in the factory's output contract (title inside the JSON meta)."""
    rows = pq.read_table(SAMPLE).slice(0, n).to_pylist()
    table = pa.table({
        "id": [r["id"] for r in rows], "text": [" ".join(r["text"].split()) for r in rows],
        "source": ["arxiv-cs"] * n, "domain": ["domain"] * n,
        "meta": [json.dumps({"title": r["title"]}) for r in rows],
        "dup_cluster": [None] * n, "dup_cluster_size": pa.array([None] * n, pa.int64()),
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def endpoint(server: LoopbackOpenAI, model: str = "tiny-gen", **overrides) -> dict:
    return {"base_url": server.base_url, "model": model, **FAST, **overrides}


def sft_config(tmp_path: Path, server: LoopbackOpenAI, *, docs: int = 2, variants=None, tasks=None, **extra) -> Path:
    config = {
        "output_dir": str(tmp_path / "out" / "sft"),
        "endpoints": {"gen": endpoint(server)},
        "input": {"path": str(factory_documents(tmp_path / "docs" / "documents.parquet", docs))},
        "sft": {"generator": "gen", **({"variants": variants} if variants is not None else {}),
                **({"tasks": tasks} if tasks is not None else {})},
    }
    for key, value in extra.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp_path / "synth_sft.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def run_cli(*argv: str) -> int:
    from synth.__main__ import main

    return main(list(argv))


def read_run(output_dir: Path, folder: str) -> tuple[pa.Table, pa.Table, dict]:
    """(rows, rejects, manifest) of the run published at ``output_dir``, read as a reader finds it."""
    run = published(output_dir)
    return (pq.read_table(run / folder), pq.read_table(run / "rejects"),
            json.loads((run / "manifest.json").read_text()))
