"""Answers that parse: an answer that is malformed or off its schema (from a server without structured
output, or a model that lost its way) is asked again, up to ``max_parse_retries`` times, before its item is
rejected with every raw attempt. An answer the server cut at ``max_tokens`` (finish_reason "length") that does
not parse is not asked again: the same question under the same limit is cut again, so it is rejected at once
as ``truncated``, with a hint to raise ``max_tokens``.

Each new ask is its own request with its own cache key (``ChatRequest.asked_again``), so a rerun
replays the same attempts from the cache and pays for none of them again.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

from core.llm.requests import ChatRequest, ChatResult, RequestStats
from core.llm.scale import resolve
from core.llm.settings import LLMSettings

# what asking again can fix; a well-formed answer the job judges poor (ungrounded, a tie) is not asked again
RETRYABLE_PARSE_FAILURES = frozenset({"malformed_json", "schema_mismatch"})

Parse = Callable[[ChatRequest, str], tuple[Any, tuple[str, str] | None]]  # (value, None) or (None, (reason, detail))


@dataclass
class Parsed:
    result: ChatResult                      # the last attempt's transport result
    value: Any = None                       # the parsed answer when one parsed
    problem: tuple[str, str] | None = None  # why the last answer did not parse
    failed_answers: list[str] = field(default_factory=list)  # raw text of every answer that did not parse

    def raw(self) -> str | None:
        """For the reject row: the one bad answer, or all of them as a JSON list."""
        if not self.failed_answers:
            return None
        return self.failed_answers[0] if len(self.failed_answers) == 1 else json.dumps(self.failed_answers)


def resolve_parsed(requests: list[ChatRequest], settings: LLMSettings, parse: Parse, max_parse_retries: int,
                   stats: RequestStats, label: str = "requests") -> list[Parsed]:
    """One ``Parsed`` per request, in order; unparseable answers are asked again in rounds."""
    final: dict[int, Parsed] = {}
    failed: dict[int, list[str]] = defaultdict(list)
    pending = list(enumerate(requests))
    for retry in range(max_parse_retries + 1):
        if not pending:
            break
        asked = [request if retry == 0 else request.asked_again(retry) for _, request in pending]
        results = resolve(asked, settings, label if retry == 0 else f"{label} (parse retry {retry})")
        again = []
        for (index, request), result in zip(pending, results):
            stats.add(result)
            stats.parse_retries += retry > 0
            if not result.ok:
                final[index] = Parsed(result, failed_answers=failed[index])
                continue
            value, problem = parse(request, result.text)
            if problem is None:
                final[index] = Parsed(result, value, failed_answers=failed[index])
                continue
            failed[index].append(result.text)
            if result.finish_reason == "length":
                final[index] = Parsed(result, None, truncated(request, problem), failed[index])
            elif problem[0] in RETRYABLE_PARSE_FAILURES and retry < max_parse_retries:
                again.append((index, request))
            else:
                final[index] = Parsed(result, None, problem, failed[index])
        pending = again
    return [final[i] for i in range(len(requests))]


def truncated(request: ChatRequest, problem: tuple[str, str]) -> tuple[str, str]:
    """The reject reason of an answer cut at the token limit before it parsed, and what to change."""
    limit = request.params.get("max_tokens")
    where = f"max_tokens {limit}" if limit is not None else "the server's token limit (no max_tokens was set)"
    return "truncated", (f"the answer was cut at {where} before it was whole ({problem[0]}: {problem[1]}); "
                         "raise it (sft.sampling.max_tokens, preferences.max_tokens or preferences.judge_sampling.max_tokens); "
                         "asking again under the same limit is cut again")
