"""Resolving requests at scale: Ray Data ``map_batches`` over an actor pool.

Each actor holds its own ``Resolver`` (event loop, async clients, cache connection) for its
lifetime, so a batch is answered with the endpoint's full concurrency inside one actor while
the pool spreads batches over the cluster. Small runs skip Ray and resolve in the driver.
"""
from __future__ import annotations

import json
import os
import pickle

import pyarrow as pa

from core import progress
from core.ray_runtime import init_ray
from core.llm.cache import AnswerCache
from core.llm.requests import ChatRequest, ChatResult
from core.llm.resolver import Resolver, progress_printer, results_for, unique_requests
from core.llm.settings import LLMSettings


class ResolverActor:
    """One actor of the pool. Ray Data starts an actor lost with its node again on a live node and sends its
    unfinished batch there; the batch's requests whose answers reached the cache are taken from it, not sent
    again. That holds where every actor opens one file: nodes on one machine. On a cluster of machines each
    node's actors write ``cache_file``'s path on that node's own disk (SQLite's WAL needs every process on one
    machine: a network mount is no remedy), so the answers a lost node stored are lost with it and asked again
    (the output is the same; those requests are paid twice), and a rerun sends again what other nodes stored."""

    def __init__(self, settings: bytes):
        self.resolver = Resolver(pickle.loads(settings), seed_offset=os.getpid())

    def __call__(self, batch: pa.Table) -> pa.Table:
        requests = [ChatRequest(**json.loads(r)) for r in batch.column("request").to_pylist()]
        results = self.resolver.resolve(requests)
        return pa.table({"result": [json.dumps(r.to_dict()) for r in results]})


def resolve_with_ray(requests: list[ChatRequest], settings: LLMSettings) -> list[ChatResult]:
    import ray.data

    pool = settings.pool
    init_ray(pool)
    # create the cache file (WAL, table) once here: actors opening a new file together may race on it
    AnswerCache(settings.cache_file).close()
    # twins go out once: in different batches they would reach different actors and both be sent
    unique = unique_requests(requests)
    table = pa.table({"request": [json.dumps(r.to_dict()) for r in unique]})
    # one block per batch, cut here: a Ray Data repartition needs a CPU for its tasks, and actors that claim
    # every CPU of a small cluster (4 x 0.5 on 2 cores) left it none, so the run hung before its first request.
    # from_blocks, not from_arrow: from_arrow reads each block's metadata in a Ray task, which waited ~4 s for a
    # CPU while the previous call's actors were still being torn down
    batches = range(0, table.num_rows, pool.batch_size)
    ds = ray.data.from_blocks([table.slice(start, pool.batch_size) for start in batches])
    answered = ds.map_batches(
        ResolverActor,
        fn_constructor_kwargs={"settings": pickle.dumps(settings)},
        compute=ray.data.ActorPoolStrategy(size=pool.actors),
        batch_size=pool.batch_size,
        batch_format="pyarrow",
        num_cpus=0.5,  # actors mostly wait on the network
    )
    # Ray Data does not keep order: results_for puts them back in request order by cache key
    return results_for(requests, [ChatResult(**json.loads(row["result"])) for row in answered.iter_rows()])


def resolve(requests: list[ChatRequest], settings: LLMSettings, label: str = "requests") -> list[ChatResult]:
    if not requests:
        return []
    if settings.pool.enabled:
        progress.say(f"  {label}: {len(requests)} requests on Ray Data, {settings.pool.actors} actors")
        return resolve_with_ray(requests, settings)
    resolver = Resolver(settings)
    try:
        return resolver.resolve(requests, progress_printer(label))
    finally:
        resolver.close()
