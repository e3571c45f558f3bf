"""Eval's node-loss drill: ``python -m eval run`` with ``ray.enabled: true`` submitted to the package's cluster
scores two tiny checkpoints on one model actor per worker node (eval.streaming: ``ray.util.ActorPool``); the node
of one actor is killed while batches are being scored. The job must finish with the undisturbed run's numbers in
results.json (Ray starts the actor again on the replacement node, it loads the batch's checkpoint, and the lost
batches are scored again), or fail with exit 1 naming the stage and the node. The checkpoints and sets are on
local disk, which every node of this one-machine cluster shares."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import published
from eval_fixtures import GENERAL_TEXT, MC_PROMPT, lora_adapter, question_rows, write_documents, write_table
from train_fixtures import DOCUMENTS, tiny_model_dir

from .drill import job_folder, lose_a_node, survived_or_named, when

pytestmark = pytest.mark.slow

PACKAGES = ["core", "eval", "quality"]  # what an eval job imports
COPIES = 25


@pytest.fixture(scope="module")
def job_dir(tmp_path_factory) -> Path:
    """The job's code; beside it (read by absolute path, not uploaded), two checkpoints (a tiny model and a LoRA
    adapter on it) and the eval sets."""
    root = tmp_path_factory.mktemp("job")
    base = tiny_model_dir(root / "models" / "base")
    lora_adapter(base, root / "models" / "lora")
    # the domain documents many times over: a few seconds of batches, so the node dies with batches in flight
    write_documents(root / "sets" / "domain.parquet", DOCUMENTS * COPIES, "domain")
    write_documents(root / "sets" / "general.parquet", GENERAL_TEXT, "gen")
    write_table(root / "sets" / "questions.parquet", question_rows())
    return job_folder(root / "job", PACKAGES)


def eval_config(job: Path, output: Path) -> str:
    """Perplexity, multiple choice and generation on both checkpoints, in batches of 2 items over 2 actors of
    1 CPU (one on each worker node); no judge."""
    name, root = f"eval-{output.name}.yaml", job.parent
    domain = str(root / "sets" / "domain.parquet")
    (job / name).write_text(yaml.safe_dump({
        "output_dir": str(output),
        "checkpoints": [{"name": "base", "path": str(root / "models" / "base")},
                        {"name": "lora", "path": str(root / "models" / "lora")}],
        "ray": {"enabled": True, "concurrency": 2, "batch_size": 2, "num_cpus_per_actor": 1},
        "model": {"device": "cpu", "forward_batch_size": 2},
        "decoding": {"max_new_tokens": 6},
        "perplexity": {"context_length": 24, "stride": 12, "sets": {
            "domain": {"path": domain}, "general": {"path": str(root / "sets" / "general.parquet")}}},
        "multiple_choice": {"prompt": MC_PROMPT, "sets": {"reactor": {"path": str(root / "sets" / "questions.parquet"),
                                                                      "id_column": "id"}}},
        "generation": {"sets": {"title_to_text": {"path": domain, "prompt": "Title: {title}\nText:",
                                                  "reference_column": "text", "limit": 4}}},
        "judge": {"enabled": False},
    }, sort_keys=False))
    return name


SUITES = ("perplexity", "multiple_choice", "generation")


def numbers(output: Path) -> dict:
    results = json.loads((published(output) / "results.json").read_text())
    return {suite: results[suite] for suite in SUITES}


@pytest.fixture(scope="module")
def reference(cluster, job_dir, tmp_path_factory) -> dict:
    """The undisturbed run's numbers."""
    output = tmp_path_factory.mktemp("out") / "reference"
    job = cluster.head.submit(job_dir, "python", "-m", "eval", "run", eval_config(job_dir, output))
    assert job.returncode == 0, cluster.head.failure(job)
    return numbers(output)


def test_eval_survives_a_node_lost_while_its_model_actors_score(cluster, job_dir, reference, tmp_path):
    output = tmp_path / "out"
    job = cluster.head.submit_in_background(job_dir, "python", "-m", "eval", "run", eval_config(job_dir, output))
    when(lambda: "/ base: " in job.output, job)  # the first checkpoint's first batches are scored, most are not
    lost = lose_a_node(cluster)
    outcome = survived_or_named(job.finish(), lost, output, lambda: numbers(output) == reference)
    print(f"eval, node lost while its model actors score: {outcome}")
