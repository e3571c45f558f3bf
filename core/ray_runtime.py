"""Where a job's Ray comes from: the cluster it was submitted to, or a fresh local one."""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal

from pydantic import Field

from core import progress
from core.config import StrictModel
from core.job_variables import JobVariable
from core.infeasible_watch import watch_for_unplaceable_work
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
    parquet_footer_readers: int | None = Field(
        1, ge=1, description="Actors that read Parquet footers for each of this job's Parquet reads "
                             "(RAY_DATA_PARQUET_FOOTER_NUM_ACTORS, unless the job's environment sets it); each is a "
                             "new process per read, and one reads 128 footers at a time. null: Ray's default, 32, "
                             "which made a factory run on a 2-CPU machine spend a third of its CPU starting them. "
                             "Raise it for reads of tens of thousands of files on object storage.")


ARROW_POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"
FOOTER_READERS = JobVariable("RAY_DATA_PARQUET_FOOTER_NUM_ACTORS")
WORKER_SETUP = "core.worker_output.quiet_routine_output"  # run in every worker process before its first task

# how a warning names a key of the job's ray: section; a recipe names the step's section (factory.ray.num_cpus)
_key_name: ContextVar[Callable[[str], str]] = ContextVar("ray_key_name", default=lambda key: f"ray.{key}")
# (key, value) already warned about in this process: a recipe's every step would repeat the same line
_warned: set[tuple[str, str]] = set()
_joined_address: str | None = None  # the ray.address init_ray last started or joined this process's Ray with


def init_ray(config: RayConfig) -> None:
    """Join the cluster named by ``config.address`` or RAY_ADDRESS (as under ``ray job submit``), else
    start a fresh local Ray of ``config.num_cpus``: never someone else's ``ray start`` on this machine
    by accident. A Ray already initialised in this process (tests, a recipe) is used as it is, and every
    key of ``config`` that it cannot honour is warned about (``ignored_settings``)."""
    import ray

    progress.apply_to_ray_data()
    apply_driver_settings(config)
    if ray.is_initialized():
        warn_ignored(ignored_settings(config, running=True))
        return
    address = config.address or os.environ.get("RAY_ADDRESS")
    env = worker_env(config)
    runtime_env = {"worker_process_setup_hook": WORKER_SETUP, **({"env_vars": env} if env else {})}
    # Ray's INFO lines ("Started a local Ray instance") only under -v; workers' own output (training's lines)
    # unless -q, whose failures still come back with the task that failed
    output = {"log_to_driver": progress.verbosity() >= progress.NORMAL,
              "logging_level": logging.INFO if progress.verbosity() >= progress.VERBOSE else logging.WARNING}
    if address:
        warn_ignored(ignored_settings(config, running=False, address=address))
        ray.init(address=address, runtime_env=runtime_env, **output)
    else:
        ray.init(address="local", num_cpus=config.num_cpus, object_store_memory=config.object_store_memory,
                 include_dashboard=False, runtime_env=runtime_env, **output)
    global _joined_address
    _joined_address = config.address
    watch_for_unplaceable_work()


def apply_driver_settings(config: RayConfig) -> None:
    """The keys that take effect in this driver, so on a Ray already running too (a recipe's steps, one after
    another, each with its own): the footer-reader count is fixed where a read is planned, in the driver."""
    FOOTER_READERS.apply(config.parquet_footer_readers)


def ignored_settings(config: RayConfig, running: bool, address: str | None = None) -> list[tuple[str, str, str]]:
    """(key, value, why) for each key of ``config`` that cannot take effect: a Ray already ``running`` in this
    process keeps the CPUs, object store, workers' Arrow allocator and address it started with; when joining the
    cluster at ``address``, its nodes' CPUs and object store count. A null, or the value in force, is no news."""
    import ray

    if not running:
        why = f"joining the Ray cluster at {address}, whose nodes decide"
        return [(key, str(value), why) for key, value in (("num_cpus", config.num_cpus),
                                                          ("object_store_memory", config.object_store_memory))
                if value is not None]
    decides = "(the recipe's ray: section, or the cluster, decides)"
    ignored = []
    resources = ray.cluster_resources()
    cpus = int(resources.get("CPU", 0))
    if config.num_cpus is not None and config.num_cpus != cpus:
        ignored.append(("num_cpus", str(config.num_cpus), f"Ray is already running with {cpus} CPUs {decides}"))
    store = int(resources.get("object_store_memory", 0))
    if config.object_store_memory is not None and config.object_store_memory != store:
        ignored.append(("object_store_memory", str(config.object_store_memory),
                        f"Ray is already running with a {store}-byte object store {decides}"))
    # Warned, not applied per task: Ray has no job runtime env after ray.init, Ray Data's read/shuffle tasks take
    # none of ours, and per-task env_vars start a second set of workers (4.7 s for 2 here) holding idle memory.
    # A pool set in the job's own environment wins over the config (worker_env): then the key asks nothing of Ray.
    if ARROW_POOL_VARIABLE not in os.environ:
        in_force = (ray.get_runtime_context().runtime_env.get("env_vars") or {}).get(ARROW_POOL_VARIABLE)
        if config.arrow_memory_pool != in_force:
            running_pool = in_force or "Arrow's default allocator"
            ignored.append(("arrow_memory_pool", str(config.arrow_memory_pool),
                            f"Ray's workers run with {running_pool}, chosen when Ray started {decides}"))
    if config.address is not None and config.address != _joined_address:
        ignored.append(("address", config.address, f"this process is already connected to a Ray {decides}"))
    return ignored


def warn_ignored(ignored: list[tuple[str, str, str]]) -> None:
    """One warning line per ignored (key, value) per process, the key named as the user's config spells it."""
    for key, value, why in ignored:
        name = _key_name.get()(key)
        if (name, value) not in _warned:
            _warned.add((name, value))
            progress.warn(f"{name}: {value} ignored: {why}")


@contextmanager
def ray_keys_named(name: Callable[[str], str]) -> Iterator[None]:
    """Within this block a warning about key ``k`` of the ray: section names it ``name(k)`` (a recipe's step:
    ``factory.ray.num_cpus``, as the recipe file spells it)."""
    token = _key_name.set(name)
    try:
        yield
    finally:
        _key_name.reset(token)


def worker_env(config: RayConfig) -> dict[str, str]:
    """Environment variables for every worker of this job (merged into a submitted job's runtime env; a
    variable the job's own environment already sets is left to it, as Ray refuses to merge a clash)."""
    if config.arrow_memory_pool is None or ARROW_POOL_VARIABLE in os.environ:
        return {}
    return {ARROW_POOL_VARIABLE: config.arrow_memory_pool}


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
    """CPUs to plan for on the Ray cluster this process is connected to (at least 1): on an autoscaled cluster
    what it can grow to, not what is up when the job starts (core.cluster_shape)."""
    from core.cluster_shape import planned_cpus

    return planned_cpus()[0]
