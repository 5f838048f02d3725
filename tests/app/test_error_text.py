"""Upstream error text as a client sees it: pages reduced to their title or visible text, cut, secrets and
addresses out; Ollama's own `{"error"}` messages as they are."""

from __future__ import annotations

import json

import pytest

from app.upstream.error_text import CLIENT_LIMIT
from app.upstream.error_text import client_text
from app.upstream.error_text import ollama_error
from app.upstream.error_text import without_addresses
from app.upstream.ollama import ollama_message


def test_a_page_with_a_title_is_its_title():
    page = "<html><head><title>502 Bad &amp; Gateway</title></head><body><p>secret stuff</p></body></html>"
    assert client_text(page, ()) == "502 Bad & Gateway"


def test_a_page_without_a_title_is_its_visible_text_in_one_line():
    page = ("<!doctype html><html><head><style>p {color: red}</style><script>var k = 1;</script></head>"
            "<body><h1>Oops</h1>\n\n  <p>the   server\tfailed</p><!-- hidden --></body></html>")
    assert client_text(page, ()) == "Oops the server failed"


@pytest.mark.parametrize(("text", "gone"), [
    ("failed: Authorization: Bearer abc.def-123", "abc.def-123"),
    ("key sk-abcdefghijklmnop0123 refused", "sk-abcdefghijklmnop0123"),
    ("GET /x?api_key=k3y&token=t0ken&password=pw", "k3y"),
    ("GET /x?api_key=k3y&token=t0ken&password=pw", "t0ken"),
    ("GET /x?api_key=k3y&token=t0ken&password=pw", "pw"),
    ("proxy at https://user:s3cret@proxy.internal failed", "s3cret"),
    ("the gateway key gw-own-key-1234 leaked", "gw-own-key-1234"),
])
def test_secrets_are_redacted(text, gone):
    cleaned = client_text(text, ["gw-own-key-1234"])
    assert gone not in cleaned and "[REDACTED]" in cleaned


def test_long_text_is_cut():
    cleaned = client_text("word " * 1000, ())
    assert len(cleaned) == CLIENT_LIMIT and cleaned.endswith("…")


@pytest.mark.parametrize("text", ["upstream http://10.0.0.5:11434/api/chat failed", "dial 10.0.0.5:11434 refused",
                                  "gpu-1.internal:11434 is down", "at [fd00::1]:11434",
                                  "localhost:11434 refused"])
def test_addresses_are_replaced(text):
    cleaned = without_addresses(text)
    assert "11434" not in cleaned and "[address]" in cleaned


@pytest.mark.parametrize("message", ["model 'llama9' not found, try pulling it first",
                                     "registry.ollama.ai/library/llama3.2:latest does not support tools",
                                     'option "num_predict" must be of type integer'])
def test_ollama_own_errors_stay_as_they_are(message):
    assert ollama_error(message) == message
    assert ollama_message(json.dumps({"error": message})) == message


def test_an_ollama_error_holding_a_page_is_reduced_like_one():
    assert ollama_error("<html><title>Bad</title><p>http://10.0.0.5:1/x</p></html>") == "Bad"


def test_a_body_that_is_not_ollamas_error_is_not_taken_for_one():
    assert ollama_message("<html></html>") is None and ollama_message('{"detail": "x"}') is None


def test_the_gateway_own_keys_are_known_inside_the_app(make_app):
    app = make_app(API_KEY="own-api-key-0001", ADMIN_API_KEY="own-admin-key-0002")
    with app.app_context():
        cleaned = client_text("proxy echoed own-api-key-0001 and own-admin-key-0002")
        from_ollama_line = ollama_error("bad key own-api-key-0001")
    assert "own-api-key" not in cleaned and "own-admin-key" not in cleaned and cleaned.count("[REDACTED]") == 2
    assert from_ollama_line == "bad key [REDACTED]"
