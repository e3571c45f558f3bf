"""Where a job's Ray comes from: the cluster it was submitted to, or a fresh local one."""
from __future__ import annotations

import logging
import os

from typing import Literal

from pydantic import Field

from core import progress
from core.config import StrictModel
from core.watchdog import guard_data_progress


class RayConfig(StrictModel):
    """The ``ray:`` section every job has; jobs that run Ray Data add their own knobs in a subclass."""

    address: str | None = Field(
        None, description="Cluster to join; null: RAY_ADDRESS if set (as under ray job submit), else a local Ray."
    )
    num_cpus: int | None = Field(None, description="Logical CPUs of a local Ray started by this run; null uses all.")
    object_store_memory: int | None = Field(
        None, ge=78_643_200, description="Bytes of shared memory for a local Ray's object store (at least Ray's "
                                         "75 MiB); null: Ray's default, 30% of RAM. Beyond it Ray spills to disk.")
    arrow_memory_pool: Literal["jemalloc", "mimalloc", "system"] | None = Field(
        "jemalloc", description="Arrow's allocator in this job's Ray workers (ARROW_DEFAULT_MEMORY_POOL), unless the "
                                "job's environment sets one; null: Arrow's default (mimalloc). With mimalloc two "
                                "factory workers held 4.1 GB of freed Arrow memory on 50k abstracts, jemalloc 1.1 GB.")


def init_ray(config: RayConfig) -> None:
    """Join the cluster named by ``config.address`` or RAY_ADDRESS (as under ``ray job submit``), else
    start a fresh local Ray of ``config.num_cpus``: never someone else's ``ray start`` on this machine
    by accident. A Ray already initialised in this process (tests, a recipe) is used as it is."""
    import ray

    progress.apply_to_ray_data()
    if ray.is_initialized():
        return
    address = config.address or os.environ.get("RAY_ADDRESS")
    env = worker_env(config)
    runtime_env = {"env_vars": env} if env else None
    # Ray's INFO lines ("Started a local Ray instance") only under -v; workers' own output (training's lines)
    # unless -q, whose failures still come back with the task that failed
    output = {"log_to_driver": progress.verbosity() >= progress.NORMAL,
              "logging_level": logging.INFO if progress.verbosity() >= progress.VERBOSE else logging.WARNING}
    if address:
        ray.init(address=address, runtime_env=runtime_env, **output)
    else:
        ray.init(address="local", num_cpus=config.num_cpus, object_store_memory=config.object_store_memory,
                 include_dashboard=False, runtime_env=runtime_env, **output)


def worker_env(config: RayConfig) -> dict[str, str]:
    """Environment variables for every worker of this job (merged into a submitted job's runtime env; a
    variable the job's own environment already sets is left to it, as Ray refuses to merge a clash)."""
    if config.arrow_memory_pool is None or "ARROW_DEFAULT_MEMORY_POOL" in os.environ:
        return {}
    return {"ARROW_DEFAULT_MEMORY_POOL": config.arrow_memory_pool}


def configure_ray_data(config) -> None:
    """This driver's Ray Data settings from the ``ray:`` section of a job that runs Ray Data pipelines
    (``operator_reservation``, ``stall_timeout_s``)."""
    import ray

    ray.data.DataContext.get_current().op_resource_reservation_enabled = config.operator_reservation
    guard_data_progress(config.stall_timeout_s)


def local_resources(config: RayConfig) -> dict[str, float] | None:
    """The resources of the local Ray this job runs on (started or about to be); None when it joins a cluster,
    whose autoscaler may still add nodes, so plans there are left to it."""
    import ray

    if config.address or os.environ.get("RAY_ADDRESS"):
        return None
    if ray.is_initialized():
        return dict(ray.cluster_resources())
    return {"CPU": float(config.num_cpus or os.cpu_count() or 1)}


def cpus_left_for_data(config: RayConfig, reserved_cpus: float) -> float | None:
    """CPUs a local Ray keeps for Ray Data beside ``reserved_cpus`` (training workers, model actors). Under 1,
    no read or feed task is ever scheduled and the job hangs silently: callers refuse such a plan.
    None on a cluster."""
    resources = local_resources(config)
    return None if resources is None else resources.get("CPU", 0) - reserved_cpus


def cluster_cpus() -> int:
    """CPUs of the Ray cluster this process is connected to (at least 1)."""
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))
