"""The factory job the cluster drills submit: its working directory (the code and a corpus both dedup stages and the
filters reject from), its config, and what a run of it produced (kept ids, rejects, funnel, plan) to compare runs."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from conftest import REPO, parquet_source, published, write_config

from .drill import job_folder

PACKAGES = ["core", "factory", "quality"]  # what a factory or prepare job imports
DOCUMENTS = 300


def factory_job(folder: Path) -> Path:
    """``folder`` as the job's working directory, uploaded by ``ray job submit``."""
    job = job_folder(folder, PACKAGES)
    abstracts = pq.read_table(REPO / "factory/sample_data/arxiv_cs.parquet", columns=["id", "text"]).slice(0, DOCUMENTS)
    rows = abstracts.to_pylist()
    # exact copies and one-word edits of some abstracts, so both dedup stages reject documents
    rows += [{"id": f"copy-{r['id']}", "text": r["text"]} for r in rows[:DOCUMENTS:9]]
    rows += [{"id": f"edit-{r['id']}", "text": r["text"].replace(" the ", " a ", 1)} for r in rows[5:DOCUMENTS:11]]
    junk = pq.read_table(REPO / "factory/sample_data/junk.parquet", columns=["id", "text"]).slice(0, 40)
    rows += junk.to_pylist()  # boilerplate and gibberish: the filter pass rejects these
    (job / "data").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), job / "data" / "papers.parquet")
    return job


def factory_config(job: Path, output: Path) -> str:
    """The scientific preset on the abstracts, in small blocks (many tasks per pass, so a lost node holds some);
    planned for the cluster the job runs on (``ray.num_cpus: null``)."""
    name = f"factory-{output.name}.yaml"
    write_config(job / name, sources=[parquet_source("papers", Path("data/papers.parquet"))], output_dir=output,
                 preset="scientific", ray={"num_cpus": None, "batch_size": 25, "rows_per_block": 25})
    return name


def factory_outcome(output: Path) -> dict:
    """What the published run kept and rejected, and its funnel."""
    run = published(output)
    manifest = json.loads((run / "manifest.json").read_text())
    rejects = pq.read_table(run / "rejects", columns=["id", "stage", "reason"]).to_pylist()
    return {"kept": sorted(pq.read_table(run / "documents", columns=["id"])["id"].to_pylist()),
            "rejects": sorted(tuple(r.values()) for r in rejects),
            "stages": manifest["stages"]}


def planned_for(output: Path) -> dict:
    """The plan the published run was sized by (CPUs, dedup partitions, rows per block group) and its source."""
    return json.loads((published(output) / "manifest.json").read_text())["planned_for"]


def prepare_config(job: Path, factory_output: Path, output: Path) -> str:
    """A small BPE and TF-IDF grouping on the factory reference's documents, in small blocks."""
    name = f"prepare-{output.name}.yaml"
    (job / name).write_text(yaml.safe_dump({
        "input_dir": str(factory_output), "output_dir": str(output),
        "tokenizer": {"path": None, "train_vocab_size": 500},
        "grouping": {"embedder": "tfidf", "docs_per_partition": 60},
        "packing": {"seq_len": 128, "rows_per_shard": 16},
        "ray": {"batch_size": 16, "rows_per_block": 16},
    }))
    return name


def packed_rows(output: Path) -> dict[str, list]:
    """Each split's packed rows in training order (shard files in name order, rows in file order)."""
    run = published(output)
    return {split: [row for shard in sorted((run / split).glob("*.parquet"))
                    for row in pq.read_table(shard, columns=["input_ids"])["input_ids"].to_pylist()]
            for split in ("train", "validation")}
