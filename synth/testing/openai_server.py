"""A real HTTP server on loopback that speaks the OpenAI chat-completions wire protocol.

Answers come from a deterministic ``policy(body) -> str`` the caller controls; a ``faults``
callable can make any request fail the way real servers do (429 with Retry-After, 500, a
hang past the client's timeout, a body that is not JSON), and ``latency_s`` delays every
answer. Every request is recorded, so tests can count what a run sent. Used by the tests
and by ``benchmarks/synth_throughput.py``.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from aiohttp import web


@dataclass(frozen=True)
class Fault:
    kind: str  # "429" | "500" | "hang" | "bad_body"
    retry_after: float | None = None  # seconds, sent as the Retry-After header of a 429
    hang_s: float = 30.0


@dataclass
class Received:
    at: float
    body: dict
    fault: Fault | None

    @property
    def key(self) -> str:
        """Identity of a request regardless of attempt: same body, same key."""
        return hashlib.sha256(json.dumps(self.body, sort_keys=True).encode()).hexdigest()


Policy = Callable[[dict], str]


class Truncated(str):
    """A policy's answer that the server says it cut at the token limit (finish_reason "length")."""


FaultPlan = Callable[[dict, int], "Fault | None"]  # (body, attempt number of this body, from 0)


def random_faults(rate: float, seed: int = 0, kinds=("429", "500", "hang"), retry_after: float = 0.05,
                  hang_s: float = 30.0) -> FaultPlan:
    """Fail a fraction ``rate`` of attempts, decided by (body, attempt) so a run is reproducible."""

    def plan(body: dict, attempt: int) -> Fault | None:
        digest = hashlib.sha256(f"{seed}:{attempt}:{json.dumps(body, sort_keys=True)}".encode()).digest()
        rng = random.Random(digest)
        if rng.random() >= rate:
            return None
        return Fault(rng.choice(kinds), retry_after=retry_after, hang_s=hang_s)

    return plan


def schema_name(body: dict) -> str | None:
    fmt = body.get("response_format") or {}
    return (fmt.get("json_schema") or {}).get("name")


def requested_answer(body: dict) -> str | None:
    """Which kind of answer a request wants: its response_format schema name, else markers in the prompt
    (servers without structured output get the format only as words)."""
    if name := schema_name(body):
        return name
    user = body["messages"][-1]["content"]
    markers = {'"turns"': "sft_example", "<instruction>": "rewrite", "<response_a>": "pairwise_judgement"}
    return next((name for marker, name in markers.items() if marker in user), None)


def document_sentences(body: dict) -> list[str]:
    """Sentences of the text between <document> tags in the user message (what SFT prompts ground on)."""
    text = " ".join(m["content"] for m in body["messages"] if m["role"] == "user")
    match = re.search(r"<document[^>]*>(.*?)</document>", text, re.S)
    source = match.group(1) if match else text
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", " ".join(source.split())) if len(s.split()) >= 4]


def prompt_digest(body: dict) -> int:
    """A number fixed by the whole request: different prompts (task types, variants) get different answers."""
    return int(hashlib.sha256(json.dumps(body["messages"], sort_keys=True).encode()).hexdigest()[:8], 16)


def grounded_policy(body: dict) -> str:
    """A well-behaved model: SFT answers quote the document (a sentence chosen by the request, so each task
    type gets its own), responses vary with model and temperature, and the judge prefers the longer answer
    (a stable preference, so both orders agree)."""
    name = requested_answer(body)
    user = body["messages"][-1]["content"]
    if name == "sft_example":
        sentences = document_sentences(body) or ["The document says little."]
        turns = int(re.search(r"exactly (\d+) turn", user).group(1)) if re.search(r"exactly (\d+) turn", user) else 1
        start = prompt_digest(body)
        return json.dumps({"turns": [
            {"user": f"What does the paper say about '{' '.join(sentences[(start + i) % len(sentences)].split()[:4])}'"
                     f" (request {start % 1000})?",
             "assistant": sentences[(start + i) % len(sentences)]}
            for i in range(turns)
        ]})
    if name == "rewrite":
        instruction = user.rsplit("<instruction>", 1)[-1].split("</instruction>")[0].strip()
        return json.dumps({"instruction": f"Rephrased ({prompt_digest(body) % 1000}): {instruction}"})
    if name == "pairwise_judgement":
        a = re.search(r"<response_a>(.*?)</response_a>", user, re.S).group(1)
        b = re.search(r"<response_b>(.*?)</response_b>", user, re.S).group(1)
        winner = "tie" if len(a) == len(b) else ("A" if len(a) > len(b) else "B")
        score = {"A": (8, 4), "B": (4, 8), "tie": (5, 5)}[winner]
        return json.dumps({"winner": winner, "score_a": score[0], "score_b": score[1],
                           "rationale": f"The {'longer' if winner != 'tie' else 'equal'} answer is more complete."})
    temperature = body.get("temperature") or 0
    return f"Answer from {body['model']} at temperature {temperature}: " + "detail " * int(1 + 10 * temperature)


class LoopbackOpenAI:
    """``with LoopbackOpenAI(policy) as server: AsyncOpenAI(base_url=server.base_url, ...)``."""

    def __init__(self, policy: Policy = grounded_policy, *, latency_s: float = 0.0, faults: FaultPlan | None = None,
                 port: int = 0):
        self.policy = policy
        self.latency_s = latency_s
        self.faults = faults
        self.port = port
        self.received: list[Received] = []
        self._attempts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    # -- what the tests read
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def answered(self) -> list[Received]:
        return [r for r in self.received if r.fault is None]

    def reset_counts(self) -> None:
        with self._lock:
            self.received.clear()

    # -- HTTP
    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        with self._lock:
            key = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
            attempt = self._attempts.get(key, 0)
            self._attempts[key] = attempt + 1
            fault = self.faults(body, attempt) if self.faults else None
            self.received.append(Received(time.monotonic(), body, fault))
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if fault is not None:
            if fault.kind == "429":
                headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
                return web.json_response({"error": {"message": "rate limited", "type": "rate_limit"}}, status=429,
                                         headers=headers)
            if fault.kind == "500":
                return web.json_response({"error": {"message": "internal error", "type": "server_error"}}, status=500)
            if fault.kind == "hang":
                await asyncio.sleep(fault.hang_s)
            if fault.kind == "bad_body":
                return web.Response(text="{not json", content_type="application/json")
        content = self.policy(body)
        prompt_tokens = sum(len(m["content"].split()) for m in body["messages"])
        completion_tokens = len(content.split())
        return web.json_response({
            "id": f"chatcmpl-{len(self.received)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "length" if isinstance(content, Truncated) else "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        })

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": []})

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, backlog=1024)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        try:
            self._loop.run_until_complete(self._runner.cleanup())
        finally:
            self._loop.close()

    def start(self) -> "LoopbackOpenAI":
        self._thread = threading.Thread(target=self._serve, name="loopback-openai", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("loopback OpenAI server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._loop.is_running():
            async def shutdown():
                for task in asyncio.all_tasks():  # handlers still hanging on an injected fault
                    if task is not asyncio.current_task():
                        task.cancel()
                self._loop.stop()

            asyncio.run_coroutine_threadsafe(shutdown(), self._loop)
            self._thread.join(10)

    def __enter__(self) -> "LoopbackOpenAI":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> None:
    """Serve until killed, printing the base URL first: for benchmarks that keep the server off their process."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m synth.testing.openai_server",
                                     description="Loopback OpenAI-compatible server with a deterministic policy.")
    parser.add_argument("--latency-s", type=float, default=0.0, help="delay before every answer")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = LoopbackOpenAI(latency_s=args.latency_s, port=args.port).start()
    print(server.base_url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
