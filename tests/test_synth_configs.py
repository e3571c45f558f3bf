"""The example configs load, and small pieces users rely on behave: tolerant parsing, typos, templates."""
from __future__ import annotations

import random

import pytest

from factory.common.config_loading import ConfigError
from synth.config import PROMPTS_DIR, load_synth_config
from synth.parsing import parse_json_answer
from synth.templates import load_template
from synth.typos import add_typos
from synth_helpers import REPO

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


def test_typos_change_the_text_reproducibly():
    text = "Explain the contribution of the proposed method."
    once = add_typos(text, 0.05, random.Random(1))
    assert once != text and once == add_typos(text, 0.05, random.Random(1))


def test_every_bundled_template_loads_with_a_version():
    for path in PROMPTS_DIR.glob("*.yaml"):
        template = load_template(path.stem, [PROMPTS_DIR])
        assert template.prompt_version == f"{path.stem}@{template.version}"
