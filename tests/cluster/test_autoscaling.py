"""Jobs on an autoscaled cluster that starts with no worker node (``tests/autoscaling_cluster.py``: Ray's real
autoscaler, our ``cluster.yaml`` scaled down), submitted with ``ray job submit`` as a user would: a training
worker shape no node type holds (``CPU: 4`` on 1-CPU nodes) is refused in seconds, naming the shape, the key and
the node types, instead of waiting for nodes that never come."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import train_fixtures as tf
from autoscaling_cluster import autoscaling_cluster

from .drill import training_job

pytestmark = pytest.mark.slow

PACKAGES = ["core", "train"]  # what a training job imports


@pytest.fixture(scope="module")
def autoscaled(tmp_path_factory):
    with autoscaling_cluster(tmp_path_factory.mktemp("autoscaled"), tmp_path_factory.mktemp("config")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def job_dir(tmp_path_factory) -> Path:
    """The job's working directory: the code; a tiny model and its CPT rows beside it."""
    root = tmp_path_factory.mktemp("jobs")
    job, model, data = training_job(root, PACKAGES, copies=4)
    tf.write_train_config(job / "cpt-too-big.yaml", model_path=model, data_path=data, root=root, name="big",
                          optim={"max_steps": 4}, scaling={"resources_per_worker": {"CPU": 4}})
    return job


def test_a_worker_shape_no_node_type_holds_is_refused_in_seconds(autoscaled, job_dir):
    assert autoscaled.worker_nodes() == []  # cold: no worker node
    started = time.monotonic()
    job = autoscaled.head.submit(job_dir, "python", "-m", "train", "cpt", "cpt-too-big.yaml", timeout=300)
    seconds = time.monotonic() - started
    assert job.returncode != 0 and "failed with exit code 2" in job.stdout, job.stdout[-4000:]
    assert seconds < 60, f"refused after {seconds:.0f} s"
    assert "scaling.resources_per_worker: {CPU: 4} fits no node this cluster can ever have" in job.stdout
    assert "worker.cpu {CPU: 1} x 3" in job.stdout and "worker.gpu1 {CPU: 1, gpu_stand_in: 1} x 1" in job.stdout
