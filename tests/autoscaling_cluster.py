"""Ray's real autoscaler on one machine: a head started with ``ray start --head --autoscaling-config`` on Ray's
fake multi-node provider (``RAY_FAKE_CLUSTER=1``), which launches and removes worker nodes as local processes as
the autoscaler decides, from the node types of our own ``cluster.yaml``.

Its nodes share this machine's disk and the head's temp folder, where Ray unpacks a job's uploaded working_dir:
every node that joins during a job unpacks it again in the same place (Ray's working_dir plugin overwrites),
deleting the folder under the running driver and under workers on the other nodes (seen: prepare's driver failing
in ``os.getcwd`` as its second node joined). On a real cluster each node has its own disk. So the drills submit
their jobs to run in place (``--working-dir local://DIR``, a folder every node has: here, this disk), and a node
removed mid-job takes nothing with it.

Not ``ray.cluster_utils.AutoscalingCluster``: it runs ``ray stop --force``, which ends every Ray on the machine,
and reads a config file Ray's wheel does not ship. Everything is stopped by process id here.

What is scaled down to this machine: each node type keeps its name, its CPUs become 1 and its GPUs a custom
resource ``gpu_stand_in`` (the same count), the head keeps 0 CPUs (it runs drivers only), max_workers shrink,
the cloud settings go. The fake provider names the head's type ``ray.head.default``. The idle timeout
(``IDLE_TIMEOUT_S``) is short, so each drill's nodes are released soon after its job; a node removed between a
job's passes is launched again when the next pass asks for it."""
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
IDLE_TIMEOUT_S = 15
# at most 2 worker nodes of 1 CPU: the size of the package's fixed cluster (tests/cluster/conftest.py), so a job
# planned on this cluster cold can be compared with the same job on that one warm
WORKER_TYPES_MAX = {"worker.cpu": 2, "worker.gpu1": 1, "worker.gpu8": 1}
CLUSTER_MAX_WORKERS = 2
NODE_OBJECT_STORE = 200 << 20  # each node's object store: the default (30% of this machine's memory each) swaps


def scaled_down(gcs_port: int) -> dict:
    """``cluster.yaml`` as the fake provider runs it on this machine."""
    real = yaml.safe_load((REPO / "cluster.yaml").read_text())
    types = {}
    for name, spec in real["available_node_types"].items():
        resources = {"CPU": 0 if name == real["head_node_type"] else 1, "object_store_memory": NODE_OBJECT_STORE}
        if spec["resources"].get("GPU"):
            resources["gpu_stand_in"] = spec["resources"]["GPU"]
        types[FAKE_HEAD_TYPE if name == real["head_node_type"] else name] = {
            "resources": resources, "node_config": {}, "min_workers": 0,
            "max_workers": 0 if name == real["head_node_type"] else WORKER_TYPES_MAX[name]}
    return {
        "cluster_name": real["cluster_name"], "max_workers": CLUSTER_MAX_WORKERS,
        "upscaling_speed": real["upscaling_speed"], "idle_timeout_minutes": IDLE_TIMEOUT_S / 60,
        # no node updaters and no launch-config check: the fake provider starts Ray on its nodes itself (an
        # updater would try to ssh into each new node and terminate it as "launch failed"); nodes known by id, as
        # they all share this machine's address (by address the autoscaler never sees one idle, so never removes it)
        "provider": {"type": "fake_multinode", "gcs_address": f"127.0.0.1:{gcs_port}", "launch_multiple": True,
                     "head_node_id": FAKE_HEAD_ID, "disable_node_updaters": True,
                     "disable_launch_config_check": True, "use_node_id_as_ip": True},
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

    def lose_node(self, node_id: str) -> None:
        """The node gone as a reclaimed spot instance goes, behind the provider's back: its raylet, agents and
        workers SIGKILLed (found by the node id on their command lines). The autoscaler finds out by itself."""
        kill_all(cluster_processes(f"={node_id}"))


def cluster_processes(*marks: str) -> list[psutil.Process]:
    """Every process whose command line names one of ``marks``: the head's temp folder (its ``ray start``) and
    its session (the autoscaler's nodes, whose temp folder is another)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any(mark in part for part in process.info["cmdline"] or [] for mark in marks):
                # with its children: a node's agents rename themselves (`ray::DashboardAgent`)
                found += [process, *process.children(recursive=True)]
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
    with ray_head(cwd, num_cpus=0, object_store_memory=NODE_OBJECT_STORE, gcs_port=gcs_port, extra_args=(f"--autoscaling-config={path}",),
                  RAY_FAKE_CLUSTER="1", AUTOSCALER_UPDATE_INTERVAL_S="1",
                  # a node without heartbeats for 5 s is terminated and replaced (Ray's default waits 30 s)
                  AUTOSCALER_HEARTBEAT_TIMEOUT_S="5",
                  # the head's node id is the one the fake provider gives it, so the autoscaler counts its load
                  RAY_OVERRIDE_NODE_ID_FOR_TESTING=FAKE_HEAD_ID, RAY_CLOUD_INSTANCE_ID=FAKE_HEAD_ID) as head:
        session = (head.temp_dir / "session_latest").resolve().name
        try:
            yield AutoscalingCluster(head, config)
        finally:
            # at once: the head's `ray start --block` waits a minute on SIGTERM with an autoscaler under it
            kill_all(cluster_processes(session, str(head.temp_dir)))
