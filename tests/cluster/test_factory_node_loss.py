"""Node-loss drills: jobs submitted with ``ray job submit`` to a head and two worker nodes on loopback; a worker
node is SIGKILLed (its raylet and the job's workers on it) at a point the job itself shows, and a replacement
joins as an autoscaler would add one. Each job must finish with the output of an undisturbed run of the same
config, or fail with exit 1 naming the lost node and the stage; never hang or publish something else.

The package's one cluster serves every drill, and each config's undisturbed reference runs once. The factory's
and prepare's scratch and outputs are on local disk, which every node of this one-machine cluster shares
(standing in for the shared mount a real cluster needs)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import pytest
from conftest import parquet_source, write_config

from .drill import lose_a_node, survived_or_named, when
from .factory_jobs import factory_config, factory_outcome, packed_rows, prepare_config

pytestmark = pytest.mark.slow


def files_in(output: Path, folder: str) -> Callable[[], bool]:
    """True once a run of ``output`` has written a Parquet file into its scratch folder ``folder``."""
    return lambda: any(output.glob(f"runs/*/_work/{folder}/**/*.parquet"))


@pytest.mark.parametrize("point", [
    pytest.param("documents_before_near_dedup", id="filter_pass"),  # written by the pass that runs the filters
    pytest.param("bands", id="near_dedup"),  # MinHash bands, the near-dedup's first table
])
def test_factory_survives_a_lost_node(point, cluster, factory_job_dir, factory_reference, tmp_path):
    output = tmp_path / "out"
    job = cluster.head.submit_in_background(factory_job_dir, "python", "-m", "factory", "run",
                                            factory_config(factory_job_dir, output))
    when(files_in(output, point), job)
    lost = lose_a_node(cluster)
    outcome = survived_or_named(job.finish(), lost, output, lambda: factory_outcome(output) == factory_reference[1])
    print(f"factory, node lost at {point}: {outcome}")


def test_prepare_survives_a_node_lost_during_its_sort(cluster, factory_job_dir, prepare_reference, tmp_path):
    factory_output, reference = prepare_reference
    output = tmp_path / "out"
    job = cluster.head.submit_in_background(factory_job_dir, "python", "-m", "factory", "prepare",
                                            prepare_config(factory_job_dir, factory_output, output))
    # the run's ledger says its last phase (sort, pack, write) is under way: the sort starts
    when(lambda: any(output.glob("runs/*/_resume/sort_pack_write.started")), job)
    lost = lose_a_node(cluster)
    outcome = survived_or_named(job.finish(), lost, output, lambda: packed_rows(output) == reference)
    print(f"prepare, node lost at its sort: {outcome}")


def test_publishing_to_object_storage_from_several_nodes_needs_a_shared_scratch_dir(cluster, factory_job_dir, s3):
    """The dedup spill in the driver's temp folder would be lost to tasks on other nodes: refused, exit 2, naming
    the key to set, before any stage runs and with nothing on the store."""
    import boto3

    endpoint, _ = s3
    write_config(factory_job_dir / "factory-s3.yaml", sources=[parquet_source("papers", Path("data/papers.parquet"))],
                 output_dir="s3://corpus/nodes/out", preset="scientific", ray={"num_cpus": None})
    job = cluster.head.submit(factory_job_dir, "python", "-m", "factory", "run", "factory-s3.yaml")
    # `ray job submit` itself exits 1 for any failed job; the job's own exit code is in its status line
    assert job.returncode != 0 and "failed with exit code 2" in job.stdout, cluster.head.failure(job)
    assert re.search(r"storage\.scratch_dir: output_dir s3://corpus/nodes/out is on object storage and Ray has \d "
                     r"nodes; set storage\.scratch_dir to a folder every node mounts", job.stdout), job.stdout[-3000:]
    assert "KeyCount" in (listing := boto3.client("s3", endpoint_url=endpoint).list_objects_v2(
        Bucket="corpus", Prefix="nodes/")) and listing["KeyCount"] == 0
