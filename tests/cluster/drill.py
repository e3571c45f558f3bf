"""What every node-loss drill does: copy the job's code into a working directory for ``ray job submit``, wait for
the point of the drill in the running job, kill a worker node there and add its replacement, and judge the end."""
from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable

import pytest
from conftest import REPO
from ray_cluster import BackgroundJob, RayCluster, WorkerNode


def job_folder(folder: Path, packages: list[str]) -> Path:
    """``folder`` holding the code of ``packages`` (without the bundled sample data): a job's working directory."""
    for package in packages:
        shutil.copytree(REPO / package, folder / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "sample_data"))
    return folder


def training_job(root: Path, packages: list[str], copies: int) -> tuple[Path, Path, Path]:
    """(the job's working directory with the code of ``packages``, a tiny model, a folder of packed CPT rows
    (``copies`` copies of the documents)): model and data beside the job, on the disk every node shares."""
    import train_fixtures as tf
    from transformers import AutoTokenizer

    job = job_folder(root / "job", packages)
    model = tf.tiny_model_dir(root / "base")
    rows = tf.pack(tf.documents_tokens(AutoTokenizer.from_pretrained(model)), 40)
    return job, model, tf.write_cpt(root / "data" / "part-0.parquet", rows, copies=copies).parent


def when(condition: Callable[[], bool], job: BackgroundJob, timeout: float = 300) -> None:
    """Wait until ``condition`` holds while the job runs; fail if the job ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if not job.running():
            pytest.fail(f"the job ended before the point of the drill:\n{job.finish().stdout[-6000:]}")
        time.sleep(0.05)
    pytest.fail(f"the point of the drill was not reached within {timeout} s")


def lose_a_node(cluster: RayCluster, node_id: str | None = None,
                at_the_loss: Callable[[], None] = lambda: None) -> WorkerNode:
    """Kill the worker node ``node_id`` (by default the newest), call ``at_the_loss`` (what a drill reads before
    Ray can restart anything elsewhere), and add its replacement."""
    lost = next(n for n in cluster.nodes if n.node_id == node_id) if node_id else cluster.nodes[-1]
    cluster.kill_node(lost)
    at_the_loss()
    cluster.add_node()
    return lost


def survived_or_named(result: subprocess.CompletedProcess, lost: WorkerNode, output: Path,
                      same_output: Callable[[], bool]) -> str:
    """What the issue asks of a job that lost a node: it finished with the undisturbed run's output, or it
    failed with exit 1 naming the lost node and the stage, publishing nothing. Returns which."""
    if result.returncode == 0:
        assert same_output()
        return "finished"
    assert "failed with exit code 1" in result.stdout, result.stdout[-6000:]  # the job's own exit code
    named = re.search(rf"error: ([\w+]+): Ray node {lost.node_id} \([\d.]+\) died", result.stdout)
    assert named, result.stdout[-6000:]
    assert not (output / "CURRENT").exists()
    return f"failed in {named.group(1)}"
