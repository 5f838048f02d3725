"""Response cache: hits, misses, bypass, keys and what is never cached."""

from __future__ import annotations

import pytest
import requests

from app.schemas.chat import ChatCompletionRequest
from app.services.cache import TTLCache
from app.services.cache import cache_key
from app.translate.request import to_ollama_chat


@pytest.fixture(scope="module")
def cached(start_gateway):
    return start_gateway(CACHE_ENABLED="true", CACHE_TTL="1h", CACHE_MAX_ENTRIES="50")


def post(gateway, content, headers=None, **extra):
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": content}], **extra}
    return requests.post(gateway.url + "/v1/chat/completions", json=body, headers=headers or {}, timeout=10)


def test_second_identical_request_is_a_hit_with_a_fresh_id(cached, fake_ollama):
    first = post(cached, "cache me", temperature=0)
    upstream_calls = len(fake_ollama.requests)
    second = post(cached, "cache me", temperature=0.0)
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
    assert len(fake_ollama.requests) == upstream_calls
    a, b = first.json(), second.json()
    assert a["id"] != b["id"] and a["choices"] == b["choices"] and a["usage"] == b["usage"]


@pytest.mark.parametrize("change", [{"temperature": 0.5}, {"seed": 1}, {"stop": "x"}, {"max_tokens": 3},
                                    {"top_p": 0.2}, {"response_format": {"type": "json_object"}},
                                    {"tools": [{"type": "function", "function": {"name": "f"}}]}])
def test_anything_that_changes_the_answer_changes_the_key(cached, change):
    post(cached, "key test")
    assert post(cached, "key test", **change).headers["X-Cache"] == "MISS"


@pytest.mark.parametrize("directive", ["no-cache", "no-store", "max-age=0, no-cache"])
def test_cache_control_bypasses(cached, directive):
    post(cached, "bypass me")
    response = post(cached, "bypass me", {"Cache-Control": directive})
    assert response.headers["X-Cache"] == "BYPASS"


@pytest.mark.parametrize("content", ["[[status 500 flaky]]", "[[error-mid]] a b c", "[[eof]] a b c"])
def test_errors_are_never_cached(cached, fake_ollama, content):
    for _ in range(2):  # each try reaches Ollama again
        chats = len([r for r in fake_ollama.requests if r["path"] == "/api/chat"])
        assert post(cached, content, temperature=0).status_code >= 500
        assert len([r for r in fake_ollama.requests if r["path"] == "/api/chat"]) == chats + 1


def test_streams_are_not_served_from_the_cache(cached):
    post(cached, "stream after cache")
    response = post(cached, "stream after cache", stream=True)
    assert "X-Cache" not in response.headers and response.text.endswith("data: [DONE]\n\n")


def translated(body: dict, stream: bool = False) -> dict:
    return to_ollama_chat(ChatCompletionRequest().load(body), stream=stream)


def test_key_ignores_spelling_but_not_content():
    base = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    one = translated({**base, "stop": "a", "max_tokens": 5, "temperature": 0})
    two = translated({**base, "max_completion_tokens": 5, "stop": ["a"], "temperature": 0.0}, stream=True)
    assert cache_key(one) == cache_key(two)
    three = translated({**base, "messages": [{"role": "user", "content": "y"}]})
    assert cache_key(one) != cache_key(three)


def test_lru_eviction_and_ttl():
    now = [0.0]
    cache = TTLCache(max_entries=2, ttl=10, clock=lambda: now[0])
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recently used
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    now[0] = 10.5
    assert cache.get("a") is None and len(cache) == 1


def test_deterministic_only_mode_skips_sampled_requests(start_gateway):
    strict = start_gateway(CACHE_ENABLED="true", CACHE_DETERMINISTIC_ONLY="true")
    post(strict, "sampled")
    assert post(strict, "sampled").headers["X-Cache"] == "BYPASS"
    post(strict, "greedy", temperature=0)
    assert post(strict, "greedy", temperature=0).headers["X-Cache"] == "HIT"
