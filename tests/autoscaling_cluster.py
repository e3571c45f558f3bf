"""Ray's real autoscaler on one machine: a head started with ``ray start --head --autoscaling-config`` on Ray's
fake multi-node provider (``RAY_FAKE_CLUSTER=1``), which launches and removes worker nodes as local processes as
the autoscaler decides, from the node types of our own ``cluster.yaml``.

Not ``ray.cluster_utils.AutoscalingCluster``: it runs ``ray stop --force``, which ends every Ray on the machine,
and reads a config file Ray's wheel does not ship. Everything is stopped by process id here.

What is scaled down to this machine: each node type keeps its name, its CPUs become 1 and its GPUs a custom
resource ``gpu_stand_in`` (the same count), the head keeps 0 CPUs (it runs drivers only), max_workers shrink,
the cloud settings go. The fake provider names the head's type ``ray.head.default``. Its nodes share one disk
and temp folder: a node removed in the middle of a job takes the job's working_dir copy with it, and workers on
the other nodes lose their current directory. So the idle timeout (``IDLE_TIMEOUT_S``) is longer than any gap
between a job's passes: no node is removed while a job runs."""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import psutil
import yaml
from conftest import REPO
from ray_cluster import RayHead, free_ports, kill_all, ray_head

FAKE_HEAD_TYPE = "ray.head.default"  # the fake provider's own name for the head's type
FAKE_HEAD_ID = "f" * 51 + "00000"  # and its id for the head node
IDLE_TIMEOUT_S = 30
WORKER_TYPES_MAX = {"worker.cpu": 3, "worker.gpu1": 1, "worker.gpu8": 1}
CLUSTER_MAX_WORKERS = 3


def scaled_down(gcs_port: int) -> dict:
    """``cluster.yaml`` as the fake provider runs it on this machine."""
    real = yaml.safe_load((REPO / "cluster.yaml").read_text())
    types = {}
    for name, spec in real["available_node_types"].items():
        resources = {"CPU": 0 if name == real["head_node_type"] else 1}
        if spec["resources"].get("GPU"):
            resources["gpu_stand_in"] = spec["resources"]["GPU"]
        types[FAKE_HEAD_TYPE if name == real["head_node_type"] else name] = {
            "resources": resources, "node_config": {}, "min_workers": 0,
            "max_workers": 0 if name == real["head_node_type"] else WORKER_TYPES_MAX[name]}
    return {
        "cluster_name": real["cluster_name"], "max_workers": CLUSTER_MAX_WORKERS,
        "upscaling_speed": real["upscaling_speed"], "idle_timeout_minutes": IDLE_TIMEOUT_S / 60,
        "provider": {"type": "fake_multinode", "gcs_address": f"127.0.0.1:{gcs_port}", "launch_multiple": True},
        "auth": {"ssh_user": "ray"}, "available_node_types": types, "head_node_type": FAKE_HEAD_TYPE,
        "file_mounts": {}, "cluster_synced_files": [], "file_mounts_sync_continuously": False, "rsync_exclude": [],
        **{key: [] for key in ("initialization_commands", "setup_commands", "head_setup_commands",
                               "worker_setup_commands", "head_start_ray_commands", "worker_start_ray_commands")},
    }


class AutoscalingCluster:
    def __init__(self, head: RayHead, config: dict):
        self.head, self.config = head, config

    def worker_nodes(self) -> list[dict]:
        """The worker nodes alive now (the autoscaler's, every node but the head)."""
        return [n for n in self.head.nodes() if n["state"] == "ALIVE" and not n.get("is_head_node")]


def cluster_processes(*marks: str) -> list[psutil.Process]:
    """Every process whose command line names one of ``marks``: the head's temp folder (its ``ray start``) and
    its session (the autoscaler's nodes, whose temp folder is another)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any(mark in part for part in process.info["cmdline"] or [] for mark in marks):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@contextmanager
def autoscaling_cluster(cwd: Path, config_dir: Path):
    """The head (0 CPUs, token auth) with the autoscaler, no worker node until a job asks; stopped by process id."""
    gcs_port = free_ports(1)[0]
    config = scaled_down(gcs_port)
    path = config_dir / "cluster-fake.json"
    path.write_text(json.dumps(config, indent=1))
    with ray_head(cwd, num_cpus=0, gcs_port=gcs_port, extra_args=(f"--autoscaling-config={path}",),
                  RAY_FAKE_CLUSTER="1", AUTOSCALER_UPDATE_INTERVAL_S="1",
                  # the head's node id is the one the fake provider gives it, so the autoscaler counts its load
                  RAY_OVERRIDE_NODE_ID_FOR_TESTING=FAKE_HEAD_ID, RAY_CLOUD_INSTANCE_ID=FAKE_HEAD_ID) as head:
        session = (head.temp_dir / "session_latest").resolve().name
        try:
            yield AutoscalingCluster(head, config)
        finally:
            # at once: the head's `ray start --block` waits a minute on SIGTERM with an autoscaler under it
            kill_all(cluster_processes(session, str(head.temp_dir)))
