"""Node-loss drills: jobs submitted with ``ray job submit`` to a head and two worker nodes on loopback; a worker
node is SIGKILLed (its raylet and the job's workers on it) at a point the job itself shows, and a replacement
joins as an autoscaler would add one. Each job must finish with the output of an undisturbed run of the same
config, or fail with exit 1 naming the lost node and the stage; never hang or publish something else.

The package's one cluster serves every drill, and each config's undisturbed reference runs once. The factory's
and prepare's scratch and outputs are on local disk, which every node of this one-machine cluster shares
(standing in for the shared mount a real cluster needs)."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import REPO, parquet_source, published, write_config

from .drill import job_folder, lose_a_node, survived_or_named, when

pytestmark = pytest.mark.slow

PACKAGES = ["core", "factory", "quality"]  # what a factory or prepare job imports
DOCUMENTS = 300


@pytest.fixture(scope="module")
def job_dir(tmp_path_factory) -> Path:
    """The job's working directory (the code, the corpus and the configs), uploaded by ``ray job submit``."""
    job = job_folder(tmp_path_factory.mktemp("job") / "job", PACKAGES)
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
    """The scientific preset on the abstracts, in small blocks (many tasks per pass, so a lost node holds some)."""
    name = f"factory-{output.name}.yaml"
    write_config(job / name, sources=[parquet_source("papers", Path("data/papers.parquet"))], output_dir=output,
                 preset="scientific", ray={"num_cpus": None, "batch_size": 25, "rows_per_block": 25})
    return name


def files_in(output: Path, folder: str) -> Callable[[], bool]:
    """True once a run of ``output`` has written a Parquet file into its scratch folder ``folder``."""
    return lambda: any(output.glob(f"runs/*/_work/{folder}/**/*.parquet"))


def factory_outcome(output: Path) -> dict:
    run = published(output)
    manifest = json.loads((run / "manifest.json").read_text())
    rejects = pq.read_table(run / "rejects", columns=["id", "stage", "reason"]).to_pylist()
    return {"kept": sorted(pq.read_table(run / "documents", columns=["id"])["id"].to_pylist()),
            "rejects": sorted(tuple(r.values()) for r in rejects),
            "stages": manifest["stages"]}


@pytest.fixture(scope="module")
def factory_reference(cluster, job_dir, tmp_path_factory) -> tuple[Path, dict]:
    """The undisturbed run: (its output, its outcome)."""
    output = tmp_path_factory.mktemp("out") / "reference"
    job = cluster.head.submit(job_dir, "python", "-m", "factory", "run", factory_config(job_dir, output))
    assert job.returncode == 0, cluster.head.failure(job)
    outcome = factory_outcome(output)
    assert {"exact_dedup", "quality", "near_dedup"} <= {s["stage"] for s in outcome["stages"] if s["dropped"]}
    return output, outcome


@pytest.mark.parametrize("point", [
    pytest.param("documents_before_near_dedup", id="filter_pass"),  # written by the pass that runs the filters
    pytest.param("bands", id="near_dedup"),  # MinHash bands, the near-dedup's first table
])
def test_factory_survives_a_lost_node(point, cluster, job_dir, factory_reference, tmp_path):
    output = tmp_path / "out"
    job = cluster.head.submit_in_background(job_dir, "python", "-m", "factory", "run", factory_config(job_dir, output))
    when(files_in(output, point), job)
    lost = lose_a_node(cluster)
    outcome = survived_or_named(job.finish(), lost, output, lambda: factory_outcome(output) == factory_reference[1])
    print(f"factory, node lost at {point}: {outcome}")


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


@pytest.fixture(scope="module")
def prepare_reference(cluster, job_dir, factory_reference, tmp_path_factory) -> tuple[Path, dict]:
    """The factory reference's documents, prepared undisturbed: (that factory output, the packed rows)."""
    factory_output = factory_reference[0]
    output = tmp_path_factory.mktemp("prepare") / "reference"
    job = cluster.head.submit(job_dir, "python", "-m", "factory", "prepare",
                              prepare_config(job_dir, factory_output, output))
    assert job.returncode == 0, cluster.head.failure(job)
    return factory_output, packed_rows(output)


def test_prepare_survives_a_node_lost_during_its_sort(cluster, job_dir, prepare_reference, tmp_path):
    factory_output, reference = prepare_reference
    output = tmp_path / "out"
    job = cluster.head.submit_in_background(job_dir, "python", "-m", "factory", "prepare",
                                            prepare_config(job_dir, factory_output, output))
    # the run's ledger says its last phase (sort, pack, write) is under way: the sort starts
    when(lambda: any(output.glob("runs/*/_resume/sort_pack_write.started")), job)
    lost = lose_a_node(cluster)
    outcome = survived_or_named(job.finish(), lost, output, lambda: packed_rows(output) == reference)
    print(f"prepare, node lost at its sort: {outcome}")


def test_publishing_to_object_storage_from_several_nodes_needs_a_shared_scratch_dir(cluster, job_dir, s3):
    """The dedup spill in the driver's temp folder would be lost to tasks on other nodes: refused, exit 2, naming
    the key to set, before any stage runs and with nothing on the store."""
    import boto3

    endpoint, _ = s3
    write_config(job_dir / "factory-s3.yaml", sources=[parquet_source("papers", Path("data/papers.parquet"))],
                 output_dir="s3://corpus/nodes/out", preset="scientific", ray={"num_cpus": None})
    job = cluster.head.submit(job_dir, "python", "-m", "factory", "run", "factory-s3.yaml")
    # `ray job submit` itself exits 1 for any failed job; the job's own exit code is in its status line
    assert job.returncode != 0 and "failed with exit code 2" in job.stdout, cluster.head.failure(job)
    assert re.search(r"storage\.scratch_dir: output_dir s3://corpus/nodes/out is on object storage and Ray has \d "
                     r"nodes; set storage\.scratch_dir to a folder every node mounts", job.stdout), job.stdout[-3000:]
    assert "KeyCount" in (listing := boto3.client("s3", endpoint_url=endpoint).list_objects_v2(
        Bucket="corpus", Prefix="nodes/")) and listing["KeyCount"] == 0
