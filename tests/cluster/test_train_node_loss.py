"""Node-loss drill of training: ``python -m train cpt`` submitted with ``ray job submit`` to the package's cluster,
the worker node holding its Ray Train workers SIGKILLed once a checkpoint is registered, a replacement added.
Ray Train's FailureConfig restarts the worker group on the nodes left: the run must go on from its last
checkpoint (step + 1, on one learning-rate schedule, every step logged once) and publish the model, or fail
with exit 1 naming the lost node and the stage; never hang.

The tiny model, the data and Ray's checkpoint storage are on local disk, which every node of this one-machine
cluster shares (standing in for the shared mount or object storage a real cluster's checkpoints need)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from ray_cluster import WorkerNode

from .drill import lose_a_node, survived_or_named, when
from .training_drill import (continued_from_its_checkpoint, drill_training_job, registered_checkpoints, restart,
                             step_of, training_node)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def job_dir(tmp_path_factory) -> Path:
    """The job's working directory (the code and the config); the model and data beside it on the shared disk."""
    return drill_training_job(tmp_path_factory.mktemp("train"), "cpt")


def lose_the_training_node(cluster, job_dir: Path, run: str) -> tuple[subprocess.CompletedProcess, WorkerNode, int]:
    """Submit the run ``run`` (its config ``run.yaml``), kill the node of its workers once a checkpoint is registered
    and add a replacement: (the job's end, the lost node, the step of the newest checkpoint registered then)."""
    checkpoints = job_dir.parent / "ray" / run
    job = cluster.head.submit_in_background(job_dir, "python", "-m", "train", "cpt", f"{run}.yaml")
    when(lambda: registered_checkpoints(checkpoints), job)
    seen_at_kill = step_of(registered_checkpoints(checkpoints)[-1])
    lost = lose_a_node(cluster, training_node(cluster))
    return job.finish(), lost, seen_at_kill


@pytest.mark.timeout(900)
def test_cpt_survives_losing_the_node_of_its_workers(cluster, job_dir):
    result, lost, seen_at_kill = lose_the_training_node(cluster, job_dir, "cpt")
    output = job_dir.parent / "cpt-model"
    outcome = survived_or_named(result, lost, output,
                                lambda: continued_from_its_checkpoint(result.stdout, output, seen_at_kill))
    said = "resumed from step {} at step {}".format(*restart(result.stdout)) if outcome == "finished" else ""
    print(f"train cpt, node of its workers lost after the checkpoint of step {seen_at_kill}: {outcome} {said}")


@pytest.mark.timeout(900)
def test_cpt_with_no_restart_left_fails_naming_the_lost_node(cluster, job_dir):
    """The same loss with ``run.max_failures: 0``: exit 1 naming the node and the stage, nothing published (the
    workers' errors say only that they cannot be reached: their node is found through Ray's state API)."""
    config = yaml.safe_load((job_dir / "cpt.yaml").read_text())
    config["run"].update(name="no-restart", max_failures=0)
    config["output_dir"] = str(job_dir.parent / "no-restart-model")
    (job_dir / "no-restart.yaml").write_text(yaml.safe_dump(config))
    result, lost, _ = lose_the_training_node(cluster, job_dir, "no-restart")
    assert survived_or_named(result, lost, job_dir.parent / "no-restart-model", lambda: False) == "failed in fit"
