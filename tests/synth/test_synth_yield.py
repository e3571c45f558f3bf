"""A synth run that produced nothing, or too little, fails (exit 1), names why, and publishes nothing: every answer
cut at max_tokens, every judge verdict a tie, a yield under ``min_yield``; a yield over it publishes."""
from __future__ import annotations

from core.publish import read_finished_manifest
from synth.testing.openai_server import Truncated, grounded_policy
from synth_helpers import loopback, read_run, run_cli, sft_config  # noqa: F401  (fixture)
from test_synth_preferences import judge_by, preferences_config, verdict

CUT = Truncated('{"turns": [{"user": "What does the paper say about')


def cut_unless(keep):
    """Answers cut at the token limit, except the generation requests ``keep(body)`` lets through."""
    def policy(body):
        return grounded_policy(body) if keep(body) else CUT
    return policy


def test_a_run_whose_every_answer_was_cut_fails_naming_the_reason_and_the_rejects(tmp_path, loopback, capsys):
    server = loopback(policy=cut_unless(lambda body: False))
    config = sft_config(tmp_path, server, docs=6, variants=[], tasks=[
        {"task_type": "question_answering", "template": "sft_question_answering", "turns": 1}])
    assert run_cli("sft", str(config)) == 1
    err = capsys.readouterr().err
    assert "synth sft: 0 of 6 planned examples survived (0%), below min_yield 25%; nothing was published" in err
    assert "Top reasons rows were dropped: truncated 6" in err
    failed_run = next((tmp_path / "out" / "sft" / "runs").iterdir())
    assert f"the rejects are in {failed_run}/rejects" in err and (failed_run / "rejects").is_dir()
    assert read_finished_manifest(tmp_path / "out" / "sft") is None  # no CURRENT: nothing for training to read


def test_a_yield_under_min_yield_fails_and_one_over_it_publishes(tmp_path, loopback, capsys):
    first_document = []

    def keep(body):  # only the first document's question gets a whole answer
        text = body["messages"][-1]["content"]
        if not first_document:
            first_document.append(text)
        return text == first_document[0]

    server = loopback(policy=cut_unless(keep))
    tasks = [{"task_type": "question_answering", "template": "sft_question_answering", "turns": 1}]
    config = sft_config(tmp_path, server, docs=6, variants=[], tasks=tasks)
    assert run_cli("sft", str(config)) == 1
    assert "1 of 6 planned examples survived (17%), below min_yield 25%" in capsys.readouterr().err
    lenient = sft_config(tmp_path, server, docs=6, variants=[], tasks=tasks, min_yield=0.1)
    assert run_cli("sft", str(lenient)) == 0  # the answers come from the cache: nothing is asked twice
    rows, rejects, manifest = read_run(tmp_path / "out" / "sft", "sft")
    assert rows.num_rows == 1 and manifest["counts"]["planned"] == 6 and manifest["rejects_by_reason"] == {"truncated": 5}


def test_a_preferences_run_whose_every_verdict_is_a_tie_fails(tmp_path, loopback, capsys):
    server = loopback(policy=judge_by(lambda a, b, question: verdict("tie")))
    assert run_cli("preferences", preferences_config(tmp_path, server, n=3)) == 1
    err = capsys.readouterr().err
    assert "synth preferences: 0 of 3 planned examples survived" in err and "tie 3" in err
    assert read_finished_manifest(tmp_path / "out" / "prefs") is None


def test_a_preferences_run_under_its_row_floor_fails_even_with_its_gate_off(tmp_path, loopback, capsys):
    server = loopback(policy=judge_by(lambda a, b, question: verdict("A" if len(a) > len(b) else "B")))
    config = preferences_config(tmp_path, server, n=2)
    with open(config, "a") as extra:
        extra.write("quality: {gate: false, min_rows: 3}\n")
    assert run_cli("preferences", config) == 1
    err = capsys.readouterr().err
    assert "the preferences output has 2 row(s), fewer than quality.min_rows 3; nothing was published" in err
    assert read_finished_manifest(tmp_path / "out" / "prefs") is None
