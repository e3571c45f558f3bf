"""Streaming eval items through a model actor: Ray Data ``map_batches`` over an actor pool (one model
copy per actor, ``ray.concurrency`` of them), or, with ``ray.enabled: false``, the same actor class in
this process."""
from __future__ import annotations

import time
from typing import Callable

import pyarrow as pa

from core.errors import ConfigError
from core.watchdog import watched
from core.ray_runtime import cpus_left_for_data, init_ray, local_resources
from eval.config import EvalRayConfig


def check_actors_fit(ray_config: EvalRayConfig) -> None:
    """A local Ray that cannot hold the model actors, with a CPU left for Ray Data to feed them, would wait
    forever: refuse before any work. (A cluster's autoscaler may still add nodes: only a local Ray is checked.)"""
    resources = local_resources(ray_config)
    if resources is None:
        return
    cpus = ray_config.concurrency * ray_config.num_cpus_per_actor
    gpus = ray_config.concurrency * ray_config.num_gpus_per_actor
    if cpus_left_for_data(ray_config, cpus) < 1 or gpus > resources.get("GPU", 0):
        raise ConfigError(
            f"ray: {ray_config.concurrency} model actor(s) x {ray_config.num_cpus_per_actor:g} CPU / "
            f"{ray_config.num_gpus_per_actor:g} GPU (ray.concurrency x ray.num_cpus_per_actor / num_gpus_per_actor) "
            f"do not fit this local Ray's {resources.get('CPU', 0):g} CPU(s) with one left for Ray Data and "
            f"{resources.get('GPU', 0):g} GPU(s); lower them, or join a cluster with ray.address")


def map_items(items: pa.Table, actor: type, actor_kwargs: dict, ray_config: EvalRayConfig,
              echo: Callable[[str], None], label: str) -> pa.Table:
    """The actor's output for every row of ``items``, in no particular order (rows carry ``item_id``).

    Results are gathered on the driver: a few numbers (or one completion) per eval item, bounded by the
    config's ``max_items``."""
    start = time.perf_counter()
    if not ray_config.enabled:
        scorer = actor(**actor_kwargs)
        parts = []
        for batch in items.to_batches(max_chunksize=ray_config.batch_size):
            parts.append(scorer(pa.Table.from_batches([batch])))
            echo(f"  {label}: {sum(p.num_rows for p in parts)}/{items.num_rows} items "
                 f"({time.perf_counter() - start:.1f}s)")
        return pa.concat_tables(parts) if parts else pa.table({})
    import ray.data

    init_ray(ray_config)
    check_actors_fit(ray_config)
    blocks = max(1, min(-(-items.num_rows // ray_config.batch_size), 4 * ray_config.concurrency))
    scored = ray.data.from_arrow(items).repartition(blocks).map_batches(
        actor, fn_constructor_kwargs=actor_kwargs, compute=ray.data.ActorPoolStrategy(size=ray_config.concurrency),
        batch_size=ray_config.batch_size, batch_format="pyarrow",
        num_cpus=ray_config.num_cpus_per_actor, num_gpus=ray_config.num_gpus_per_actor or None,
    )
    hint = (f"{ray_config.concurrency} actor(s) x {ray_config.num_cpus_per_actor:g} CPU / "
            f"{ray_config.num_gpus_per_actor:g} GPU requested; is the cluster able to place them?")
    parts = list(watched(scored.iter_batches(batch_format="pyarrow", batch_size=None), ray_config.stall_timeout_s,
                         label, hint))
    echo(f"  {label}: {items.num_rows} items on {ray_config.concurrency} actor(s) in "
         f"{time.perf_counter() - start:.1f}s")
    return pa.concat_tables(parts) if parts else pa.table({})
