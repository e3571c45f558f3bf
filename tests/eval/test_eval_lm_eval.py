"""The lm-evaluation-harness adapter (optional extra): the same checkpoints through a task of its own,
defined offline in a task YAML, and its scores in the report beside ours; and our multiple-choice suite
against lm-eval's own computation on the same items."""
from __future__ import annotations

import json

import pytest
import yaml

from conftest import published
from eval.__main__ import main
from eval.config import ChoiceSetConfig
from eval.items import choice_items
from eval.lm_eval_adapter import available
from eval.suites import multiple_choice
from eval_fixtures import MC_PROMPT, MMLU_SAMPLE, models, question_rows, score

pytestmark = pytest.mark.skipif(not available(), reason="lm-evaluation-harness is not installed (optional extra)")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return models(tmp_path_factory.mktemp("lm-eval-models"))


def test_multiple_choice_scores_and_acc_norm_equal_lm_evals_own(tiny, tmp_path):
    """The MMLU sample through lm-eval's HFLM and its multiple_choice task (its tokenization, its acc_norm) and
    through our suite, on the same random model: the same log-likelihoods, picks and acc_norm, item by item."""
    import lm_eval
    from lm_eval.tasks import TaskManager
    from transformers import AutoTokenizer

    items = choice_items("cs", ChoiceSetConfig(path=str(MMLU_SAMPLE), id_column="id"), 1000)
    inputs = multiple_choice.choice_inputs(items, MC_PROMPT, " {choice}")
    tokenizer = AutoTokenizer.from_pretrained(tiny["base"])
    fits = [len(tokenizer(c + max(conts, key=len))["input_ids"]) < 256  # no truncation: both keep the same tokens
            for c, conts in zip(inputs.column("context").to_pylist(), inputs.column("continuations").to_pylist())]
    items, inputs = items.filter(fits), inputs.filter(fits)
    assert items.num_rows >= 20
    data = tmp_path / "mmlu.jsonl"
    data.write_text("".join(json.dumps({**row, "subject": row["subject"].replace("_", " ")}) + "\n"
                            for row in items.to_pylist()))
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "mmlu_sample.yaml").write_text(yaml.safe_dump({
        "task": "mmlu_sample", "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test", "output_type": "multiple_choice",
        "doc_to_text": MC_PROMPT.format(subject="{{subject}}", question="{{question}}"),
        "doc_to_choice": "{{choices}}", "doc_to_target": "answer",
        "metric_list": [{"metric": "acc"}, {"metric": "acc_norm"}]}))
    output = lm_eval.simple_evaluate(
        model="hf", model_args={"pretrained": str(tiny["base"]), "dtype": "float32"}, tasks=["mmlu_sample"],
        task_manager=TaskManager(include_path=str(tmp_path / "tasks")), batch_size=8, device="cpu",
        log_samples=True, bootstrap_iters=0)
    theirs = sorted(output["samples"]["mmlu_sample"], key=lambda s: s["doc_id"])

    scored = score(tiny["base"], "choices", dict(add_special_tokens=True), inputs)
    ours = multiple_choice.summarise(items, scored, 0.95)
    for i, sample in enumerate(theirs):
        assert scored.column("logprobs")[i].as_py() == pytest.approx([r[0] for r in sample["filtered_resps"]],
                                                                     rel=1e-4, abs=1e-4)
    answers = items.column("answer").to_pylist()
    assert [float(p == a) for p, a in zip(ours["predictions"]["norm"], answers)] == [s["acc_norm"] for s in theirs]
    assert [float(p == a) for p, a in zip(ours["predictions"]["raw"], answers)] == [s["acc"] for s in theirs]
    assert ours["acc_norm"]["accuracy"] == pytest.approx(output["results"]["mmlu_sample"]["acc_norm,none"])


def test_lm_eval_tasks_join_the_report(tiny, tmp_path):
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
    results = json.loads((published(tmp_path / "eval") / "results.json").read_text())["lm_eval"]
    assert set(results) == {"base", "cpt", "lora"}
    assert results["cpt"]["reactor_mc"]["acc"] == 1.0  # the answers the trained model was taught
    assert "reactor_mc" in (published(tmp_path / "eval") / "report.md").read_text()
