"""Streaming eval items through a model actor: Ray Data ``map_batches`` over an actor pool (one model
copy per actor, ``ray.concurrency`` of them), or, with ``ray.enabled: false``, the same actor class in
this process."""
from __future__ import annotations

import os
import time
from typing import Callable

import pyarrow as pa

from core.errors import ConfigError
from core.watchdog import watched
from core.ray_runtime import init_ray
from eval.config import EvalRayConfig


def check_actors_fit(ray_config: EvalRayConfig) -> None:
    """A local Ray that can never hold one model actor would wait forever: refuse before any work.
    (A cluster's autoscaler may still add the nodes, so only a local Ray is checked.)"""
    import ray

    if ray_config.address or os.environ.get("RAY_ADDRESS"):
        return
    resources = ray.cluster_resources()
    needs = {"CPU": ray_config.num_cpus_per_actor, "GPU": ray_config.num_gpus_per_actor}
    for name, per_actor in needs.items():
        # Ray Data needs a CPU beside the actors to feed them, or the pipeline waits forever
        have = resources.get(name, 0) - (1 if name == "CPU" else 0)
        if per_actor * ray_config.concurrency > have:
            raise ConfigError(
                f"ray: {ray_config.concurrency} model actor(s) x {per_actor:g} {name} (ray.concurrency x "
                f"ray.num_{name.lower()}s_per_actor) do not fit this local Ray's {resources.get(name, 0):g} {name}(s)"
                f"{' with one CPU left for Ray Data' if name == 'CPU' else ''}; lower them, or join a cluster with "
                "ray.address")


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
