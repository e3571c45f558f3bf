"""What a Ray cluster can ever offer, and whether a job's shape fits it.

An autoscaled cluster starts with no workers: what is up when a job starts says nothing of what it will have.
Its autoscaler's node types (``available_node_types`` of ``cluster.yaml``) and their ``max_workers`` do. So a
job plans from them, and a shape no node type can hold (``resources_per_worker: {CPU: 4}`` on 1-CPU nodes, a
GPU typo) is refused in seconds, naming the shape, the config key and the node types, instead of waiting for
nodes that never come. Without an autoscaler, the nodes present are all there will be.

The running cluster's node types are read from its autoscaler's config: the file the autoscaler process on the
head node was started with (``ray start --head --autoscaling-config``; ``ray up`` writes it), which a job
submitted with ``ray job submit`` sees, as its driver runs on the head node.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from core.errors import ConfigError

# resources that describe a node rather than hold work: never part of a shape
NOT_SHAPES = ("memory", "object_store_memory")


@dataclass(frozen=True)
class NodeType:
    name: str
    resources: dict[str, float]  # empty: the provider fills them in (an AWS instance type's); not judged
    max_workers: int  # the head: 1
    head: bool = False


@dataclass(frozen=True)
class ClusterOffer:
    node_types: list[NodeType]
    source: str  # where they came from, for the manifest and the messages
    max_workers: int | None = None  # the cluster-wide cap on worker nodes (cluster.yaml max_workers)
    autoscaled: bool = False  # an autoscaler adds nodes of these types as work asks for them

    def max_resources(self) -> dict[str, float]:
        """What the cluster can grow to: each node type's resources x its max_workers, within the cluster's
        cap on worker nodes (the largest nodes first)."""
        total: dict[str, float] = {}
        left = self.max_workers
        for node in sorted(self.node_types, key=lambda n: (not n.head, -n.resources.get("CPU", 0))):
            count = node.max_workers if left is None or node.head else min(node.max_workers, left)
            if left is not None and not node.head:
                left -= count
            for name, amount in node.resources.items():
                total[name] = total.get(name, 0) + amount * count
        return total

    def fits(self, shape: dict[str, float]) -> bool | None:
        """Does some node type hold ``shape`` on one node? None when a type's resources are unknown."""
        wanted = {k: v for k, v in shape.items() if v and k not in NOT_SHAPES}
        if any(not node.resources and node.max_workers for node in self.node_types):
            return None
        return any(node.max_workers and all(node.resources.get(k, 0) >= v for k, v in wanted.items())
                   for node in self.node_types)

    def describe(self) -> str:
        return ", ".join(f"{n.name} {format_shape(n.resources)} x {n.max_workers}" for n in self.node_types)


def format_shape(shape: dict[str, float]) -> str:
    return "{" + ", ".join(f"{k}: {v:g}" for k, v in sorted(shape.items()) if k not in NOT_SHAPES) + "}"


def offer_from_cluster_config(path: str | Path) -> ClusterOffer:
    """The node types of an autoscaler config (``cluster.yaml``); the head type counts as one node."""
    config = yaml.safe_load(Path(path).read_text())
    head = config.get("head_node_type")
    types = [NodeType(name, {k: float(v) for k, v in (spec.get("resources") or {}).items()},
                      1 if name == head else int(spec.get("max_workers", 0)), head=name == head)
             for name, spec in (config.get("available_node_types") or {}).items()]
    return ClusterOffer(types, f"the autoscaler's node types in {path} (x max_workers)", config.get("max_workers"),
                        autoscaled=True)


def autoscaler_config_path(gcs_address: str) -> str | None:
    """The config file of the autoscaler of the cluster at ``gcs_address`` when it runs on this node (its
    process's ``--autoscaling-config``); another Ray's autoscaler on the same machine is told apart by its port."""
    import psutil

    port = gcs_address.rsplit(":", 1)[-1]
    for process in psutil.process_iter(["cmdline"]):
        try:
            cmdline = process.info["cmdline"] or []
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if not any(part.endswith("monitor.py") for part in cmdline[:3]):
            continue
        flags = dict(part.split("=", 1) for part in cmdline if part.startswith("--") and "=" in part)
        path = flags.get("--autoscaling-config")
        if flags.get("--gcs-address", "").rsplit(":", 1)[-1] == port and path and Path(path).expanduser().is_file():
            return path
    return None


def running_cluster_offer() -> ClusterOffer:
    """What the Ray this process is connected to can offer: its autoscaler's node types when it has one, else
    the nodes alive now (each a type of one)."""
    import ray

    path = autoscaler_config_path(ray.get_runtime_context().gcs_address)
    if path is not None:
        return offer_from_cluster_config(Path(path).expanduser())
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    types = [NodeType(node.get("NodeManagerAddress", "node"),
                      {k: v for k, v in node["Resources"].items() if not k.startswith("node:")}, 1) for node in nodes]
    return ClusterOffer(types, "the nodes present (no autoscaler)")


def planned_cpus() -> tuple[int, str]:
    """(CPUs to plan for, where that number comes from) on the connected Ray: what it can grow to."""
    offer = running_cluster_offer()
    return max(1, int(offer.max_resources().get("CPU", 0))), offer.source


def refuse_unplaceable(shape: dict[str, float], key: str, offer: ClusterOffer) -> None:
    """ConfigError (exit 2) before any work when no node type can ever hold ``shape``."""
    if offer.fits(shape) is False:
        raise ConfigError(f"{key}: {format_shape(shape)} fits no node this cluster can ever have; it offers "
                          f"{offer.describe()} ({offer.source}). Ask for less per worker, or add a node type "
                          "that holds it")


@contextmanager
def gang_requested(bundles: list[dict[str, float]], offer: ClusterOffer):
    """On an autoscaled cluster, asks its autoscaler for the whole gang at once (``request_resources``), so the
    nodes start together instead of one by one as workers queue, and withdraws the request when the block ends."""
    if not offer.autoscaled:
        yield
        return
    from ray.autoscaler.sdk import request_resources

    request_resources(bundles=[{k: v for k, v in b.items() if v and k not in NOT_SHAPES} for b in bundles])
    try:
        yield
    finally:
        request_resources(bundles=[])
