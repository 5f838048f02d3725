"""Several Ollama backends behind one gateway: routing by model, failover, least busy, slots and queues."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import yaml
from prometheus_client import REGISTRY

from app import create_app
from app import tally
from app.settings import ConfigError
from app.settings import load_settings
from tests.conftest import BASE_SETTINGS
from tests.fake_ollama import FakeOllama
from tests.fake_ollama import model_entry
from tests.gateway import ROOT
from tests.gateway import Gateway
from tests.test_http_surface import assert_envelope

SHARED = model_entry("llama3.2:latest")


def chat(gateway: Gateway, model: str, text: str = "hi", **extra) -> requests.Response:
    return requests.post(gateway.url + "/v1/chat/completions", timeout=30,
                         json={"model": model, "messages": [{"role": "user", "content": text}], **extra})


def wait_until(predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def backends_of(gateway: Gateway) -> dict[str, dict]:
    return {b["name"]: b for b in requests.get(gateway.url + "/health", timeout=10).json()["backends"]}


def name_of(fake: FakeOllama) -> str:
    return fake.url.removeprefix("http://")


@pytest.fixture()
def fakes():
    """Two fake Ollamas: both have llama3.2, each has a model of its own."""
    alpha = FakeOllama(models=[SHARED, model_entry("alpha-only:latest")]).start()
    beta = FakeOllama(models=[SHARED, model_entry("beta-only:7b")]).start()
    started = [alpha, beta]
    yield alpha, beta, started
    for fake in started:
        fake.kill()


def start_pair(alpha: FakeOllama, beta: FakeOllama, **settings) -> Gateway:
    gateway = Gateway({**BASE_SETTINGS, "OLLAMA_HOST": f"{alpha.url},{beta.url}", **settings}).start()
    # The worker's first refresh has read both model lists.
    wait_until(lambda: all(b["models"] for b in backends_of(gateway).values()))
    return gateway


def start_with_file(tmp_path, backends: list[dict], **settings) -> Gateway:
    config = tmp_path / "llamagate.yaml"
    config.write_text(yaml.safe_dump({"backends": backends}))
    return Gateway({**BASE_SETTINGS, "CONFIG_FILE": str(config), **settings}).start()


def test_each_model_is_answered_by_a_backend_that_has_it(fakes):
    alpha, beta, _ = fakes
    gateway = start_pair(alpha, beta)
    try:
        for _ in range(3):
            assert chat(gateway, "alpha-only").status_code == 200
            assert chat(gateway, "beta-only:7b").status_code == 200
        assert (alpha.count(), beta.count()) == (3, 3)
        assert {r["body"]["model"] for r in alpha.requests if r["path"] == "/api/chat"} == {"alpha-only"}

        native = requests.post(gateway.url + "/api/chat", timeout=10, json={
            "model": "beta-only:7b", "stream": False, "messages": [{"role": "user", "content": "x"}]})
        assert native.status_code == 200 and beta.count() == 4
        embedded = requests.post(gateway.url + "/v1/embeddings", json={"model": "alpha-only", "input": ["a", "b"]},
                                 timeout=10)
        assert embedded.status_code == 200 and embedded.json()["usage"]["prompt_tokens"] == 16
        assert alpha.count("/api/embed") == 1 and beta.count("/api/embed") == 0

        listed = requests.get(gateway.url + "/v1/models", timeout=10).json()["data"]
        assert sorted(m["id"] for m in listed) == ["alpha-only:latest", "beta-only:7b", "llama3.2:latest"]
        tags = requests.get(gateway.url + "/api/tags", timeout=10).json()["models"]
        assert sorted(m["model"] for m in tags) == ["alpha-only:latest", "beta-only:7b", "llama3.2:latest"]

        health = requests.get(gateway.url + "/health", timeout=10)
        body = health.json()
        assert health.status_code == 200 and (body["status"], body["ollama"]) == ("healthy", "connected")
        assert body["ollama_host"] == f"{alpha.url},{beta.url}"
        assert [(b["name"], b["url"], b["status"], b["models"], b["in_flight"]) for b in body["backends"]] == [
            (name_of(alpha), alpha.url, "up", ["alpha-only:latest", "llama3.2:latest"], 0),
            (name_of(beta), beta.url, "up", ["beta-only:7b", "llama3.2:latest"], 0)]

        # Model management: to the first backend that has the model, else to the first one.
        pulled = requests.post(gateway.url + "/api/pull", json={"model": "new-model", "stream": False}, timeout=10)
        assert pulled.status_code == 200 and (alpha.count("/api/pull"), beta.count("/api/pull")) == (1, 0)
        copied = requests.post(gateway.url + "/api/copy", json={"source": "beta-only:7b", "destination": "b2"},
                               timeout=10)
        assert copied.status_code == 200 and (alpha.count("/api/copy"), beta.count("/api/copy")) == (0, 1)
        deleted = requests.delete(gateway.url + "/api/delete", json={"model": "beta-only:7b"}, timeout=10)
        assert deleted.status_code == 200 and (alpha.count("/api/delete"), beta.count("/api/delete")) == (0, 1)
        assert backends_of(gateway)[name_of(beta)]["models"] == ["llama3.2:latest"]  # forgotten at once
    finally:
        gateway.stop()


def test_a_killed_backend_is_skipped_without_errors_and_used_again_when_back(fakes):
    alpha, beta, started = fakes
    gateway = start_pair(alpha, beta)
    try:
        port = beta.server.server_address[1]
        beta.kill()
        before = alpha.count()
        answers = [chat(gateway, "llama3.2", f"try {i}") for i in range(6)]
        streamed = chat(gateway, "llama3.2", "streamed", stream=True)
        assert [a.status_code for a in answers] == [200] * 6
        assert streamed.status_code == 200 and streamed.text.rstrip().endswith("data: [DONE]")
        assert alpha.count() == before + 7
        assert backends_of(gateway)[name_of(beta)]["status"] == "down"
        health = requests.get(gateway.url + "/health", timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "healthy"
        # Only the dead backend has this one: the client sees that it is unreachable.
        assert_envelope(chat(gateway, "beta-only:7b"), 502, kind="api_error", code="upstream_unavailable")

        back = FakeOllama(models=[SHARED, model_entry("beta-only:7b")], port=port).start()
        started.append(back)
        wait_until(lambda: backends_of(gateway)[name_of(back)]["status"] == "up")
        assert chat(gateway, "beta-only:7b").status_code == 200
        for i in range(4):
            assert chat(gateway, "llama3.2", f"again {i}").status_code == 200
        assert back.count() >= 3  # its own model, and a share of the shared one
    finally:
        gateway.stop()


def test_the_least_busy_backend_wins(fakes):
    slow, fast, _ = fakes
    gateway = start_pair(slow, fast)
    try:
        slow.delay = 2.0
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda i: chat(gateway, "llama3.2", f"n{i}"), range(20)))
        assert [a.status_code for a in answers] == [200] * 20
        # The slow one holds its requests; the others go to the fast one meanwhile.
        assert slow.count() <= 4 and fast.count() >= 16
    finally:
        gateway.stop()


def test_all_slots_busy_and_queues_full_is_a_503_with_retry_after(fakes, tmp_path):
    alpha, beta, _ = fakes
    alpha.delay = beta.delay = 3.0
    beta.tags_delay = 2.0  # beta's list is still unread at first: beta may have the model, so it is used
    gateway = start_with_file(tmp_path, [{"url": alpha.url, "max_concurrency": 1},
                                         {"url": beta.url, "name": "beta", "max_concurrency": 1}])
    try:
        with ThreadPoolExecutor(2) as pool:
            held = [pool.submit(chat, gateway, "llama3.2", f"hold {i}") for i in range(2)]
            wait_until(lambda: alpha.count() + beta.count() == 2)
            refused = chat(gateway, "llama3.2", "one too many")
            assert_envelope(refused, 503, kind="api_error", code="backends_busy")
            assert refused.headers["Retry-After"] == "1"
            assert "max_concurrency" in refused.json()["error"]["message"]
            assert [f.result().status_code for f in held] == [200, 200]
        assert (alpha.count(), beta.count()) == (1, 1)
        assert {b["name"] for b in backends_of(gateway).values()} == {name_of(alpha), "beta"}
    finally:
        gateway.stop()


def test_a_queued_request_is_served_when_a_slot_frees(tmp_path):
    fake = FakeOllama(delay=1.0).start()
    gateway = start_with_file(tmp_path, [{"url": fake.url, "max_concurrency": 1, "queue": 1}])
    try:
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(chat, gateway, "llama3.2", "first")
            wait_until(lambda: fake.count() == 1)
            queued = pool.submit(chat, gateway, "llama3.2", "queued")
            wait_until(lambda: backends_of(gateway)[name_of(fake)]["queued"] == 1)
            assert_envelope(chat(gateway, "llama3.2", "no room"), 503, kind="api_error", code="backends_busy")
            assert first.result().status_code == 200
            assert queued.result().status_code == 200
        assert "queued" in queued.result().json()["choices"][0]["message"]["content"]
        assert fake.count() == 2 and fake.chat_peak == 1  # never two at once
    finally:
        gateway.stop()
        fake.kill()


def test_a_queued_request_waits_at_most_the_queue_timeout(tmp_path):
    fake = FakeOllama(delay=4.0).start()
    gateway = start_with_file(tmp_path, [{"url": fake.url, "max_concurrency": 1, "queue": 5}],
                              BACKEND_QUEUE_TIMEOUT="300ms")
    try:
        with ThreadPoolExecutor(1) as pool:
            held = pool.submit(chat, gateway, "llama3.2", "hold")
            wait_until(lambda: fake.count() == 1)
            late = chat(gateway, "llama3.2", "late")
            error = assert_envelope(late, 503, kind="api_error", code="backends_busy")
            assert "BACKEND_QUEUE_TIMEOUT" in error["message"] and late.headers["Retry-After"] == "1"
            assert fake.count() == 1  # the late one never reached Ollama
            assert held.result().status_code == 200
    finally:
        gateway.stop()
        fake.kill()


def load_file(tmp_path, text: str) -> dict:
    path = tmp_path / "llamagate.yaml"
    path.write_text(text)
    return load_settings({"ENV_FILE": "", "CONFIG_FILE": str(path)})


@pytest.mark.parametrize(("entries", "param", "problem"), [
    ("{url: http://a:1}", "backends", "must be a list"),
    ("[http://a:1]", "backends[0]", "must be a mapping"),
    ("[{name: gpu}]", "backends[0].url", "is required"),
    ("[{url: http://a:1}, {url: 'ftp://b'}]", "backends[1].url", "must be an http:// or https:// URL"),
    ("[{url: http://a:1}, {url: http://b:2, weight: 0}]", "backends[1].weight", "greater than 0"),
    ("[{url: http://a:1, max_concurrency: -1}]", "backends[0].max_concurrency", "at least 0"),
    ("[{url: http://a:1, queue: 1.5}]", "backends[0].queue", "whole number"),
    ("[{url: http://a:1, colour: red}]", "backends[0].colour", "unknown key"),
    ("[{url: http://a:1, name: 'has space'}]", "backends[0].name", "must be 1-64 characters"),
    ("[{url: http://a:1}, {url: 'http://a:1/'}]", "backends[1].url", "duplicate backend name 'a:1'"),
    ("[{url: http://a:1, name: x}, {url: http://b:2, name: x}]", "backends[1].name", "duplicate backend name"),
])
def test_bad_backend_entries_name_the_key_path(tmp_path, entries, param, problem):
    with pytest.raises(ConfigError) as caught:
        load_file(tmp_path, f"backends: {entries}\n")
    assert caught.value.param == param and problem in caught.value.problem
    assert f"llamagate.yaml: {param}: " in str(caught.value)


@pytest.mark.parametrize(("value", "problem"), [
    ("http://a:1,", "has an empty entry between commas"),
    ("http://a:1,b:2", "entry 2: must be an http:// or https:// URL"),
    ("http://a:1, http://a:1/", "entry 2: names a:1 twice"),
])
def test_bad_ollama_host_lists(value, problem):
    with pytest.raises(ConfigError) as caught:
        load_settings({"ENV_FILE": "", "CONFIG_FILE": "", "OLLAMA_HOST": value})
    assert caught.value.param == "OLLAMA_HOST" and caught.value.problem.startswith(problem)


def test_backends_from_ollama_host_and_from_the_file(tmp_path):
    settings = load_settings({"ENV_FILE": "", "CONFIG_FILE": "", "OLLAMA_HOST": "http://a:1, https://b"})
    assert [(b.name, b.url, b.weight, b.max_concurrency, b.queue) for b in settings["BACKENDS"]] == [
        ("a:1", "http://a:1", 1.0, 0, 0), ("b:443", "https://b", 1.0, 0, 0)]
    loaded = load_file(tmp_path, "backends:\n  - {url: 'http://gpu:1', name: gpu, weight: 2, max_concurrency: 4,"
                                 " queue: 8}\n  - url: http://cpu:2\n")
    assert [(b.name, b.weight, b.max_concurrency, b.queue) for b in loaded["BACKENDS"]] == [
        ("gpu", 2.0, 4, 8), ("cpu:2", 1.0, 0, 0)]


def test_the_commented_backends_example_is_valid(tmp_path):
    text = (ROOT / "llamagate.example.yaml").read_text()
    block = []
    for line in text[text.index("# backends:"):].splitlines():
        if not line.startswith("# "):
            break
        block.append(line[2:])
    loaded = load_file(tmp_path, "\n".join(block) + "\n")
    assert [(b.name, b.weight, b.max_concurrency, b.queue) for b in loaded["BACKENDS"]] == [
        ("gpu-1", 2.0, 4, 8), ("gpu-2:11434", 1.0, 0, 0)]


def test_the_tally_names_backend_and_model_and_the_in_flight_gauge_follows_the_stream(fakes):
    alpha, beta, _ = fakes
    app = create_app(settings=load_settings({"ENV_FILE": "", "CONFIG_FILE": ""}, overrides={
        **BASE_SETTINGS, "OLLAMA_HOST": f"{alpha.url},{beta.url}"}))
    seen = []
    tally.on_finish(app, lambda t, status, route: seen.append((route, t.backend, t.model, t.prompt_tokens)))
    client = app.test_client()
    with client.get("/v1/models") as listed:  # reads both lists (no refresh thread in-process)
        assert listed.status_code == 200
    with client.post("/v1/embeddings", json={"model": "beta-only:7b", "input": "x"}) as embedded:
        assert embedded.status_code == 200

    def in_flight(fake: FakeOllama) -> float:
        return REGISTRY.get_sample_value("llamagate_upstream_in_flight", {"backend": name_of(fake)}) or 0.0

    streamed = client.post("/v1/chat/completions", buffered=False, json={
        "model": "alpha-only", "stream": True, "messages": [{"role": "user", "content": "[[slow 3 0.05]]"}]})
    assert streamed.status_code == 200 and in_flight(alpha) == 1.0 and in_flight(beta) == 0.0
    next(iter(streamed.response))
    streamed.close()
    assert in_flight(alpha) == 0.0
    assert seen[-2:] == [("/v1/embeddings", name_of(beta), "beta-only:7b", 8),
                         ("/v1/chat/completions", name_of(alpha), "alpha-only", 0)]
