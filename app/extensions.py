"""Extension singletons (bound in the factory) and the accessor for the app's components."""

from __future__ import annotations

from flask import current_app
from flask_limiter import Limiter

from .ratelimit import rate_limit_key

limiter = Limiter(key_func=rate_limit_key)

COMPONENTS_KEY = "llamagate"


def components():
    """The app's `Components` (settings, Ollama client, chat pipeline, MCP runtime)."""
    return current_app.extensions[COMPONENTS_KEY]
