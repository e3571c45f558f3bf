"""Where the model work runs: ``ray.concurrency`` Ray actors (one model copy each), or, with ``ray.enabled:
false``, one ``ModelWorker`` in this process. Either way a checkpoint is loaded once and every suite's items
go through it in batches of ``ray.batch_size`` (the same batches on both paths, so the same numbers), before
the next checkpoint is loaded into the same workers."""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

import pyarrow as pa

from core import progress
from core.errors import ConfigError, StalledError
from core.cluster_shape import refuse_unplaceable, running_cluster_offer
from core.ray_runtime import cpus_left_for_data, init_ray, local_resources
from eval.config import CheckpointConfig, EvalConfig, EvalRayConfig
from eval.scorers import ModelWorker
from eval.suites.common import Work, aligned


def check_actors_fit(ray_config: EvalRayConfig) -> None:
    """A local Ray that cannot hold the model actors would wait forever: refuse before any work. (A cluster's
    autoscaler may still add nodes: only a local Ray is checked.) The actors are the only Ray work while they
    live: the driver hands them batches itself, so they may take every CPU."""
    resources = local_resources(ray_config)
    if resources is None:
        return
    cpus = ray_config.concurrency * ray_config.num_cpus_per_actor
    gpus = ray_config.concurrency * ray_config.num_gpus_per_actor
    if cpus_left_for_data(ray_config, cpus) < 0 or gpus > resources.get("GPU", 0):
        raise ConfigError(
            f"ray: {ray_config.concurrency} model actor(s) x {ray_config.num_cpus_per_actor:g} CPU / "
            f"{ray_config.num_gpus_per_actor:g} GPU (ray.concurrency x ray.num_cpus_per_actor / num_gpus_per_actor) "
            f"do not fit this local Ray's {resources.get('CPU', 0):g} CPU(s) and {resources.get('GPU', 0):g} GPU(s); "
            "lower them, or join a cluster with ray.address")


def batches(items: pa.Table, size: int) -> list[pa.Table]:
    """``size`` rows each; an empty set is one empty batch, so its result still has the task's columns."""
    return [items.slice(start, size) for start in range(0, items.num_rows, size)] or [items]


class LocalWorkers:
    """The model in this process."""

    def __init__(self, ray_config: EvalRayConfig, runtime: dict, seed: int):
        self.worker = ModelWorker(runtime, seed)
        self.batch_size = ray_config.batch_size

    def load(self, checkpoint: CheckpointConfig) -> None:
        self.worker.load(checkpoint.model_dump())

    def map(self, work: Work, label: str) -> pa.Table:
        start, parts = time.perf_counter(), []
        for batch in batches(work.inputs, self.batch_size):
            parts.append(self.worker.score(work.task, work.settings, batch))
            say_scored(label, parts, work, start)
        return pa.concat_tables(parts)

    def close(self) -> None:
        self.worker = None


def say_scored(label: str, parts: list[pa.Table], work: Work, start: float) -> None:
    """A line each time the scored items pass another tenth of the set (and at the end): not one per batch,
    which on a large set would be pages."""
    done, total = sum(p.num_rows for p in parts), work.inputs.num_rows
    tenth = max(1, total // 10)
    if done == total or done // tenth != (done - parts[-1].num_rows) // tenth:
        progress.say(f"  {label}: {done}/{total} items ({time.perf_counter() - start:.1f}s)")


# how often Ray starts a model actor again after its node (or its process) died; bounded, so that an actor that
# dies on every batch (out of memory) fails the run instead of going round until the stall timeout
ACTOR_RESTARTS = 3


class RayWorkers:
    """``ray.concurrency`` model actors, kept for the whole run: each checkpoint is loaded into them once, and
    batches go to whichever actor is free (Ray's ActorPool). An actor lost with its node is started again on a
    live node and Ray sends its unfinished calls again; each batch names its checkpoint, which the restarted
    (empty) actor loads first: the same batches, the same numbers."""

    def __init__(self, ray_config: EvalRayConfig, runtime: dict, seed: int):
        import ray

        init_ray(ray_config)
        check_actors_fit(ray_config)
        # on a cluster: a model actor no node type can ever hold is refused now, not after ray.stall_timeout_s
        refuse_unplaceable({"CPU": ray_config.num_cpus_per_actor, "GPU": ray_config.num_gpus_per_actor},
                           "ray.num_cpus_per_actor / ray.num_gpus_per_actor", running_cluster_offer())
        actor = ray.remote(ModelWorker).options(num_cpus=ray_config.num_cpus_per_actor,
                                                num_gpus=ray_config.num_gpus_per_actor or None,
                                                max_restarts=ACTOR_RESTARTS, max_task_retries=-1)
        self.actors = [actor.remote(runtime, seed) for _ in range(ray_config.concurrency)]
        self.config = ray_config
        self.checkpoint: dict | None = None  # the one loaded: every batch names it
        self.hint = (f"{ray_config.concurrency} actor(s) x {ray_config.num_cpus_per_actor:g} CPU / "
                     f"{ray_config.num_gpus_per_actor:g} GPU requested; is the cluster able to place them?")

    def load(self, checkpoint: CheckpointConfig) -> None:
        import ray
        from ray.exceptions import GetTimeoutError

        self.checkpoint = checkpoint.model_dump()
        refs = [actor.load.remote(self.checkpoint) for actor in self.actors]
        try:
            ray.get(refs, timeout=self.config.stall_timeout_s)
        except GetTimeoutError:
            raise StalledError(f"loading {checkpoint.name}: no progress for {self.config.stall_timeout_s:g}s; "
                               f"{self.hint}") from None

    def map(self, work: Work, label: str) -> pa.Table:
        from ray.util import ActorPool

        start, pool = time.perf_counter(), ActorPool(self.actors)
        for batch in batches(work.inputs, self.config.batch_size):
            pool.submit(lambda actor, b: actor.score.remote(work.task, work.settings, b, self.checkpoint), batch)
        parts = []
        while pool.has_next():
            try:
                parts.append(pool.get_next_unordered(timeout=self.config.stall_timeout_s))
            except TimeoutError:
                raise StalledError(f"{label}: no progress for {self.config.stall_timeout_s:g}s; {self.hint}") from None
            say_scored(label, parts, work, start)
        return pa.concat_tables(parts)

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor)


@contextmanager
def model_workers(ray_config: EvalRayConfig, runtime: dict, seed: int = 0) -> Iterator[LocalWorkers | RayWorkers]:
    workers = (RayWorkers if ray_config.enabled else LocalWorkers)(ray_config, runtime, seed)
    try:
        yield workers
    finally:
        workers.close()


def score_checkpoints(config: EvalConfig, work: list[Work]) -> dict[tuple[str, str, str], pa.Table]:
    """{(suite, set, checkpoint): scored rows in the items' order} for every piece of work and every checkpoint
    it names, each checkpoint loaded once for all of them."""
    scored = {}
    with model_workers(config.ray, config.model.model_dump(), config.seed) as workers:
        for checkpoint in config.checkpoints:
            mine = [w for w in work if checkpoint.name in w.checkpoints]
            if not mine:
                continue
            start = time.perf_counter()
            workers.load(checkpoint)
            progress.say(f"  {checkpoint.name}: loaded in {time.perf_counter() - start:.1f}s")
            for w in mine:
                rows = workers.map(w, f"{w.label} / {checkpoint.name}")
                scored[(w.suite, w.name, checkpoint.name)] = aligned(w.inputs, rows)
    return scored
