"""Flask's JSON provider with the gateway's parsing rules, so `request.get_json()` (plugin routes) follows them too."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from .schemas.parsing import loads


class GatewayJSONProvider(DefaultJSONProvider):
    """Reads like `app.schemas.parsing.loads` (a refusal is a ValueError: Flask's 400); writes compact, keys unsorted."""

    sort_keys = False
    compact = True

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)


def init_app(app: Flask) -> None:
    app.json = GatewayJSONProvider(app)
