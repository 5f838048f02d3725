"""Every error body the gateway sends, in OpenAI's envelope.

    APIError                      500 api_error
    ├── InvalidRequest            400 invalid_request_error
    │   └── NotFound              404 invalid_request_error
    ├── AuthenticationFailed      401 invalid_request_error (code invalid_api_key)
    ├── PermissionDenied          403 permission_error
    ├── Conflict                  409 invalid_request_error
    ├── RateLimited               429 rate_limit_error
    ├── BackendsBusy              503 api_error (code backends_busy; every Ollama slot and queue place taken)
    ├── ClientGone                499 api_error (code client_closed_request; for the logs, nobody reads it)
    └── UpstreamError             502 api_error (Ollama failed or answered badly)
        ├── UpstreamUnavailable   502 api_error (code upstream_unavailable)
        ├── UpstreamLineTooLong   502 api_error (code upstream_line_too_long; a line or body past MAX_UPSTREAM_LINE)
        └── UpstreamTimeout       504 api_error (code upstream_timeout)

`from_ollama` maps Ollama's errors (an HTTP status, or an `{"error"}` line inside a stream) and `from_mcp`
the MCP layer's; the handlers registered here turn every exception into the one envelope.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask import g
from flask import jsonify
from flask import request
from loguru import logger
from werkzeug.exceptions import ClientDisconnected
from werkzeug.exceptions import HTTPException

from .mcp import errors as mcp


class APIError(Exception):
    """An error the client should see; subclasses fix the status and type."""

    status = 500
    type = "api_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None,
                 status: int | None = None, type: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.code
        self.status = status or self.status
        self.type = type or self.type
        self.headers = headers or {}

    def body(self) -> dict:
        return error_body(self.message, self.type, self.param, self.code)


class InvalidRequest(APIError):
    status = 400
    type = "invalid_request_error"


class NotFound(InvalidRequest):
    status = 404


class AuthenticationFailed(APIError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class PermissionDenied(APIError):
    status = 403
    type = "permission_error"


class Conflict(APIError):
    """The request is valid but clashes with the gateway's state (a name in use, a setting that forbids it)."""

    status = 409
    type = "invalid_request_error"


class RateLimited(APIError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class SharedStateUnavailable(APIError):
    """A change that must reach every worker cannot be shared because Redis is unreachable."""

    status = 503
    code = "shared_state_unavailable"


class BackendsBusy(APIError):
    """Every Ollama backend that could answer is at its max_concurrency and its queue is full (or the wait ran out)."""

    status = 503
    code = "backends_busy"


class GatewayBusy(APIError):
    """This worker already runs MAX_CONCURRENT_REQUESTS requests; its other threads are kept for /health."""

    status = 503
    code = "gateway_busy"


class ClientGone(APIError):
    """The client hung up while its reply was still being read from Ollama."""

    status = 499
    code = "client_closed_request"


class UpstreamError(APIError):
    status = 502
    code = "upstream_error"


class UpstreamUnavailable(UpstreamError):
    code = "upstream_unavailable"


class UpstreamLineTooLong(UpstreamError):
    code = "upstream_line_too_long"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict:
    """The OpenAI error envelope, stamped with the current request id."""
    return envelope(message, type, param, code, g.get("request_id"))


def envelope(message: str, type: str, param: str | None = None, code: str | None = None,
             request_id: str | None = None) -> dict:
    """The OpenAI error envelope; outside a request (the HTTP server's own refusals) without a request id."""
    return {"error": {"message": message, "type": type, "param": param, "code": code, "request_id": request_id}}


def from_ollama(message: str, status: int | None = None) -> APIError:
    """The gateway's error for an Ollama failure: its HTTP status and message, or a message alone.

    An error line inside a stream has no status; it is inferred from the message, so that a model that
    is not found is a 404 whether Ollama said so before or after its first line.
    """
    if status is None:
        status = _status_of_stream_error(message)
    if status == 404:
        if "not found" in message and "model" in message:
            return NotFound(message, param="model", code="model_not_found")
        return NotFound(message)
    if status == 400:
        code = "unsupported_capability" if "does not support" in message else None
        return InvalidRequest(message, code=code)
    if status == 500 and "must be of type" in message:
        return InvalidRequest(message)
    if status in (401, 403):
        kind = "authentication_error" if status == 401 else "permission_error"
        return APIError(message, status=status, type=kind, code="upstream_" + ("unauthorized" if status == 401 else "forbidden"))
    if status == 429:
        return APIError(message, status=429, type="rate_limit_error", code="upstream_rate_limited")
    if status == 503:
        return APIError(message, status=503, code="server_busy")
    if status == 502:
        return UpstreamError(message)
    if 400 <= status < 500:
        return InvalidRequest(message, status=status)
    return APIError(message, status=500 if status == 500 else 502, code="upstream_error")


def _status_of_stream_error(message: str) -> int:
    if "not found" in message and "model" in message:
        return 404
    if "does not support" in message or message.startswith("invalid "):
        return 400
    if "server busy" in message or "maximum pending requests" in message:
        return 503
    return 500


def type_for_status(status: int) -> str:
    """OpenAI's error type for a status the gateway chose (or a plugin asked for)."""
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 429:
        return "rate_limit_error"
    return "invalid_request_error" if status < 500 else "api_error"


def plugin_error(plugin: str, hook: str, problem: str) -> APIError:
    """A plugin's hook failed (raised, returned the wrong type, or broke the request): a 500 naming both."""
    return APIError(f"plugin {plugin!r} failed in {hook}: {problem}", code="plugin_error")


def plugin_timeout(plugin: str, hook: str, seconds: float) -> APIError:
    return APIError(f"plugin {plugin!r} did not finish {hook} within {seconds:g}s", status=504, code="plugin_timeout")


def plugin_unavailable(plugin: str, reason: str) -> APIError:
    return APIError(f"plugin {plugin!r} is {reason}", status=503, code="plugin_unavailable")


def from_mcp(err: mcp.MCPError) -> APIError:
    """The API error for a failure of the MCP layer, by its class."""
    status, code = next((v for kind, v in _MCP_ERRORS.items() if isinstance(err, kind)), (500, "mcp_error"))
    kind = "permission_error" if status == 403 else "invalid_request_error" if status < 500 else "api_error"
    return APIError(err.message, status=status, type=kind, code=code)


_MCP_ERRORS: dict[type, tuple[int, str]] = {
    mcp.ServerNotFound: (404, "mcp_server_not_found"),
    mcp.ServerExists: (409, "mcp_server_exists"),
    mcp.ServerUnavailable: (503, "mcp_server_unavailable"),
    mcp.ToolNotFound: (404, "mcp_tool_not_found"),
    mcp.ToolDenied: (403, "mcp_tool_denied"),
    mcp.ToolTimeout: (504, "mcp_tool_timeout"),
    mcp.ToolCallFailed: (502, "mcp_tool_call_failed"),
    mcp.ResourceError: (502, "mcp_resource_error"),
    mcp.PromptError: (502, "mcp_prompt_error"),
}

_HTTP_ERRORS = {
    404: ("invalid_request_error", "unknown_url"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "request_too_large"),
    415: ("invalid_request_error", "unsupported_media_type"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


def _http_message(err: HTTPException) -> str:
    if err.code == 404:
        return f"Unknown request URL: {request.method} {request.path}. Please check the URL and method."
    if err.code == 405:
        return f"Method {request.method} is not allowed for {request.path}."
    if err.code == 413:
        return "Request body is larger than the gateway accepts (MAX_REQUEST_BODY)."
    return err.description or err.name


def error_response(err: APIError):
    """The Flask response (body, status, headers) for an API error."""
    return jsonify(err.body()), err.status, err.headers


def http_error_response(err: HTTPException):
    """The envelope for a werkzeug HTTP error (unknown URL, wrong method, body too large...), its headers kept."""
    if isinstance(err, ClientDisconnected) and isinstance(err.__context__, CLIENT_STALLED):
        return _stalled_body()  # werkzeug's body reader turns the stall into a 400 "could not understand"
    status = err.code or 500
    kind, code = _HTTP_ERRORS.get(status, ("invalid_request_error" if status < 500 else "api_error", None))
    kept = err.get_response().headers.items()  # e.g. Allow on a 405
    headers: dict[str, Any] = {k: v for k, v in kept if k.lower() not in ("content-type", "content-length")}
    return jsonify(error_body(_http_message(err), kind, None, code)), status, headers


def register_error_handlers(app: Flask) -> None:
    """Route API errors, MCP errors, HTTP errors and crashes through the one envelope."""
    app.register_error_handler(APIError, error_response)
    app.register_error_handler(mcp.MCPError, lambda err: error_response(from_mcp(err)))
    app.register_error_handler(HTTPException, http_error_response)

    @app.errorhandler(Exception)
    def _crash(err: Exception):
        if _raised_reading_the_body(err):
            if isinstance(err, CLIENT_STALLED):
                return _stalled_body()
            logger.bind(ip=request.remote_addr).warning("refused a broken request body: {}", type(err).__name__)
            return error_response(InvalidRequest("The request body is not valid HTTP/1.1 (chunked encoding).",
                                                 code="malformed_http"))
        logger.opt(exception=err).error("unhandled error")
        return jsonify(error_body("The gateway failed to handle the request.", "api_error", None, "internal_error")), 500


def _stalled_body():
    logger.bind(ip=request.remote_addr).warning("refused a request whose body stopped arriving (IDLE_TIMEOUT)")
    return error_response(InvalidRequest("The client stopped sending its request body (IDLE_TIMEOUT).", status=408,
                                         code="request_timeout"))


_BODY_READERS = ("gunicorn/http/", "gunicorn\\http\\")
# A client socket's IDLE_TIMEOUT, as Python's socket timeout or the kernel's (app.worker) reports it.
CLIENT_STALLED = (TimeoutError, BlockingIOError)


def _raised_reading_the_body(err: Exception) -> bool:
    """Whether the HTTP server's body reader raised it: a malformed chunked body, or a client that stalled."""
    frame = err.__traceback__
    while frame is not None:
        if any(part in frame.tb_frame.f_code.co_filename for part in _BODY_READERS):
            return True
        frame = frame.tb_next
    return False
