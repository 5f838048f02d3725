"""X-Request-ID: keep a well-formed incoming id, otherwise make one; echo it on every response."""

from __future__ import annotations

import random
import re
import uuid

from flask import Flask
from flask import g
from flask import request

HEADER = "X-Request-ID"
_VALID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def init_app(app: Flask) -> None:
    app.before_request(assign_request_id)
    app.after_request(echo_request_id)


def assign_request_id() -> None:
    incoming = request._get_current_object().headers.get(HEADER, "")  # one proxy lookup, not two
    g._get_current_object().request_id = incoming if _VALID.fullmatch(incoming) else new_request_id()


def new_request_id() -> str:
    """A random UUID4; ids need uniqueness, not secrecy, so no system call for entropy."""
    return str(uuid.UUID(int=random.getrandbits(128), version=4))


def echo_request_id(response):
    request_id = g._get_current_object().get("request_id")
    if request_id is not None:
        response.headers[HEADER] = request_id
    return response
