"""A server that ignores ``response_format`` is named early, once, with the setting to change: our loopback
server answering free text, and a real server we did not write, ``transformers serve`` with a tiny model built
from a config, which logs that it ignores the field and answers free text cut at max_tokens."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import REPO, subprocess_env
from http_process import wait_for_http
from ray_cluster import free_ports
from synth_helpers import loopback, run_cli, sft_config  # noqa: F401  (fixture)
from train_fixtures import tiny_model_dir

from core.publish import read_finished_manifest
from synth.testing.openai_server import grounded_policy

ONE_TASK = [{"task_type": "question_answering", "template": "sft_question_answering", "turns": 1}]
NOT_HONOURED = "endpoint 'gen' seems not to honour structured output"


def free_text(body: dict) -> str:
    return "Sure! The paper is about learning, and the answer is that it works well."


def test_a_server_answering_free_text_to_a_json_schema_is_named_within_its_first_answers(tmp_path, loopback, capsys):
    server = loopback(policy=free_text)
    assert run_cli("sft", str(sft_config(tmp_path, server, docs=12, variants=[], tasks=ONE_TASK))) == 1
    lines = capsys.readouterr().out.splitlines()
    warned = [i for i, line in enumerate(lines) if NOT_HONOURED in line]
    assert len(warned) == 1, "said once"
    assert "8 of its first 8 answers" in lines[warned[0]]
    assert "endpoints.gen.structured_output: json_object, or none" in lines[warned[0]]
    first_round_done = next(i for i, line in enumerate(lines) if "generate: 12/12 answered" in line)
    assert warned[0] < first_round_done, "said before the first round of answers was in"


def test_no_word_when_the_server_honours_the_schema_or_none_was_asked(tmp_path, loopback, capsys):
    honest = loopback(policy=grounded_policy)
    assert run_cli("sft", str(sft_config(tmp_path / "a", honest, docs=4, variants=[], tasks=ONE_TASK))) == 0
    plain = loopback(policy=free_text)
    config = sft_config(tmp_path / "b", plain, docs=4, variants=[], tasks=ONE_TASK,
                        endpoints={"gen": {"base_url": plain.base_url, "model": "tiny-gen", "structured_output": "none"}})
    assert run_cli("sft", str(config)) == 1  # free text is still rejected, but nothing was ignored
    assert NOT_HONOURED not in capsys.readouterr().out


@pytest.fixture
def transformers_serve(tmp_path):
    """``transformers serve`` on loopback, forced to a tiny Llama built from a config (no hub download)."""
    model = tiny_model_dir(tmp_path / "tiny")
    port, log = free_ports(1)[0], tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen([str(Path(sys.executable).parent / "transformers"), "serve", str(model),
                                   "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
                                  cwd=REPO, env=subprocess_env(HF_HUB_OFFLINE="1"), stdout=out, stderr=out)
    try:
        wait_for_http(server, f"http://127.0.0.1:{port}/health", log, "transformers serve", timeout_s=120)
        yield f"http://127.0.0.1:{port}/v1", str(model), log
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_transformers_serve_accepts_our_requests_and_the_user_is_told_what_became_of_every_answer(
        tmp_path, transformers_serve, capsys):
    base_url, model, log = transformers_serve
    config = sft_config(tmp_path, SimpleNamespace(base_url=base_url), docs=6, variants=[], tasks=ONE_TASK, sft={"sampling": {"max_tokens": 16}},
                        endpoints={"gen": {"base_url": base_url, "model": model, "timeout_s": 60}})
    assert run_cli("sft", str(config)) == 1
    captured = capsys.readouterr()
    assert "Ignoring unsupported fields in the request: {'response_format'}" in log.read_text()
    assert "6 of its first 6 answers do not fit the JSON schema" in captured.out and NOT_HONOURED in captured.out
    assert "failures none" in captured.out  # every request was accepted and answered
    assert "rejects by reason: truncated 6" in captured.out  # what became of every answer
    assert "0 of 6 planned examples survived" in captured.err and "truncated 6" in captured.err
    assert "/rejects" in captured.err
    assert read_finished_manifest(tmp_path / "out" / "sft") is None
