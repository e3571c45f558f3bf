"""Answers for a batch of requests: from the cache when stored, else from the endpoints, concurrently.

Each answer is committed to the cache the moment it arrives, so a killed run loses only the
requests in flight. The same ``Resolver`` runs in the driver (small runs) or inside each Ray
actor (``core.llm.scale``), holding its own event loop and async clients.
"""
from __future__ import annotations

import asyncio
import random
import time
from dataclasses import replace
from typing import Callable

from core import progress
from core.llm.cache import AnswerCache, StoredAnswer
from core.llm.client import EndpointClient, RequestFailed
from core.llm.requests import ChatRequest, ChatResult
from core.llm.settings import LLMSettings
from core.llm.structured_watch import StructuredOutputWatch


class Resolver:
    def __init__(self, settings: LLMSettings, seed_offset: int = 0):
        self.settings = settings
        self.cache = AnswerCache(settings.cache_file)
        self.loop = asyncio.new_event_loop()
        self.rng = random.Random(settings.seed + seed_offset)
        self.clients: dict[str, EndpointClient] = {}
        self.watch = StructuredOutputWatch(settings.endpoints)

    def client(self, name: str) -> EndpointClient:
        if name not in self.clients:  # created lazily inside the loop that will use it
            self.clients[name] = EndpointClient(name, self.settings.endpoints[name], self.rng)
        return self.clients[name]

    async def _one(self, request: ChatRequest) -> ChatResult:
        stored = self.cache.get(request.key)
        if stored is not None:
            self.watch.answered(request.endpoint, request.schema, stored.text, stored.finish_reason)
            return ChatResult(request.item_id, request.key, True, stored.text, cached=True,
                              prompt_tokens=stored.prompt_tokens, completion_tokens=stored.completion_tokens,
                              finish_reason=stored.finish_reason)
        try:
            answer = await self.client(request.endpoint).complete(
                request.messages, request.params, request.schema_name, request.schema
            )
        except RequestFailed as failed:
            return ChatResult(request.item_id, request.key, False, reason=failed.reason, detail=failed.detail,
                              attempts=failed.attempts)
        self.cache.put(request.key, request.model, request.prompt_version,
                       StoredAnswer(answer.text, answer.prompt_tokens, answer.completion_tokens, answer.finish_reason))
        self.watch.answered(request.endpoint, request.schema, answer.text, answer.finish_reason)
        return ChatResult(request.item_id, request.key, True, answer.text, attempts=answer.attempts,
                          prompt_tokens=answer.prompt_tokens, completion_tokens=answer.completion_tokens,
                          finish_reason=answer.finish_reason)

    async def _all(self, requests: list[ChatRequest], progress: Callable[[int, int], None] | None) -> list[ChatResult]:
        tasks = [asyncio.ensure_future(self._one(r)) for r in requests]
        if progress:
            done_count = 0
            for finished in asyncio.as_completed(tasks):
                await finished
                done_count += 1
                progress(done_count, len(tasks))
        return [await t for t in tasks]

    def resolve(self, requests: list[ChatRequest], progress=None) -> list[ChatResult]:
        """One result per request, in order; identical requests are sent once."""
        unique = unique_requests(requests)
        answered = self.loop.run_until_complete(self._all(unique, progress))
        self.watch.round_done()
        return results_for(requests, answered)

    def close(self) -> None:
        for client in self.clients.values():
            self.loop.run_until_complete(client.close())
        self.loop.close()
        self.cache.close()


def unique_requests(requests: list[ChatRequest]) -> list[ChatRequest]:
    """One request per cache key: identical requests (twins) are sent once."""
    return list({r.key: r for r in requests}.values())


def results_for(requests: list[ChatRequest], answered: list[ChatResult]) -> list[ChatResult]:
    """One result per request, in request order, from the answers to its unique requests."""
    by_key = {res.key: res for res in answered}
    results, seen = [], set()
    for request in requests:
        result = by_key[request.key]
        if request.key in seen:  # a twin of an earlier request: costs nothing
            result = replace(result, cached=True, attempts=0)
        seen.add(request.key)
        results.append(replace(result, item_id=request.item_id))
    return results


def progress_printer(label: str, every_s: float = 5.0):
    """A progress callback that prints at most every ``every_s`` seconds, and at the end."""
    last = [0.0]
    start = time.perf_counter()

    def report(done: int, total: int) -> None:
        now = time.perf_counter()
        if done == total or now - last[0] >= every_s:
            last[0] = now
            rate = done / max(now - start, 1e-9)
            progress.say(f"  {label}: {done}/{total} answered ({rate:.1f}/s)")

    return report
