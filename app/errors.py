"""Every error body the gateway sends, in OpenAI's envelope.

    APIError                      500 api_error
    ├── InvalidRequest            400 invalid_request_error
    │   └── NotFound              404 invalid_request_error
    ├── AuthenticationFailed      401 invalid_request_error (code invalid_api_key)
    ├── PermissionDenied          403 permission_error
    ├── RateLimited               429 rate_limit_error
    └── UpstreamError             502 api_error (Ollama failed or answered badly)
        ├── UpstreamUnavailable   502 api_error (code upstream_unavailable)
        └── UpstreamTimeout       504 api_error (code upstream_timeout)
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask import g
from flask import jsonify
from flask import request
from loguru import logger
from werkzeug.exceptions import HTTPException


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


class RateLimited(APIError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamError(APIError):
    status = 502
    code = "upstream_error"


class UpstreamUnavailable(UpstreamError):
    code = "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict:
    """The OpenAI error envelope, stamped with the current request id."""
    return {"error": {"message": message, "type": type, "param": param, "code": code,
                      "request_id": g.get("request_id")}}


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


def register_error_handlers(app: Flask) -> None:
    """Route API errors, HTTP errors and crashes through the one envelope."""

    @app.errorhandler(APIError)
    def _api_error(err: APIError):
        return jsonify(err.body()), err.status, err.headers

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        status = err.code or 500
        kind, code = _HTTP_ERRORS.get(status, ("invalid_request_error" if status < 500 else "api_error", None))
        kept = err.get_response().headers.items()  # e.g. Allow on a 405
        headers: dict[str, Any] = {k: v for k, v in kept if k.lower() not in ("content-type", "content-length")}
        return jsonify(error_body(_http_message(err), kind, None, code)), status, headers

    @app.errorhandler(Exception)
    def _crash(err: Exception):
        logger.opt(exception=err).error("unhandled error")
        return jsonify(error_body("The gateway failed to handle the request.", "api_error", None, "internal_error")), 500
