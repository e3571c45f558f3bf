"""A malformed answer is asked again instead of lost: with 10% of answers malformed, items lost to them
drop from about 10% to at most 1%, every attempt is cached, and a rerun sends nothing."""
from __future__ import annotations

import hashlib
import json
import random

from synth.testing.openai_server import grounded_policy
from synth_helpers import loopback, read_run, run_cli, sft_config  # noqa: F401  (fixture)

DOCS, TASKS = 40, 5


def malformed_at(rate: float):
    """10% of answers are cut mid-JSON (as at max_tokens), decided by the whole request body."""

    def policy(body: dict) -> str:
        draw = random.Random(hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()).random()
        return '{"turns": [{"user": "What does the paper say' if draw < rate else grounded_policy(body)

    return policy


def lost_to_malformed(rejects) -> int:
    return sum(r["reason"] == "malformed_json" for r in rejects.to_pylist())


def test_malformed_answers_are_asked_again_and_cached(tmp_path, loopback):
    server = loopback(policy=malformed_at(0.10))

    without = sft_config(tmp_path / "once", server, docs=DOCS, variants=[], max_parse_retries=0)
    assert run_cli("sft", str(without)) == 0
    _, rejects, _ = read_run(tmp_path / "once" / "out" / "sft", "sft")
    assert 0.05 * DOCS * TASKS <= lost_to_malformed(rejects) <= 0.15 * DOCS * TASKS  # about 10% lost

    config = sft_config(tmp_path / "retried", server, docs=DOCS, variants=[])  # default: 2 parse retries
    server.reset_counts()
    assert run_cli("sft", str(config)) == 0
    sft, rejects, manifest = read_run(tmp_path / "retried" / "out" / "sft", "sft")
    assert lost_to_malformed(rejects) <= 0.01 * DOCS * TASKS
    assert sft.num_rows + rejects.num_rows == DOCS * TASKS
    requests = manifest["requests"]
    assert 0.05 * DOCS * TASKS <= requests["parse_retries"] <= 0.15 * DOCS * TASKS
    assert requests["retries"] == 0  # transport retries are counted apart
    assert len(server.answered()) == DOCS * TASKS + requests["parse_retries"]
    asked_again = [r.body for r in server.answered() if "seed" in r.body]
    assert len(asked_again) == requests["parse_retries"] and {b["seed"] for b in asked_again} <= {1, 2}
    for reject in rejects.to_pylist():  # an item lost after every attempt keeps each raw answer
        if reject["reason"] == "malformed_json":
            assert len(json.loads(reject["raw"])) == 3

    server.reset_counts()
    assert run_cli("sft", str(config), "--overwrite") == 0
    assert server.answered() == []  # first asks and retries all come from the cache
    again, _, rerun = read_run(tmp_path / "retried" / "out" / "sft", "sft")
    assert sorted(again["id"].to_pylist()) == sorted(sft["id"].to_pylist())
    assert rerun["requests"]["cached_hits"] == DOCS * TASKS + requests["parse_retries"]
