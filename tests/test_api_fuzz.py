"""Property-based fuzzing of every operation in the gateway's own OpenAPI document, against the real gateway.

Whatever the body, query or path, the answer is never a 5xx, and every error is JSON in OpenAI's envelope. The
gateway runs with an admin key the fuzzer never sends, so no fuzzed request can change MCP servers, plugins or
models (and the one operation that would start a process is not fuzzed at all).
"""

from __future__ import annotations

import json

import hypothesis
import hypothesis.errors
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck
from hypothesis import Phase
from schemathesis import GenerationMode
from schemathesis.generation.drivers import CoverageGenerator
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.generation.overrides import Override

KEY = "fuzz-key"
HEADERS = {"Authorization": f"Bearer {KEY}", "X-API-Key": KEY}
# Adding an MCP server starts its command: refused anyway without the admin key, and kept out of reach besides.
NOT_FUZZED = [("POST", "/v1/mcp/servers")]


@pytest.fixture(scope="module")
def fuzzed(start_gateway):
    return start_gateway(API_KEY=KEY, ADMIN_API_KEY="admin-key-the-fuzzer-never-sends", THREADS="4")


@pytest.fixture(scope="module")
def api_schema(fuzzed):
    document = requests.get(fuzzed.url + "/openapi.json", headers=HEADERS, timeout=10).json()
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=fuzzed.url)
    return schema


SETTINGS = hypothesis.settings(max_examples=10, deadline=None, derandomize=True, database=None,
                               phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))


def check(case) -> None:
    response = case.call(headers=HEADERS, timeout=20)
    assert response.status_code < 500, f"{response.status_code} {response.text[:500]}"
    if response.status_code >= 400:
        content_type = (response.headers.get("content-type") or [""])[0]
        assert content_type.startswith("application/json"), f"{content_type}: {response.text[:500]}"
        error = json.loads(response.content)["error"]
        if case.path.startswith("/api/") and isinstance(error, str):
            return  # the native API relays Ollama's own errors in Ollama's shape, which its clients read
        assert {"message", "type", "param", "code"} <= set(error), error
        assert isinstance(error["message"], str) and error["message"] and isinstance(error["type"], str)


def test_boundary_and_wrong_type_cases_get_no_5xx(api_schema):
    """Schemathesis's coverage cases: for each property, nested ones included, its boundaries and each wrong JSON
    type on its own, the rest of the request valid (how a nested field the schemas missed would reach the code)."""
    failures, cases = [], 0
    for operation in _operations(api_schema):
        generator = CoverageGenerator(operation=operation, generation_modes=list(GenerationMode),
                                      generation_config=api_schema.config.generation_for(operation=operation),
                                      auth_storage=None, override=Override(), feedback=FeedbackSources())
        for case in generator:
            cases += 1
            try:
                check(case)
            except AssertionError as err:
                failures.append(f"{operation.method.upper()} {operation.path} {case.body!r:.300}: {err}")
    assert cases > 1000
    assert not failures, "\n\n".join(failures[:20])


def _operations(api_schema):
    for result in api_schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) not in NOT_FUZZED:
            yield operation


def test_no_request_gets_a_5xx_or_an_error_outside_the_envelope(api_schema):
    """Each operation gets its own Hypothesis run; every failing operation is reported, with its smallest example."""
    failures, fuzzed = [], 0
    for operation in _operations(api_schema):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @SETTINGS
            @hypothesis.given(case=operation.as_strategy(mode))
            def run(case):
                check(case)

            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing in this operation can be made invalid
            except AssertionError as err:
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {err}")
        fuzzed += 1
    assert fuzzed > 40
    assert not failures, "\n\n".join(failures)
