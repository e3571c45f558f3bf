"""Jobs on an autoscaled cluster that starts with no worker node (``tests/autoscaling_cluster.py``: Ray's real
autoscaler, our ``cluster.yaml`` scaled down), submitted with ``ray job submit`` as a user would. Each job starts
on a cold cluster: the autoscaler launches the nodes it asks for, the job's output equals an undisturbed
reference, and the nodes are released once idle. A training worker shape no node type holds (``CPU: 4`` on
1-CPU nodes) is refused in seconds, naming the shape, the key and the node types, instead of waiting for nodes
that never come. What the drills measure (submit to first training step, cold and warm; job end to nodes
released) is printed, for the README."""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import train_fixtures as tf
from autoscaling_cluster import IDLE_TIMEOUT_S, AutoscalingCluster, autoscaling_cluster
from conftest import published

from .drill import training_job, when
from .eval_jobs import eval_config, eval_numbers
from .factory_jobs import factory_config, factory_outcome, packed_rows, planned_for, prepare_config
from .training_drill import (continued_from_its_checkpoint, drill_training_job, registered_checkpoints, restart,
                             step_of, training_node)

pytestmark = pytest.mark.slow

PACKAGES = ["core", "train"]  # what a training job imports
FIRST_STEP = re.compile(r"\[train\] first step of this attempt")


@pytest.fixture(scope="module")
def autoscaled(tmp_path_factory):
    with autoscaling_cluster(tmp_path_factory.mktemp("autoscaled"), tmp_path_factory.mktemp("config")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def training_dir(tmp_path_factory) -> Path:
    """The training job's working directory: the code; a tiny model and its CPT rows beside it. Two workers of
    half a CPU (one 1-CPU node holds both; Ray Data reads on the other), and one shape no node type holds."""
    root = tmp_path_factory.mktemp("jobs")
    job, model, data = training_job(root, PACKAGES, copies=4)
    for name in ("cold", "warm"):
        tf.write_train_config(job / f"cpt-{name}.yaml", model_path=model, data_path=data, root=root, name=name,
                              optim={"max_steps": 4}, run={"save_steps": 4})
    tf.write_train_config(job / "cpt-too-big.yaml", model_path=model, data_path=data, root=root, name="big",
                          optim={"max_steps": 4}, scaling={"resources_per_worker": {"CPU": 4}})
    return job


@dataclass
class Watched:
    """A job followed to its end: its result, the most worker nodes up at once, when its first training step
    was seen (seconds from submit; None if never) and when it ended."""
    result: object
    most_workers: int
    first_step_s: float | None
    ended_at: float


def run_watched(cluster: AutoscalingCluster, job_dir: Path, *command: str, timeout: float = 600) -> Watched:
    """The job submitted to run in place (``tests/autoscaling_cluster.py`` says why), followed to its end."""
    job = cluster.head.submit_in_background(job_dir, *command, in_place=True)
    started, most, first_step = time.monotonic(), 0, None
    while job.running() and time.monotonic() - started < timeout:
        most = max(most, len(cluster.worker_nodes()))
        if first_step is None and FIRST_STEP.search(job.output):
            first_step = time.monotonic() - started
        time.sleep(0.5)
    result = job.finish(timeout=5)
    return Watched(result, most, first_step, time.monotonic())


def released_after(cluster: AutoscalingCluster, since: float, timeout: float = IDLE_TIMEOUT_S + 90) -> float:
    """Seconds from ``since`` until the autoscaler has removed every worker node."""
    deadline = time.monotonic() + timeout
    while cluster.worker_nodes():
        assert time.monotonic() < deadline, f"worker nodes still up {timeout:.0f} s after the job: {cluster.worker_nodes()}"
        time.sleep(1)
    return time.monotonic() - since


def cold(cluster: AutoscalingCluster) -> None:
    """No worker node: the previous drill's nodes are released."""
    released_after(cluster, time.monotonic())


def test_a_worker_shape_no_node_type_holds_is_refused_in_seconds(autoscaled, training_dir):
    assert autoscaled.worker_nodes() == []  # cold: no worker node
    started = time.monotonic()
    job = autoscaled.head.submit(training_dir, "python", "-m", "train", "cpt", "cpt-too-big.yaml", timeout=300)
    seconds = time.monotonic() - started
    assert job.returncode != 0 and "failed with exit code 2" in job.stdout, job.stdout[-4000:]
    assert seconds < 60, f"refused after {seconds:.0f} s"
    assert "scaling.resources_per_worker: {CPU: 4} fits no node this cluster can ever have" in job.stdout
    assert "worker.cpu {CPU: 1} x 2" in job.stdout and "worker.gpu1 {CPU: 1, gpu_stand_in: 1} x 1" in job.stdout
    assert autoscaled.worker_nodes() == []  # nothing was launched for it


def test_the_factory_on_a_cold_cluster_plans_for_its_maximum(autoscaled, factory_job_dir, factory_reference, tmp_path):
    """The same output as on the package's warm 2-CPU cluster, and the same plan: this one can grow to 2 CPUs."""
    cold(autoscaled)
    output = tmp_path / "out"
    job = run_watched(autoscaled, factory_job_dir, "python", "-m", "factory", "run",
                      factory_config(factory_job_dir, output))
    assert job.result.returncode == 0, autoscaled.head.failure(job.result)
    assert job.most_workers >= 1  # the autoscaler launched nodes for it
    assert factory_outcome(output) == factory_reference[1]
    plan, warm_plan = planned_for(output), planned_for(factory_reference[0])
    assert plan.pop("from").startswith("the autoscaler's node types") and warm_plan.pop("from").startswith("the nodes")
    assert plan == warm_plan and plan["cpus"] == 2
    print(f"factory: {job.most_workers} worker nodes launched; released {released_after(autoscaled, job.ended_at):.0f} s "
          "after the job ended")


def test_prepare_on_a_cold_cluster(autoscaled, factory_job_dir, prepare_reference, tmp_path):
    factory_output, reference = prepare_reference
    cold(autoscaled)
    output = tmp_path / "out"
    job = run_watched(autoscaled, factory_job_dir, "python", "-m", "factory", "prepare",
                      prepare_config(factory_job_dir, factory_output, output))
    assert job.result.returncode == 0, autoscaled.head.failure(job.result)
    assert job.most_workers >= 1 and packed_rows(output) == reference


def test_eval_on_a_cold_cluster(autoscaled, eval_job_dir, eval_reference, tmp_path):
    """Two model actors of 1 CPU: the autoscaler launches a node for each, and the numbers are the warm run's."""
    cold(autoscaled)
    output = tmp_path / "out"
    job = run_watched(autoscaled, eval_job_dir, "python", "-m", "eval", "run", eval_config(eval_job_dir, output))
    assert job.result.returncode == 0, autoscaled.head.failure(job.result)
    assert job.most_workers >= 2 and eval_numbers(output) == eval_reference


def losses(model: Path) -> list[float]:
    history = json.loads((published(model) / "trainer_state.json").read_text())["log_history"]
    return [entry["loss"] for entry in history if "loss" in entry]


def test_two_worker_cpt_cold_then_warm(autoscaled, training_dir):
    """Cold: the gang is asked for at once and the run trains; warm (its nodes still up): the same run again, to
    the same losses. Measured: submit to first step, each; job end to nodes released."""
    cold(autoscaled)
    first = run_watched(autoscaled, training_dir, "python", "-m", "train", "cpt", "cpt-cold.yaml")
    assert first.result.returncode == 0, autoscaled.head.failure(first.result)
    second = run_watched(autoscaled, training_dir, "python", "-m", "train", "cpt", "cpt-warm.yaml")
    assert second.result.returncode == 0, autoscaled.head.failure(second.result)
    assert first.most_workers >= 1 and first.first_step_s is not None and second.first_step_s is not None
    cold_losses, warm_losses = (losses(training_dir.parent / f"{name}-model") for name in ("cold", "warm"))
    assert len(cold_losses) == 4 and cold_losses == pytest.approx(warm_losses, rel=1e-5)
    print(f"cpt, 2 workers: submit to first step {first.first_step_s:.0f} s cold, {second.first_step_s:.0f} s warm; "
          f"nodes released {released_after(autoscaled, second.ended_at):.0f} s after the job ended")


def test_cpt_goes_on_from_its_checkpoint_when_its_node_is_lost(autoscaled, tmp_path_factory):
    """The node of the run's workers vanishes once a checkpoint is registered: the autoscaler notices, terminates
    it and launches another, and Ray Train's restart goes on from the last checkpoint to the published model."""
    job_dir = drill_training_job(tmp_path_factory.mktemp("train-loss"), "lost")
    cold(autoscaled)
    checkpoints = job_dir.parent / "ray" / "lost"
    job = autoscaled.head.submit_in_background(job_dir, "python", "-m", "train", "cpt", "lost.yaml", in_place=True)
    when(lambda: registered_checkpoints(checkpoints), job)
    seen_at_kill = step_of(registered_checkpoints(checkpoints)[-1])
    known = {n["node_id"] for n in autoscaled.head.nodes()}
    autoscaled.lose_node(training_node(autoscaled))
    result = job.finish()
    assert result.returncode == 0, autoscaled.head.failure(result)
    assert continued_from_its_checkpoint(result.stdout, job_dir.parent / "lost-model", seen_at_kill)
    launched_after = {n["node_id"] for n in autoscaled.head.nodes()} - known
    assert launched_after, "the autoscaler launched no node after the loss"
    print("cpt, node of its workers lost after the checkpoint of step {}: resumed from step {} at step {}; "
          "{} node(s) launched after the loss".format(seen_at_kill, *restart(result.stdout), len(launched_after)))
