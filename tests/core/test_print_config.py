"""--print-config: every job prints its fully resolved config with each value's source and its plan, and runs
nothing; what it prints is a config that loads back to the same run."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from core.config import config_hash

REPO = Path(__file__).resolve().parents[2]


def printed(capsys, main, argv: list[str]) -> str:
    assert main(argv) == 0
    return capsys.readouterr().out


def source(text: str, key_line: str) -> str:
    """The ``# source`` of the first line that starts (after its indent) with ``key_line``."""
    line = next(line for line in text.splitlines() if line.strip().startswith(key_line))
    return line.split("# ", 1)[1].strip()


def test_factory_config_names_each_values_source_and_loads_back_to_the_same_run(capsys, tmp_path, monkeypatch):
    from factory.__main__ import main
    from factory.config import load_factory_config

    monkeypatch.chdir(REPO)
    out = tmp_path / "never_written"
    text = printed(capsys, main, ["run", "configs/sample.yaml", "--print-config", "dedup.fuzzy.threshold=0.7",
                                  "--output-dir", str(out)])
    assert not out.exists()  # nothing ran
    assert source(text, "threshold: 0.7") == "command line"
    assert source(text, "unwrap_hard_wraps:") == "preset factory/presets/scientific.yaml"  # the file's preset
    assert source(text, "max_chars:") == "preset factory/presets/base.yaml"
    assert source(text, "- name: arxiv-cs") == "file configs/sample.yaml"
    assert source(text, "arrow_memory_pool:") == "default"  # no layer sets it: the model's own default
    plan = text.split("# plan:", 1)[1]
    assert re.search(r"stages, in order: read -> validate -> .* -> quality -> near_dedup", plan)
    assert "off: language" in plan and "Jaccard >= 0.7" in plan

    saved = tmp_path / "resolved.yaml"
    saved.write_text(text)  # sources and plan are comments: the text is the config itself
    expected = load_factory_config("configs/sample.yaml", {"dedup": {"fuzzy": {"threshold": 0.7}},
                                                          "output_dir": str(out)})
    assert config_hash(load_factory_config(saved)) == config_hash(expected)


def test_train_overrides_may_follow_the_flag_and_the_plan_counts_the_batch(capsys, monkeypatch):
    from train.__main__ import main

    monkeypatch.chdir(REPO)
    # the data and model are an earlier step's outputs: describing the run does not need them yet
    text = printed(capsys, main, ["sft", "configs/train_sft.yaml", "--print-config", "optim.max_steps=7",
                                  "optim.gradient_accumulation_steps=3"])
    assert source(text, "max_steps: 7") == "command line"
    config = yaml.safe_load(text)
    rows = config["optim"]["per_device_batch_size"] * 3 * config["scaling"]["num_workers"]
    assert f"7 optimizer step(s) of {rows} rows" in text


def test_recipe_lists_its_steps_in_order_and_runs_none(capsys, tmp_path, monkeypatch):
    from recipe.__main__ import main
    from recipe.steps import STEP_NAMES

    monkeypatch.chdir(REPO)
    text = printed(capsys, main, ["run", "configs/recipe-tiny.yaml", "--print-config",
                                  "--storage-path", str(tmp_path / "store")])
    assert not (tmp_path / "store").exists()
    steps = re.findall(r"#   \d+\. (\w+)", text)
    assert steps == [name for name in STEP_NAMES if name in steps] and steps[0] == "factory" and steps[-1] == "eval"
    assert source(text, "storage_path:") == "command line"


@pytest.mark.parametrize("argv", [
    ["factory", "prepare", "configs/sample_prepare.yaml"],
    ["synth", "sft", "configs/synth_sft.yaml"],
    ["synth", "preferences", "configs/synth_preferences.yaml"],
    ["train", "cpt", "configs/train_cpt.yaml"],
    ["train", "dpo", "configs/train_dpo.yaml"],
    ["eval", "run", "configs/eval.yaml"],
    ["quality", "validate", "sft", "out/synth_sft"],
])
def test_every_job_prints_its_config_and_plan(capsys, monkeypatch, argv):
    import importlib

    monkeypatch.chdir(REPO)
    monkeypatch.setenv("OPENAI_API_KEY", "not-used")  # the preferences judge's key must be set, never printed
    main = importlib.import_module(f"{argv[0]}.__main__").main
    text = printed(capsys, main, [*argv[1:], "--print-config"])
    assert "not-used" not in text
    config, plan = text.split("# plan:", 1)
    assert isinstance(yaml.safe_load(config), dict) and plan.strip()
