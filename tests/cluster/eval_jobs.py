"""The eval job the cluster drills submit: two tiny checkpoints scored on model actors (``ray.enabled``), its
config, and the numbers a run published, to compare runs."""
from __future__ import annotations

import json
from pathlib import Path

import yaml
from conftest import published
from eval_fixtures import GENERAL_TEXT, MC_PROMPT, lora_adapter, question_rows, write_documents, write_table
from train_fixtures import DOCUMENTS, tiny_model_dir

from .drill import job_folder

PACKAGES = ["core", "eval", "quality"]  # what an eval job imports
COPIES = 25


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


def eval_numbers(output: Path) -> dict:
    """Each suite's published results."""
    results = json.loads((published(output) / "results.json").read_text())
    return {suite: results[suite] for suite in SUITES}


def eval_job(root: Path) -> Path:
    """The job's code; beside it (read by absolute path, not uploaded), two checkpoints (a tiny model and a LoRA
    adapter on it) and the eval sets."""
    base = tiny_model_dir(root / "models" / "base")
    lora_adapter(base, root / "models" / "lora")
    # the domain documents many times over: a few seconds of batches, so the node dies with batches in flight
    write_documents(root / "sets" / "domain.parquet", DOCUMENTS * COPIES, "domain")
    write_documents(root / "sets" / "general.parquet", GENERAL_TEXT, "gen")
    write_table(root / "sets" / "questions.parquet", question_rows())
    return job_folder(root / "job", PACKAGES)
