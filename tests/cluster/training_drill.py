"""The training job of the node-loss drills (on the fixed cluster and on the autoscaled one): a CPT run that
checkpoints every 2 steps, and how a drill finds where it stands (its registered checkpoints, the node of its
workers) and judges that it went on from its last checkpoint after losing that node."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import train_fixtures as tf
from conftest import published

from .drill import training_job

PACKAGES = ["core", "train"]  # what a training job imports
MAX_STEPS = 10
LEARNING_RATE = 3e-3


def drill_training_job(root: Path, name: str) -> Path:
    """The job's working directory (the code and ``<name>.yaml``); the model and data beside it on the shared disk.
    Checkpoints every 2 steps, all kept (the one the restart resumes from is read back); the lost node is one
    failure, and one more is allowed as a margin (the drill is about where the restart resumes, not the count)."""
    job, model, data = training_job(root, PACKAGES, copies=8)
    tf.write_train_config(job / f"{name}.yaml", model_path=model, data_path=data, root=root, name=name,
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
    resumed = re.findall(r"\[train\] resuming from checkpoint ([^\s\x1b]+)", log)  # up to a colour code Ray may add
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
