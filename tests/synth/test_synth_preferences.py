"""`python -m synth preferences`: both-order judging keeps only verdicts that survive the swap."""
from __future__ import annotations

import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from core.contracts import PREFERENCE as PREFERENCE_SCHEMA, SFT as SFT_SCHEMA, SYNTH_REJECTS as REJECTS_SCHEMA
from synth.testing.openai_server import grounded_policy, requested_answer
from synth_helpers import endpoint, loopback, read_run, run_cli  # noqa: F401  (fixture)


def sft_input(path, n: int, papers: list[int] | None = None):
    """``n`` SFT examples; row i asks about paper ``papers[i]`` (default i)."""
    papers = papers or list(range(n))
    rows = [{"id": f"doc-{i}/question_answering/plain", "task_type": "question_answering", "variant": "plain",
             "messages": [{"role": "user", "content": f"What does paper {papers[i]} propose?"},
                          {"role": "assistant", "content": f"Paper {papers[i]} proposes method {papers[i]}."}],
             "source_doc_id": f"doc-{i}", "generator": "g", "prompt_version": "sft_question_answering@1"}
            for i in range(n)]
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=SFT_SCHEMA), path)
    return path


def preferences_config(tmp_path, server, n: int = 4, papers: list[int] | None = None) -> str:
    path = tmp_path / "prefs.yaml"
    path.write_text(yaml.safe_dump({
        "output_dir": str(tmp_path / "out" / "prefs"),
        "endpoints": {"small": endpoint(server, "small-model"), "big": endpoint(server, "big-model"),
                      "judge": endpoint(server, "judge-model")},
        "preferences": {"input": {"path": str(sft_input(tmp_path / "sft" / "part-0.parquet", n, papers))},
                        "generators": [{"endpoint": "small", "temperature": 0.2}, {"endpoint": "big", "temperature": 0.8}],
                        "judge": "judge"},
    }))
    return str(path)


def judge_by(decide):
    """A policy whose judge answers ``decide(response_a, response_b, prompt)``; everything else as usual."""
    def policy(body):
        if requested_answer(body) != "pairwise_judgement":
            return grounded_policy(body)
        user = body["messages"][-1]["content"]
        part = lambda tag: re.search(rf"<{tag}>(.*?)</{tag}>", user, re.S).group(1)  # noqa: E731
        return decide(part("response_a"), part("response_b"), part("question"))
    return policy


def verdict(winner, rationale="because"):
    return json.dumps({"winner": winner, "score_a": 7, "score_b": 3, "rationale": rationale})


def test_consistent_verdicts_become_triples_in_the_contract(tmp_path, loopback):
    server = loopback()  # grounded_policy's judge prefers the longer answer in either position
    assert run_cli("preferences", preferences_config(tmp_path, server)) == 0
    prefs, rejects, manifest = read_run(tmp_path / "out" / "prefs", "preferences")
    assert prefs.schema.equals(PREFERENCE_SCHEMA) and rejects.schema.equals(REJECTS_SCHEMA)
    assert prefs.num_rows == 4 and rejects.num_rows == 0
    for row in prefs.to_pylist():
        assert row["chosen_model"] == "big-model" and row["rejected_model"] == "small-model"
        assert len(row["chosen"]) > len(row["rejected"]) and row["prompt"].startswith("What does paper")
        assert row["chosen_score"] == 8 and row["rejected_score"] == 4
        assert "A/B order: B" in row["judge_rationale"] and "B/A order: A" in row["judge_rationale"]
        assert row["review_status"] == "pending" and row["judge_model"] == "judge-model"
    judge_calls = [r for r in server.received if requested_answer(r.body) == "pairwise_judgement"]
    assert len(judge_calls) == 2 * 4  # every pair in both orders
    assert manifest["counts"] == {"prompts": 4, "pairs_judged": 4, "triples": 4, "duplicates": 0, "planned": 4,
                                  "survived": 4}


def test_position_bias_ties_and_malformed_verdicts_are_dropped_with_reasons(tmp_path, loopback):
    def decide(a, b, question):
        if "paper 0" in question:
            return verdict("A")  # always the first shown: flips with the swap
        if "paper 1" in question:
            return verdict("tie")
        if "paper 2" in question:
            return "I think A is better."
        return verdict("A" if "big-model" in a else "B")  # consistent
    server = loopback(policy=judge_by(decide))
    assert run_cli("preferences", preferences_config(tmp_path, server)) == 0
    prefs, rejects, manifest = read_run(tmp_path / "out" / "prefs", "preferences")
    assert prefs["source_id"].to_pylist() == ["doc-3/question_answering/plain"]
    assert prefs["chosen_model"].to_pylist() == ["big-model"]
    reasons = {r["id"].split("/")[0]: r for r in rejects.to_pylist()}
    assert reasons["doc-0"]["reason"] == "position_inconsistent" and "A/B order: A" in reasons["doc-0"]["detail"]
    assert reasons["doc-1"]["reason"] == "tie"
    assert reasons["doc-2"]["reason"] == "judge_malformed_json" and json.loads(reasons["doc-2"]["raw"]) == ["I think A is better."] * 3
    assert manifest["rejects_by_reason"] == {"position_inconsistent": 1, "tie": 1, "judge_malformed_json": 1}


def test_identical_triples_keep_the_first_and_the_run_publishes(tmp_path, loopback):
    # two SFT examples ask the same question (a repetitive generator): the same answers, the same verdict
    server = loopback()
    assert run_cli("preferences", preferences_config(tmp_path, server, papers=[0, 1, 2, 0])) == 0
    prefs, rejects, manifest = read_run(tmp_path / "out" / "prefs", "preferences")
    assert prefs["source_id"].to_pylist() == [f"doc-{i}/question_answering/plain" for i in range(3)]
    assert len({(r["prompt"], r["chosen"], r["rejected"]) for r in prefs.to_pylist()}) == prefs.num_rows
    [duplicate] = rejects.to_pylist()
    assert duplicate["reason"] == "duplicate" and duplicate["id"].startswith("doc-3/")
    assert duplicate["detail"] == f"same content as {prefs['id'][0].as_py()}"  # the first in input order is kept
    assert manifest["counts"]["duplicates"] == 1 and manifest["rejects_by_reason"] == {"duplicate": 1}
    assert manifest["quality"]["success"]


def test_a_blank_response_is_a_reject_not_a_triple(tmp_path, loopback):
    def policy(body):
        if requested_answer(body) is None and "paper 1" in body["messages"][-1]["content"] and \
                body["model"] == "small-model":
            return "\u200b\n"  # nothing a reader would see, though str.strip() keeps it
        return grounded_policy(body)

    server = loopback(policy=policy)
    assert run_cli("preferences", preferences_config(tmp_path, server, n=2)) == 0
    prefs, rejects, _ = read_run(tmp_path / "out" / "prefs", "preferences")
    assert prefs["source_id"].to_pylist() == ["doc-0/question_answering/plain"]
    assert {(r["id"], r["reason"]) for r in rejects.to_pylist()} == {
        ("doc-1/question_answering/plain/c0", "empty_response"), ("doc-1/question_answering/plain", "too_few_candidates")}
