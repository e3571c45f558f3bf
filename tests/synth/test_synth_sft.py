"""`python -m synth sft`: grounded examples in the SFT contract, rejects with reasons, resumable, on Ray too."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import yaml

from conftest import subprocess_env
from core.contracts import SFT as SFT_SCHEMA, SYNTH_REJECTS as REJECTS_SCHEMA
from core.publish import read_finished_manifest
from synth.testing.openai_server import (
    document_sentences, grounded_policy, random_faults, requested_answer, schema_name,
)
from synth_helpers import endpoint, loopback, read_run, run_cli, sft_config  # noqa: F401  (fixture)

TASK_TYPES = {"question_answering", "summary", "term_explanation", "research_significance", "free_form"}


def test_sft_examples_follow_the_contract_and_are_grounded(tmp_path, loopback):
    server = loopback()
    config = sft_config(tmp_path, server, docs=2)
    assert run_cli("sft", str(config)) == 0
    sft, rejects, manifest = read_run(tmp_path / "out" / "sft", "sft")
    assert sft.schema.equals(SFT_SCHEMA) and rejects.schema.equals(REJECTS_SCHEMA)
    assert rejects.num_rows == 0
    rows = sft.to_pylist()
    docs = {json.loads(r["meta"])["title"]: r for r in
            __import__("pyarrow.parquet").parquet.read_table(tmp_path / "docs").to_pylist()}
    texts = {d["id"]: d["text"] for d in docs.values()}
    plain = [r for r in rows if r["variant"] == "plain"]
    assert {r["task_type"] for r in plain} == TASK_TYPES and len(plain) == 2 * 5
    assert {r["variant"] for r in rows} == {"plain", "paraphrased", "mixed_language", "typos"}
    for row in rows:
        roles = [m["role"] for m in row["messages"]]
        assert roles == ["user", "assistant"] * (len(roles) // 2) and roles
        assert all(m["content"] in texts[row["source_doc_id"]] for m in row["messages"] if m["role"] == "assistant")
        assert row["generator"] == "tiny-gen" and row["prompt_version"].startswith("sft_")
    assert all(len(r["messages"]) == 4 for r in rows if r["task_type"] == "free_form")  # two turns
    by_id = {r["id"]: r for r in rows}
    for variant in ("paraphrased", "mixed_language", "typos"):
        for row in (r for r in rows if r["variant"] == variant):
            base = by_id[row["id"].rsplit("/", 1)[0] + "/plain"]
            assert row["messages"][0]["content"] != base["messages"][0]["content"]
            assert row["messages"][1:] == base["messages"][1:]
    assert manifest["outputs"]["sft"]["rows"] == len(rows) and manifest["requests"]["requests"] == 10 + 20
    assert manifest["requests"]["http_attempts"] == len(server.received)
    assert manifest["requests"]["prompt_tokens"] > 0 and "wall_time_s" in manifest and manifest["config_hash"]

    sent = len(server.received)
    assert run_cli("sft", str(config)) == 0  # finished output, same config: a no-op
    assert run_cli("sft", str(config), "--overwrite") == 0  # a fresh run pays nothing: all cached
    _, _, again = read_run(tmp_path / "out" / "sft", "sft")
    assert len(server.received) == sent and again["requests"]["cached_hits"] == 30


def test_malformed_and_ungrounded_answers_become_rejects_with_raw_text(tmp_path, loopback):
    def policy(body):
        user = body["messages"][-1]["content"]
        if "summarise" in user:
            return "Sure! Here is your summary: {turns: oops"
        if "technical term" in user:
            return json.dumps({"turns": [{"user": "What is a quasar?", "assistant": "Quasars are luminous galactic "
                                                                                 "nuclei powered by black holes."}]})
        if "why this work matters" in user:
            return json.dumps({"turns": []})
        return grounded_policy(body)

    server = loopback(policy=policy)
    config = sft_config(tmp_path, server, docs=3, variants=[], **{"endpoints": {"gen": {
        "base_url": server.base_url, "model": "tiny-gen", "structured_output": "none"}}})
    assert run_cli("sft", str(config)) == 0
    sft, rejects, manifest = read_run(tmp_path / "out" / "sft", "sft")
    assert not any("response_format" in r.body for r in server.received)  # server without structured output
    assert sorted(set(sft["task_type"].to_pylist())) == ["free_form", "question_answering"]
    reasons = {(r["id"].split("/")[1], r["reason"]) for r in rejects.to_pylist()}
    assert reasons == {("summary", "malformed_json"), ("term_explanation", "ungrounded"),
                       ("research_significance", "schema_mismatch")}
    assert all(r["raw"] and r["stage"] == "generate" for r in rejects.to_pylist())
    assert sft.num_rows + rejects.num_rows == 3 * 5
    assert manifest["rejects_by_reason"] == {"malformed_json": 3, "ungrounded": 3, "schema_mismatch": 3}


def repetitive_policy(body):
    """A small model's habits: three task types get one and the same conversation, a summary repeats that answer
    under its own question, a paraphrase hands the request back unchanged, and every code-switched rewrite
    reads the same."""
    user = body["messages"][-1]["content"]
    name = requested_answer(body)
    if name == "sft_example" and "follows up" not in user:  # every single-turn task type
        question = "Summarise the paper." if "summarise" in user else "What does the paper find?"
        answer = document_sentences(body)[0]
        return json.dumps({"turns": [{"user": question, "assistant": answer}]})
    if name == "rewrite":
        instruction = user.rsplit("<instruction>", 1)[-1].split("</instruction>")[0].strip()
        return json.dumps({"instruction": instruction if "Paraphrase" in user else "Was findet das Paper, bitte?"})
    return grounded_policy(body)


def test_a_repetitive_model_loses_its_repeats_not_the_run(tmp_path, loopback):
    docs = 3
    server = loopback(policy=repetitive_policy)
    config = sft_config(tmp_path, server, docs=docs, variants=[
        {"name": "paraphrased", "template": "rewrite_paraphrase"},
        {"name": "mixed_language", "template": "rewrite_mixed_language", "params": {"language": "German"}}])
    assert run_cli("sft", str(config)) == 0  # published: the gate's duplicate_rate holds
    sft, rejects, manifest = read_run(tmp_path / "out" / "sft", "sft")
    rows, rejected = sft.to_pylist(), rejects.to_pylist()
    assert manifest["quality"]["success"]
    assert len({json.dumps(r["messages"]) for r in rows}) == len(rows)
    by_id = {r["id"]: r for r in rows}
    # per document: question answering is kept, term explanation and research significance repeat it (the first
    # configured task type wins); summary and free-form are kept
    plain = {r["id"].split("/")[1] for r in rows if r["variant"] == "plain"}
    assert plain == {"question_answering", "summary", "free_form"}
    duplicates = [r for r in rejected if r["reason"] == "duplicate"]
    generated = [r for r in duplicates if r["stage"] == "generate"]
    assert {r["id"].split("/")[1] for r in generated} == {"term_explanation", "research_significance"}
    assert len(generated) == 2 * docs
    for reject in generated:
        kept = reject["id"].split("/")[0] + "/question_answering/plain"
        assert reject["detail"] == f"same content as {kept}" and kept in by_id
    # no rewrite was asked for a repeat: two variants of the 3 kept examples of each document
    assert manifest["requests"]["by_stage"]["variant"]["requests"] == 2 * 3 * docs
    unchanged = [r for r in rejected if r["reason"] == "variant_unchanged"]
    assert {r["id"].rsplit("/", 1)[1] for r in unchanged} == {"paraphrased"} and len(unchanged) == 3 * docs
    # the same German request over the same answer: the summary's code-switched variant repeats the QA one's
    [variant_repeats] = [[r for r in duplicates if r["stage"] == "variant"]]
    assert {r["id"].split("/", 1)[1] for r in variant_repeats} == {"summary/mixed_language"}
    assert len(variant_repeats) == docs
    assert all(r["detail"].endswith("/question_answering/mixed_language") for r in variant_repeats)
    assert len(rows) + len(rejected) == docs * 5 + docs * 3 * 2  # every item published or rejected
    assert manifest["rejects_by_reason"] == {"duplicate": 3 * docs, "variant_unchanged": 3 * docs}
    assert manifest["counts"]["duplicates"] == 3 * docs and manifest["counts"]["variants_unchanged"] == 3 * docs

    assert run_cli("sft", str(config), "--overwrite") == 0  # all answers cached: the same rows are kept
    again, _, _ = read_run(tmp_path / "out" / "sft", "sft")
    assert again["id"].to_pylist() == sft["id"].to_pylist()


def test_a_30_percent_fault_rate_still_accounts_for_every_item(tmp_path, loopback):
    server = loopback(faults=random_faults(0.3, seed=3, kinds=("429", "500", "hang", "bad_body"), hang_s=5))
    config = sft_config(tmp_path, server, docs=4, variants=[{"name": "paraphrased", "template": "rewrite_paraphrase"}],
                        **{"endpoints": {"gen": {"base_url": server.base_url, "model": "tiny-gen", "timeout_s": 0.5,
                                                 "max_retries": 2, "backoff_initial_s": 0.01, "concurrency": 16}}})
    assert run_cli("sft", str(config)) == 0
    sft, rejects, manifest = read_run(tmp_path / "out" / "sft", "sft")
    produced = set(sft["id"].to_pylist())
    rejected = {r["id"]: r for r in rejects.to_pylist()}
    plain = {f"{d}/{t}/plain" for d in {i.split("/")[0] for i in produced | set(rejected)} for t in TASK_TYPES}
    assert len(plain) == 4 * 5
    assert plain <= produced | set(rejected) and not produced & set(rejected)
    paraphrased = {i.replace("/plain", "/paraphrased") for i in plain & produced}
    assert paraphrased <= produced | set(rejected)
    assert all(r["reason"] in {"http_429", "http_500", "timeout", "bad_response"} and r["detail"]
               for r in rejected.values())
    requests = manifest["requests"]
    assert requests["retries"] > 0
    # Every request the server read is counted. On a loaded machine the client can give up (0.5 s) on a request
    # before the server's thread has read it: such an attempt is sent but unseen, and always ends in a retry or a
    # timeout reject, so the unseen ones are bounded by those.
    unseen = requests["http_attempts"] - len(server.received)
    assert 0 <= unseen <= requests["retries"] + requests["failures_by_reason"].get("timeout", 0)
    assert sum(requests["failures_by_reason"].values()) == len(rejected)


def test_bad_input_is_reported_before_any_request(tmp_path, loopback, capsys):
    server = loopback()
    config = sft_config(tmp_path, server, input={"text_column": "body"})
    assert run_cli("sft", str(config)) == 2
    assert "missing column(s) ['body'] (input.text_column)" in capsys.readouterr().err

    config = sft_config(tmp_path, server, tasks=[{"task_type": "qa", "template": "no_such_prompt", "turns": 1}])
    assert run_cli("sft", str(config)) == 2
    assert "no such prompt template 'no_such_prompt'" in capsys.readouterr().err

    os.environ.pop("SYNTH_TEST_KEY", None)
    config = sft_config(tmp_path, server, endpoints={"gen": {"base_url": server.base_url, "model": "m",
                                                             "api_key_env": "SYNTH_TEST_KEY"}})
    assert run_cli("sft", str(config)) == 2
    assert "endpoints.gen.api_key_env: environment variable SYNTH_TEST_KEY is not set" in capsys.readouterr().err
    assert server.received == [] and not (tmp_path / "out" / "sft").exists()


def stored_answers(cache) -> int:
    db = sqlite3.connect(f"file:{cache}?mode=ro", uri=True)
    try:
        return db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
    finally:
        db.close()


@pytest.mark.slow
def test_killed_run_resumes_without_repeating_answered_requests(tmp_path, loopback):
    server = loopback(latency_s=0.2)
    config = sft_config(tmp_path, server, docs=8, variants=[], **{"endpoints": {"gen": {
        "base_url": server.base_url, "model": "tiny-gen", "concurrency": 2}}})
    total = 8 * 5
    cache = tmp_path / "out" / "sft.cache.sqlite"
    child = subprocess.Popen([sys.executable, "-m", "synth", "sft", str(config)], env=subprocess_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    stored = 0
    while time.time() < deadline and stored < 10:
        time.sleep(0.1)
        try:
            stored = stored_answers(cache)
        except sqlite3.OperationalError:  # not created yet
            pass
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert 10 <= stored < total, "the run must be killed mid-way"
    # nothing half-finished looks finished: the killed run's folder is one CURRENT does not name
    assert read_finished_manifest(tmp_path / "out" / "sft") is None
    assert [p for p in (tmp_path / "out" / "sft" / "runs").iterdir() if not (p / "manifest.json").exists()]
    stored = stored_answers(cache)

    server.reset_counts()
    assert run_cli("sft", str(config)) == 0
    sft, _, manifest = read_run(tmp_path / "out" / "sft", "sft")
    assert sft.num_rows == total
    assert len(server.received) == total - stored  # only what was never answered
    assert manifest["requests"]["cached_hits"] == stored
    # the next run cleared what the killed one left
    assert [p.name for p in (tmp_path / "out" / "sft" / "runs").iterdir()] == [manifest["run_id"]]


@pytest.mark.slow
def test_sft_through_ray_data_actor_pool(tmp_path, loopback, ray_session):
    server = loopback(latency_s=0.05)
    # a generous timeout: actors start slowly on a loaded machine, and timeouts are tested elsewhere
    config = sft_config(tmp_path, server, docs=6, ray={"enabled": True, "actors": 2, "batch_size": 8},
                        endpoints={"gen": endpoint(server, timeout_s=30)})
    assert run_cli("sft", str(config)) == 0
    sft, rejects, manifest = read_run(tmp_path / "out" / "sft", "sft")
    assert rejects.num_rows == 0, rejects.select(["stage", "reason", "detail"]).to_pylist()[:3]
    assert sft.num_rows == 6 * 5 * 4
    requests = manifest["requests"]
    assert requests["requests"] == 6 * 5 + 6 * 5 * 2
    assert requests["http_attempts"] == len(server.received)
    assert requests["requests"] - requests["cached_hits"] == len({r.key for r in server.received})  # twins sent once
    assert {schema_name(r.body) for r in server.received} == {"sft_example", "rewrite"}
