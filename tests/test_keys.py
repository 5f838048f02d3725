"""Named API keys from the YAML file: their limits (rpm, tpm, max_concurrent), models, admin flag, /v1/keys/me,
names in the logs, revocation on SIGHUP, and exact counts across workers and instances sharing one Redis."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from app import create_app
from app.metrics import RATE_LIMITED
from app.settings import ConfigError
from app.settings import load_settings

SECRETS = {name: f"sk-{name}-secret-{index:04d}-abcdef" for index, name in
           enumerate(["team-a", "rpm3", "tpm", "single", "ops", "plain", "rpm4"])}
OPS_DIGEST = hashlib.sha256(SECRETS["ops"].encode()).hexdigest()
KEYS_YAML = f"""
keys:
  - {{name: team-a, key: {SECRETS["team-a"]}, models: ["llama3.2*", "plugin:*"]}}
  - {{name: rpm3, key: {SECRETS["rpm3"]}, rpm: 3}}
  - {{name: tpm, key: {SECRETS["tpm"]}, tpm: 10}}
  - {{name: single, key: {SECRETS["single"]}, max_concurrent: 1}}
  - {{name: ops, key: "sha256:{OPS_DIGEST}", admin: true}}
  - {{name: plain, key: {SECRETS["plain"]}}}
  - {{name: rpm4, key: {SECRETS["rpm4"]}, rpm: 4}}
"""


def auth(name: str) -> dict:
    return {"Authorization": f"Bearer {SECRETS[name]}"}


def chat_body(model: str = "llama3.2", text: str = "x", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def fresh_window(period: float, needed: float) -> None:
    """Wait for the next clock-aligned window when less than `needed` seconds of this one are left."""
    left = period - time.time() % period
    if left < needed:
        time.sleep(left + 0.02)


def wait_until(condition, timeout: float = 10.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "llamagate.yaml"
    path.write_text(KEYS_YAML)
    return path


@pytest.fixture(scope="module")
def keyed(start_gateway, keys_file):
    return start_gateway(CONFIG_FILE=str(keys_file))


def me(gateway, name: str) -> dict:
    with requests.get(gateway.url + "/v1/keys/me", headers=auth(name), timeout=5) as answer:
        assert answer.status_code == 200, answer.text
        return answer.json()


# -- settings -------------------------------------------------------------------------------------------


def load_keys(tmp_path, text: str, **environ):
    path = tmp_path / "llamagate.yaml"
    path.write_text(text)
    return load_settings({"ENV_FILE": "", "CONFIG_FILE": str(path), **environ})


@pytest.mark.parametrize(("text", "message"), [
    ("keys:\n  - {name: a, key: sk-one-111111}\n  - {name: b, key: sk-two-222222, rpm: 0}",
     "keys[1].rpm: must be a whole number of at least 1; got 0"),
    ("keys:\n  - {name: a, key: sk-one-111111, tpm: lots}", "keys[0].tpm: must be a whole number"),
    ("keys:\n  - {name: a, key: sk-one-111111}\n  - {name: a, key: sk-two-222222}",
     "keys[1].name: duplicate key name (also keys[0]); got 'a'"),
    ("keys:\n  - {name: a, key: sk-one-111111}\n  - {name: b, key: sk-one-111111}",
     "keys[1].key: is the same key as keys[0]"),
    ("keys:\n  - {name: a b, key: sk-one-111111}", "keys[0].name: must be 1-64 characters"),
    ("keys:\n  - {name: a}", "keys[0].key: is required"),
    ("keys:\n  - {name: a, key: 'sha256:abc'}", "keys[0].key: must be sha256: followed by exactly 64 hex digits"),
    ("keys:\n  - {name: a, key: 'sk-one 111111'}", "keys[0].key: must not contain spaces"),
    ("keys:\n  - {name: a, key: sk-one-111111, limit: 3}", "keys[0].limit: unknown key; allowed keys are"),
    ("keys:\n  - {name: a, key: sk-one-111111, admin: maybe}", "keys[0].admin: must be true or false"),
    ("keys:\n  - {name: a, key: sk-one-111111, models: 5}", "keys[0].models: must be a list of globs"),
    ("keys: sk-one-111111", "keys: must be a list of keys"),
    ("keys:\n  - {name: default, key: sk-one-111111}", "keys[0].name: is the name of API_KEY's key"),
    ("keys:\n  - {name: a, key: sk-api-key-333333}", "keys[0].key: is the same key as API_KEY"),
])
def test_bad_keys_name_the_path_and_never_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as caught:
        load_keys(tmp_path, text, API_KEY="sk-api-key-333333")
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"{tmp_path / 'llamagate.yaml'}: {caught.value.param}: ")
    for secret in ("sk-one-111111", "sk-two-222222", "sk-api-key-333333", "sk-one 111111"):
        assert secret not in str(caught.value)


def test_keys_load_with_their_limits_and_expanded_values(tmp_path):
    settings = load_keys(tmp_path, 'keys:\n  - {name: a, key: "${TEAM_KEY}", rpm: 60, tpm: "1000", models: "llama*, qwen3"}'
                                   f'\n  - {{name: b, key: "SHA256:{OPS_DIGEST.upper()}", admin: yes}}',
                         TEAM_KEY="sk-from-the-environment")
    first, second = settings["KEYS"]
    assert (first.name, first.rpm, first.tpm, first.max_concurrent, first.models) == ("a", 60, 1000, None, ("llama*", "qwen3"))
    assert first.digest == hashlib.sha256(b"sk-from-the-environment").digest()
    assert second.admin and second.digest.hex() == OPS_DIGEST and second.secret == ""
    assert "sk-from-the-environment" not in repr(settings["KEYS"])
    assert first.allows("llama3.2") and first.allows("qwen3:latest") and not first.allows("qwen3:8b")


def test_the_yaml_example_s_keys_block_is_valid(tmp_path):
    text = (Path(__file__).resolve().parent.parent / "llamagate.example.yaml").read_text()
    block = text[text.index("# keys:"):].split("\n\n")[0]
    config = tmp_path / "llamagate.yaml"
    config.write_text("\n".join(line[2:] for line in block.splitlines()))
    keys = load_settings({"ENV_FILE": "", "CONFIG_FILE": str(config), "TEAM_A_KEY": "sk-example-value"})["KEYS"]
    assert [(key.name, key.rpm, key.admin) for key in keys] == [("team-a", 60, False), ("ops", None, True)]


# -- authentication, names and admin ---------------------------------------------------------------------


def test_named_and_hashed_keys_pass_others_do_not(keyed):
    for name in ("team-a", "plain", "ops"):  # ops is configured by its SHA-256 only
        with requests.get(keyed.url + "/v1/models", headers=auth(name), timeout=5) as answer:
            assert answer.status_code == 200, (name, answer.text)
    with requests.get(keyed.url + "/v1/models", headers={"X-API-Key": OPS_DIGEST}, timeout=5) as answer:
        assert answer.status_code == 401, "the hash itself is not a key"
    with requests.get(keyed.url + "/v1/models", timeout=5) as answer:
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_api_key"


def test_the_key_name_is_in_every_log_line_of_the_request_and_the_key_in_none(keyed):
    headers = {**auth("team-a"), "X-Request-ID": "keys-log-1"}
    with requests.post(keyed.url + "/v1/chat/completions", json=chat_body(model="qwen3"), headers=headers,
                       timeout=5) as answer:
        assert answer.status_code == 404
    with requests.post(keyed.url + "/v1/chat/completions", json=chat_body(), timeout=5,
                       headers={**auth("plain"), "X-Request-ID": "keys-log-2"}) as answer:
        assert answer.status_code == 200
    keyed.wait_for_log(lambda e: e.get("request_id") == "keys-log-2" and e["message"] == "HTTP request")
    lines = keyed.log_lines()
    first = [e for e in lines if e.get("request_id") == "keys-log-1"]
    second = [e for e in lines if e.get("request_id") == "keys-log-2"]
    assert first and all(e.get("key") == "team-a" for e in first), first
    assert second and all(e.get("key") == "plain" for e in second), second
    assert [e["message"] for e in second].count("HTTP request") == 1
    output = keyed.output()
    assert not any(secret in output for secret in SECRETS.values())


def test_an_admin_key_may_use_the_admin_api_and_others_may_not(keyed):
    with requests.delete(keyed.url + "/v1/mcp/servers/nothing-here", headers=auth("plain"), timeout=5) as answer:
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "admin_key_required"
    with requests.delete(keyed.url + "/v1/mcp/servers/nothing-here", headers=auth("ops"), timeout=5) as answer:
        assert answer.status_code == 404, answer.text  # past the admin check: there is no such server
        assert answer.json()["error"]["code"] == "mcp_server_not_found"
    with requests.delete(keyed.url + "/v1/mcp/servers/nothing-here", headers={"X-API-Key": "sk-nope"},
                         timeout=5) as answer:
        assert answer.status_code == 401


# -- models --------------------------------------------------------------------------------------------------


def error_of(answer: requests.Response) -> dict:
    error = answer.json()["error"]
    error.pop("request_id", None)
    return error


def test_a_model_the_key_may_not_use_is_answered_as_an_unknown_one(keyed):
    def post(path, body, name):
        with requests.post(keyed.url + path, json=body, headers=auth(name), timeout=5) as answer:
            return answer.status_code, (error_of(answer) if answer.status_code != 200 else None)

    assert post("/v1/chat/completions", chat_body(), "team-a")[0] == 200
    for path, body in (("/v1/chat/completions", chat_body(model="MODEL")),
                       ("/v1/chat/completions", chat_body(model="MODEL", stream=True)),
                       ("/v1/embeddings", {"model": "MODEL", "input": "x"}),
                       ("/v1/completions", {"model": "MODEL", "prompt": "x"}),
                       ("/v1/responses", {"model": "MODEL", "input": "x"})):
        def of(model, body=body):
            return json.loads(json.dumps(body).replace("MODEL", model))

        refused = post(path, of("qwen3"), "team-a")
        unknown = post(path, of("llama9"), "plain")
        assert refused[0] == unknown[0] == 404, (path, refused, unknown)
        assert refused[1]["code"] == "model_not_found" and refused[1]["param"] == "model"
        assert json.dumps(refused[1]).replace("qwen3", "llama9") == json.dumps(unknown[1]), path
        assert post(path, of("qwen3"), "plain")[0] == 200, "the same model is fine for a key without a list"


def test_model_lists_show_only_the_allowed_models(keyed):
    with requests.get(keyed.url + "/v1/models", headers=auth("team-a"), timeout=5) as answer:
        assert [m["id"] for m in answer.json()["data"]] == ["llama3.2:latest"]
    with requests.get(keyed.url + "/v1/models", headers=auth("plain"), timeout=5) as answer:
        assert "qwen3:latest" in [m["id"] for m in answer.json()["data"]]
    with requests.get(keyed.url + "/v1/models/llama3.2", headers=auth("team-a"), timeout=5) as answer:
        assert answer.status_code == 200 and answer.json()["id"] == "llama3.2"
    with requests.get(keyed.url + "/v1/models/qwen3", headers=auth("team-a"), timeout=5) as refused, \
            requests.get(keyed.url + "/v1/models/llama9", headers=auth("plain"), timeout=5) as unknown:
        assert refused.status_code == unknown.status_code == 404
        assert json.dumps(error_of(refused)).replace("qwen3", "llama9") == json.dumps(error_of(unknown))
    with requests.get(keyed.url + "/v1/models/plugin:nothing", headers=auth("team-a"), timeout=5) as answer:
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "model_not_found"


def test_native_calls_naming_a_model_and_native_lists(keyed):
    for path, body in (("/api/chat", {"model": "MODEL", "messages": [{"role": "user", "content": "x"}],
                                      "stream": False}),
                       ("/api/generate", {"model": "MODEL", "prompt": "x", "stream": False}),
                       ("/api/embed", {"model": "MODEL", "input": "x"}),
                       ("/api/show", {"model": "MODEL"})):
        def of(model, body=body):
            return json.loads(json.dumps(body).replace("MODEL", model))

        with requests.post(keyed.url + path, json=of("llama3.2"), headers=auth("team-a"), timeout=5) as allowed:
            assert allowed.status_code == 200, (path, allowed.text)
        with requests.post(keyed.url + path, json=of("qwen3"), headers=auth("team-a"), timeout=5) as refused, \
                requests.post(keyed.url + path, json=of("llama9"), headers=auth("plain"), timeout=5) as unknown:
            assert refused.status_code == unknown.status_code == 404, path
            assert refused.json() == json.loads(unknown.text.replace("llama9", "qwen3")), path
    with requests.get(keyed.url + "/api/tags", headers=auth("team-a"), timeout=5) as answer:
        assert [m["name"] for m in answer.json()["models"]] == ["llama3.2:latest"]
    with requests.get(keyed.url + "/api/tags", headers=auth("plain"), timeout=5) as answer:
        assert len(answer.json()["models"]) == 3


# -- limits --------------------------------------------------------------------------------------------------


def test_requests_per_minute(keyed):
    fresh_window(60, 15)
    statuses = []
    for _ in range(5):
        with requests.get(keyed.url + "/v1/models", headers=auth("rpm3"), timeout=5) as answer:
            statuses.append(answer.status_code)
            headers, body = answer.headers, answer.json()
    assert statuses == [200, 200, 200, 429, 429]
    assert body["error"]["type"] == "rate_limit_error" and body["error"]["code"] == "rate_limit_exceeded"
    assert "'rpm3'" in body["error"]["message"] and SECRETS["rpm3"] not in json.dumps(body)
    assert 1 <= int(headers["Retry-After"]) <= 60
    assert (headers["x-ratelimit-limit-requests"], headers["x-ratelimit-remaining-requests"]) == ("3", "0")
    assert "x-ratelimit-limit-tokens" not in headers
    before = me(keyed, "plain")["usage"]["requests_this_minute"]
    with requests.get(keyed.url + "/v1/models", headers=auth("plain"), timeout=5) as answer:
        assert "x-ratelimit-limit-requests" not in answer.headers, "nothing limits this key"
    assert me(keyed, "plain")["usage"]["requests_this_minute"] in (before + 1, 1), "keys without limits are counted"
    warning = keyed.wait_for_log(lambda e: e.get("limiter_decision") == "rate_limited" and e.get("key") == "rpm3")
    assert warning["limit"] == "requests"


def test_tokens_per_minute_from_the_upstream_usage(keyed):
    fresh_window(60, 20)
    used = 0
    for _ in range(6):
        with requests.post(keyed.url + "/v1/chat/completions", json=chat_body(), headers=auth("tpm"),
                           timeout=5) as answer:
            assert answer.headers["x-ratelimit-limit-tokens"] == "10"
            assert answer.headers["x-ratelimit-remaining-tokens"] == str(max(0, 10 - used))
            assert answer.headers["x-ratelimit-reset-tokens"].endswith("s")
            if used >= 10:
                assert answer.status_code == 429, answer.text
                error = answer.json()["error"]
                assert error["type"] == "rate_limit_error" and "tokens per minute" in error["message"]
                assert 1 <= int(answer.headers["Retry-After"]) <= 60
                break
            assert answer.status_code == 200, answer.text
            used += answer.json()["usage"]["total_tokens"]
        # The tokens are added once the response has closed: wait for them, as the next request would see them.
        wait_until(lambda used=used: me(keyed, "tpm")["usage"]["tokens_this_minute"] == used)
    else:
        pytest.fail("the token budget never ran out")
    assert used >= 10


def test_max_concurrent_requests(keyed, fake_ollama):
    fake_ollama.reset_peak()
    done = {}

    def slow():
        body = chat_body(text="[[slow 4 0.3]]", stream=True)
        with requests.post(keyed.url + "/v1/chat/completions", json=body, headers=auth("single"), timeout=10) as answer:
            done["status"], done["text"] = answer.status_code, answer.text

    worker = threading.Thread(target=slow)
    worker.start()
    try:
        wait_until(lambda: fake_ollama.chat_active >= 1)
        with requests.post(keyed.url + "/v1/chat/completions", json=chat_body(), headers=auth("single"),
                           timeout=5) as refused:
            assert refused.status_code == 429, refused.text
            assert refused.json()["error"]["code"] == "concurrency_limit_exceeded"
            assert refused.headers["Retry-After"] == "1"
        with requests.post(keyed.url + "/v1/chat/completions", json=chat_body(), headers=auth("plain"),
                           timeout=5) as other:
            assert other.status_code == 200, "another key is not held back"
    finally:
        worker.join(10)
    assert done["status"] == 200 and "[DONE]" in done["text"]

    def served():
        with requests.post(keyed.url + "/v1/chat/completions", json=chat_body(), headers=auth("single"),
                           timeout=5) as answer:
            return answer.status_code == 200

    wait_until(served, timeout=5, step=0.1)  # the slot is free once the stream has closed


def test_keys_me_shows_name_limits_and_usage_never_the_key(keyed):
    fresh_window(60, 5)
    with requests.get(keyed.url + "/v1/models", headers=auth("ops"), timeout=5) as answer:
        assert answer.status_code == 200

    def idle():  # the request's slot is freed once its response has closed, just after the client has it
        answer = me(keyed, "ops")
        return answer if answer["usage"]["in_flight"] == 0 else None

    body = wait_until(idle)  # 0 at last: /v1/keys/me itself is not counted against the key's limits
    assert body["name"] == "ops" and body["admin"] is True
    assert (body["rpm"], body["tpm"], body["max_concurrent"], body["models"]) == (None, None, None, None)
    usage = body["usage"]
    assert usage["requests_this_minute"] >= 1 and 1 <= usage["minute_resets_in_seconds"] <= 60
    team = me(keyed, "team-a")
    assert team["models"] == ["llama3.2*", "plugin:*"] and team["admin"] is False
    with requests.get(keyed.url + "/v1/keys/me", headers=auth("ops"), timeout=5) as answer:
        assert SECRETS["ops"] not in answer.text and OPS_DIGEST not in answer.text
    with requests.get(keyed.url + "/v1/keys/me", headers={"X-API-Key": "sk-nope"}, timeout=5) as answer:
        assert answer.status_code == 401


def test_rejections_are_counted_by_key_and_limit(fake_ollama, tmp_path):
    path = tmp_path / "llamagate.yaml"
    path.write_text(f"keys:\n  - {{name: counted, key: {SECRETS['rpm3']}, rpm: 1}}\n")
    settings = load_settings({"ENV_FILE": "", "CONFIG_FILE": str(path)},
                             overrides={"RATE_LIMIT_RPS": "0", "OLLAMA_HOST": fake_ollama.url})
    client = create_app(settings=settings).test_client()
    before = RATE_LIMITED.labels("counted", "requests")._value.get()
    fresh_window(60, 5)
    statuses = [client.get("/v1/models", headers=auth("rpm3")).status_code for _ in range(3)]
    assert statuses == [200, 429, 429]
    assert RATE_LIMITED.labels("counted", "requests")._value.get() == before + 2


# -- revocation ----------------------------------------------------------------------------------------------


def test_a_removed_key_stops_working_after_sighup(start_gateway, tmp_path):
    path = tmp_path / "llamagate.yaml"
    path.write_text(f"keys:\n  - {{name: stays, key: {SECRETS['plain']}}}\n  - {{name: goes, key: {SECRETS['rpm3']}}}\n")
    gateway = start_gateway(CONFIG_FILE=str(path))
    try:
        for name in ("plain", "rpm3"):
            with requests.get(gateway.url + "/v1/models", headers=auth(name), timeout=5) as answer:
                assert answer.status_code == 200
        path.write_text(f"keys:\n  - {{name: stays, key: {SECRETS['plain']}}}\n")
        gateway.process.send_signal(signal.SIGHUP)

        def revoked():
            with requests.get(gateway.url + "/v1/models", headers=auth("rpm3"), timeout=5) as answer:
                return answer.status_code == 401

        wait_until(revoked, timeout=20, step=0.2)
        with requests.get(gateway.url + "/v1/models", headers=auth("plain"), timeout=5) as answer:
            assert answer.status_code == 200
    finally:
        gateway.stop()


# -- shared counts (Redis) ---------------------------------------------------------------------------------


def burst(urls: list[str], count: int, headers: dict) -> tuple[list[int], float, float]:
    """`count` GETs spread over `urls`, sent at once; the statuses and when the burst started and ended."""
    def one(index: int) -> int:
        with requests.get(urls[index % len(urls)] + "/v1/models", headers=headers, timeout=10) as answer:
            return answer.status_code

    with ThreadPoolExecutor(max_workers=count) as pool:
        started = time.time()
        statuses = list(pool.map(one, range(count)))
        ended = time.time()
    return statuses, started, ended


def test_limits_are_exact_across_workers_and_instances(start_gateway, keys_file, redis_server):
    settings = {"WORKERS": "2", "RATE_LIMIT_RPS": "5", "RATE_LIMIT_SCOPE": "global", "CONFIG_FILE": str(keys_file),
                "RATE_LIMIT_STORAGE_URI": redis_server.url}
    gateways = [start_gateway(**settings), start_gateway(**settings)]
    try:
        urls = [gateway.url for gateway in gateways]
        for _attempt in range(4):  # a burst that straddles two windows proves nothing: try again
            fresh_window(1, 0.99)  # at the start of a second
            statuses, started, ended = burst(urls, 20, auth("plain"))
            if int(started) == int(ended):
                break
        else:
            pytest.fail("no burst of 20 requests fitted in one second")
        assert statuses.count(200) == 5 and statuses.count(429) == 15, statuses

        fresh_window(60, 15)
        fresh_window(1, 1)  # a second the burst did not use
        statuses = []
        for index in range(8):  # 4 a second at most: under RATE_LIMIT_RPS, over the key's rpm of 4
            with requests.get(urls[index % 2] + "/v1/models", headers=auth("rpm4"), timeout=5) as answer:
                statuses.append(answer.status_code)
            time.sleep(0.25)
        assert statuses == [200] * 4 + [429] * 4
    finally:
        for gateway in gateways:
            gateway.stop()


def restart_redis(server) -> None:
    """A new redis-server on the stopped one's port, handed to the fixture so that it is stopped at the end."""
    server.process = subprocess.Popen(["redis-server", "--port", str(server.port), "--bind", "127.0.0.1",
                                       "--save", "", "--appendonly", "no"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: subprocess.run(["redis-cli", "-p", str(server.port), "ping"], capture_output=True,
                                      text=True).stdout.strip() == "PONG", timeout=10, step=0.1)


def test_a_redis_outage_lets_requests_through_with_one_warning_and_recovers(start_gateway, keys_file, redis_server):
    gateway = start_gateway(CONFIG_FILE=str(keys_file), RATE_LIMIT_STORAGE_URI=redis_server.url)
    try:
        fresh_window(60, 25)
        with requests.get(gateway.url + "/v1/models", headers=auth("rpm4"), timeout=5) as answer:
            assert answer.status_code == 200 and answer.headers["x-ratelimit-remaining-requests"] == "3"
        redis_server.stop()
        started = time.monotonic()
        for _ in range(8):
            with requests.post(gateway.url + "/v1/chat/completions", json=chat_body(), headers=auth("rpm4"),
                               timeout=5) as answer:
                assert answer.status_code == 200, answer.text
        assert time.monotonic() - started < 4
        down = "rate limit storage is unreachable; requests are allowed until it is back"
        warning = gateway.wait_for_log(lambda e: e["message"] == down)
        assert warning["level"] == "warning"
        assert [e["message"] for e in gateway.log_lines()].count(down) == 1

        restart_redis(redis_server)
        time.sleep(1.1)  # the back-off before the next try

        def counted():
            with requests.get(gateway.url + "/v1/models", headers=auth("rpm4"), timeout=5) as answer:
                assert answer.status_code == 200
                return "x-ratelimit-remaining-requests" in answer.headers

        wait_until(counted, timeout=5, step=0.2)
        back = gateway.wait_for_log(lambda e: e["message"] == "rate limit storage is reachable again")
        assert back["level"] == "info"
        statuses = []
        for _ in range(5):  # the restarted Redis counts from zero: 4 in all since the recovery
            with requests.get(gateway.url + "/v1/models", headers=auth("rpm4"), timeout=5) as answer:
                statuses.append(answer.status_code)
        assert statuses == [200, 200, 200, 429, 429]
    finally:
        gateway.stop()
