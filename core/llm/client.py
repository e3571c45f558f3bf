"""One OpenAI-compatible endpoint: an async client with bounded concurrency, a timeout, and retries.

The openai client's own retries are off (``max_retries=0``): we need Retry-After honoured with
our cap, jitter, and a count of every attempt for the manifest, so the loop is ours.
"""
from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import openai

try:  # the HTTP library under the openai client: httpx2 from openai 3, httpx before
    import httpx2 as http
except ImportError:  # pragma: no cover
    import httpx as http

from core.llm.settings import EndpointConfig

RETRYABLE_STATUS = {408, 409, 429}  # plus every 5xx


@dataclass
class Answer:
    text: str
    prompt_tokens: int
    completion_tokens: int
    attempts: int
    finish_reason: str | None = None


class RequestFailed(Exception):
    def __init__(self, reason: str, detail: str, attempts: int):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail, self.attempts = reason, detail, attempts


def retry_after_s(response) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms``, ``Retry-After`` seconds or HTTP date)."""
    if response is None:
        return None
    headers = response.headers
    try:
        if "retry-after-ms" in headers:
            return float(headers["retry-after-ms"]) / 1000
        if "retry-after" in headers:
            value = headers["retry-after"]
            try:
                return float(value)
            except ValueError:
                return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
    return None


def classify(exc: Exception) -> tuple[str, bool, float | None]:
    """(failure reason, retryable, server-requested wait) for an exception from one attempt."""
    if isinstance(exc, openai.APITimeoutError):
        return "timeout", True, None
    if isinstance(exc, openai.APIConnectionError):
        return "connection_error", True, None
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retryable = status in RETRYABLE_STATUS or status >= 500
        return f"http_{status}", retryable, retry_after_s(exc.response)
    # a 200 whose body is not a chat completion: the server misbehaved, possibly transiently
    return "bad_response", True, None


class EndpointClient:
    def __init__(self, name: str, config: EndpointConfig, rng: random.Random | None = None):
        self.name, self.config = name, config
        self.client = openai.AsyncOpenAI(base_url=config.base_url, api_key=config.api_key(),
                                         timeout=config.timeout_s, max_retries=0)
        self.slots = asyncio.Semaphore(config.concurrency)
        self.rng = rng or random.Random()

    def backoff_s(self, retry: int, requested: float | None) -> float:
        """Exponential backoff with equal jitter; never shorter than the server's Retry-After (capped)."""
        cap = min(self.config.backoff_max_s, self.config.backoff_initial_s * 2 ** retry)
        delay = cap / 2 + self.rng.uniform(0, cap / 2)
        if requested is not None:
            delay = max(delay, min(requested, self.config.retry_after_max_s))
        return delay

    def response_format(self, schema_name: str | None, schema: dict | None) -> dict | openai.NotGiven:
        if schema is None or self.config.structured_output == "none":
            return openai.NOT_GIVEN
        if self.config.structured_output == "json_object":
            return {"type": "json_object"}
        return {"type": "json_schema", "json_schema": {"name": schema_name or "answer", "schema": schema, "strict": True}}

    async def complete(self, messages: list[dict], params: dict, schema_name: str | None = None,
                       schema: dict | None = None) -> Answer:
        body = {"model": self.config.model, "messages": messages, **params}
        response_format = self.response_format(schema_name, schema)
        if response_format is not openai.NOT_GIVEN:
            body["response_format"] = response_format
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self.slots:
                    # the client's own HTTP layer (errors, headers, timeouts) without its typed-params transform
                    # and pydantic response models: together 2 ms of CPU per request, the ceiling at concurrency 32
                    raw = await self.client.post("/chat/completions", body=body, cast_to=http.Response)
                payload = json.loads(raw.content)
                choice = payload["choices"][0]
                text = choice["message"]["content"]
                if text is None:
                    raise RequestFailed("empty_answer", "the answer has no content", attempt)
                usage = payload.get("usage") or {}
                return Answer(text, usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0, attempt,
                              choice.get("finish_reason"))
            except RequestFailed:
                raise
            except Exception as exc:  # every failure is classified; none escapes unexplained
                reason, retryable, requested = classify(exc)
                if not retryable or attempt > self.config.max_retries:
                    raise RequestFailed(reason, f"{type(exc).__name__}: {exc}"[:500], attempt) from None
                await asyncio.sleep(self.backoff_s(attempt - 1, requested))

    async def close(self) -> None:
        await self.client.close()
