"""The whole recipe submitted to the package's multi-node Ray cluster, as the README's tutorial does it:
``ray job submit --working-dir . -- python -m recipe run CONFIG``: a tiny corpus through the factory,
prepare, synth (a loopback OpenAI-protocol server), review, a tiny model trained with CPT, SFT and DPO on
Ray Train workers of the job, and eval. Then the same recipe with its corpus and storage_path on a loopback S3
server gives the same documents, packed rows and eval numbers, and a second submission there skips every step."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import REPO, published
from s3_server import BUCKET, upload
from synth_helpers import loopback  # noqa: F401  (fixture)

from core.config import deep_merge
from core.parquet import open_parquet, parquet_files, published_data_dir
from core.publish import current_run_dir, read_text
from core.storage import locate

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


def s3_recipe(job_dir: Path, endpoint: str, base_url: str, scratch: Path) -> str:
    """The same recipe with its corpus on the S3 server; returns the recipe file's name. The factory's dedup
    spill goes to ``scratch``, a folder every node of the cluster sees, as a multi-node cluster must set."""
    config = recipe_config(base_url)
    for source in config["factory"]["sources"]:
        source["path"] = upload(endpoint, job_dir / source["path"], source["path"])
    config["factory"]["storage"] = {"scratch_dir": str(scratch)}
    (job_dir / "recipe-s3.yaml").write_text(yaml.safe_dump(config))
    return "recipe-s3.yaml"


def table_at(output: str | Path, folder: str):
    """A published output's data folder (local or s3://) as one table, read through its run's manifest."""
    files = parquet_files(published_data_dir(output, (folder,)), folder)
    return pa.concat_tables(open_parquet(f, folder).read() for f in files)


def packed_rows(output: str | Path) -> list:
    """The packed training rows, in training order (the files in name order, as the manifest lists them)."""
    return table_at(output, "train").column("input_ids").to_pylist()


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_recipe_submitted_to_a_ray_cluster_locally_and_on_object_storage(
        tmp_path, loopback, s3, cluster, node_cache):  # noqa: F811
    server = loopback()
    job_dir = tmp_path / "job"
    for package in PACKAGES:
        shutil.copytree(REPO / package, job_dir / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "arxiv_cs.parquet", "news.jsonl"))
    tiny_corpus(job_dir / "data")
    (job_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe_config(server.base_url)))
    store = tmp_path / "store"  # the job's working directory is a temporary copy: outputs go where every node sees
    command = ["python", "-m", "recipe", "run", "recipe.yaml", "--storage-path", str(store)]
    endpoint, _ = s3
    on_s3 = ["python", "-m", "recipe", "run", s3_recipe(job_dir, endpoint, server.base_url, tmp_path / "scratch"),
             "--storage-path", f"s3://{BUCKET}/recipe"]

    head = cluster.head  # its nodes have the AWS_* variables a user sets: the jobs find the server
    first = head.submit(job_dir, *command, timeout=900)
    assert first.returncode == 0, head.failure(first)
    assert statuses(first.stdout) == {step: "running" for step in STEPS}
    # training ran on Ray Train workers of the submitted job: their own output is in the job's logs
    assert re.search(r"RayTrainWorker pid=\d+[^\n]*\[train\] first step of this attempt: 1", first.stdout)
    assert "NO HUMAN REVIEWS" in first.stdout  # DPO on judge-approved pairs is said loudly
    ran = run_ids(store)

    # the whole recipe again, its corpus and storage_path on object storage
    remote = head.submit(job_dir, *on_s3, timeout=900)
    assert remote.returncode == 0, head.failure(remote)
    assert statuses(remote.stdout) == {step: "running" for step in STEPS}
    ran_on_s3 = run_ids_on_s3()

    again = head.submit(job_dir, *on_s3)  # the lineage read back from object storage: nothing to do
    assert again.returncode == 0, head.failure(again)
    assert statuses(again.stdout) == {step: "skipped" for step in STEPS}
    assert "RayTrainWorker" not in again.stdout
    assert run_ids_on_s3() == ran_on_s3  # which steps rerun after a deleted output: test_recipe_config.py

    check_outputs_on_s3_equal_local(store, node_cache)

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


def run_ids_on_s3() -> dict[str, str | None]:
    steps = json.loads(read_text(f"s3://{BUCKET}/recipe/recipe_manifest.json"))["steps"]
    return {name: entry["run_id"] for name, entry in steps.items()}


def check_outputs_on_s3_equal_local(store: Path, node_cache: Path) -> None:
    """The same kept documents, packed rows, models and eval numbers as the local run; SQLite stayed local."""
    remote = f"s3://{BUCKET}/recipe"
    assert set(table_at(f"{remote}/factory", "documents").column("id").to_pylist()) == \
        set(table_at(store / "factory", "documents").column("id").to_pylist())
    assert packed_rows(f"{remote}/prepare") == packed_rows(store / "prepare")
    # prepare's Ray-written documents went straight to the store, listed with their rows; its trained tokenizer too
    prepare_manifest = json.loads(read_text(f"{current_run_dir(remote + '/prepare')}/manifest.json"))
    documents = [f for f in prepare_manifest["files"] if f["path"].startswith("documents/")]
    assert documents and sum(f["rows"] for f in documents) == table_at(f"{remote}/prepare", "documents").num_rows
    assert "tokenizer/tokenizer.json" in {f["path"] for f in prepare_manifest["files"]}
    local_results = json.loads((published(store / "eval") / "results.json").read_text())
    results = json.loads(read_text(f"{current_run_dir(remote + '/eval')}/results.json"))
    for suite in ("perplexity", "multiple_choice"):
        assert results[suite] == local_results[suite], suite
    steps = json.loads(read_text(f"{remote}/recipe_manifest.json"))["steps"]
    # a model's adapter names its base as any node finds it: the published version on object storage
    sft = json.loads(read_text(f"{steps['train_sft']['run_path']}/adapter_config.json"))
    assert sft["base_model_name_or_path"] == steps["train_cpt"]["run_path"]
    assert steps["train_cpt"]["run_path"].startswith(f"{remote}/models/cpt/runs/")
    # the review database and the synth cache on the head node's disk; their export and configs on storage
    assert (node_cache / "recipes" / "tiny" / "reviews.sqlite").is_file()
    assert read_text(f"{remote}/configs/eval.yaml") is not None and read_text(f"{remote}/summary.md") is not None
    assert not [f for f in listed(remote) if f.endswith(".sqlite")]


def listed(uri: str) -> list[str]:
    from pyarrow.fs import FileSelector

    where = locate(uri, "test")
    return [i.path for i in where.filesystem.get_file_info(FileSelector(where.path, recursive=True))]
