"""A malformed answer is asked again instead of lost: with 10% of answers malformed, items lost to them
drop from about 10% to at most 1%, every attempt is cached, and a rerun sends nothing. The fault model behind
that figure: each attempt is malformed independently (a server without structured output; a sampling model
that lost its way), so asking again can fix it. An answer the server cut at max_tokens is cut again on every
ask: it is rejected at once as ``truncated``, naming the limit to raise, and never asked again."""
from __future__ import annotations

import hashlib
import json
import random

from synth.testing.openai_server import Truncated, grounded_policy
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


def cut_for(rate: float):
    """A fixed ``rate`` of the questions always gets an answer cut at the token limit, whatever the seed of a
    new ask (decided by the messages alone), as a model whose answer to them is longer than max_tokens."""

    def policy(body: dict) -> str:
        draw = random.Random(hashlib.sha256(json.dumps(body["messages"]).encode()).digest()).random()
        return Truncated('{"turns": [{"user": "What does the paper say') if draw < rate else grounded_policy(body)

    return policy


def test_an_answer_cut_at_max_tokens_is_rejected_as_truncated_without_asking_again(tmp_path, loopback):
    server = loopback(policy=cut_for(0.10))
    config = sft_config(tmp_path, server, docs=DOCS, variants=[], sft={"sampling": {"max_tokens": 300}})
    assert run_cli("sft", str(config)) == 0
    sft, rejects, manifest = read_run(tmp_path / "out" / "sft", "sft")
    cut = [r for r in rejects.to_pylist() if r["reason"] == "truncated"]
    assert 0.05 * DOCS * TASKS <= len(cut) <= 0.15 * DOCS * TASKS
    assert all("max_tokens 300" in r["detail"] and "sft.sampling.max_tokens" in r["detail"] for r in cut)
    assert sft.num_rows + rejects.num_rows == DOCS * TASKS
    # nothing was asked again: one request per item, the cut ones included
    assert manifest["requests"]["parse_retries"] == 0 and len(server.answered()) == DOCS * TASKS
