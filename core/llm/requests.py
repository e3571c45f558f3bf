"""What a job asks an endpoint (a ``ChatRequest``) and what came back (a ``ChatResult``)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from core.llm.cache import request_key


@dataclass
class ChatRequest:
    item_id: str
    endpoint: str
    model: str
    messages: list[dict]
    params: dict
    prompt_version: str
    schema_name: str | None = None
    schema: dict | None = None
    parse_retry: int = 0  # 0: the first ask; n: asked again after n unparseable answers
    key: str = ""

    def __post_init__(self):
        if not self.key:
            params = {**self.params, "schema": self.schema}
            if self.parse_retry:  # first asks keep the keys they always had, so existing caches stay valid
                params["parse_retry"] = self.parse_retry
            self.key = request_key(self.model, self.messages, params, self.prompt_version)

    def asked_again(self, retry: int) -> "ChatRequest":
        """The same question as a new request: its own cache key, and a sampling seed so that a server
        decoding deterministically does not give the same unparseable answer again."""
        return replace(self, params={**self.params, "seed": retry}, parse_retry=retry, key="")

    @classmethod
    def from_template(cls, item_id: str, endpoint: str, model: str, template, params: dict,
                      **values: str) -> "ChatRequest":
        return cls(item_id, endpoint, model, template.messages(**values), params, template.prompt_version,
                   template.schema_name, template.response_schema)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ChatResult:
    item_id: str
    key: str
    ok: bool
    text: str | None = None
    reason: str | None = None
    detail: str | None = None
    cached: bool = False
    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None  # the server's: "length" means cut at max_tokens

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RequestStats:
    """What a run cost: the manifest's ``requests`` section."""

    requests: int = 0            # distinct requests the job needed
    cached_hits: int = 0         # answered from the cache, nothing sent
    http_attempts: int = 0       # requests sent over the wire, retries included
    retries: int = 0             # transport retries (429, 5xx, timeouts, bad bodies)
    parse_retries: int = 0       # questions asked again because the answer did not parse
    failures_by_reason: dict = field(default_factory=dict)
    prompt_tokens: int = 0       # tokens paid for in this run (cached answers cost nothing)
    completion_tokens: int = 0

    def add(self, result: ChatResult) -> None:
        self.requests += 1
        self.cached_hits += result.cached
        self.http_attempts += result.attempts
        self.retries += max(0, result.attempts - 1)
        if not result.ok:
            self.failures_by_reason[result.reason] = self.failures_by_reason.get(result.reason, 0) + 1
        if not result.cached:
            self.prompt_tokens += result.prompt_tokens
            self.completion_tokens += result.completion_tokens

    def to_dict(self) -> dict:
        return asdict(self)
