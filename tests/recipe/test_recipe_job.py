"""The whole recipe submitted to a real Ray cluster, as the README's tutorial does it:
``ray job submit --working-dir . -- python -m recipe run CONFIG``: a tiny corpus through the factory,
prepare, synth (a loopback OpenAI-protocol server), review, a tiny model trained with CPT, SFT and DPO on
Ray Train workers of the job, and eval. A second submission skips every step."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import REPO, published
from ray_cluster import ray_head
from synth_helpers import loopback  # noqa: F401  (fixture)

from core.config import deep_merge

STEPS = ["factory", "prepare", "synth_sft", "synth_preferences", "review", "base_model", "train_cpt", "train_sft",
         "train_dpo", "eval"]
PACKAGES = ["core", "factory", "synth", "quality", "train", "eval", "recipe"]


def tiny_corpus(data: Path) -> None:
    """200 real abstracts and 60 news articles from the bundled sample."""
    data.mkdir(parents=True)
    pq.write_table(pq.read_table(REPO / "factory/sample_data/arxiv_cs.parquet").slice(0, 200), data / "papers.parquet")
    lines = (REPO / "factory/sample_data/news.jsonl").read_text().splitlines()[:60]
    (data / "news.jsonl").write_text("\n".join(lines) + "\n")


def recipe_config(base_url: str) -> dict:
    """configs/recipe-tiny.yaml on the tiny corpus, with fewer steps and items so the test stays short."""
    config = yaml.safe_load((REPO / "configs/recipe-tiny.yaml").read_text())
    config["factory"]["sources"][0]["path"] = "data/papers.parquet"
    config["factory"]["sources"][1]["path"] = "data/news.jsonl"
    config["synth"]["endpoints"]["local"]["base_url"] = base_url
    return deep_merge(config, {
        "synth": {"sft": {"input": {"limit": 8}}},
        "train": {"common": {"optim": {"max_steps": 4}, "run": {"save_steps": 4, "logging_steps": 1}}},
        "eval": {"ray": {"enabled": False},  # the scorers in the job's driver: Ray Data model actors are eval's tests
                 "perplexity": {"sets": {"general": {"limit": 8}}},
                 "multiple_choice": {"sets": {"cs": {"limit": 8}}}},
    })


def statuses(log: str) -> dict[str, str]:
    """Step -> running/skipped, from the recipe's progress lines in the job's logs."""
    return dict(re.findall(r"\[\d+/\d+\] (\w+): (running|skipped)", log))


def run_ids(store: Path) -> dict[str, str | None]:
    steps = json.loads((store / "recipe_manifest.json").read_text())["steps"]
    return {name: entry["run_id"] for name, entry in steps.items()}


def adapter_base(output: Path) -> str:
    return json.loads((published(output) / "adapter_config.json").read_text())["base_model_name_or_path"]


def manifest(output: Path) -> dict:
    return json.loads((published(output) / "manifest.json").read_text())


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_recipe_submitted_to_a_ray_cluster(tmp_path, loopback):
    server = loopback()
    job_dir = tmp_path / "job"
    for package in PACKAGES:
        shutil.copytree(REPO / package, job_dir / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "arxiv_cs.parquet", "news.jsonl"))
    tiny_corpus(job_dir / "data")
    (job_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe_config(server.base_url)))
    store = tmp_path / "store"  # the job's working directory is a temporary copy: outputs go where every node sees
    command = ["python", "-m", "recipe", "run", "recipe.yaml", "--storage-path", str(store)]

    with ray_head(tmp_path) as head:
        first = head.submit(job_dir, *command, timeout=900)
        assert first.returncode == 0, head.failure(first)
        assert statuses(first.stdout) == {step: "running" for step in STEPS}
        # training ran on Ray Train workers of the submitted job: their own output is in the job's logs
        assert re.search(r"RayTrainWorker pid=\d+[^\n]*\[train\] first step of this attempt: 1", first.stdout)
        assert "NO HUMAN REVIEWS" in first.stdout  # DPO on judge-approved pairs is said loudly
        ran = run_ids(store)

        again = head.submit(job_dir, *command)
        assert again.returncode == 0, head.failure(again)
        assert statuses(again.stdout) == {step: "skipped" for step in STEPS}
        assert "RayTrainWorker" not in again.stdout
        assert run_ids(store) == ran  # which steps rerun after a deleted output: tests/recipe/test_recipe_config.py

    # every artifact, each naming what it was made from
    steps = json.loads((store / "recipe_manifest.json").read_text())["steps"]
    assert pq.read_table(published(store / "factory") / "documents").num_rows > 100
    assert pq.read_table(published(store / "prepare") / "train").num_rows > 0
    assert pq.read_table(published(store / "synth_sft") / "sft").num_rows >= 8
    assert pq.read_table(published(store / "synth_preferences") / "preferences").num_rows > 0
    for step in ("factory", "prepare", "synth_sft", "synth_preferences"):
        assert steps[step]["quality"]["success"] is True
        assert manifest(store / step)["run_id"] == ran[step]
        assert steps[step]["run_path"] == str(published(store / step))  # the lineage names the run's own folder
    assert (store / "reviews.sqlite").is_file() and steps["review"]["facts"]["dpo_pairs"] == "judge_approved"
    review = manifest(store / "review")  # published with no decision: names the pairs DPO trains on
    assert steps["review"]["run_id"] == review["run_id"] and review["preferences_run"]["run_id"] == ran["synth_preferences"]
    lineage = {stage: manifest(store / "models" / stage) for stage in ("cpt", "sft", "dpo")}
    assert lineage["cpt"]["trained_on"]["run_id"] == ran["prepare"]
    assert lineage["cpt"]["model_from"]["run_id"] == ran["base_model"]
    assert lineage["sft"]["trained_on"]["run_id"] == ran["synth_sft"]
    assert lineage["sft"]["model_from"]["run_id"] == ran["train_cpt"]
    assert lineage["dpo"]["trained_on"]["run_id"] == ran["synth_preferences"]
    assert lineage["dpo"]["model_from"]["run_id"] == ran["train_sft"]
    assert steps["train_dpo"]["upstream"] == {"review": ran["review"], "train_sft": ran["train_sft"]}
    for stage in ("cpt", "sft", "dpo"):
        assert lineage[stage]["summary"]["steps"] == 4
        assert steps[f"train_{stage}"]["facts"]["final_loss"] is not None
    # SFT is a LoRA adapter on the CPT model; DPO a LoRA on the SFT adapter merged into it: the chain is named,
    # down to the exact version (run folder) each was trained on
    assert adapter_base(store / "models" / "sft") == str(published(store / "models" / "cpt"))
    assert adapter_base(store / "models" / "dpo") == str(published(store / "models" / "sft"))
    # DPO on the SFT adapter (merged on load) learns: policy == reference (adapter off) at the start, loss ln 2
    trainer_state = published(store / "models" / "dpo") / "trainer_state.json"
    dpo_losses = [e["loss"] for e in json.loads(trainer_state.read_text())["log_history"] if "loss" in e]
    assert len(dpo_losses) == 4 and abs(dpo_losses[0] - 0.6931) < 0.01 and min(dpo_losses[1:]) < 0.6931, dpo_losses
    results = json.loads((published(store / "eval") / "results.json").read_text())
    assert [(c["name"], (c["run"] or {}).get("run_id")) for c in results["checkpoints"]] == [
        ("base", ran["base_model"]), ("cpt", ran["train_cpt"]), ("sft", ran["train_sft"]),
        ("dpo", ran["train_dpo"])]
    assert set(results["perplexity"]) == {"domain", "general"}
    assert all(set(by_checkpoint) == {"base", "cpt", "sft", "dpo"} for by_checkpoint in results["perplexity"].values())
    # CPT on the domain set lowers its perplexity from the random base's
    domain = results["perplexity"]["domain"]
    assert domain["cpt"]["perplexity"] < domain["base"]["perplexity"]
    assert (published(store / "eval") / "report.md").is_file()
    summary = (store / "summary.md").read_text()
    assert f"Full report: {published(store / 'eval') / 'report.md'}" in summary  # read from the eval run
    for line in ("## Steps", "documents:", "SFT examples made:", "judge-approved", "## Models", "## Eval"):
        assert line in summary
    for step in STEPS:  # each step's config is a file the job's own CLI takes
        assert (store / "configs" / f"{step}.yaml").is_file()
