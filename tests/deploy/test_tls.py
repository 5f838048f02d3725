"""Native TLS under gunicorn from TLS_ENABLED/TLS_CERT_FILE/TLS_KEY_FILE, called with the OpenAI SDK."""

from __future__ import annotations

import ssl
import subprocess

import httpx
import pytest
from openai import OpenAI

from tests.deploy.helpers import chat_body
from tests.deploy.helpers import timed_events
from tests.gateway import GUNICORN
from tests.gateway import ROOT
from tests.gateway import clean_env


@pytest.fixture(scope="module")
def tls_gateway(start_gateway, certificate):
    cert, key = certificate
    return start_gateway(TLS_ENABLED="true", TLS_CERT_FILE=str(cert), TLS_KEY_FILE=str(key))


@pytest.fixture()
def verified(certificate):
    """An HTTP client that trusts only the test certificate."""
    with httpx.Client(verify=ssl.create_default_context(cafile=str(certificate[0])), timeout=20) as client:
        yield client


def test_the_sdk_over_https_verifying_the_certificate(tls_gateway, verified):
    assert tls_gateway.url.startswith("https://")
    sdk = OpenAI(base_url=tls_gateway.url + "/v1", api_key="unused", http_client=verified, max_retries=0)
    reply = sdk.chat.completions.create(model="llama3.2", messages=[{"role": "user", "content": "secure"}])
    assert reply.choices[0].message.content == "Hello! You said: secure"
    assert [m.id for m in sdk.models.list()][:1] == ["llama3.2:latest"]


def test_a_stream_over_https_is_incremental(tls_gateway, verified):
    sdk = OpenAI(base_url=tls_gateway.url + "/v1", api_key="unused", http_client=verified, max_retries=0)
    chunks = list(sdk.chat.completions.create(model="llama3.2", stream=True,
                                              messages=[{"role": "user", "content": "[[slow 4 0.05]]"}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "tok0 tok1 tok2 tok3 "
    assert chunks[-1].choices[0].finish_reason == "stop"
    _, events = timed_events(verified, tls_gateway.url + "/v1/chat/completions", chat_body("[[slow 4 0.3]]", True))
    assert events[0][0] < 0.6 and events[-1][0] - events[0][0] > 0.6


def test_a_client_that_does_not_trust_the_certificate_is_refused(tls_gateway):
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(tls_gateway.url + "/health/live", verify=ssl.create_default_context())


def test_plain_http_to_the_tls_port_gets_no_answer(tls_gateway):
    with pytest.raises(httpx.TransportError):
        httpx.get(tls_gateway.url.replace("https://", "http://") + "/health/live", timeout=3)


def test_tls_without_its_files_stops_start_up_with_one_line(tmp_path):
    result = subprocess.run(GUNICORN, cwd=ROOT, env=clean_env({"TLS_ENABLED": "true", "TLS_CERT_FILE": "",
                                                               "PORT": "1"}), capture_output=True, timeout=20)
    assert result.returncode == 2
    assert result.stderr.decode().strip() == ("llamagate: invalid setting TLS_CERT_FILE='': "
                                              "is required when TLS_ENABLED=true")
