"""Endpoint settings, and the few things a job hands the resolver: endpoints, cache file, seed, actor pool."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field

from core.config import StrictModel, deep_merge
from core.ray_runtime import RayConfig


class EndpointConfig(StrictModel):
    base_url: str = Field(description="OpenAI-compatible base URL, e.g. http://localhost:8000/v1 (vLLM).")
    model: str
    api_key_env: str | None = Field(description="Env var holding the API key; null for servers that need none.")
    structured_output: Literal["json_schema", "json_object", "none"] = Field(
        description="What response_format the server supports; answers are parsed tolerantly either way."
    )
    concurrency: int = Field(gt=0, description="Requests in flight at once, per process (per actor under Ray).")
    timeout_s: float = Field(gt=0)
    max_retries: int = Field(ge=0, description="Retries after the first attempt on 429, 5xx, timeouts.")
    backoff_initial_s: float = Field(gt=0)
    backoff_max_s: float = Field(gt=0)
    retry_after_max_s: float = Field(gt=0, description="Longest Retry-After honoured; longer ones are capped.")

    def api_key(self) -> str:
        # local servers (vLLM, Ollama) accept any key, but the client insists on one
        return os.environ[self.api_key_env] if self.api_key_env else "unused"


class SamplingConfig(StrictModel):
    temperature: float = Field(ge=0)
    max_tokens: int = Field(gt=0)


class RayActorPoolConfig(RayConfig):
    """Requests resolved by a pool of Ray actors, each its own async client."""

    enabled: bool = Field(description="Resolve requests with Ray Data map_batches over an actor pool.")
    actors: int = Field(gt=0)
    batch_size: int = Field(gt=0, description="Requests per actor call; at least the endpoint concurrency.")


@dataclass(frozen=True)
class LLMSettings:
    """What resolving requests needs from a job's config."""

    endpoints: dict[str, EndpointConfig]
    cache_file: Path
    seed: int
    pool: RayActorPoolConfig


def with_endpoint_defaults(data: dict) -> dict:
    """``endpoint_defaults`` merged under every entry of ``endpoints``, then removed."""
    endpoint_defaults = data.pop("endpoint_defaults", {})
    endpoints = data.get("endpoints") or {}
    return {**data, "endpoints": {name: deep_merge(endpoint_defaults, ep or {}) for name, ep in endpoints.items()}}
