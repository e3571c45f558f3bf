"""The example configs load, and small pieces users rely on behave: tolerant parsing, typos, templates."""
from __future__ import annotations

import json
import random

import pytest

from core.errors import ConfigError
from synth.config import PROMPTS_DIR, load_synth_config
from core.llm.json_answers import parse_json_answer
from synth.templates import load_template
from synth.typos import add_typos
from synth_helpers import REPO, loopback, read_run, run_cli, sft_config  # noqa: F401  (fixture)

SCHEMA = {"type": "object", "required": ["instruction"], "properties": {"instruction": {"type": "string"}}}


def test_example_configs_load(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    sft = load_synth_config(REPO / "configs" / "synth_sft.yaml", "sft")
    assert sft.sft.generator == "local" and len(sft.sft.tasks) == 5 and sft.preferences is None
    prefs = load_synth_config(REPO / "configs" / "synth_preferences.yaml", "preferences")
    assert prefs.preferences.judge == "judge" and prefs.sft is None


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("output_dir: o\nendpoints: {e: {base_url: u, model: m, concurency: 3}}\ninput: {path: p}\n"
                    "sft: {generator: e}\n")
    with pytest.raises(ConfigError, match="endpoints.e.concurency: unknown key"):
        load_synth_config(path, "sft")


def test_tolerant_parsing_reads_json_in_prose_and_fences():
    assert parse_json_answer('Sure!\n```json\n{"instruction": "x"}\n```', SCHEMA) == ({"instruction": "x"}, None)
    assert parse_json_answer("no json here", SCHEMA)[1][0] == "malformed_json"
    assert parse_json_answer('{"instruction": 3}', SCHEMA)[1][0] == "schema_mismatch"
    assert parse_json_answer('{"other": "x"}', SCHEMA)[1] == ("schema_mismatch", "$: missing key 'instruction'")
    # nothing a reader would see is no answer: spaces, line breaks, a zero-width space, a BOM
    for blank in (" \r\n", "\u200b", "\ufeff\u00a0"):
        assert parse_json_answer(json.dumps({"instruction": blank}), SCHEMA)[1] == (
            "schema_mismatch", "$.instruction: blank string")


def test_typos_change_the_text_reproducibly():
    text = "Explain the contribution of the proposed method."
    once = add_typos(text, 0.05, random.Random(1))
    assert once != text and once == add_typos(text, 0.05, random.Random(1))


def test_every_bundled_template_loads_with_a_version():
    for path in PROMPTS_DIR.glob("*.yaml"):
        template = load_template(path.stem, [PROMPTS_DIR])
        assert template.prompt_version == f"{path.stem}@{template.version}"


GLOSSARY_PROMPT = """\
name: sft_glossary
version: 3
schema_name: sft_example
response_schema:
  type: object
  required: [turns]
  properties:
    turns:
      type: array
      items:
        type: object
        required: [user, assistant]
        properties: {user: {type: string}, assistant: {type: string}}
system: You write glossary entries for a domain assistant, grounded in one document.
user: |-
  <document title="{title}">{document}</document>

  Write a request for a glossary entry of a term this paper defines, and the entry.
  Answer with JSON only: {{"turns": [{{"user": "...", "assistant": "..."}}]}} with exactly {turns} turn(s).
"""


def test_a_synth_task_is_a_prompt_file_and_a_task_entry(tmp_path, loopback):
    """docs/ARCHITECTURE.md's recipe "add a synth task": a template file and an entry in `sft.tasks`."""
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "sft_glossary.yaml").write_text(GLOSSARY_PROMPT)
    server = loopback()
    config = sft_config(tmp_path, server, docs=2, variants=[],
                        tasks=[{"task_type": "glossary", "template": "sft_glossary", "turns": 1}],
                        prompt_dir=str(prompts))
    assert run_cli("sft", str(config)) == 0
    sft, rejects, _ = read_run(tmp_path / "out" / "sft", "sft")
    assert rejects.num_rows == 0 and sft.num_rows == 2
    assert set(sft["task_type"].to_pylist()) == {"glossary"}
    assert set(sft["prompt_version"].to_pylist()) == {"sft_glossary@3"}
    assert all("glossary entry" in r.body["messages"][-1]["content"] for r in server.received)
