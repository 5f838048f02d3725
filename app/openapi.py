"""GET /openapi.json: an OpenAPI 3.1 document of every route of the app, request bodies from the marshmallow schemas.

The routes come from the app's url_map and the bodies from the schemas the views load (apispec's marshmallow plugin),
so the document follows the code. It is built on the first request, when every route (plugins' included) is
registered, and then served from memory: it cannot change while the worker runs.
"""

from __future__ import annotations

import inspect
import json
import re
import threading
from collections import Counter
from typing import Any

from flask import Flask
from flask import current_app
from flask import request
from marshmallow import Schema
from marshmallow import fields
from werkzeug.routing import Rule

from .auth import PUBLIC_PATHS
from .blueprints.metrics import PATH as METRICS_PATH
from .keys.ring import key_ring
from .schemas import fields as strict
from .schemas.chat import ChatCompletionRequest
from .schemas.embeddings import EmbeddingsRequest
from .schemas.mcp import ExecuteRequest
from .schemas.mcp import PromptRequest
from .schemas.mcp import ServerEntry

PATH = "/openapi.json"
ENDPOINT = "openapi"
DOCUMENT_KEY = "gateway.openapi"
TITLE = "LlamaGate"
API_VERSION = "1"

# Request bodies of views that do not name a module-level schema instance themselves (the chat view hands its bytes
# to the pipeline). Any other view is looked up in its own code (`_schema.load(...)`, `load_json(_schema)`), and
# a body method without either gets GENERIC_BODY.
REQUEST_SCHEMAS: dict[str, type[Schema]] = {
    "chat.chat_completions": ChatCompletionRequest,
    "embeddings.embeddings": EmbeddingsRequest,
    "mcp_admin.execute": ExecuteRequest,
    "mcp_admin.get_prompt": PromptRequest,
    "mcp_admin.add_server": ServerEntry,
}
GENERIC_BODY = {"type": "object", "description": "A JSON object (see the README for this endpoint)."}
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
DOCUMENTED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")  # HEAD and OPTIONS are implied

ERRORS = {
    400: ("BadRequest", "The request is invalid: not JSON, or a field breaks the schema (`param` names it)."),
    401: ("Unauthorized", "The API key is missing or wrong."),
    404: ("NotFound", "No such route, model or resource."),
    405: ("MethodNotAllowed", "The route does not take this method."),
    413: ("PayloadTooLarge", "The body is larger than MAX_REQUEST_BODY."),
    429: ("RateLimited", "Over the rate limit; retry after `Retry-After` seconds."),
    500: ("InternalError", "The gateway failed."),
    502: ("BadGateway", "Ollama failed, answered badly or cannot be reached."),
    503: ("Unavailable", "A dependency is unavailable (the rate-limit storage, a plugin); retry shortly."),
    504: ("GatewayTimeout", "Ollama did not answer in time."),
}
ERROR_SCHEMA = {
    "type": "object",
    "description": "OpenAI's error envelope.",
    "required": ["error"],
    "properties": {"error": {
        "type": "object",
        "required": ["message", "type"],
        "properties": {
            "message": {"type": "string"},
            "type": {"type": "string", "examples": ["invalid_request_error", "rate_limit_error", "api_error"]},
            "param": {"type": ["string", "null"]},
            "code": {"type": ["string", "null"]},
            "request_id": {"type": ["string", "null"]},
        },
    }},
}
_ARGUMENT = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
_CONVERTER_TYPES = {"int": "integer", "float": "number"}


class _Cached:
    """The serialized document, built once per app by the first request that asks for it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.body: bytes | None = None


def init_app(app: Flask) -> None:
    """Register GET /openapi.json; with OPENAPI_PUBLIC it is answered here, before the API-key check runs."""
    app.extensions[DOCUMENT_KEY] = _Cached()
    app.add_url_rule(PATH, endpoint=ENDPOINT, view_func=openapi_document, methods=["GET"])
    if app.config["OPENAPI_PUBLIC"]:
        app.before_request(_serve_public)


def openapi_document():
    """The OpenAPI 3.1 document of this gateway."""
    return current_app.response_class(document_bytes(current_app), mimetype="application/json")


def _serve_public():
    if request.path == PATH and request.method in ("GET", "HEAD"):
        return openapi_document()
    return None


def document_bytes(app: Flask) -> bytes:
    cached: _Cached = app.extensions[DOCUMENT_KEY]
    if cached.body is None:
        with cached.lock:
            if cached.body is None:
                cached.body = json.dumps(build_document(app), separators=(",", ":")).encode()
    return cached.body


def build_document(app: Flask) -> dict:
    """The document of every rule in ``app.url_map`` but `static`."""
    from apispec import APISpec
    from apispec.ext.marshmallow import MarshmallowPlugin

    secured = key_ring(app).required
    # Answered before the key check when their setting says so.
    keyless_rules = {PATH: app.config["OPENAPI_PUBLIC"], METRICS_PATH: app.config.get("METRICS_PUBLIC", False)}
    plugin = MarshmallowPlugin()
    security = {"security": [{"bearer": []}, {"apiKey": []}]} if secured else {}
    spec = APISpec(title=TITLE, version=API_VERSION, openapi_version="3.1.0", plugins=[plugin],
                   info={"description": "An OpenAI-compatible gateway in front of Ollama."}, **security)
    _map_strict_fields(plugin)
    _add_components(spec, secured)
    views = Counter(inspect.unwrap(view) for view in app.view_functions.values())
    schema_names: dict[type[Schema], str] = {}
    operation_ids: set[str] = set()
    paths: dict[str, dict[str, dict]] = {}
    parameters: dict[str, list[dict]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static":
            continue
        path = openapi_path(rule.rule)
        parameters.setdefault(path, _path_parameters(rule))
        view = app.view_functions[rule.endpoint]
        methods = [method for method in DOCUMENTED_METHODS if method in (rule.methods or ())]
        for method in methods:
            operations = paths.setdefault(path, {})
            if method.lower() in operations:
                continue
            public = rule.rule in PUBLIC_PATHS
            keyless = public or bool(keyless_rules.get(rule.rule))
            operation = _operation(rule, view, method, unique_id(rule.endpoint, method, len(methods), operation_ids),
                                   shared=views[inspect.unwrap(view)] > 1, limited=not public,
                                   keyed=secured and not keyless)
            if method in BODY_METHODS:
                operation["requestBody"] = _request_body(spec, rule.endpoint, view, schema_names)
            if secured and keyless:
                operation["security"] = []
            operations[method.lower()] = operation
    for path, operations in paths.items():
        spec.path(path=path, operations=operations, parameters=parameters[path] or None)
    return spec.to_dict()


def _add_components(spec, secured: bool) -> None:
    """The `Error` envelope, one response per error status, and the two ways to send the key."""
    spec.components.schema("Error", ERROR_SCHEMA)
    for status, (name, description) in ERRORS.items():
        response: dict[str, Any] = {"description": description,
                                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        if status == 429:
            response["headers"] = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}
        spec.components.response(name, response)
    if secured:
        spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
        spec.components.security_scheme("apiKey", {"type": "apiKey", "in": "header", "name": "X-API-Key"})


def openapi_path(rule: str) -> str:
    """``/v1/models/<path:model_id>`` as ``/v1/models/{model_id}``."""
    return _ARGUMENT.sub(lambda match: "{" + match["name"] + "}", rule)


def unique_id(endpoint: str, method: str, method_count: int, taken: set[str]) -> str:
    base = endpoint if method_count == 1 else f"{endpoint}_{method.lower()}"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _path_parameters(rule: Rule) -> list[dict]:
    out = []
    for match in _ARGUMENT.finditer(rule.rule):
        converter = match["converter"] or "default"
        parameter = {"name": match["name"], "in": "path", "required": True,
                     "schema": {"type": _CONVERTER_TYPES.get(converter, "string")}}
        if converter == "path":
            parameter["description"] = "May contain `/`."
        out.append(parameter)
    return out


def _operation(rule: Rule, view, method: str, operation_id: str, *, shared: bool, limited: bool,
               keyed: bool) -> dict:
    summary, description = _doc(view, rule.endpoint if shared else None)
    operation: dict[str, Any] = {"operationId": operation_id, "summary": summary,
                                 "tags": [rule.endpoint.rpartition(".")[0] or rule.endpoint],
                                 "responses": {"200": {"description": "Success."}}}
    if description:
        operation["description"] = description
    for status, (name, _) in ERRORS.items():
        if (status == 401 and not keyed) or (status == 429 and not limited):
            continue
        if status == 413 and method not in BODY_METHODS:
            continue
        operation["responses"][str(status)] = name
    return operation


def _doc(view, shared_by: str | None) -> tuple[str, str]:
    """The docstring's first line and the rest; without one, the function's name as words. A view shared by
    several endpoints is summarised by the endpoint's name (``shared_by``), its whole docstring is the description."""
    func = inspect.unwrap(view)
    text = inspect.cleandoc(func.__doc__ or "")
    if shared_by or not text:
        words = (shared_by or "").rpartition(".")[2] or getattr(func, "__name__", "")
        words = words.strip("_").replace("_", " ")
        return (words[:1].upper() + words[1:]) or "Endpoint", text
    first, _, rest = text.partition("\n")
    return first.strip(), rest.strip()


def _request_body(spec, endpoint: str, view, names: dict[type[Schema], str]) -> dict:
    schema = REQUEST_SCHEMAS.get(endpoint) or view_schema(view)
    if schema is None:
        return {"required": False, "content": {"application/json": {"schema": GENERIC_BODY}}}
    if schema not in names:
        name = schema.__name__.removesuffix("Schema") or schema.__name__
        if name in names.values():  # two schemas of one name, from different modules
            name = f"{schema.__module__.replace('.', '_')}_{name}"
        spec.components.schema(name, schema=schema)
        names[schema] = name
    required = any(field.required for field in schema().fields.values())
    return {"required": required,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{names[schema]}"}}}}


def view_schema(view) -> type[Schema] | None:
    """The class of the first module-level schema instance the view's own code names (``_schema`` and the like)."""
    func = inspect.unwrap(view)
    code = getattr(func, "__code__", None)
    namespace = getattr(func, "__globals__", {})
    for name in code.co_names if code else ():
        value = namespace.get(name)
        if isinstance(value, Schema):
            return type(value)
    return None


def _map_strict_fields(plugin) -> None:
    """The gateway's strict JSON fields as their JSON types, and the shapes of those that describe themselves
    (`json_schema`); `Anything` stays untyped (any JSON value)."""
    plugin.map_to_openapi_type(strict.StrictFloat, fields.Float)
    plugin.map_to_openapi_type(strict.StrictInt, fields.Integer)
    plugin.map_to_openapi_type(strict.StrictBool, fields.Boolean)

    def own_schema(self, field, **kwargs) -> dict:
        if not callable(getattr(field, "json_schema", None)):
            return {}
        described = field.json_schema(self.resolve_nested_schema)
        if field.allow_none:
            described = {"anyOf": [*described.get("anyOf", [described]), {"type": "null"}]}
        return described

    plugin.converter.add_attribute_function(own_schema)
