"""waitress's connection class, answering the requests its parser rejects with the gateway's JSON error envelope.

waitress's own text page quotes the offending line (a header with a missing colon may be an API key); this one
names the problem by its status only.
"""

from __future__ import annotations

import json

from waitress.channel import HTTPChannel
from waitress.task import ErrorTask

from .errors import envelope

_MESSAGES = {
    400: ("malformed_http", "The request is not valid HTTP/1.1."),
    413: ("request_too_large", "Request body is larger than the gateway accepts (MAX_REQUEST_BODY)."),
    431: ("request_headers_too_large", "The request has too many headers or a header that is too long."),
    501: ("unsupported_transfer_coding", "The request's Transfer-Encoding is not supported."),
}


class JsonErrorTask(ErrorTask):
    """The response to a request waitress could not parse: its status, and a JSON body quoting nothing."""

    def execute(self) -> None:
        error = self.request.error
        code, message = _MESSAGES.get(error.code, ("malformed_http", f"The request was refused ({error.reason})."))
        kind = "invalid_request_error" if error.code < 500 else "api_error"
        body = json.dumps(envelope(message, kind, None, code)).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class GatewayChannel(HTTPChannel):
    error_task_class = JsonErrorTask
