"""deploy/apache/llamagate.conf for real: Apache httpd in front of gunicorn gateways, over loopback.

Clients connect from other loopback addresses (127.0.0.2, ...), so the address the gateway records
tells the client (forwarded, trusted) from Apache itself (127.0.0.1, the socket peer).
"""

from __future__ import annotations

import ssl
import uuid

import pytest
from openai import OpenAI

from tests.deploy.helpers import chat_body
from tests.deploy.helpers import free_port
from tests.deploy.helpers import streamed_text
from tests.deploy.helpers import timed_events

KEY = "apache-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def trusted(start_gateway):
    return start_gateway(TRUSTED_PROXIES="127.0.0.1, ::1", API_KEY=KEY, RATE_LIMIT_RPS="2")


@pytest.fixture(scope="module")
def untrusted(start_gateway):
    return start_gateway(API_KEY=KEY, RATE_LIMIT_RPS="0.1")  # 1 request per 10 s: no slow moment opens a new window


@pytest.fixture(scope="module")
def apache(start_apache, trusted, untrusted):
    """One Apache, the site file included once per gateway: `.urls["trusted"]`, `.urls["untrusted"]`."""
    ports = {"trusted": free_port(), "untrusted": free_port()}
    server = start_apache({ports["trusted"]: trusted.url, ports["untrusted"]: untrusted.url})
    server.urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    return server


def access_line(gateway, request_id: str) -> dict:
    return gateway.wait_for_log(lambda e: e.get("message") == "HTTP request" and e.get("request_id") == request_id)


def test_config_is_clean(apache):
    assert "AH0" not in apache.warnings, apache.warnings


def test_a_completion_and_health_through_apache(apache, client_from):
    http = client_from("127.0.0.2")
    sdk = OpenAI(base_url=apache.urls["trusted"] + "/v1", api_key=KEY, http_client=http, max_retries=0)
    reply = sdk.chat.completions.create(model="llama3.2", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "Hello! You said: hi"
    assert http.get(apache.urls["trusted"] + "/health").json()["status"] == "healthy"
    assert http.get(apache.urls["trusted"] + "/health/live").json() == {"status": "alive"}
    assert http.get(apache.urls["trusted"] + "/server-status").status_code == 404  # only /v1 and /health go through


def test_a_stream_arrives_incrementally_and_uncompressed(apache, client_from):
    http = client_from("127.0.0.3", headers={"Accept-Encoding": "gzip, deflate"})
    response, events = timed_events(http, apache.urls["trusted"] + "/v1/chat/completions",
                                    chat_body("[[slow 5 0.3]]", True), AUTH)
    assert response.status_code == 200 and events[-1][1] == "[DONE]"
    assert response.headers["content-type"].startswith("text/event-stream")
    assert "content-encoding" not in response.headers
    assert streamed_text(events) == "tok0 tok1 tok2 tok3 tok4 "
    first, last = events[0][0], events[-1][0]
    assert first < 0.6, f"first event after {first:.2f}s: buffered"
    assert last - first > 1.0, f"events arrived together ({first:.2f}s .. {last:.2f}s): buffered"


def test_auth_errors_pass_through(apache, client_from):
    http = client_from("127.0.0.4")  # two requests: within this client's 2 per second
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = http.get(apache.urls["trusted"] + "/v1/models", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
    keyed = client_from("127.0.0.12").get(apache.urls["trusted"] + "/v1/models", headers={"X-API-Key": KEY})
    assert keyed.status_code == 200


def test_429_passes_through_and_counts_per_forwarded_client(apache, client_from):
    flooder = client_from("127.0.0.5")
    statuses = [flooder.get(apache.urls["trusted"] + "/v1/models", headers=AUTH) for _ in range(6)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited, [r.status_code for r in statuses]
    assert int(limited[0].headers["Retry-After"]) >= 1
    assert limited[0].json()["error"]["type"] == "rate_limit_error"
    assert "x-ratelimit-limit-requests" in statuses[0].headers
    # Another client behind the same proxy has its own bucket, because the proxy is trusted.
    assert client_from("127.0.0.6").get(apache.urls["trusted"] + "/v1/models", headers=AUTH).status_code == 200


def test_trusted_proxy_the_gateway_sees_the_client_not_a_spoofed_header(apache, trusted, client_from):
    request_id = uuid.uuid4().hex
    http = client_from("127.0.0.7")
    response = http.get(apache.urls["trusted"] + "/v1/models",
                        headers={**AUTH, "X-Request-ID": request_id, "X-Forwarded-For": "203.0.113.7"})
    assert response.status_code == 200
    assert access_line(trusted, request_id)["ip"] == "127.0.0.7"


def test_direct_clients_cannot_spoof_their_address(trusted, client_from):
    request_id = uuid.uuid4().hex
    spoofed = {**AUTH, "X-Request-ID": request_id, "X-Forwarded-For": "203.0.113.7"}
    response = client_from("127.0.0.8").get(trusted.url + "/v1/models", headers=spoofed)
    assert response.status_code == 200
    assert access_line(trusted, request_id)["ip"] == "127.0.0.8"


def test_untrusted_proxy_forwarded_headers_are_ignored(apache, untrusted, client_from):
    request_id = uuid.uuid4().hex
    first = client_from("127.0.0.9").get(apache.urls["untrusted"] + "/v1/models",
                                         headers={**AUTH, "X-Request-ID": request_id})
    assert first.status_code == 200
    assert access_line(untrusted, request_id)["ip"] == "127.0.0.1"  # Apache's address
    # Every client behind the untrusted proxy shares Apache's bucket.
    second = client_from("127.0.0.10").get(apache.urls["untrusted"] + "/v1/models", headers=AUTH)
    assert second.status_code == 429


def test_apache_terminates_tls(start_apache, trusted, certificate, client_from):
    port = free_port()
    start_apache({port: trusted.url}, tls=certificate)
    http = client_from("127.0.0.11", verify=ssl.create_default_context(cafile=str(certificate[0])))
    sdk = OpenAI(base_url=f"https://127.0.0.1:{port}/v1", api_key=KEY, http_client=http, max_retries=0)
    reply = sdk.chat.completions.create(model="llama3.2", messages=[{"role": "user", "content": "over tls"}])
    assert reply.choices[0].message.content == "Hello! You said: over tls"
    chunks = list(sdk.chat.completions.create(model="llama3.2", stream=True,
                                              messages=[{"role": "user", "content": "[[slow 3 0.05]]"}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "tok0 tok1 tok2 "
