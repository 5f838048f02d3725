"""deploy/nginx/llamagate.conf for real: nginx in front of a gunicorn gateway that trusts one proxy hop."""

from __future__ import annotations

import uuid

import pytest

from tests.deploy.helpers import chat_body
from tests.deploy.helpers import streamed_text
from tests.deploy.helpers import timed_events


@pytest.fixture(scope="module")
def behind_nginx(start_gateway, start_nginx):
    gateway = start_gateway(TRUSTED_PROXIES="1")
    server = start_nginx(gateway.port)
    return gateway, f"http://127.0.0.1:{server.port}", server


def test_config_is_clean(behind_nginx):
    assert behind_nginx[2].warnings == ""


def test_completion_and_client_address_through_nginx(behind_nginx, client_from):
    gateway, url, _ = behind_nginx
    request_id = uuid.uuid4().hex
    http = client_from("127.0.0.21")
    reply = http.post(url + "/v1/chat/completions", json=chat_body("hi"), headers={"X-Request-ID": request_id})
    assert reply.json()["choices"][0]["message"]["content"] == "Hello! You said: hi"
    line = gateway.wait_for_log(lambda e: e.get("message") == "HTTP request" and e.get("request_id") == request_id)
    assert line["ip"] == "127.0.0.21"
    assert http.get(url + "/health/live").json() == {"status": "alive"}
    other = http.get(url + "/admin")  # only /v1/ and /health reach the gateway
    assert other.status_code in (403, 404) and "x-request-id" not in other.headers


def test_a_stream_arrives_incrementally_and_uncompressed(behind_nginx, client_from):
    _, url, _ = behind_nginx
    http = client_from("127.0.0.22", headers={"Accept-Encoding": "gzip"})
    response, events = timed_events(http, url + "/v1/chat/completions", chat_body("[[slow 5 0.3]]", True))
    assert response.status_code == 200 and "content-encoding" not in response.headers
    assert streamed_text(events) == "tok0 tok1 tok2 tok3 tok4 " and events[-1][1] == "[DONE]"
    first, last = events[0][0], events[-1][0]
    assert first < 0.6 and last - first > 1.0, (first, last)
