"""CORS: a browser's preflight and request over real HTTP against gunicorn, and the CORS_ORIGINS setting."""

from __future__ import annotations

import subprocess

import pytest
import requests

from app import create_app
from app.settings import ConfigError
from app.settings import load_settings
from tests.conftest import BASE_SETTINGS
from tests.gateway import GUNICORN
from tests.gateway import ROOT
from tests.gateway import clean_env

KEY = "sk-cors-0123456789"
ORIGIN = "https://chat.example.com"
ORIGINS = f"{ORIGIN}, http://localhost:3000"
CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}
PREFLIGHT = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os"}
EXPOSED = {"x-request-id", "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
           "x-ratelimit-reset-requests", "retry-after", "x-cache", "x-llamagate-run-id"}


@pytest.fixture(scope="module")
def limited(start_gateway):
    """CORS for two origins, behind a key, one request per second."""
    return start_gateway(CORS_ORIGINS=ORIGINS, API_KEY=KEY, RATE_LIMIT_RPS="1")


@pytest.fixture(scope="module")
def listed(start_gateway):
    return start_gateway(CORS_ORIGINS=ORIGINS, API_KEY=KEY)


def cors_headers(response: requests.Response) -> dict:
    return {name.lower(): value for name, value in response.headers.items() if name.lower().startswith("access-control-")}


def names(value: str) -> set[str]:
    return {part.strip().lower() for part in value.split(",") if part.strip()}


def test_preflights_need_no_key_and_do_not_use_up_the_rate_limit(limited):
    for _ in range(5):
        preflight = requests.options(limited.url + "/v1/chat/completions", headers=PREFLIGHT, timeout=5)
        assert preflight.status_code in (200, 204)
        headers = cors_headers(preflight)
        assert headers["access-control-allow-origin"] == ORIGIN
        assert "post" in names(headers["access-control-allow-methods"])
        assert {"authorization", "content-type", "x-stainless-os"} <= names(headers["access-control-allow-headers"])
        assert int(headers["access-control-max-age"]) > 0
        assert "x-ratelimit-remaining-requests" not in preflight.headers  # not counted
    answer = requests.post(limited.url + "/v1/chat/completions", json=CHAT, timeout=10,
                           headers={"Origin": ORIGIN, "Authorization": f"Bearer {KEY}", "X-Stainless-OS": "Linux"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert EXPOSED <= names(answer.headers["Access-Control-Expose-Headers"])
    assert answer.headers["x-ratelimit-limit-requests"] == "1"
    assert "origin" in names(answer.headers.get("Vary", ""))


def test_only_the_listed_headers_are_allowed(listed):
    headers = {**PREFLIGHT, "Access-Control-Request-Headers": "x-api-key, x-request-id, x-stainless-retry-count, x-evil"}
    preflight = requests.options(listed.url + "/v1/models", headers=headers, timeout=5)
    assert names(cors_headers(preflight)["access-control-allow-headers"]) == {
        "x-api-key", "x-request-id", "x-stainless-retry-count"}


def test_errors_carry_cors_headers_so_the_page_can_read_them(listed):
    refused = requests.post(listed.url + "/v1/chat/completions", json=CHAT, headers={"Origin": ORIGIN}, timeout=5)
    assert refused.status_code == 401
    assert refused.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert refused.json()["error"]["code"] == "invalid_api_key"


def test_second_listed_origin(listed):
    answer = requests.get(listed.url + "/v1/models", headers={"Origin": "http://localhost:3000", "X-API-Key": KEY},
                          timeout=5)
    assert answer.status_code == 200 and answer.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"


@pytest.mark.parametrize("origin", ["https://evil.example.com", "http://localhost:3001", "http://chat.example.com"])
def test_an_origin_not_in_the_list_gets_no_cors_headers(listed, origin):
    preflight = requests.options(listed.url + "/v1/chat/completions", headers={**PREFLIGHT, "Origin": origin},
                                 timeout=5)
    assert preflight.status_code in (200, 204) and cors_headers(preflight) == {}
    answer = requests.get(listed.url + "/v1/models", headers={"Origin": origin, "X-API-Key": KEY}, timeout=5)
    assert answer.status_code == 200 and cors_headers(answer) == {}


def test_a_request_without_origin_gets_no_cors_headers(listed):
    answer = requests.get(listed.url + "/v1/models", headers={"X-API-Key": KEY}, timeout=5)
    assert answer.status_code == 200 and cors_headers(answer) == {}


def test_any_origin_with_star(start_gateway):
    gateway = start_gateway(CORS_ORIGINS="*")
    preflight = requests.options(gateway.url + "/v1/embeddings", headers={**PREFLIGHT, "Origin": "https://a.test"},
                                 timeout=5)
    assert preflight.status_code in (200, 204) and cors_headers(preflight)["access-control-allow-origin"] == "*"
    answer = requests.get(gateway.url + "/v1/models", headers={"Origin": "https://b.test"}, timeout=5)
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert "origin" not in names(answer.headers.get("Vary", ""))


def test_cors_off_by_default_sends_no_cors_header(gateway):
    preflight = requests.options(gateway.url + "/v1/chat/completions", headers=PREFLIGHT, timeout=5)
    assert cors_headers(preflight) == {}
    answer = requests.get(gateway.url + "/v1/models", headers={"Origin": ORIGIN}, timeout=5)
    assert answer.status_code == 200 and cors_headers(answer) == {}


def test_a_bad_cors_origins_stops_start_up_with_one_line():
    result = subprocess.run(GUNICORN, cwd=ROOT, env=clean_env({"CORS_ORIGINS": "https://chat.example.com/"}),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llamagate: invalid setting CORS_ORIGINS='https://chat.example.com/'")
    assert "scheme://host[:port]" in lines[0]


@pytest.mark.parametrize(("value", "message"), [
    ("chat.example.com", "'chat.example.com' is not one"),
    ("https://chat.example.com/app", "'https://chat.example.com/app' is not one"),
    ("*, https://chat.example.com", "* stands alone"),
    ("https://a.example.com,,https://b.example.com", "an entry is empty"),
    ("http://localhost:99999", "'http://localhost:99999' is not one"),
    ("https://user:hunter2@chat.example.com", "no user@ part"),
])
def test_bad_origins_name_the_rule(value, message):
    with pytest.raises(ConfigError) as caught:
        load_settings({"ENV_FILE": "", "CONFIG_FILE": "", "CORS_ORIGINS": value})
    text = str(caught.value)
    assert text.startswith("invalid setting CORS_ORIGINS=") and message in text and "\n" not in text
    assert "hunter2" not in text


@pytest.mark.parametrize("value", ["", "*", "https://chat.example.com", "http://localhost:3000, http://[::1]:8080",
                                   "app://desktop"])
def test_good_origins(value):
    assert load_settings({"ENV_FILE": "", "CONFIG_FILE": "", "CORS_ORIGINS": value})["CORS_ORIGINS"] == value.strip()


def test_cors_off_registers_no_hook():
    def hooks(**settings):
        app = create_app(settings=load_settings({"ENV_FILE": "", "CONFIG_FILE": ""},
                                                overrides={**BASE_SETTINGS, **settings}))
        return app.before_request_funcs[None], app.after_request_funcs[None]

    (before_off, after_off), (before_on, after_on) = hooks(), hooks(CORS_ORIGINS="*")
    assert (len(before_on), len(after_on)) == (len(before_off) + 1, len(after_off) + 1)
    assert not any(hook.__module__.startswith(("flask_cors", "app.cors")) for hook in before_off + after_off)
