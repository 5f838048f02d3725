"""The example plugins (plugins/pii_redactor.py, plugins/calculator.py): through a real gateway, and through
`PluginHarness` as their authors would test them."""

from __future__ import annotations

import json
import re

import openai
import pytest
import requests
import yaml
from marshmallow import ValidationError

from app.plugins.testing import PluginHarness
from app.plugins.testing import chat_completion
from app.plugins.testing import chat_request
from app.plugins.testing import chunk
from plugins import calculator
from plugins import pii_redactor
from tests.gateway import ROOT

PII = "write to ada@example.com or call +1 (555) 123-4567"
MASKED = "write to [redacted] or call [redacted]"


@pytest.fixture(scope="module")
def gw(start_gateway, tmp_path_factory):
    config = tmp_path_factory.mktemp("examples") / "llamagate.yaml"
    config.write_text(yaml.safe_dump({"plugins": {"dirs": [str(ROOT / "plugins")], "items": [
        {"name": "pii_redactor", "priority": 10}, {"name": "calculator"}]}}))
    return start_gateway(CONFIG_FILE=str(config))


@pytest.fixture()
def sdk(gw):
    with openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0, timeout=20) as client:
        yield client


def ask(sdk, content, model="llama3.2", **kwargs):
    return sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": content}], **kwargs)


def streamed_text(stream) -> str:
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


# -- through the gateway -------------------------------------------------------------------------------


def test_both_examples_are_ready(gw):
    listing = requests.get(gw.url + "/v1/plugins", timeout=10).json()
    shown = {p["name"]: p for p in listing["plugins"]}
    assert listing["count"] == 2 and {p["status"] for p in shown.values()} == {"ready"}
    assert shown["pii_redactor"]["hooks"] == ["on_request", "on_response", "on_chunk"]
    assert shown["pii_redactor"]["config"] == {"mask": "[redacted]", "patterns": []}
    assert (shown["calculator"]["tools"], shown["calculator"]["models"]) == (["calculator__calculate"], ["plugin:calculator"])
    assert shown["calculator"]["source"] == str(ROOT / "plugins" / "calculator.py")


@pytest.mark.parametrize("stream", [False, True])
def test_pii_is_masked_before_ollama_sees_it(sdk, fake_ollama, stream):
    answer = ask(sdk, PII, stream=stream)
    text = streamed_text(answer) if stream else answer.choices[0].message.content
    assert fake_ollama.last()["messages"] == [{"role": "user", "content": MASKED}]
    assert text == "Hello! You said: " + MASKED


@pytest.mark.parametrize("stream", [False, True])
def test_pii_in_the_answer_is_masked(sdk, fake_ollama, stream):
    # The tool's result is a 10-digit number, which the model repeats: only the answer holds it.
    answer = ask(sdk, '[[tool calculator__calculate {"expression": "12345*100000"}]]', stream=stream)
    text = streamed_text(answer) if stream else answer.choices[0].message.content
    assert fake_ollama.last()["messages"][-1]["content"] == "1234500000"
    assert text == "Tool said: [redacted]"


def test_calculator_as_a_tool(sdk, fake_ollama):
    answer = ask(sdk, 'What is it? [[tool calculator__calculate {"expression": "(2+3)*4"}]]')
    assert answer.choices[0].message.content == "Tool said: 20"
    sent = fake_ollama.last()
    assert "calculator__calculate" in [t["function"]["name"] for t in sent["tools"]]
    assert sent["messages"][-1]["role"] == "tool" and sent["messages"][-1]["content"] == "20"
    assert sent["messages"][-1]["tool_name"] == "calculator__calculate"


def test_calculator_tool_errors_are_text_for_the_model(sdk, fake_ollama):
    answer = ask(sdk, '[[tool calculator__calculate {"expression": "1/0"}]]')
    assert answer.choices[0].message.content == "Tool said: Error: division by zero"


def test_calculator_as_a_model(sdk, fake_ollama):
    before = len(fake_ollama.requests)
    assert "plugin:calculator" in [m.id for m in sdk.models.list()]
    answer = ask(sdk, "(2 + 3) * 4", model="plugin:calculator")
    assert answer.choices[0].message.content == "(2 + 3) * 4 = 20" and answer.model == "plugin:calculator"
    assert streamed_text(ask(sdk, "2 ** 10", model="plugin:calculator", stream=True)) == "2 ** 10 = 1024"
    refused = ask(sdk, "open the pod bay doors", model="plugin:calculator").choices[0].message.content
    assert refused.startswith("I can only do arithmetic: ")
    assert not [r for r in fake_ollama.requests[before:] if r["path"] == "/api/chat"]


def test_calculator_as_a_route(gw):
    response = requests.get(gw.url + "/v1/plugins/calculator/evaluate", params={"expression": "2**10"}, timeout=10)
    assert response.status_code == 200 and response.json() == {"expression": "2**10", "value": 1024}
    assert response.headers["X-Request-ID"]
    assert requests.get(gw.url + "/v1/plugins/calculator/evaluate?expression=7/2", timeout=10).json()["value"] == 3.5


@pytest.mark.parametrize("expression", ["2**", "__import__('os')", "1/0", "2**100000", "", "((10**100)**1000)**100",
                                        "2.5**1000", "(-1)**0.5"])
def test_a_bad_expression_is_a_400(gw, expression):
    response = requests.get(gw.url + "/v1/plugins/calculator/evaluate", params={"expression": expression}, timeout=10)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "invalid_expression", "expression")
    assert error["message"]


# -- through PluginHarness -----------------------------------------------------------------------------


def readme_snippet() -> str:
    """The Python block of README's "Plugins" section that uses PluginHarness."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Plugins"):]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    return next(block for block in blocks if "PluginHarness(" in block)


def test_the_readme_snippet_works_as_written():
    namespace: dict = {}
    exec(compile(readme_snippet(), "README.md", "exec"), namespace)  # the asserts in it must pass
    namespace["harness"].close()


@pytest.fixture()
def redactor():
    harness = PluginHarness(pii_redactor.Plugin, config={"mask": "***", "patterns": [r"\bEMP-\d{6}\b"]},
                            name="pii_redactor")
    yield harness
    harness.close()


def test_the_redactor_masks_requests_answers_and_chunks(redactor):
    assert redactor.status == "ready" and redactor.last_error is None
    body = redactor.request(chat_request(PII + ", badge EMP-123456"))
    assert body["messages"][0]["content"] == "write to *** or call ***, badge ***"
    parts = [{"type": "text", "text": "mail bob@example.org"}]
    assert redactor.request(chat_request("x") | {"messages": [{"role": "user", "content": parts}]}
                            )["messages"][0]["content"][0]["text"] == "mail ***"
    clean = chat_request("nothing to hide")
    assert redactor.request(clean) == clean
    answer = redactor.response(chat_completion("reach me at eve@example.net"))
    assert answer["choices"][0]["message"]["content"] == "reach me at ***"
    chunks = redactor.chunks([chunk("card 4111 1111 1111 1111"), chunk(" thanks")])
    assert [c["choices"][0]["delta"]["content"] for c in chunks] == ["card ***", " thanks"]


def test_the_redactor_refuses_a_bad_pattern():
    with pytest.raises(ValidationError) as caught:
        PluginHarness(pii_redactor.Plugin, config={"patterns": ["(unclosed"]})
    assert "not a regular expression" in json.dumps(caught.value.messages)


@pytest.fixture()
def calc():
    harness = PluginHarness(calculator.Plugin, name="calculator")
    yield harness
    harness.close()


@pytest.mark.parametrize(("expression", "value"), [
    ("(2+3)*4", "20"), ("2**10", "1024"), ("-7 // 2", "-4"), ("7 % 3", "1"), ("1.5 * 2", "3.0"), ("+3", "3"),
])
def test_the_calculator_tool(calc, expression, value):
    assert calc.status == "ready" and calc.tool("calculate", {"expression": expression}) == value


@pytest.mark.parametrize(("expression", "message"), [
    ("__import__('os')", "Error: only numbers, + - * / // % ** and brackets are allowed"),
    ("__import__('os').system('true')", "Error: only numbers, + - * / // % ** and brackets are allowed"),
    ("(1).__class__", "Error: only numbers, + - * / // % ** and brackets are allowed"),
    ("'a' * 3", "Error: only numbers, + - * / // % ** and brackets are allowed"),
    ("True + 1", "Error: only numbers, + - * / // % ** and brackets are allowed"),
    ("2 ** 100000", "Error: results above 4000 digits are not computed"),
    ("9 ** 9 ** 9", "Error: results above 4000 digits are not computed"),
    ("((10**100)**1000)**100", "Error: results above 4000 digits are not computed"),
    ("2.5 ** 1000", "Error: the result is too large"),
    ("(-1) ** 0.5", "Error: the result is not a real number"),
    ("1 / 0", "Error: division by zero"),
    ("5 // 0", "Error: division by zero"),
    ("5 % 0", "Error: division by zero"),
    ("2 +", "Error: not an arithmetic expression: '2 +'"),
    ("", "Error: give an arithmetic expression of at most 500 characters"),
    ("1+" * 300 + "1", "Error: give an arithmetic expression of at most 500 characters"),
])
def test_the_calculator_refuses_with_a_message(calc, expression, message):
    assert calc.tool("calculate", {"expression": expression}) == message


def test_the_calculator_without_an_expression(calc):
    assert calc.tool("calculate", {}) == "Error: give an arithmetic expression of at most 500 characters"


@pytest.mark.parametrize(("text", "masked"), [
    ("Meeting on 2024-01-15.", "Meeting on 2024-01-15."),
    ("order 1234 5678", "order 1234 5678"),
    ("call +1 (555) 123-4567 today", "call [redacted] today"),
    ("call 555.123.4567", "call [redacted]"),
    ("card 4111 1111 1111 1111", "card [redacted]"),
])
def test_the_redactor_counts_digits_not_characters(text, masked):
    from plugins.pii_redactor import Plugin

    harness = PluginHarness(Plugin)
    try:
        result = harness.request(chat_request(text))
        assert result["messages"][0]["content"] == masked
    finally:
        harness.close()
