"""The package's one cluster (a head that only runs drivers and two 1-CPU worker nodes, ``ray_cluster``) and
the S3 server its nodes reach through the AWS_* variables a user sets; both live until the package's last test."""
from __future__ import annotations

from pathlib import Path

import pytest
from ray_cluster import RayCluster, ray_cluster
from s3_server import s3_store

from .eval_jobs import eval_config, eval_job, eval_numbers
from .factory_jobs import factory_config, factory_job, factory_outcome, packed_rows, prepare_config


@pytest.fixture(scope="package")
def s3():
    """The package's S3 server (this replaces the per-module fixture: the cluster's nodes keep its address)."""
    with s3_store() as store:
        yield store


@pytest.fixture(scope="package")
def node_cache(tmp_path_factory) -> Path:
    """The nodes' local state folder (DOMAIN_FACTORY_CACHE), where a job keeps what it must not put on the store."""
    return tmp_path_factory.mktemp("node-cache")


@pytest.fixture(scope="package")
def cluster(tmp_path_factory, s3, node_cache) -> RayCluster:
    with ray_cluster(tmp_path_factory.mktemp("cluster"), DOMAIN_FACTORY_CACHE=str(node_cache)) as running:
        yield running


@pytest.fixture(scope="package")
def factory_job_dir(tmp_path_factory) -> Path:
    """The factory job's working directory (``factory_jobs.factory_job``), shared by the package's drills."""
    return factory_job(tmp_path_factory.mktemp("job") / "job")


@pytest.fixture(scope="package")
def factory_reference(cluster, factory_job_dir, tmp_path_factory) -> tuple[Path, dict]:
    """The factory job run undisturbed on the package's warm cluster: (its output, its outcome)."""
    output = tmp_path_factory.mktemp("out") / "reference"
    job = cluster.head.submit(factory_job_dir, "python", "-m", "factory", "run", factory_config(factory_job_dir, output))
    assert job.returncode == 0, cluster.head.failure(job)
    outcome = factory_outcome(output)
    assert {"exact_dedup", "quality", "near_dedup"} <= {s["stage"] for s in outcome["stages"] if s["dropped"]}
    return output, outcome


@pytest.fixture(scope="package")
def prepare_reference(cluster, factory_job_dir, factory_reference, tmp_path_factory) -> tuple[Path, dict]:
    """The factory reference's documents, prepared undisturbed: (that factory output, the packed rows)."""
    factory_output = factory_reference[0]
    output = tmp_path_factory.mktemp("prepare") / "reference"
    job = cluster.head.submit(factory_job_dir, "python", "-m", "factory", "prepare",
                              prepare_config(factory_job_dir, factory_output, output))
    assert job.returncode == 0, cluster.head.failure(job)
    return factory_output, packed_rows(output)


@pytest.fixture(scope="package")
def eval_job_dir(tmp_path_factory) -> Path:
    """The eval job's working directory (``eval_jobs.eval_job``), shared by the package's drills."""
    return eval_job(tmp_path_factory.mktemp("eval-job"))


@pytest.fixture(scope="package")
def eval_reference(cluster, eval_job_dir, tmp_path_factory) -> dict:
    """The eval job run undisturbed on the package's warm cluster: its numbers."""
    output = tmp_path_factory.mktemp("out") / "reference"
    job = cluster.head.submit(eval_job_dir, "python", "-m", "eval", "run", eval_config(eval_job_dir, output))
    assert job.returncode == 0, cluster.head.failure(job)
    return eval_numbers(output)
