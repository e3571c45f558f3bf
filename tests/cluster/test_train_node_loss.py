"""Node-loss drill of training: ``python -m train cpt`` submitted with ``ray job submit`` to the package's cluster,
the worker node holding its Ray Train workers SIGKILLed once a checkpoint is registered, a replacement added.
Ray Train's FailureConfig restarts the worker group on the nodes left: the run must go on from its last
checkpoint (step + 1, on one learning-rate schedule, every step logged once) and publish the model, or fail
with exit 1 naming the lost node and the stage; never hang.

The tiny model, the data and Ray's checkpoint storage are on local disk, which every node of this one-machine
cluster shares (standing in for the shared mount or object storage a real cluster's checkpoints need)."""
from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import train_fixtures as tf
import yaml
from conftest import published
from ray_cluster import WorkerNode

from .drill import lose_a_node, survived_or_named, training_job, when

pytestmark = pytest.mark.slow

PACKAGES = ["core", "train"]  # what a training job imports
MAX_STEPS = 10
LEARNING_RATE = 3e-3


@pytest.fixture(scope="module")
def job_dir(tmp_path_factory) -> Path:
    """The job's working directory (the code and the config); the model and data beside it on the shared disk."""
    root = tmp_path_factory.mktemp("train")
    job, model, data = training_job(root, PACKAGES, copies=8)
    # checkpoints every 2 steps, all kept (the one the restart resumes from is read back); the lost node is one
    # failure, and one more is allowed as a margin (the drill is about where the restart resumes, not the count)
    tf.write_train_config(job / "cpt.yaml", model_path=model, data_path=data, root=root, name="cpt",
                          optim={"max_steps": MAX_STEPS, "learning_rate": LEARNING_RATE},
                          run={"save_steps": 2, "num_to_keep": None, "max_failures": 2})
    return job


def registered_checkpoints(run: Path) -> list[Path]:
    """The checkpoints Ray Train has registered for the run so far (its controller's snapshot), oldest first."""
    try:
        snapshot = json.loads((run / "checkpoint_manager_snapshot.json").read_text())
    except (FileNotFoundError, ValueError):  # not written yet, or being written
        return []
    return [run / c["checkpoint_dir_name"] / "checkpoint" for c in snapshot["checkpoint_results"]]


def step_of(checkpoint: Path) -> int:
    return json.loads((checkpoint / "trainer_state.json").read_text())["global_step"]


def training_node(cluster) -> str:
    """The worker node holding most of the job's live Ray Train workers."""
    workers = Counter(a["node_id"] for a in cluster.head.actors()
                      if a["class_name"] == "RayTrainWorker" and a["state"] == "ALIVE")
    assert workers, "no live RayTrainWorker"
    return workers.most_common(1)[0][0]


def cosine_schedule(steps: int) -> list[float]:
    """The learning rate before each step of one cosine schedule without warmup, as the trainer builds it."""
    import torch
    from transformers import get_cosine_schedule_with_warmup

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LEARNING_RATE)
    schedule = get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=0, num_training_steps=steps)
    rates = []
    for _ in range(steps + 1):
        rates.append(schedule.get_last_lr()[0])
        optimizer.step()
        schedule.step()
    return rates


def restart(log: str) -> tuple[int, int]:
    """(the step of the checkpoint the last attempt resumed from, the first step that attempt trained)."""
    # an attempt is its rank-0 process, in the order they started (Ray may echo a worker's line more than once)
    attempts = list(dict.fromkeys(re.findall(
        r"RayTrainWorker pid=(\d+)[^\n]*?\[train\] first step of this attempt: (\d+)", log)))
    resumed = re.findall(r"\[train\] resuming from checkpoint (\S+)", log)
    assert len(attempts) >= 2 and resumed, log[-6000:]
    return step_of(Path(resumed[-1]) / "checkpoint"), int(attempts[-1][1])


def continued_from_its_checkpoint(log: str, output: Path, seen_at_kill: int) -> bool:
    """The restarted attempt began at the step after the checkpoint it resumed (no older than the one registered
    when the node died), and the published history is one run: each step once, one learning-rate schedule."""
    resumed_step, first_step = restart(log)
    assert resumed_step >= seen_at_kill and first_step == resumed_step + 1, (resumed_step, first_step)

    history = json.loads((published(output) / "trainer_state.json").read_text())["log_history"]
    assert [e["step"] for e in history if "loss" in e] == list(range(1, MAX_STEPS + 1))
    logged = {e["step"]: e["learning_rate"] for e in history if "learning_rate" in e}
    expected = cosine_schedule(MAX_STEPS)
    # one offset fits every step, before and after the restart (a schedule started again would break it there)
    return any(all(abs(logged[k] - expected[k - offset]) < 1e-9 for k in logged) for offset in (0, 1))


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
