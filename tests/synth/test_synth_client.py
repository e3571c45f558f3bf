"""The transport: retries with backoff on 429/5xx/timeouts/bad bodies, Retry-After honoured, failures explained."""
from __future__ import annotations

import yaml

from synth.config import load_synth_config
from core.llm.requests import ChatRequest
from core.llm.resolver import Resolver
from synth.testing.openai_server import Fault
from synth_helpers import endpoint, loopback  # noqa: F401  (fixture)


def resolver_for(tmp_path, server, **endpoint_overrides) -> Resolver:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({
        "output_dir": str(tmp_path / "out"), "endpoints": {"gen": endpoint(server, **endpoint_overrides)},
        "input": {"path": "unused"}, "sft": {"generator": "gen"},
    }))
    return Resolver(load_synth_config(path, "sft").llm_settings())


def one_request(text: str = "hello") -> ChatRequest:
    return ChatRequest("item-1", "gen", "tiny-gen", [{"role": "user", "content": text}], {"temperature": 0.0},
                       "test@1")


def faults_on_attempts(fault: Fault, failing: int):
    return lambda body, attempt: fault if attempt < failing else None


def test_retries_on_5xx_429_timeout_and_bad_body_then_succeeds(tmp_path, loopback):
    for fault in (Fault("500"), Fault("429", retry_after=0.01), Fault("hang", hang_s=5), Fault("bad_body")):
        server = loopback(policy=lambda body: "fine", faults=faults_on_attempts(fault, 2))
        resolver = resolver_for(tmp_path, server, timeout_s=0.3)
        [result] = resolver.resolve([one_request(f"{fault.kind} twice")])
        resolver.close()
        assert result.ok and result.text == "fine", (fault, result)
        assert result.attempts == 3 and len(server.received) == 3, fault


def test_gives_up_after_max_retries_with_the_reason(tmp_path, loopback):
    server = loopback(faults=lambda body, attempt: Fault("500"))
    resolver = resolver_for(tmp_path, server, max_retries=2)
    [result] = resolver.resolve([one_request()])
    resolver.close()
    assert not result.ok and result.reason == "http_500" and result.attempts == 3
    assert len(server.received) == 3


def test_client_errors_are_not_retried(tmp_path, loopback):
    server = loopback()
    resolver = resolver_for(tmp_path, server, base_url=server.base_url.replace("/v1", "/nope"))
    [result] = resolver.resolve([one_request()])
    resolver.close()
    assert not result.ok and result.reason == "http_404" and result.attempts == 1


def test_retry_after_is_honoured(tmp_path, loopback):
    """With a 10 ms backoff, only the server's Retry-After can explain a one-second gap."""
    gaps = {}
    for retry_after in (1.0, None):
        server = loopback(policy=lambda body: "ok", faults=faults_on_attempts(Fault("429", retry_after=retry_after), 1))
        resolver = resolver_for(tmp_path, server)
        [result] = resolver.resolve([one_request(f"retry-after {retry_after}")])
        resolver.close()
        assert result.ok
        first, second = server.received
        gaps[retry_after] = second.at - first.at
    assert gaps[1.0] >= 0.95
    assert gaps[None] < 0.5


def test_cached_answers_are_never_sent_again(tmp_path, loopback):
    server = loopback(policy=lambda body: "stored")
    resolver = resolver_for(tmp_path, server)
    assert resolver.resolve([one_request("a"), one_request("a"), one_request("b")])[1].cached
    resolver.close()
    assert len(server.received) == 2  # the twin was sent once
    resolver = resolver_for(tmp_path, server)
    results = resolver.resolve([one_request("a"), one_request("b")])
    resolver.close()
    assert all(r.cached and r.text == "stored" for r in results)
    assert len(server.received) == 2


def test_a_cache_written_before_finish_reasons_were_kept_still_answers(tmp_path):
    """An answer cache from an earlier version (no finish_reason column) is read as it is, then extended."""
    import sqlite3

    from core.llm.cache import AnswerCache, StoredAnswer

    old = sqlite3.connect(tmp_path / "old.sqlite")
    old.execute("CREATE TABLE answers (key TEXT PRIMARY KEY, model TEXT, prompt_version TEXT, text TEXT NOT NULL, "
                "prompt_tokens INTEGER, completion_tokens INTEGER, stored_at REAL)")
    old.execute("INSERT INTO answers VALUES ('k1', 'm', 'v1', 'an old answer', 3, 4, 0)")
    old.commit()
    old.close()
    cache = AnswerCache(tmp_path / "old.sqlite")
    assert cache.get("k1") == StoredAnswer("an old answer", 3, 4, None)
    cache.put("k2", "m", "v1", StoredAnswer("cut", 3, 300, "length"))
    assert cache.get("k2").finish_reason == "length" and len(cache) == 2
