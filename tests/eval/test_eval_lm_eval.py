"""The lm-evaluation-harness adapter (optional extra): the same checkpoints through a task of its own,
defined offline in a task YAML, and its scores in the report beside ours."""
from __future__ import annotations

import json

import pytest
import yaml

from eval.__main__ import main
from eval.lm_eval_adapter import available
from eval_fixtures import MC_PROMPT, models, question_rows

pytestmark = pytest.mark.skipif(not available(), reason="lm-evaluation-harness is not installed (optional extra)")


def test_lm_eval_tasks_join_the_report(tmp_path):
    tiny = models(tmp_path / "models")
    data = tmp_path / "questions.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in question_rows()))
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    prompt = MC_PROMPT.format(subject="reactor operations", question="{{question}}")
    (tasks / "reactor.yaml").write_text(yaml.safe_dump({
        "task": "reactor_mc", "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test", "output_type": "multiple_choice", "doc_to_text": prompt,
        "doc_to_choice": "{{choices}}", "doc_to_target": "answer", "metric_list": [{"metric": "acc"}],
    }))
    config = tmp_path / "eval.yaml"
    config.write_text(yaml.safe_dump({
        "output_dir": str(tmp_path / "eval"),
        "checkpoints": [{"name": "base", "path": str(tiny["base"])}, {"name": "cpt", "path": str(tiny["trained"])},
                        {"name": "lora", "path": str(tiny["lora"])}],
        "ray": {"enabled": False}, "model": {"device": "cpu"}, "decontamination": {"enabled": False},
        "lm_eval": {"enabled": True, "tasks": ["reactor_mc"], "include_path": str(tasks), "batch_size": 4},
    }))
    assert main(["run", str(config)]) == 0
    results = json.loads((tmp_path / "eval" / "results.json").read_text())["lm_eval"]
    assert set(results) == {"base", "cpt", "lora"}
    assert results["cpt"]["reactor_mc"]["acc"] == 1.0  # the answers the trained model was taught
    assert "reactor_mc" in (tmp_path / "eval" / "report.md").read_text()
