"""Plugins through a real gateway: their tools beside MCP tools, routes, models, failed plugins, the admin API,
safe mode and entry points (OpenAI SDK and raw HTTP → gunicorn → fake Ollama)."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path

import openai
import pytest
import requests
import yaml

from tests.gateway import ROOT

KEY = "sk-plugins-0123456789abcdef"
ADMIN = "sk-plugins-admin-0123456789"
SECRETS = ("sk-plugin-config-secret-4242", "tok-plugin-config-secret-4242")
BASIC_SERVER = ROOT / "tests" / "mcp" / "servers" / "basic.py"

CALC = '''
import time

from app.plugins import Tool

NUMBERS = {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}


class Plugin:
    def tools(self):
        return [Tool("add", "Add two numbers", NUMBERS, lambda arguments, ctx: arguments["a"] + arguments["b"]),
                Tool("explode", "Always fails", {"type": "object", "properties": {}}, self.explode),
                Tool("hang", "Takes too long", {"type": "object", "properties": {}}, self.hang)]

    def explode(self, arguments, ctx):
        raise RuntimeError("the calculator exploded")

    def hang(self, arguments, ctx):
        time.sleep(8)
        return "too late"
'''

HELLO = '''
from pathlib import Path

from flask import Blueprint
from flask import jsonify
from flask import send_file
from flask import url_for


class Plugin:
    def blueprint(self):
        bp = Blueprint("hello", __name__)

        @bp.get("/ping")
        def ping():
            return jsonify({"pong": True, "plugin": "hello"})

        @bp.get("/boom")
        def boom():
            raise RuntimeError("the route exploded")

        @bp.get("/page")
        def page():  # a file answer: the server may hand it to the kernel's sendfile
            return send_file(Path(__file__).with_name("page.html"))

        @bp.get("/items/<path:item>")
        def item(item):  # a page linking to itself and to a sibling: URLs built by the gateway's routing
            return jsonify({"self": url_for(".item", item=item), "next": url_for(".item", item=item + "/more", n=2)})

        return bp
'''

PAGE = "<!doctype html><title>hello</title>" + "<p>a plugin's own page</p>" * 500  # served by HELLO's /page

ECHO = '''
import re


class Plugin:
    def chat(self, ctx, request):
        text = request["messages"][-1]["content"]
        if "fail-early" in text:
            return self.early()
        if "fail-late" in text:
            return self.late()
        if ctx.stream:
            return self.pieces(text)
        return "echo: " + text

    def pieces(self, text):
        yield "echo: "
        yield from re.findall(r"\\s*\\S+", text)

    def early(self):
        raise RuntimeError("no answer today")
        yield "never"

    def late(self):
        yield "one "
        yield "two "
        raise RuntimeError("ran out of words")
'''

UPPER = '''
class Plugin:
    def on_response(self, ctx, response):
        for choice in response["choices"]:
            content = choice["message"].get("content")
            if isinstance(content, str) and "please shout" in content.lower():
                choice["message"]["content"] = content.upper()
        return response
'''

BROKEN_IMPORT = "raise RuntimeError('cannot import me')\n"

BROKEN_SETUP = '''
from flask import Blueprint


class Plugin:
    def setup(self, config):
        raise ValueError("setup refused")

    def blueprint(self):
        return Blueprint("broken_setup", __name__)

    def chat(self, ctx, request):
        return "never"
'''


def write_config(folder: Path, plugins: dict[str, str], section: dict, **extra) -> Path:
    """Plugin files `<folder>/plugins/<name>.py` and `<folder>/llamagate.yaml` with `section` as `plugins:`."""
    (folder / "plugins").mkdir(parents=True, exist_ok=True)
    for name, text in plugins.items():
        (folder / "plugins" / f"{name}.py").write_text(textwrap.dedent(text))
    config = folder / "llamagate.yaml"
    config.write_text(yaml.safe_dump({"plugins": {"dirs": [str(folder / "plugins")], **section}, **extra}))
    return config


def chat_body(content: str, model: str = "llama3.2", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def offered(fake_ollama) -> list[str]:
    return [t["function"]["name"] for t in fake_ollama.last().get("tools") or []]


def events(response) -> list[str]:
    return [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]


def wait_for_output(gateway, text: str, timeout: float = 5.0) -> None:
    """Wait until the gateway's output holds `text` (searched as text: tracebacks are not all JSON lines)."""
    deadline = time.monotonic() + timeout
    while text not in gateway.output():
        assert time.monotonic() < deadline, f"{text!r} not in:\n{gateway.output()[-3000:]}"
        time.sleep(0.05)


def assert_envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code and isinstance(error["message"], str) and error["message"]
    assert {"type", "param"} <= set(error)
    return error


# -- the main gateway: API key, admin key, rate limit, an MCP server and six plugins ------------------


@pytest.fixture(scope="module")
def gw(start_gateway, fake_ollama, tmp_path_factory):
    folder = tmp_path_factory.mktemp("plugins-main")
    items = [
        {"name": "calc", "timeout": "1s", "priority": 5,
         "config": {"api_key": SECRETS[0], "token": SECRETS[1], "label": "visible"}},
        {"name": "hello"}, {"name": "echo"}, {"name": "upper"}, {"name": "broken_import"}, {"name": "broken_setup"},
    ]
    mcp = {"servers": [{"name": "tools", "transport": "stdio", "command": sys.executable, "args": [str(BASIC_SERVER)]}]}
    config = write_config(folder, {"calc": CALC, "hello": HELLO, "echo": ECHO, "upper": UPPER,
                                   "broken_import": BROKEN_IMPORT, "broken_setup": BROKEN_SETUP},
                          {"items": items}, mcp=mcp)
    (folder / "plugins" / "page.html").write_text(PAGE)
    gateway = start_gateway(CONFIG_FILE=str(config), RATE_LIMIT_RPS="100", API_KEY=KEY, ADMIN_API_KEY=ADMIN)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the MCP server connects in the background
        requests.post(gateway.url + "/v1/chat/completions", json=chat_body("x"), headers={"X-API-Key": KEY}, timeout=10)
        if {"tools__echo", "calc__add"} <= set(offered(fake_ollama)):
            return gateway
        time.sleep(0.3)
    raise AssertionError(f"the MCP server did not come up:\n{gateway.output()[-3000:]}")


@pytest.fixture()
def sdk(gw):
    with openai.OpenAI(base_url=gw.url + "/v1", api_key=KEY, max_retries=0, timeout=20) as client:
        yield client


def ask(sdk, content, model="llama3.2", **kwargs):
    return sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": content}], **kwargs)


def get(gw, path, key=KEY, **kwargs):
    headers = {"X-API-Key": key} if key else {}
    return requests.get(gw.url + path, headers={**headers, **kwargs.pop("headers", {})}, timeout=10, **kwargs)


def post(gw, path, key=KEY, **kwargs):
    headers = {"X-API-Key": key} if key else {}
    return requests.post(gw.url + path, headers=headers, timeout=10, **kwargs)


# 1. tools


def test_a_plugin_tool_is_offered_beside_the_mcp_tools(sdk, fake_ollama):
    ask(sdk, "which tools?")
    names = offered(fake_ollama)
    assert {"calc__add", "calc__explode", "calc__hang", "tools__echo", "tools__add"} <= set(names)
    add = next(t for t in fake_ollama.last()["tools"] if t["function"]["name"] == "calc__add")
    assert add["type"] == "function" and add["function"]["description"] == "Add two numbers"
    assert add["function"]["parameters"]["properties"]["a"] == {"type": "number"}


def test_the_model_calls_a_plugin_tool_and_reads_its_result(sdk, fake_ollama):
    answer = ask(sdk, '[[tool calc__add {"a": 2, "b": 3}]]')
    assert answer.choices[0].message.content == "Tool said: 5"
    assert answer.choices[0].finish_reason == "stop"
    sent = fake_ollama.last()["messages"]
    call = sent[-2]["tool_calls"][0]
    assert (call["function"]["name"], call["function"]["arguments"]) == ("calc__add", {"a": 2, "b": 3})
    assert sent[-1] == {"role": "tool", "content": "5", "tool_name": "calc__add", "tool_call_id": call["id"]}


def test_a_plugin_tool_and_an_mcp_tool_in_one_round(sdk, fake_ollama):
    content = '[[tool calc__add {"a": 20, "b": 22}]] [[tool tools__echo {"message": "hi there"}]]'
    before = len(fake_ollama.requests)
    answer = ask(sdk, content, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in answer if c.choices)
    assert text.startswith("Tool said: ")
    chats = [r["body"] for r in fake_ollama.requests[before:] if r["path"] == "/api/chat"]
    assert len(chats) == 2, "both calls were made in the first round and answered in the second request"
    assert len(chats[0]["messages"]) == 1
    results = {m["tool_name"]: m["content"] for m in chats[1]["messages"] if m["role"] == "tool"}
    assert results == {"calc__add": "42", "tools__echo": "hi there"}
    assistant = chats[1]["messages"][-3]
    assert [c["function"]["name"] for c in assistant["tool_calls"]] == ["calc__add", "tools__echo"]


@pytest.mark.parametrize(("tool", "expected"), [
    ("calc__explode", "Error: plugin 'calc' failed in tool explode: RuntimeError: the calculator exploded"),
    ("calc__hang", "Error: plugin 'calc' did not finish tool hang within 1s"),
])
def test_a_failing_or_hanging_tool_is_an_error_text_for_the_model(sdk, fake_ollama, tool, expected):
    started = time.monotonic()
    answer = ask(sdk, f"[[tool {tool} {{}}]]")
    assert answer.choices[0].message.content == f"Tool said: {expected}"
    assert time.monotonic() - started < 6, "the request did not wait for the hanging tool (8 s)"
    assert fake_ollama.last()["messages"][-1]["content"] == expected


# 2. routes


def test_a_plugin_route_behind_the_gateways_request_id_rate_limit_and_key(gw):
    response = get(gw, "/v1/plugins/hello/ping", headers={"X-Request-ID": "plugin-route-1"})
    assert response.status_code == 200 and response.json() == {"pong": True, "plugin": "hello"}
    assert response.headers["X-Request-ID"] == "plugin-route-1"
    assert response.headers["x-ratelimit-limit-requests"] == "100"
    assert int(response.headers["x-ratelimit-remaining-requests"]) < 100
    assert response.headers["x-ratelimit-reset-requests"].endswith("s")
    assert get(gw, "/v1/plugins/hello/ping").headers["X-Request-ID"]


def test_a_plugin_route_answers_with_a_file_on_a_kept_alive_connection(gw):
    with requests.Session() as session:  # the second answer is read only if the first arrived whole and in order
        for _ in range(2):
            response = session.get(gw.url + "/v1/plugins/hello/page", headers={"Authorization": f"Bearer {KEY}"},
                                   timeout=5)
            assert response.status_code == 200 and response.text == PAGE
            assert response.headers["Content-Type"].startswith("text/html")


def test_a_plugin_route_builds_urls_to_its_own_routes(gw):
    response = get(gw, "/v1/plugins/hello/items/a b/c")
    assert response.status_code == 200
    assert response.json() == {"self": "/v1/plugins/hello/items/a%20b/c",
                               "next": "/v1/plugins/hello/items/a%20b/c/more?n=2"}


@pytest.mark.parametrize("key", [None, "wrong"])
def test_a_plugin_route_needs_the_api_key(gw, key):
    response = get(gw, "/v1/plugins/hello/ping", key=key)
    error = assert_envelope(response, 401, "invalid_api_key")
    assert error["type"] == "invalid_request_error" and "pong" not in response.text


def test_the_admin_key_opens_plugin_routes_too(gw):
    assert get(gw, "/v1/plugins/hello/ping", key=ADMIN).status_code == 200


def test_a_route_that_raises_is_a_plugin_error(gw):
    response = get(gw, "/v1/plugins/hello/boom")
    error = assert_envelope(response, 500, "plugin_error")
    assert "hello" in error["message"] and "the route exploded" not in response.text
    assert response.headers["X-Request-ID"]
    wait_for_output(gw, "RuntimeError: the route exploded")  # the traceback is in the log only


@pytest.mark.parametrize(("name", "path"), [("hello", "/nothing/here"), ("hello", "/pingx"), ("echo", "/ping")])
def test_an_unknown_path_under_a_ready_plugin_is_a_404(gw, name, path):
    error = assert_envelope(get(gw, f"/v1/plugins/{name}{path}"), 404, "unknown_url")
    assert name in error["message"]


# 3. models


def test_plugin_models_are_listed_and_found(sdk):
    ids = [m.id for m in sdk.models.list()]
    assert "plugin:echo" in ids and "llama3.2:latest" in ids
    assert not {"plugin:calc", "plugin:broken_setup", "plugin:broken_import"} & set(ids)
    model = sdk.models.retrieve("plugin:echo")
    assert model.id == "plugin:echo" and model.object == "model"


def test_a_plugin_model_answers_whole(sdk, fake_ollama):
    before = len(fake_ollama.requests)
    answer = ask(sdk, "the quick brown fox", model="plugin:echo")
    assert answer.choices[0].message.content == "echo: the quick brown fox"
    assert answer.choices[0].finish_reason == "stop" and answer.model == "plugin:echo"
    assert answer.object == "chat.completion"
    assert len(fake_ollama.requests) == before, "Ollama is not asked"


def test_a_plugin_model_answers_streamed(gw, sdk):
    chunks = list(ask(sdk, "the quick brown fox", model="plugin:echo", stream=True))
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(deltas) == 5 and "".join(deltas) == "echo: the quick brown fox"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert {c.id for c in chunks} == {chunks[0].id} and chunks[0].model == "plugin:echo"
    raw = post(gw, "/v1/chat/completions", json=chat_body("the quick", model="plugin:echo", stream=True))
    assert raw.status_code == 200 and raw.headers["Content-Type"].startswith("text/event-stream")
    assert events(raw)[-1] == "[DONE]"


@pytest.mark.parametrize("stream", [False, True])
def test_a_plugin_model_that_fails_before_its_first_piece_is_a_500(gw, stream):
    response = post(gw, "/v1/chat/completions", json=chat_body("fail-early", model="plugin:echo", stream=stream))
    error = assert_envelope(response, 500, "plugin_error")
    assert "echo" in error["message"] and "chat" in error["message"]


def test_a_plugin_model_that_fails_after_two_pieces_ends_the_stream_with_an_error(gw, sdk):
    response = post(gw, "/v1/chat/completions", json=chat_body("fail-late", model="plugin:echo", stream=True))
    assert response.status_code == 200
    data = events(response)
    assert data[-1] != "[DONE]"
    deltas = [json.loads(d)["choices"][0]["delta"].get("content") for d in data[:-1]]
    assert deltas == ["one ", "two "]
    error = json.loads(data[-1])["error"]
    assert error["code"] == "plugin_error" and "echo" in error["message"]
    with pytest.raises(openai.APIError):
        for _ in ask(sdk, "fail-late", model="plugin:echo", stream=True):
            pass


def test_an_unknown_plugin_model_is_a_404(gw, sdk):
    error = assert_envelope(post(gw, "/v1/chat/completions", json=chat_body("x", model="plugin:nope")), 404,
                            "model_not_found")
    assert error["param"] == "model"
    assert_envelope(get(gw, "/v1/models/plugin:nope"), 404, "model_not_found")
    assert_envelope(get(gw, "/v1/models/plugin:calc"), 404, "model_not_found")  # ready, but not a model
    with pytest.raises(openai.NotFoundError):
        ask(sdk, "x", model="plugin:nope")


# 4. failed plugins


@pytest.mark.parametrize(("name", "last_error"), [
    ("broken_import", "import failed: RuntimeError: cannot import me"),
    ("broken_setup", "plugin 'broken_setup' failed in setup: ValueError: setup refused"),
])
def test_a_plugin_that_failed_to_start_is_listed_as_failed(gw, name, last_error):
    shown = get(gw, f"/v1/plugins/{name}", key=ADMIN).json()
    assert (shown["status"], shown["last_error"]) == ("failed", last_error)
    assert (shown["hooks"], shown["tools"], shown["models"]) == ([], [], [])
    assert gw.process.poll() is None


@pytest.mark.parametrize("name", ["broken_import", "broken_setup"])
@pytest.mark.parametrize("path", ["/anything", "/ping", "/a/b"])
def test_the_routes_of_a_failed_plugin_answer_503(gw, name, path):
    error = assert_envelope(get(gw, f"/v1/plugins/{name}{path}"), 503, "plugin_unavailable")
    assert name in error["message"] and "failed" in error["message"]


@pytest.mark.parametrize("name", ["broken_import", "broken_setup"])
def test_the_model_of_a_failed_plugin_answers_503(gw, name):
    response = post(gw, "/v1/chat/completions", json=chat_body("x", model=f"plugin:{name}"))
    assert_envelope(response, 503, "plugin_unavailable")


# 5. the admin API


def test_the_plugin_list(gw):
    assert_envelope(get(gw, "/v1/plugins"), 403, "admin_key_required")  # it shows settings: the admin key reads it
    assert_envelope(get(gw, "/v1/plugins/calc"), 403, "admin_key_required")
    response = get(gw, "/v1/plugins", key=ADMIN)
    listing = response.json()
    assert response.status_code == 200 and listing["count"] == 6 == len(listing["plugins"])
    by_name = {p["name"]: p for p in listing["plugins"]}
    assert list(by_name) == ["calc", "hello", "echo", "upper", "broken_import", "broken_setup"]
    for plugin in listing["plugins"]:
        assert {"name", "status", "source", "priority", "hooks", "tools", "models", "last_error", "config"} <= set(plugin)
        assert plugin["source"].endswith(f"/plugins/{plugin['name']}.py")
    calc = by_name["calc"]
    assert (calc["status"], calc["priority"], calc["timeout"], calc["on_error"], calc["last_error"]) == (
        "ready", 5, 1.0, "fail_closed", None)
    assert calc["tools"] == ["calc__add", "calc__explode", "calc__hang"] and calc["models"] == [] and calc["hooks"] == []
    assert calc["config"] == {"api_key": "[REDACTED]", "token": "[REDACTED]", "label": "visible"}
    assert by_name["echo"]["models"] == ["plugin:echo"] and by_name["upper"]["hooks"] == ["on_response"]
    assert by_name["hello"]["status"] == "ready" and by_name["hello"]["priority"] == 0


def test_one_plugin_and_an_unknown_one(gw):
    listed = next(p for p in get(gw, "/v1/plugins", key=ADMIN).json()["plugins"] if p["name"] == "calc")
    assert get(gw, "/v1/plugins/calc", key=ADMIN).json() == listed
    error = assert_envelope(get(gw, "/v1/plugins/nope", key=ADMIN), 404, "plugin_not_found")
    assert error["param"] == "name"


def test_secret_config_values_are_never_shown_nor_logged(gw):
    for path in ("/v1/plugins", "/v1/plugins/calc"):
        text = get(gw, path, key=ADMIN).text
        assert not [s for s in SECRETS if s in text]
    post(gw, "/v1/plugins/calc/disable", key=ADMIN)
    post(gw, "/v1/plugins/calc/enable", key=ADMIN)
    assert not [s for s in SECRETS if s in gw.output()]


def test_disabling_and_enabling_a_response_plugin(gw, sdk):
    assert ask(sdk, "please shout").choices[0].message.content == "HELLO! YOU SAID: PLEASE SHOUT"
    try:
        response = post(gw, "/v1/plugins/upper/disable", key=ADMIN)
        assert response.status_code == 200 and response.json()["status"] == "disabled"
        assert get(gw, "/v1/plugins/upper", key=ADMIN).json()["status"] == "disabled"
        assert ask(sdk, "please shout").choices[0].message.content == "Hello! You said: please shout"
    finally:
        response = post(gw, "/v1/plugins/upper/enable", key=ADMIN)
    assert response.status_code == 200 and response.json()["status"] == "ready"
    assert ask(sdk, "please shout").choices[0].message.content == "HELLO! YOU SAID: PLEASE SHOUT"


def test_a_disabled_plugins_routes_tools_and_model_are_gone_until_enabled(gw, sdk, fake_ollama):
    try:
        for name in ("hello", "echo", "calc"):
            assert post(gw, f"/v1/plugins/{name}/disable", key=ADMIN).status_code == 200
        assert_envelope(get(gw, "/v1/plugins/hello/ping"), 503, "plugin_unavailable")
        assert "plugin:echo" not in [m.id for m in sdk.models.list()]
        ask(sdk, "tools?")
        assert "tools__echo" in offered(fake_ollama) and not [n for n in offered(fake_ollama) if n.startswith("calc__")]
    finally:
        for name in ("hello", "echo", "calc"):
            post(gw, f"/v1/plugins/{name}/enable", key=ADMIN)
    assert get(gw, "/v1/plugins/hello/ping").status_code == 200


@pytest.mark.parametrize(("key", "status", "code"), [
    (KEY, 403, "admin_key_required"),
    (None, 401, "invalid_api_key"),
])
def test_changing_a_plugin_needs_the_admin_key(gw, sdk, key, status, code):
    for action in ("disable", "enable"):
        assert_envelope(post(gw, f"/v1/plugins/upper/{action}", key=key), status, code)
    assert get(gw, "/v1/plugins/upper", key=ADMIN).json()["status"] == "ready"
    assert ask(sdk, "please shout").choices[0].message.content == "HELLO! YOU SAID: PLEASE SHOUT"


def test_a_failed_plugin_stays_failed_when_enabled(gw):
    response = post(gw, "/v1/plugins/broken_setup/enable", key=ADMIN)
    assert response.status_code == 200 and response.json()["status"] == "failed"
    assert_envelope(post(gw, "/v1/plugins/nope/enable", key=ADMIN), 404, "plugin_not_found")


# -- two workers, denied plugin tools, entry points --------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """An installed-looking distribution with two `llamagate.plugins` entry points; importing the unlisted
    one leaves a marker file."""
    site = tmp_path_factory.mktemp("plugins-site")
    marker = site.parent / "unlisted-imported"
    info = site / "lgtest_extras-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lgtest-extras\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[llamagate.plugins]\nlisted = lgtest_listed:Listed\nunlisted = lgtest_unlisted:Plugin\n")
    (site / "lgtest_listed.py").write_text(
        "class Listed:\n    def on_request(self, ctx, request):\n        return None\n")
    (site / "lgtest_unlisted.py").write_text(f"open({str(marker)!r}, 'w').close()\n\n\nclass Plugin:\n    pass\n")
    return site, marker


@pytest.fixture(scope="module")
def workers2(start_gateway, site, tmp_path_factory):
    folder = tmp_path_factory.mktemp("plugins-workers")
    config = write_config(folder, {"calc": CALC}, {"items": [{"name": "calc"}, {"name": "listed"}]})
    return start_gateway(CONFIG_FILE=str(config), WORKERS="2", MCP_DENY_TOOLS="calc__*", PYTHONPATH=str(site[0]))


def test_denied_plugin_tools_are_not_offered(workers2, fake_ollama):
    for _ in range(4):  # whichever worker answers
        response = requests.post(workers2.url + "/v1/chat/completions", json=chat_body("tools?"), timeout=10)
        assert response.status_code == 200
        assert not [n for n in offered(fake_ollama) if n.startswith("calc__")]
    assert requests.get(workers2.url + "/v1/plugins/calc", timeout=10).json()["tools"] == [
        "calc__add", "calc__explode", "calc__hang"]


@pytest.mark.parametrize("action", ["enable", "disable"])
def test_runtime_changes_are_refused_with_two_workers(workers2, action):
    response = requests.post(workers2.url + f"/v1/plugins/calc/{action}", timeout=10)
    error = assert_envelope(response, 409, "multi_worker_runtime_change")
    assert "WORKERS" in error["message"]
    assert requests.get(workers2.url + "/v1/plugins/calc", timeout=10).json()["status"] == "ready"


def test_only_listed_entry_point_plugins_are_imported(workers2, site):
    listing = requests.get(workers2.url + "/v1/plugins", timeout=10).json()
    assert [p["name"] for p in listing["plugins"]] == ["calc", "listed"]
    listed = listing["plugins"][1]
    assert (listed["status"], listed["source"], listed["hooks"]) == ("ready", "entry point lgtest_listed:Listed",
                                                                     ["on_request"])
    assert not site[1].exists()
    assert "lgtest_unlisted" not in workers2.output()


# -- safe mode -----------------------------------------------------------------------------------------

LOUD = '''
open({marker!r}, "w").close()


class Plugin:
    def on_request(self, ctx, request):
        request["messages"].insert(0, {{"role": "system", "content": "be loud"}})
        return request

    def on_response(self, ctx, response):
        response["choices"][0]["message"]["content"] = "changed"
        return response

    def chat(self, ctx, request):
        return "loud"
'''


@pytest.fixture(scope="module")
def safe(start_gateway, tmp_path_factory):
    folder = tmp_path_factory.mktemp("plugins-safe")
    marker = folder / "loud-imported"
    config = write_config(folder, {"loud": LOUD.format(marker=str(marker))}, {"items": [{"name": "loud"}]})
    return start_gateway(CONFIG_FILE=str(config), PLUGINS_ENABLED="false"), marker


def test_safe_mode_imports_no_plugin(safe):
    gateway, marker = safe
    assert requests.get(gateway.url + "/v1/plugins", timeout=10).json() == {"plugins": [], "count": 0}
    assert_envelope(requests.get(gateway.url + "/v1/plugins/loud", timeout=10), 404, "plugin_not_found")
    assert not marker.exists()


def test_safe_mode_chats_are_unmodified(safe, fake_ollama):
    gateway, marker = safe
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0, timeout=20) as client:
        answer = ask(client, "hi")
        assert answer.choices[0].message.content == "Hello! You said: hi"
        assert fake_ollama.last()["messages"] == [{"role": "user", "content": "hi"}]
        assert "plugin:loud" not in [m.id for m in client.models.list()]
        with pytest.raises(openai.NotFoundError):
            ask(client, "hi", model="plugin:loud")
    assert not marker.exists()
