"""GET /openapi.json over real HTTP against gunicorn: valid OpenAPI 3.1, every route of the app, behind the key."""

from __future__ import annotations

import re

import pytest
import requests
from openapi_spec_validator import validate

from app import create_app
from app.settings import ConfigError
from app.settings import load_settings
from tests.conftest import BASE_SETTINGS

KEY = "sk-openapi-0123456789"
ERROR_STATUSES = {"400", "404", "405", "500", "502", "503", "504"}
_ARGUMENT = re.compile(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>")


@pytest.fixture(scope="module")
def secured(start_gateway):
    return start_gateway(API_KEY=KEY)


@pytest.fixture(scope="module")
def document(secured) -> dict:
    response = requests.get(secured.url + "/openapi.json", headers={"X-API-Key": KEY}, timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    return response.json()


def app_routes(**settings) -> dict[str, set[str]]:
    """Every rule of an app built in this process with the same settings: OpenAPI path -> methods."""
    app = create_app(settings=load_settings({"ENV_FILE": "", "CONFIG_FILE": ""},
                                            overrides={**BASE_SETTINGS, **settings}))
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = _ARGUMENT.sub(r"{\1}", rule.rule)
        routes.setdefault(path, set()).update(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    return routes


def operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                yield path, method, operation


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"] == "3.1.0" and document["info"]["title"] == "LlamaGate"
    validate(document)


def test_every_route_of_the_app_appears_with_its_methods(document):
    routes = app_routes(API_KEY=KEY)
    assert {"/v1/chat/completions", "/v1/models/{model_id}", "/openapi.json", "/health"} <= set(routes)
    documented = {path: {m for m in item if m != "parameters"} for path, item in document["paths"].items()}
    assert documented == routes


def test_each_operation_has_a_summary_an_id_and_the_error_responses(document):
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids))
    for path, method, operation in operations(document):
        assert operation["summary"], (method, path)
        assert ERROR_STATUSES <= set(operation["responses"]), (method, path)
        if path not in ("/health", "/health/live"):
            assert {"401", "429"} <= set(operation["responses"]), (method, path)
    assert document["components"]["responses"]["BadRequest"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"}
    error = document["components"]["schemas"]["Error"]
    assert set(error["properties"]["error"]["properties"]) >= {"message", "type", "param", "code"}


def test_path_parameters_are_declared(document):
    item = document["paths"]["/v1/models/{model_id}"]
    assert [(p["name"], p["in"], p["required"]) for p in item["parameters"]] == [("model_id", "path", True)]


def resolve(document: dict, schema: dict) -> dict:
    return document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]


def test_the_chat_body_schema_lists_model_and_messages(document):
    body = document["paths"]["/v1/chat/completions"]["post"]["requestBody"]
    schema = resolve(document, body["content"]["application/json"]["schema"])
    assert body["required"] is True
    assert {"model", "messages", "temperature", "tools", "stream"} <= set(schema["properties"])
    assert {"model", "messages"} <= set(schema["required"])
    assert schema["properties"]["messages"]["type"] == "array"
    assert schema["properties"]["temperature"]["maximum"] == 2


def test_the_other_schemas_are_used(document):
    embeddings = document["paths"]["/v1/embeddings"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"model", "input"} <= set(resolve(document, embeddings)["required"])
    execute = document["paths"]["/v1/mcp/execute"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"server", "tool"} <= set(resolve(document, execute)["required"])


def test_it_needs_the_key_when_api_key_is_set(secured, document):
    refused = requests.get(secured.url + "/openapi.json", timeout=5)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    assert document["security"] == [{"bearer": []}, {"apiKey": []}]
    assert document["paths"]["/health"]["get"]["security"] == []


def test_openapi_public_serves_it_without_the_key_still_rate_limited(start_gateway):
    public = start_gateway(API_KEY=KEY, OPENAPI_PUBLIC="true", RATE_LIMIT_RPS="50")
    first = requests.get(public.url + "/openapi.json", timeout=10)
    assert first.status_code == 200 and first.headers["x-ratelimit-limit-requests"] == "50"
    again = requests.get(public.url + "/openapi.json", headers={"X-API-Key": KEY}, timeout=10)
    assert again.content == first.content  # built once
    document = first.json()
    assert document["paths"]["/openapi.json"]["get"]["security"] == []
    assert "429" in document["paths"]["/openapi.json"]["get"]["responses"]
    assert requests.get(public.url + "/v1/models", timeout=5).status_code == 401  # only the document is public


def test_without_api_key_the_document_has_no_security(gateway):
    document = requests.get(gateway.url + "/openapi.json", timeout=10).json()
    assert "security" not in document and "401" not in document["paths"]["/v1/models"]["get"]["responses"]
    validate(document)


def test_a_bad_openapi_public_is_refused():
    with pytest.raises(ConfigError, match="OPENAPI_PUBLIC='maybe': must be true or false"):
        load_settings({"ENV_FILE": "", "CONFIG_FILE": "", "OPENAPI_PUBLIC": "maybe"})


def test_public_metrics_are_documented_without_the_key(start_gateway):
    gateway = start_gateway(API_KEY="sk-doc-0123456789", METRICS_PUBLIC="true")
    document = requests.get(gateway.url + "/openapi.json", headers={"X-API-Key": "sk-doc-0123456789"}, timeout=10)
    paths = document.json()["paths"]
    assert paths["/metrics"]["get"]["security"] == []
    assert "security" not in paths["/v1/models"]["get"]  # the document's own default: the key
