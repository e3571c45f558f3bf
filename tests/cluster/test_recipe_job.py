"""The whole recipe submitted to the package's multi-node Ray cluster, as the README's tutorial does it:
``ray job submit --working-dir . -- python -m recipe run CONFIG``, with its corpus and storage_path on a loopback
S3 server: a tiny corpus through the factory, prepare, synth (a loopback OpenAI-protocol server), review, a tiny
model trained with CPT, SFT and DPO on Ray Train workers of the job, and eval. A second submission skips every
step. Then the prepare step's own config, its output on local disk, gives the same packed rows as on the store.
(Each job on local disk end to end: its own tests.)"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import REPO
from s3_server import BUCKET, upload
from synth_helpers import loopback  # noqa: F401  (fixture)

from core.config import deep_merge
from core.parquet import open_parquet, parquet_files, published_data_dir
from core.publish import current_run_dir, read_text
from core.storage import locate

STEPS = ["factory", "prepare", "synth_sft", "synth_preferences", "review", "base_model", "train_cpt", "train_sft",
         "train_dpo", "eval"]
PACKAGES = ["core", "factory", "synth", "quality", "train", "eval", "recipe"]
REMOTE = f"s3://{BUCKET}/recipe"  # the recipe's storage_path


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
def test_recipe_submitted_to_a_ray_cluster_on_object_storage(tmp_path, loopback, s3, cluster, node_cache):  # noqa: F811
    server = loopback()
    job_dir = tmp_path / "job"
    for package in PACKAGES:
        shutil.copytree(REPO / package, job_dir / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "arxiv_cs.parquet", "news.jsonl"))
    tiny_corpus(job_dir / "data")
    (job_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe_config(server.base_url)))
    endpoint, _ = s3
    on_s3 = ["python", "-m", "recipe", "run", s3_recipe(job_dir, endpoint, server.base_url, tmp_path / "scratch"),
             "--storage-path", REMOTE]

    head = cluster.head  # its nodes have the AWS_* variables a user sets: the jobs find the server
    first = head.submit(job_dir, *on_s3, timeout=900)
    assert first.returncode == 0, head.failure(first)
    assert statuses(first.stdout) == {step: "running" for step in STEPS}
    # training ran on Ray Train workers of the submitted job: their own output is in the job's logs
    assert re.search(r"RayTrainWorker pid=\d+[^\n]*\[train\] first step of this attempt: 1", first.stdout)
    assert "NO HUMAN REVIEWS" in first.stdout  # DPO on judge-approved pairs is said loudly
    ran = run_ids(REMOTE)

    again = head.submit(job_dir, *on_s3)  # the lineage read back from object storage: nothing to do
    assert again.returncode == 0, head.failure(again)
    assert statuses(again.stdout) == {step: "skipped" for step in STEPS}
    assert "RayTrainWorker" not in again.stdout
    assert run_ids(REMOTE) == ran  # which steps rerun after a deleted output: test_recipe_config.py

    check_artifacts_and_lineage(REMOTE, ran, node_cache)

    # the prepare step's own config (as the recipe wrote it) with its output on local disk: the same packed rows
    # from the same documents (the factory on S3 against local disk: tests/factory/test_factory_object_storage.py)
    config = yaml.safe_load(read_text(f"{REMOTE}/configs/prepare.yaml"))
    config["output_dir"] = str(tmp_path / "prepare")  # the job's working directory is a temporary copy
    (job_dir / "prepare-local.yaml").write_text(yaml.safe_dump(config))
    local = head.submit(job_dir, "python", "-m", "factory", "prepare", "prepare-local.yaml")
    assert local.returncode == 0, head.failure(local)
    assert packed_rows(f"{REMOTE}/prepare") == packed_rows(tmp_path / "prepare")


def json_at(path: str) -> dict:
    return json.loads(read_text(path))


def run_ids(storage: str) -> dict[str, str | None]:
    return {name: entry["run_id"] for name, entry in json_at(f"{storage}/recipe_manifest.json")["steps"].items()}


def check_artifacts_and_lineage(storage: str, ran: dict, node_cache: Path) -> None:
    """Every artifact on the store, each naming what it was made from, down to the version (run folder)."""
    def run_of(output: str) -> str:
        return str(current_run_dir(f"{storage}/{output}"))

    def manifest(output: str) -> dict:
        return json_at(f"{run_of(output)}/manifest.json")

    steps = json_at(f"{storage}/recipe_manifest.json")["steps"]
    assert table_at(f"{storage}/factory", "documents").num_rows > 100
    assert table_at(f"{storage}/prepare", "train").num_rows > 0
    assert table_at(f"{storage}/synth_sft", "sft").num_rows >= 8
    assert table_at(f"{storage}/synth_preferences", "preferences").num_rows > 0
    for step in ("factory", "prepare", "synth_sft", "synth_preferences"):
        assert steps[step]["quality"]["success"] is True
        assert manifest(step)["run_id"] == ran[step]
        assert steps[step]["run_path"] == run_of(step)  # the lineage names the run's own folder
    # prepare's Ray-written documents went straight to the store, listed with their rows; its trained tokenizer too
    documents = [f for f in manifest("prepare")["files"] if f["path"].startswith("documents/")]
    assert documents and sum(f["rows"] for f in documents) == table_at(f"{storage}/prepare", "documents").num_rows
    assert "tokenizer/tokenizer.json" in {f["path"] for f in manifest("prepare")["files"]}

    # the review database and the synth cache on the head node's disk; their export and configs on storage
    assert (node_cache / "recipes" / "tiny" / "reviews.sqlite").is_file()
    assert not [f for f in listed(storage) if f.endswith(".sqlite")]
    assert steps["review"]["facts"]["dpo_pairs"] == "judge_approved"
    review = manifest("review")  # published with no decision: names the pairs DPO trains on
    assert steps["review"]["run_id"] == review["run_id"] and review["preferences_run"]["run_id"] == ran["synth_preferences"]

    lineage = {stage: manifest(f"models/{stage}") for stage in ("cpt", "sft", "dpo")}
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
    # SFT is a LoRA adapter on the CPT model; DPO a LoRA on the SFT adapter merged into it. A model's adapter
    # names its base as any node finds it: the published version on object storage
    assert steps["train_cpt"]["run_path"] == run_of("models/cpt") and run_of("models/cpt").startswith(
        f"{storage}/models/cpt/runs/")
    assert json_at(f"{run_of('models/sft')}/adapter_config.json")["base_model_name_or_path"] == run_of("models/cpt")
    assert json_at(f"{run_of('models/dpo')}/adapter_config.json")["base_model_name_or_path"] == run_of("models/sft")
    # DPO on the SFT adapter (merged on load) learns: policy == reference (adapter off) at the start, loss ln 2
    history = json_at(f"{run_of('models/dpo')}/trainer_state.json")["log_history"]
    dpo_losses = [e["loss"] for e in history if "loss" in e]
    assert len(dpo_losses) == 4 and abs(dpo_losses[0] - 0.6931) < 0.01 and min(dpo_losses[1:]) < 0.6931, dpo_losses

    results = json_at(f"{run_of('eval')}/results.json")
    assert [(c["name"], (c["run"] or {}).get("run_id")) for c in results["checkpoints"]] == [
        ("base", ran["base_model"]), ("cpt", ran["train_cpt"]), ("sft", ran["train_sft"]),
        ("dpo", ran["train_dpo"])]
    assert set(results["perplexity"]) == {"domain", "general"}
    assert all(set(by_checkpoint) == {"base", "cpt", "sft", "dpo"} for by_checkpoint in results["perplexity"].values())
    domain = results["perplexity"]["domain"]  # CPT on the domain set lowers its perplexity from the random base's
    assert domain["cpt"]["perplexity"] < domain["base"]["perplexity"]
    assert read_text(f"{run_of('eval')}/report.md") is not None
    summary = read_text(f"{storage}/summary.md")
    assert f"Full report: {run_of('eval')}/report.md" in summary  # read from the eval run
    for line in ("## Steps", "documents:", "SFT examples made:", "judge-approved", "## Models", "## Eval"):
        assert line in summary
    for step in STEPS:  # each step's config is a file the job's own CLI takes
        assert read_text(f"{storage}/configs/{step}.yaml") is not None


def listed(uri: str) -> list[str]:
    from pyarrow.fs import FileSelector

    where = locate(uri, "test")
    return [i.path for i in where.filesystem.get_file_info(FileSelector(where.path, recursive=True))]
